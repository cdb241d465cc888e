package cloudevents

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/weirhq/weir/internal/broker"
)

// subscriptions holds the running subscriptions; mu serialises changes so
// that the store's order is the order they take effect.
type subscriptions struct {
	g  *Gateway
	mu sync.Mutex
	m  map[string]*runner
}

func newSubscriptions(g *Gateway) *subscriptions {
	return &subscriptions{g: g, m: map[string]*runner{}}
}

// load starts every stored subscription.
func (ss *subscriptions) load() error {
	subs, err := ss.g.opts.Store.Load()
	if err != nil {
		return err
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	for _, s := range subs {
		if err := s.Normalize(); err != nil {
			ss.g.log.Warn("cloudevents: skipping invalid stored subscription", "name", s.Name, "err", err)
			continue
		}
		r := newRunner(ss.g, s)
		ss.m[s.Name] = r
		r.start()
	}
	if len(subs) > 0 {
		ss.g.log.Info("cloudevents: subscriptions loaded", "count", len(ss.m))
	}
	return nil
}

// stopAll stops every subscription, committing progress.
func (ss *subscriptions) stopAll() {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	for _, r := range ss.m {
		r.cancel()
	}
	for _, r := range ss.m {
		r.wg.Wait()
	}
}

// SubscriptionView is a subscription as the API shows it: its settings,
// consumer group and delivery status.
type SubscriptionView struct {
	Subscription
	Group  string             `json:"group"`
	Status SubscriptionStatus `json:"status"`
}

// SubscriptionStatus counts what the subscription did since the gateway
// started, and its lag.
type SubscriptionStatus struct {
	Delivered    int64             `json:"delivered"`
	Retried      int64             `json:"retried"`
	DeadLettered int64             `json:"deadLettered"`
	Dropped      int64             `json:"dropped"`
	Filtered     int64             `json:"filtered"`
	Lag          int64             `json:"lag"`
	Partitions   []PartitionStatus `json:"partitions"`
	LastError    string            `json:"lastError,omitempty"`
	LastErrorAt  *time.Time        `json:"lastErrorAt,omitempty"`
}

// PartitionStatus is one partition's committed offset and lag. Lag counts
// the offsets up to the last stable offset, what the subscription can
// deliver: records of transactions still open are not yet its to read.
type PartitionStatus struct {
	Partition        int32 `json:"partition"`
	Committed        int64 `json:"committed"`
	HighWatermark    int64 `json:"highWatermark"`
	LastStableOffset int64 `json:"lastStableOffset"`
	Lag              int64 `json:"lag"`
}

// view reports the subscription; committed offsets come from the group
// coordinator, as Kafka tools see them.
func (r *runner) view(ctx context.Context) SubscriptionView {
	v := SubscriptionView{Subscription: r.sub, Group: r.sub.Group()}
	st := &v.Status
	st.Delivered, st.Retried, st.DeadLettered = r.delivered.Load(), r.retried.Load(), r.deadLettered.Load()
	st.Dropped, st.Filtered = r.dropped.Load(), r.filtered.Load()
	st.Partitions = []PartitionStatus{}
	r.mu.Lock()
	if r.lastErr != "" {
		st.LastError = r.lastErr
		t := r.lastErrAt
		st.LastErrorAt = &t
	}
	committed := make(map[int32]int64, len(r.committed))
	for p, o := range r.committed {
		committed[p] = o
	}
	r.mu.Unlock()
	if t, err := r.g.b.Topic(r.sub.Topic); err == nil {
		if c, err := r.g.committed(ctx, r.sub.Group(), r.sub.Topic, len(t.Partitions())); err == nil {
			committed = c
		}
		for _, p := range t.Partitions() {
			ps := PartitionStatus{Partition: p.Index(), HighWatermark: p.HighWatermark(), Committed: -1}
			ps.LastStableOffset = p.LastStableOffset()
			if c, ok := committed[p.Index()]; ok {
				ps.Committed = c
				ps.Lag = max(ps.LastStableOffset-c, 0)
			} else {
				ps.Lag = max(ps.LastStableOffset-p.LogStartOffset(), 0)
			}
			st.Lag += ps.Lag
			st.Partitions = append(st.Partitions, ps)
		}
	}
	return v
}

type subscriptionList struct {
	Subscriptions []SubscriptionView `json:"subscriptions"`
}

func (g *Gateway) serveSubscriptions(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet:
		g.subs.mu.Lock()
		out := subscriptionList{Subscriptions: []SubscriptionView{}}
		for _, run := range g.subs.m {
			out.Subscriptions = append(out.Subscriptions, run.view(r.Context()))
		}
		g.subs.mu.Unlock()
		sort.Slice(out.Subscriptions, func(i, j int) bool { return out.Subscriptions[i].Name < out.Subscriptions[j].Name })
		writeJSON(w, http.StatusOK, out)
	case http.MethodPost:
		sub, err := readSubscription(w, r)
		if err != nil {
			g.writeError(w, err)
			return
		}
		if sub.Name == "" {
			var b [6]byte
			_, _ = rand.Read(b[:])
			sub.Name = "sub-" + hex.EncodeToString(b[:])
		}
		v, err := g.subs.put(r.Context(), sub, false)
		if err != nil {
			g.writeError(w, err)
			return
		}
		w.Header().Set("Location", "/subscriptions/"+v.Name)
		writeJSON(w, http.StatusCreated, v)
	default:
		g.writeError(w, methodNotAllowed(r.Method, "GET, POST"))
	}
}

func (g *Gateway) serveSubscription(w http.ResponseWriter, r *http.Request, name string) {
	switch r.Method {
	case http.MethodGet:
		g.subs.mu.Lock()
		run := g.subs.m[name]
		g.subs.mu.Unlock()
		if run == nil {
			g.writeError(w, notFound("no subscription %q", name))
			return
		}
		writeJSON(w, http.StatusOK, run.view(r.Context()))
	case http.MethodPut:
		sub, err := readSubscription(w, r)
		if err != nil {
			g.writeError(w, err)
			return
		}
		if sub.Name != "" && sub.Name != name {
			g.writeError(w, badRequest("the body names subscription %q, the path %q", sub.Name, name))
			return
		}
		sub.Name = name
		g.subs.mu.Lock()
		_, existed := g.subs.m[name]
		g.subs.mu.Unlock()
		v, err := g.subs.put(r.Context(), sub, true)
		if err != nil {
			g.writeError(w, err)
			return
		}
		status := http.StatusOK
		if !existed {
			status = http.StatusCreated
			w.Header().Set("Location", "/subscriptions/"+v.Name)
		}
		writeJSON(w, status, v)
	case http.MethodDelete:
		if err := g.subs.delete(r.Context(), name); err != nil {
			g.writeError(w, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	default:
		g.writeError(w, methodNotAllowed(r.Method, "GET, PUT, DELETE"))
	}
}

// readSubscription decodes a subscription body strictly.
func readSubscription(w http.ResponseWriter, r *http.Request) (Subscription, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return Subscription{}, &apiError{Status: http.StatusRequestEntityTooLarge, Code: codeTooLarge, Message: "subscription bodies are limited to 1 MiB"}
		}
		return Subscription{}, badRequest("reading the body: %v", err)
	}
	var s Subscription
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return Subscription{}, badRequest("subscription body: %v", err)
	}
	return s, nil
}

// put creates (or, with replace, replaces) a subscription durably and
// (re)starts its deliveries.
func (ss *subscriptions) put(ctx context.Context, sub Subscription, replace bool) (SubscriptionView, error) {
	if err := sub.Normalize(); err != nil {
		return SubscriptionView{}, err
	}
	g := ss.g
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if g.closed.Load() {
		return SubscriptionView{}, ErrClosed
	}
	old := ss.m[sub.Name]
	if old != nil && !replace {
		return SubscriptionView{}, &apiError{Status: http.StatusConflict, Code: codeConflict,
			Message: fmt.Sprintf("subscription %q exists; PUT /subscriptions/%s replaces it", sub.Name, sub.Name)}
	}
	if old != nil && old.sub.Topic != sub.Topic {
		return SubscriptionView{}, &apiError{Status: http.StatusConflict, Code: codeConflict,
			Message: fmt.Sprintf("subscription %q reads topic %q; the topic cannot change (delete and recreate it)", sub.Name, old.sub.Topic)}
	}
	t, err := g.readTopic(sub.Topic)
	if err != nil {
		return SubscriptionView{}, err
	}
	if dlt := sub.Delivery.DeadLetterTopic; dlt != "" {
		if _, err := g.writeTopic(dlt); err != nil {
			return SubscriptionView{}, fmt.Errorf("dead-letter topic: %w", err)
		}
	}
	now := g.opts.Now().UTC()
	sub.UpdatedAt = now
	if old != nil {
		sub.CreatedAt = old.sub.CreatedAt
		sub.StartFrom = old.sub.StartFrom
	} else {
		sub.CreatedAt = now
		// The start offsets are committed before the subscription is
		// stored: a crash in between leaves offsets nobody reads.
		offs := map[int32]int64{}
		for _, p := range t.Partitions() {
			if sub.StartFrom == "earliest" {
				offs[p.Index()] = p.LogStartOffset()
			} else {
				offs[p.Index()] = p.LastStableOffset()
			}
		}
		if err := g.commit(ctx, sub.Group(), sub.Topic, offs); err != nil {
			return SubscriptionView{}, err
		}
	}
	if err := g.opts.Store.Put(ctx, sub); err != nil {
		return SubscriptionView{}, storeError(err)
	}
	if old != nil {
		old.stop()
	}
	r := newRunner(g, sub)
	ss.m[sub.Name] = r
	r.start()
	return r.view(ctx), nil
}

// delete stops and removes a subscription and its consumer group.
func (ss *subscriptions) delete(ctx context.Context, name string) error {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	r := ss.m[name]
	if r == nil {
		return notFound("no subscription %q", name)
	}
	if err := ss.g.opts.Store.Delete(ctx, name); err != nil {
		return storeError(err)
	}
	r.stop()
	delete(ss.m, name)
	errs, err := ss.g.opts.Groups.Delete(ctx, []string{r.sub.Group()})
	if err == nil && len(errs) > 0 {
		err = errs[0]
	}
	if err != nil {
		ss.g.log.Warn("cloudevents: deleting a subscription's consumer group", "group", r.sub.Group(), "err", err)
	}
	return nil
}

// storeError classifies a failed store write.
func storeError(err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, broker.ErrStorage) {
		return unavailable(err)
	}
	return unavailable(fmt.Errorf("storing the subscription: %w", err))
}

package cloudevents

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/weirhq/weir/internal/batch"
	"github.com/weirhq/weir/internal/broker"
	"github.com/weirhq/weir/internal/group"
)

// Pull groups: GET /events/{topic}?group=G answers with the next batch of
// the group, long-polling while there is none, and first commits what the
// group's previous GET delivered (asking again acknowledges). POST
// .../commit?group=G commits explicitly. Positions handed out but not yet
// committed live in memory: after a restart the group resumes from its
// committed offsets, so delivery is at least once.

const (
	// subscriptionGroupPrefix names the consumer groups of subscriptions;
	// pull groups may not use it.
	subscriptionGroupPrefix = "weir-sub-"
	// maxPollBytes bounds the data of one pulled batch.
	maxPollBytes = 8 << 20
	// pullIdle is how long an unused pull group's positions are kept.
	pullIdle = 10 * time.Minute
)

// pullGroups holds the positions of the pull groups in use.
type pullGroups struct {
	mu    sync.Mutex
	m     map[pullKey]*pullGroup
	swept time.Time
}

type pullKey struct{ topic, group string }

// pullGroup is one group's view of one topic.
type pullGroup struct {
	mu        sync.Mutex
	loaded    bool
	next      map[int32]int64 // delivered up to
	committed map[int32]int64
	rot       int // partition the next read starts at
	lastUsed  time.Time
}

func newPullGroups() *pullGroups { return &pullGroups{m: map[pullKey]*pullGroup{}} }

func (ps *pullGroups) get(topic, groupID string, now time.Time) *pullGroup {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if now.Sub(ps.swept) > time.Minute {
		ps.swept = now
		for k, pg := range ps.m {
			if pg.mu.TryLock() {
				idle := now.Sub(pg.lastUsed) > pullIdle
				pg.mu.Unlock()
				if idle {
					delete(ps.m, k)
				}
			}
		}
	}
	k := pullKey{topic, groupID}
	pg := ps.m[k]
	if pg == nil {
		pg = &pullGroup{lastUsed: now}
		ps.m[k] = pg
	}
	return pg
}

// checkGroup validates a pull or SSE group name.
func checkGroup(name string) error {
	switch {
	case name == "":
		return badRequest("name the consumer group: ?group=G")
	case len(name) > 255:
		return badRequest("group names are at most 255 bytes")
	case !validString(name):
		return badRequest("group names must be valid UTF-8 without control characters")
	case strings.HasPrefix(name, subscriptionGroupPrefix):
		return badRequest("group names starting with %q belong to subscriptions", subscriptionGroupPrefix)
	}
	return nil
}

// startPolicy is where a group without a committed offset starts.
type startPolicy int

const (
	startEarliest startPolicy = iota
	startLatest
)

func parseStart(v string, def startPolicy) (startPolicy, error) {
	switch v {
	case "":
		return def, nil
	case "earliest":
		return startEarliest, nil
	case "latest":
		return startLatest, nil
	}
	return 0, badRequest("from=%q: want earliest or latest", v)
}

// startOffset is where a reader with policy s starts on p; latest is the
// last stable offset, as for a read_committed Kafka consumer.
func startOffset(p *broker.Partition, s startPolicy) int64 {
	if s == startLatest {
		return p.LastStableOffset()
	}
	return p.LogStartOffset()
}

// parseWait reads a wait parameter: a Go duration ("5s", "250ms") or whole
// seconds.
func parseWait(v string, def, maxWait time.Duration) (time.Duration, error) {
	if v == "" {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		n, err2 := strconv.Atoi(v)
		if err2 != nil {
			return 0, badRequest("wait=%q: want a duration such as 5s or whole seconds", v)
		}
		d = time.Duration(n) * time.Second
	}
	if d < 0 {
		return 0, badRequest("wait=%q must not be negative", v)
	}
	return min(d, maxWait), nil
}

func parseMax(v string, def, limit int) (int, error) {
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return 0, badRequest("max=%q: want a positive integer", v)
	}
	return min(n, limit), nil
}

// committed returns a group's committed offsets for topic.
func (g *Gateway) committed(ctx context.Context, groupID, topic string, partitions int) (map[int32]int64, error) {
	tps := make([]group.TopicPartition, partitions)
	for i := range tps {
		tps[i] = group.TopicPartition{Topic: topic, Partition: int32(i)}
	}
	offs, err := g.opts.Groups.Committed(ctx, groupID, tps)
	if err != nil {
		return nil, err
	}
	out := make(map[int32]int64, len(offs))
	for tp, o := range offs {
		if o.Offset >= 0 {
			out[tp.Partition] = o.Offset
		}
	}
	return out, nil
}

// commit durably commits offsets (next positions) for a group as a simple
// (generation -1) commit.
func (g *Gateway) commit(ctx context.Context, groupID, topic string, offs map[int32]int64) error {
	if len(offs) == 0 {
		return nil
	}
	req := group.CommitRequest{Group: groupID, Generation: -1}
	for p, o := range offs {
		req.Offsets = append(req.Offsets, group.OffsetCommit{
			TopicPartition: group.TopicPartition{Topic: topic, Partition: p},
			Offset:         group.Offset{Offset: o, LeaderEpoch: -1},
		})
	}
	sort.Slice(req.Offsets, func(i, j int) bool { return req.Offsets[i].Partition < req.Offsets[j].Partition })
	errs, err := g.opts.Groups.Commit(ctx, req)
	if err != nil {
		return err
	}
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

// load reads the group's committed offsets once. pg.mu is held.
func (pg *pullGroup) load(ctx context.Context, g *Gateway, groupID string, t *broker.Topic) error {
	if pg.loaded {
		return nil
	}
	c, err := g.committed(ctx, groupID, t.Name, len(t.Partitions()))
	if err != nil {
		return err
	}
	pg.committed = c
	pg.next = map[int32]int64{}
	for p, o := range c {
		pg.next[p] = o
	}
	pg.loaded = true
	return nil
}

// commitDelivered commits what was handed out and not yet committed.
// pg.mu is held.
func (pg *pullGroup) commitDelivered(ctx context.Context, g *Gateway, groupID, topic string) error {
	offs := map[int32]int64{}
	for p, o := range pg.next {
		if c, ok := pg.committed[p]; !ok || c != o {
			offs[p] = o
		}
	}
	if err := g.commit(ctx, groupID, topic, offs); err != nil {
		return err
	}
	for p, o := range offs {
		pg.committed[p] = o
	}
	return nil
}

// pulled is one event read for a client.
type pulled struct {
	partition int32
	offset    int64
	ev        event.Event
}

// readEvents reads up to maxEvents from the group's positions across the
// partitions, advancing them; moved reports whether a position moved
// (past skipped aborted records or markers, when no event came). pg.mu is
// held.
func (pg *pullGroup) readEvents(g *Gateway, t *broker.Topic, maxEvents int, start startPolicy) (out []pulled, moved bool, err error) {
	parts := t.Partitions()
	size := 0
	for i := range parts {
		if len(out) >= maxEvents || size >= maxPollBytes {
			break
		}
		p := parts[(pg.rot+i)%len(parts)]
		pi := p.Index()
		from, ok := pg.next[pi]
		if !ok {
			from = startOffset(p, start)
		}
		next, err := readOnce(p, from, 1<<20, func(off, ts int64, r batch.Record) bool {
			ev := recordToEvent(t.Name, pi, off, ts, r)
			g.egressData(&ev)
			out = append(out, pulled{partition: pi, offset: off, ev: ev})
			size += len(r.Value)
			return len(out) < maxEvents && size < maxPollBytes
		})
		if err != nil {
			return nil, false, err
		}
		moved = moved || next != from
		pg.next[pi] = next
	}
	pg.rot++
	return out, moved, nil
}

// changed returns the notification channels of t's partitions; take them
// before reading so that no append between read and wait is missed.
func changed(t *broker.Topic) []<-chan struct{} {
	parts := t.Partitions()
	out := make([]<-chan struct{}, len(parts))
	for i, p := range parts {
		out[i] = p.Changed()
	}
	return out
}

// waitChange blocks until one of chans closes (-1) or one of others, which
// are receive channels (nil ones never ready), is ready: its index.
func waitChange(chans []<-chan struct{}, others ...any) int {
	cases := make([]reflect.SelectCase, 0, len(chans)+len(others))
	for _, c := range chans {
		cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(c)})
	}
	for _, o := range others {
		cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(o)})
	}
	i, _, _ := reflect.Select(cases)
	if i < len(chans) {
		return -1
	}
	return i - len(chans)
}

func (g *Gateway) servePull(w http.ResponseWriter, r *http.Request, topic string) {
	q := r.URL.Query()
	groupID := q.Get("group")
	if err := checkGroup(groupID); err != nil {
		g.writeError(w, err)
		return
	}
	maxEvents, err := parseMax(q.Get("max"), 100, g.opts.MaxPollEvents)
	if err != nil {
		g.writeError(w, err)
		return
	}
	wait, err := parseWait(q.Get("wait"), g.opts.DefaultPollWait, g.opts.MaxPollWait)
	if err != nil {
		g.writeError(w, err)
		return
	}
	start, err := parseStart(q.Get("from"), startEarliest)
	if err != nil {
		g.writeError(w, err)
		return
	}
	t, err := g.readTopic(topic)
	if err != nil {
		g.writeError(w, err)
		return
	}
	if !g.acquireStream() {
		g.writeError(w, tooManyStreams())
		return
	}
	defer g.releaseStream()

	ctx := r.Context()
	pg := g.pulls.get(topic, groupID, g.opts.Now())
	timer := time.NewTimer(wait)
	defer timer.Stop()
	pg.mu.Lock()
	if err := pg.load(ctx, g, groupID, t); err != nil {
		pg.mu.Unlock()
		g.writeError(w, err)
		return
	}
	if err := pg.commitDelivered(ctx, g, groupID, topic); err != nil {
		pg.mu.Unlock()
		g.writeError(w, err)
		return
	}
	for {
		chans := changed(t)
		evs, moved, err := pg.readEvents(g, t, maxEvents, start)
		if err == nil && len(evs) == 0 && moved {
			continue // skipped aborted records only: read on (pg.mu still held)
		}
		next := positions(pg.next)
		pg.lastUsed = g.opts.Now()
		pg.mu.Unlock()
		if err != nil {
			g.writeError(w, unavailable(err))
			return
		}
		if len(evs) > 0 || waitChange(chans, timer.C, ctx.Done(), g.ctx.Done()) >= 0 {
			g.writeBatch(w, evs, next)
			return
		}
		pg.mu.Lock()
	}
}

// positions formats next offsets as "0=12,1=5".
func positions(next map[int32]int64) string {
	ps := make([]int32, 0, len(next))
	for p := range next {
		ps = append(ps, p)
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
	var b strings.Builder
	for i, p := range ps {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%d=%d", p, next[p])
	}
	return b.String()
}

// writeBatch answers with evs in the batched JSON format.
func (g *Gateway) writeBatch(w http.ResponseWriter, evs []pulled, next string) {
	var buf bytes.Buffer
	buf.WriteByte('[')
	for i := range evs {
		if i > 0 {
			buf.WriteByte(',')
		}
		if err := event.WriteJson(&evs[i].ev, &buf); err != nil {
			g.writeError(w, fmt.Errorf("cloudevents: encoding event at %d/%d: %w", evs[i].partition, evs[i].offset, err))
			return
		}
	}
	buf.WriteString("]\n")
	w.Header().Set("Content-Type", mediaBatchJSON)
	w.Header().Set("Weir-Next-Offsets", next)
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(buf.Bytes())
}

// commitRequest is the optional body of POST .../commit.
type commitRequest struct {
	Offsets []partitionOffset `json:"offsets"`
}

type partitionOffset struct {
	Partition int32 `json:"partition"`
	Offset    int64 `json:"offset"`
}

type commitResponse struct {
	Group   string            `json:"group"`
	Topic   string            `json:"topic"`
	Offsets []partitionOffset `json:"offsets"`
}

// serveCommit commits what the group was handed out, or the offsets the
// body names (which also become the group's next positions).
func (g *Gateway) serveCommit(w http.ResponseWriter, r *http.Request, topic string) {
	groupID := r.URL.Query().Get("group")
	if err := checkGroup(groupID); err != nil {
		g.writeError(w, err)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	if err != nil {
		g.writeError(w, badRequest("reading the body: %v", err))
		return
	}
	var req commitRequest
	if len(bytes.TrimSpace(body)) > 0 {
		if err := json.Unmarshal(body, &req); err != nil {
			g.writeError(w, badRequest("commit body: %v", err))
			return
		}
	}
	t, err := g.readTopic(topic)
	if err != nil {
		g.writeError(w, err)
		return
	}
	n := int32(len(t.Partitions()))
	for _, po := range req.Offsets {
		if po.Partition < 0 || po.Partition >= n || po.Offset < 0 {
			g.writeError(w, badRequest("offset %d of partition %d is out of range", po.Offset, po.Partition))
			return
		}
	}
	ctx := r.Context()
	pg := g.pulls.get(topic, groupID, g.opts.Now())
	pg.mu.Lock()
	defer pg.mu.Unlock()
	pg.lastUsed = g.opts.Now()
	if err := pg.load(ctx, g, groupID, t); err != nil {
		g.writeError(w, err)
		return
	}
	if len(req.Offsets) > 0 {
		offs := map[int32]int64{}
		for _, po := range req.Offsets {
			offs[po.Partition] = po.Offset
		}
		if err := g.commit(ctx, groupID, topic, offs); err != nil {
			g.writeError(w, err)
			return
		}
		for p, o := range offs {
			pg.committed[p], pg.next[p] = o, o
		}
	} else if err := pg.commitDelivered(ctx, g, groupID, topic); err != nil {
		g.writeError(w, err)
		return
	}
	resp := commitResponse{Group: groupID, Topic: topic, Offsets: []partitionOffset{}}
	for p, o := range pg.committed {
		resp.Offsets = append(resp.Offsets, partitionOffset{Partition: p, Offset: o})
	}
	sort.Slice(resp.Offsets, func(i, j int) bool { return resp.Offsets[i].Partition < resp.Offsets[j].Partition })
	writeJSON(w, http.StatusOK, resp)
}

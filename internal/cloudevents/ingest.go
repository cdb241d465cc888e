package cloudevents

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/weirhq/weir/internal/batch"
	"github.com/weirhq/weir/internal/broker"
)

// Accepted is one stored event in a 202 answer.
type Accepted struct {
	ID        string `json:"id"`
	Source    string `json:"source"`
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
	// Duplicate is true when the event was stored by an earlier request
	// with the same source and id; the position is the original's.
	Duplicate bool `json:"duplicate,omitempty"`
}

// ingestResponse is the body of a 202.
type ingestResponse struct {
	Topic  string     `json:"topic"`
	Events []Accepted `json:"events"`
}

// bodyLimit is the largest body accepted in a content mode.
func (g *Gateway) bodyLimit(m contentMode) int {
	switch m {
	case modeStructured:
		// data_base64 grows data by a third; attributes need room too.
		return g.opts.MaxEventBytes/3*4 + 64<<10
	case modeBatch:
		return g.opts.MaxBatchBytes
	}
	return g.opts.MaxEventBytes
}

func (g *Gateway) serveIngest(w http.ResponseWriter, r *http.Request, topic string) {
	if err := broker.ValidateTopicName(topic); err != nil {
		g.writeError(w, err)
		return
	}
	mode, err := requestMode(r.Header)
	if err != nil {
		g.writeError(w, err)
		return
	}
	limit := g.bodyLimit(mode)
	if r.ContentLength > int64(limit) {
		g.writeError(w, tooLarge(mode, limit))
		return
	}
	reserve := int64(limit)
	if r.ContentLength >= 0 {
		reserve = r.ContentLength
	}
	if !g.inflight.acquire(reserve) {
		g.writeError(w, &apiError{Status: http.StatusTooManyRequests, Code: codeBackpressure,
			Message: "too many bytes in flight; retry later", retryAfter: time.Second})
		return
	}
	defer g.inflight.release(reserve)

	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(g.opts.BodyReadTimeout))
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, int64(limit)))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			g.writeError(w, tooLarge(mode, limit))
		} else {
			g.writeError(w, badRequest("reading the body: %v", err))
		}
		return
	}
	var evs []event.Event
	switch mode {
	case modeBinary:
		var ev event.Event
		ev, err = decodeBinary(r.Header, body, len(body) > 0)
		evs = []event.Event{ev}
	case modeStructured:
		var ev event.Event
		ev, err = decodeStructured(body)
		evs = []event.Event{ev}
	case modeBatch:
		evs, err = decodeBatch(body, g.opts.MaxBatchEvents)
	}
	if err != nil {
		g.writeError(w, err)
		return
	}
	for i := range evs {
		if n := eventSize(&evs[i]); n > g.opts.MaxEventBytes {
			err := &apiError{Status: http.StatusRequestEntityTooLarge, Code: codeTooLarge,
				Message: fmt.Sprintf("event of %d bytes exceeds the limit of %d", n, g.opts.MaxEventBytes)}
			if mode == modeBatch {
				g.writeError(w, atIndex(err, i))
			} else {
				g.writeError(w, err)
			}
			return
		}
	}
	t, err := g.writeTopic(topic)
	if err != nil {
		g.writeError(w, err)
		return
	}
	acc, err := g.publish(r.Context(), t, evs, g.dedup != nil)
	if err != nil {
		g.writeError(w, err)
		return
	}
	writeJSON(w, http.StatusAccepted, ingestResponse{Topic: topic, Events: acc})
}

func tooLarge(m contentMode, limit int) error {
	return &apiError{Status: http.StatusRequestEntityTooLarge, Code: codeTooLarge,
		Message: fmt.Sprintf("%s mode bodies are limited to %d bytes", m, limit)}
}

// pending is one event on its way to a partition.
type pending struct {
	index int
	rec   batch.Record
	claim *dedupEntry // nil without idempotence
}

// publish stores evs in t and returns once every one is durable. With
// idempotence an event whose source+id was stored within the window is not
// written again. Events go to a partition each (by key, else one
// round-robin partition for the request) and each partition gets one
// append, so a partition holds all of a request's events for it or none.
func (g *Gateway) publish(ctx context.Context, t *broker.Topic, evs []event.Event, idempotent bool) ([]Accepted, error) {
	out := make([]Accepted, len(evs))
	recs := make([]batch.Record, len(evs))
	_, valueMode := t.SchemaValidation()
	for i := range evs {
		rec, err := eventToRecord(&evs[i])
		if err != nil {
			return nil, atIndex(invalid("", "%v", err), i)
		}
		if valueMode != broker.SchemaValidationOff {
			if err := g.frameValue(t, &evs[i], &rec); err != nil {
				return nil, atIndex(err, i)
			}
		}
		recs[i] = rec
		out[i] = Accepted{ID: evs[i].ID(), Source: evs[i].Source()}
	}
	if !idempotent {
		todo := make([]pending, len(evs))
		for i := range evs {
			todo[i] = pending{index: i, rec: recs[i]}
		}
		return out, g.write(ctx, t, todo, out)
	}
	g.dedup.warm(t, g)
	remaining := make([]int, len(evs))
	for i := range remaining {
		remaining[i] = i
	}
	for round := 0; len(remaining) > 0; round++ {
		if round == 3 {
			return nil, unavailable(errors.New("concurrent requests for the same events kept failing"))
		}
		var todo []pending
		var waits []int
		var waitOn []*dedupEntry
		mine := map[[32]byte]int{} // duplicates inside one request
		for _, i := range remaining {
			k := dedupKey(t.ID, evs[i].Source(), evs[i].ID())
			if first, ok := mine[k]; ok {
				waits, waitOn = append(waits, i), append(waitOn, todo[first].claim)
				continue
			}
			e, owner := g.dedup.claim(k, g.opts.Now())
			if owner {
				mine[k] = len(todo)
				todo = append(todo, pending{index: i, rec: recs[i], claim: e})
			} else {
				waits, waitOn = append(waits, i), append(waitOn, e)
			}
		}
		err := g.write(ctx, t, todo, out)
		if err != nil {
			return nil, err
		}
		remaining = remaining[:0]
		for j, i := range waits {
			e := waitOn[j]
			select {
			case <-e.done:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			if !e.ok {
				remaining = append(remaining, i)
				continue
			}
			// The original may still be on its way to disk.
			if p, err := g.b.Partition(t.Name, e.partition); err == nil {
				if err := p.WaitDurable(ctx, e.offset+1); err != nil {
					return nil, unavailable(err)
				}
			}
			out[i].Partition, out[i].Offset, out[i].Duplicate = e.partition, e.offset, true
		}
	}
	return out, nil
}

// write appends todo to t, fills their positions in out and waits for
// durability. Claims are settled: written ones are remembered, failed ones
// released.
func (g *Gateway) write(ctx context.Context, t *broker.Topic, todo []pending, out []Accepted) error {
	if len(todo) == 0 {
		return nil
	}
	parts := t.Partitions()
	n := len(parts)
	rr := int32(0)
	if n > 1 {
		v, _ := g.rr.LoadOrStore(t.Name, new(atomic.Uint32))
		rr = int32(v.(*atomic.Uint32).Add(1) % uint32(n))
	}
	byPart := map[int32][]pending{}
	var order []int32
	for _, p := range todo {
		pi := rr
		if p.rec.Key != nil {
			pi = partitionFor(p.rec.Key, n)
		}
		if _, ok := byPart[pi]; !ok {
			order = append(order, pi)
		}
		byPart[pi] = append(byPart[pi], p)
	}
	settled := map[int32]bool{}
	settle := func(pi int32, ok bool) {
		if settled[pi] {
			return
		}
		settled[pi] = true
		now := g.opts.Now()
		for _, p := range byPart[pi] {
			if p.claim != nil {
				g.dedup.complete(p.claim, ok, pi, out[p.index].Offset, now)
			}
		}
	}
	defer func() {
		for _, pi := range order {
			settle(pi, false)
		}
	}()
	type appended struct {
		p    *broker.Partition
		pi   int32
		next int64
	}
	var done []appended
	maxBytes := g.maxMessageBytes(t)
	now := g.opts.Now().UnixMilli()
	raws := make(map[int32][]byte, len(order))
	for _, pi := range order {
		raw, err := buildBatches(byPart[pi], now, maxBytes)
		if err != nil {
			return err
		}
		raws[pi] = raw
	}
	if len(order) > 1 {
		// All or none: every partition's write passes the gate's checks
		// before any is appended.
		for _, pi := range order {
			if err := g.b.CheckWrite(broker.Write{Topic: t.Name, Partition: pi, Records: raws[pi]}); err != nil {
				return writeRefused(err, byPart[pi])
			}
		}
	}
	for _, pi := range order {
		ps := byPart[pi]
		pr, err := g.b.Produce(broker.Write{Topic: t.Name, Partition: pi, Records: raws[pi]})
		if err != nil {
			return writeRefused(err, ps)
		}
		a := pr.Appended
		for j, p := range ps {
			out[p.index].Partition, out[p.index].Offset = pi, a.BaseOffset+int64(j)
		}
		// Remembered now: a retry arriving while this request waits for
		// the fsync finds it, and waits for durability itself.
		settle(pi, true)
		done = append(done, appended{p: parts[pi], pi: pi, next: a.LastOffset + 1})
	}
	for _, d := range done {
		if err := d.p.WaitDurable(ctx, d.next); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			g.dedup.forget(byPart[d.pi])
			return unavailable(err)
		}
	}
	return nil
}

// writeRefused translates a refused write of the events ps into the HTTP
// answer: records the gate refused (schema validation) answer 422 naming
// each event and why; other refusals keep their class (413, 403, 404);
// anything else is the storage's, 503.
func writeRefused(err error, ps []pending) error {
	var re *broker.RecordErrors
	if errors.As(err, &re) && len(re.Records) > 0 {
		ae := &apiError{Status: http.StatusUnprocessableEntity, Code: codeInvalidRecord}
		for _, r := range re.Records {
			i := int(r.Index)
			if i >= 0 && i < len(ps) {
				i = ps[i].index
			}
			ae.Records = append(ae.Records, recordProblem{Event: i, Message: r.Message})
		}
		first := ae.Records[0]
		ae.Index = &first.Event
		ae.Message = fmt.Sprintf("event %d refused by topic %s's schema validation: %s", first.Event, re.Topic, first.Message)
		if re.Total > 1 {
			ae.Message += fmt.Sprintf(" (and %d more events)", re.Total-1)
		}
		return ae
	}
	switch {
	case errors.Is(err, broker.ErrRecordTooLarge), errors.Is(err, broker.ErrInvalidRecord), errors.Is(err, broker.ErrInvalidTimestamp),
		errors.Is(err, broker.ErrReservedTopic), errors.Is(err, broker.ErrPolicyViolation),
		errors.Is(err, broker.ErrUnknownTopicOrPartition), errors.Is(err, broker.ErrInvalidTopic):
		return err
	}
	return unavailable(err)
}

// buildBatches encodes one partition's records as record batches, starting
// a new batch before one would pass maxBytes.
func buildBatches(ps []pending, nowMs int64, maxBytes int) ([]byte, error) {
	var out []byte
	var b batch.Builder
	b.Reset(batch.BuildOptions{BaseTimestamp: nowMs})
	size := 0
	for _, p := range ps {
		rs := recordSize(p.rec)
		if b.Len() > 0 && size+rs > maxBytes {
			var err error
			if out, err = b.AppendTo(out); err != nil {
				return nil, err
			}
			b.Reset(batch.BuildOptions{BaseTimestamp: nowMs})
			size = 0
		}
		if err := b.Append(p.rec); err != nil {
			return nil, err
		}
		size += rs
	}
	return b.AppendTo(out)
}

// recordSize estimates a record's encoded size, generously.
func recordSize(r batch.Record) int {
	n := 32 + len(r.Key) + len(r.Value)
	for _, h := range r.Headers {
		n += 10 + len(h.Key) + len(h.Value)
	}
	return n
}

// maxMessageBytes is the topic's max.message.bytes less the batch header.
func (g *Gateway) maxMessageBytes(t *broker.Topic) int {
	v, ok := t.Configs()["max.message.bytes"]
	if !ok {
		if entries, err := g.b.DescribeConfigs(t.Name); err == nil {
			for _, e := range entries {
				if e.Name == "max.message.bytes" {
					v = e.Value
				}
			}
		}
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		n = 1048588
	}
	return max(n-batch.HeaderSize, 1)
}

package cloudevents

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/types"

	"github.com/weirhq/weir/internal/batch"
	"github.com/weirhq/weir/internal/broker"
	"github.com/weirhq/weir/internal/group"
)

// Extensions a dead-lettered event gains, saying why.
const (
	ExtDeadLetterReason   = "deadletterreason"   // what failed: "status 500", "timeout", ...
	ExtDeadLetterStatus   = "deadletterstatus"   // the sink's last HTTP status, 0 for none
	ExtDeadLetterAttempts = "deadletterattempts" // delivery attempts made
	ExtDeadLetterSink     = "deadlettersink"     // the sink URL
)

// maxWindow bounds the events of one partition read but not yet
// committable (behind an event still being delivered).
const maxWindow = 10000

// runner delivers one subscription: one goroutine per partition, each
// reading from the group's committed offset, filtering, posting to the sink
// with retries, dead-lettering, and committing its progress. A partition's
// committed offset never passes an event that is not finished (delivered,
// filtered out, dead-lettered or dropped), so delivery is at least once.
type runner struct {
	g   *Gateway
	sub Subscription

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	delivered, retried, deadLettered, dropped, filtered atomic.Int64
	commitChecks                                        atomic.Int64 // commitProgress calls, for tests

	mu        sync.Mutex
	committed map[int32]int64
	lastErr   string
	lastErrAt time.Time
}

func newRunner(g *Gateway, sub Subscription) *runner {
	r := &runner{g: g, sub: sub, committed: map[int32]int64{}}
	r.ctx, r.cancel = context.WithCancel(g.ctx)
	return r
}

func (r *runner) start() {
	r.wg.Add(1)
	go r.supervise()
}

// stop ends the deliveries and waits for them, including their last
// commit.
func (r *runner) stop() {
	r.cancel()
	r.wg.Wait()
}

// supervise starts a worker per partition, and for partitions added later.
func (r *runner) supervise() {
	defer r.wg.Done()
	started := map[int32]bool{}
	tick := time.NewTicker(r.g.opts.PartitionCheckInterval)
	defer tick.Stop()
	for {
		if t, err := r.g.b.Topic(r.sub.Topic); err == nil {
			for _, p := range t.Partitions() {
				if !started[p.Index()] {
					started[p.Index()] = true
					r.wg.Add(1)
					go r.work(p.Index())
				}
			}
		}
		select {
		case <-r.ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// sleep waits d or until the runner stops; false if it stopped.
func (r *runner) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.ctx.Done():
		return false
	}
}

func (r *runner) noteError(msg string) {
	r.mu.Lock()
	r.lastErr, r.lastErrAt = msg, r.g.opts.Now()
	r.mu.Unlock()
}

// window tracks one partition's events between read and committable.
type window struct {
	mu      sync.Mutex
	readPos int64   // next offset to read
	slots   []int64 // offsets started and not yet known finished, ascending
	done    map[int64]bool
	kick    chan struct{} // signalled when an event finishes
}

func newWindow(pos int64) *window {
	return &window{readPos: pos, done: map[int64]bool{}, kick: make(chan struct{}, 1)}
}

func (w *window) advance(pos int64) {
	w.mu.Lock()
	w.readPos = max(w.readPos, pos)
	w.mu.Unlock()
}

// clamp moves the read position into the log (after retention, or onto a
// topic created again) and returns it.
func (w *window) clamp(p *broker.Partition) int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.readPos = clampOffset(p, w.readPos)
	return w.readPos
}

func (w *window) add(off int64) {
	w.mu.Lock()
	w.slots = append(w.slots, off)
	w.mu.Unlock()
}

func (w *window) finish(off int64) {
	w.mu.Lock()
	w.done[off] = true
	for len(w.slots) > 0 && w.done[w.slots[0]] {
		delete(w.done, w.slots[0])
		w.slots = w.slots[1:]
	}
	w.mu.Unlock()
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// commitPos is the offset everything below which is finished.
func (w *window) commitPos() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.slots) > 0 {
		return w.slots[0]
	}
	return w.readPos
}

func (w *window) full() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.slots) >= maxWindow
}

// work delivers partition pi until the runner stops.
func (r *runner) work(pi int32) {
	defer r.wg.Done()
	topic, groupID := r.sub.Topic, r.sub.Group()
	var pos int64 = -1
	for pos < 0 {
		offs, err := r.g.opts.Groups.Committed(r.ctx, groupID, []group.TopicPartition{{Topic: topic, Partition: pi}})
		if err == nil {
			if o, ok := offs[group.TopicPartition{Topic: topic, Partition: pi}]; ok && o.Offset >= 0 {
				pos = o.Offset
			} else if p, err := r.g.b.Partition(topic, pi); err == nil {
				pos = p.LogStartOffset() // a partition added after the subscription
			}
		}
		if pos < 0 && !r.sleep(time.Second) {
			return
		}
	}
	r.mu.Lock()
	r.committed[pi] = pos
	r.mu.Unlock()

	win := newWindow(pos)
	var inflight sync.WaitGroup
	sem := make(chan struct{}, r.sub.Delivery.MaxInFlight)
	ordered := *r.sub.Delivery.Ordered
	commitTick := time.NewTicker(r.g.opts.CommitInterval)
	defer commitTick.Stop()
	lastCommit := time.Now()
	defer func() {
		inflight.Wait()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		r.commitProgress(ctx, pi, win)
	}()

	for r.ctx.Err() == nil {
		p, err := r.g.b.Partition(topic, pi)
		if err != nil {
			if !r.sleep(r.g.opts.PartitionCheckInterval) {
				return
			}
			continue
		}
		changed := p.Changed()
		from := win.clamp(p)
		stopped := false
		next, err := readOnce(p, from, 1<<20, func(off, ts int64, rec batch.Record) bool {
			ev := recordToEvent(topic, pi, off, ts, rec)
			r.g.egressData(&ev)
			if !matchAll(r.sub.Filters, &ev) {
				r.filtered.Add(1)
				win.advance(off + 1)
				return true
			}
			if ordered {
				if !r.deliver(ev) {
					stopped = true
					return false
				}
				win.advance(off + 1)
				if time.Since(lastCommit) >= r.g.opts.CommitInterval {
					r.commitProgress(r.ctx, pi, win)
					lastCommit = time.Now()
				}
				return true
			}
			if win.full() {
				stopped = true
				return false
			}
			select {
			case sem <- struct{}{}:
			case <-r.ctx.Done():
				stopped = true
				return false
			}
			win.add(off)
			win.advance(off + 1)
			inflight.Add(1)
			go func() {
				defer inflight.Done()
				defer func() { <-sem }()
				if r.deliver(ev) {
					win.finish(off)
				}
			}()
			return true
		})
		if err != nil {
			r.noteError(fmt.Sprintf("reading %s-%d: %v", topic, pi, err))
			if !r.sleep(r.g.opts.PartitionCheckInterval) {
				return
			}
			continue
		}
		if r.ctx.Err() != nil {
			return
		}
		if !stopped {
			// Offsets past the records seen (control batches, compaction
			// gaps) are finished too.
			win.advance(next)
		}
		if time.Since(lastCommit) >= r.g.opts.CommitInterval {
			r.commitProgress(r.ctx, pi, win)
			lastCommit = time.Now()
		}
		if !stopped && next > from && next < p.LastStableOffset() {
			continue // more to read now
		}
		select {
		case <-changed:
		case <-win.kick:
		case <-commitTick.C:
			r.commitProgress(r.ctx, pi, win)
			lastCommit = time.Now()
		case <-r.ctx.Done():
			return
		}
	}
}

// commitProgress commits the partition's finished prefix when it moved.
func (r *runner) commitProgress(ctx context.Context, pi int32, win *window) {
	r.commitChecks.Add(1)
	pos := win.commitPos()
	r.mu.Lock()
	same := r.committed[pi] == pos
	r.mu.Unlock()
	if same {
		return
	}
	if err := r.g.commit(ctx, r.sub.Group(), r.sub.Topic, map[int32]int64{pi: pos}); err != nil {
		if ctx.Err() == nil {
			r.noteError(fmt.Sprintf("committing %s-%d at %d: %v", r.sub.Topic, pi, pos, err))
		}
		return
	}
	r.mu.Lock()
	r.committed[pi] = pos
	r.mu.Unlock()
}

// attemptResult is the outcome of one delivery attempt.
type attemptResult struct {
	status     int // 0 when there was no response
	retryAfter time.Duration
	err        error
}

func (a attemptResult) ok() bool { return a.err == nil && a.status >= 200 && a.status < 300 }

// retryable follows Knative: network errors, timeouts, 404, 408, 409, 429
// and 5xx are retried; other answers are final.
func (a attemptResult) retryable() bool {
	if a.err != nil {
		return true
	}
	switch a.status {
	case http.StatusNotFound, http.StatusRequestTimeout, http.StatusConflict, http.StatusTooManyRequests:
		return true
	}
	return a.status >= 500
}

func (a attemptResult) reason() string {
	if a.err != nil {
		if errors.Is(a.err, context.DeadlineExceeded) {
			return "timeout"
		}
		return a.err.Error()
	}
	return fmt.Sprintf("status %d", a.status)
}

// deliver posts ev until it succeeds, fails for good (then dead-letters or
// drops it), or the runner stops (false: not finished).
func (r *runner) deliver(ev event.Event) bool {
	d := &r.sub.Delivery
	attempts := 0
	for {
		attempts++
		res := r.send(ev)
		if r.ctx.Err() != nil {
			return false
		}
		if res.ok() {
			r.delivered.Add(1)
			return true
		}
		r.noteError(fmt.Sprintf("event %s from %s: %s", ev.ID(), ev.Source(), res.reason()))
		if !res.retryable() || attempts > *d.Retries {
			return r.deadLetter(ev, res, attempts)
		}
		r.retried.Add(1)
		wait := d.backoff(attempts)
		if res.retryAfter > wait {
			wait = min(res.retryAfter, time.Duration(d.MaxBackoff))
		}
		if !r.sleep(wait) {
			return false
		}
	}
}

// send makes one attempt in HTTP binary mode.
func (r *runner) send(ev event.Event) attemptResult {
	ctx, cancel := context.WithTimeout(r.ctx, time.Duration(r.sub.Delivery.Timeout))
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.sub.Sink, bytes.NewReader(ev.Data()))
	if err != nil {
		return attemptResult{err: err}
	}
	if err := writeBinaryHeaders(req.Header, &ev); err != nil {
		return attemptResult{err: err}
	}
	resp, err := r.g.opts.Client.Do(req)
	if err != nil {
		return attemptResult{err: err}
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	return attemptResult{status: resp.StatusCode, retryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), r.g.opts.Now())}
}

// writeBinaryHeaders sets ev's attributes as HTTP binary-mode headers,
// percent-encoding values as the HTTP binding asks.
func writeBinaryHeaders(h http.Header, ev *event.Event) error {
	h.Set("Ce-Specversion", event.CloudEventsVersionV1)
	h.Set("Ce-Id", percentEncode(ev.ID()))
	h.Set("Ce-Source", percentEncode(ev.Source()))
	h.Set("Ce-Type", percentEncode(ev.Type()))
	if s := ev.Subject(); s != "" {
		h.Set("Ce-Subject", percentEncode(s))
	}
	if t := ev.Time(); !t.IsZero() {
		h.Set("Ce-Time", types.FormatTime(t))
	}
	if s := ev.DataSchema(); s != "" {
		h.Set("Ce-Dataschema", percentEncode(s))
	}
	if ct := ev.DataContentType(); ct != "" {
		h.Set("Content-Type", ct)
	}
	names := make([]string, 0, len(ev.Extensions()))
	for n := range ev.Extensions() {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		v, err := types.Format(ev.Extensions()[n])
		if err != nil {
			return fmt.Errorf("extension %q: %w", n, err)
		}
		h.Set("Ce-"+n, percentEncode(v))
	}
	return nil
}

// parseRetryAfter reads Retry-After in seconds or as an HTTP date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil && n > 0 {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// deadLetter stores ev in the dead-letter topic with extensions saying why
// (or drops it without one); false if the runner stopped first.
func (r *runner) deadLetter(ev event.Event, res attemptResult, attempts int) bool {
	dlt := r.sub.Delivery.DeadLetterTopic
	if dlt == "" {
		r.dropped.Add(1)
		r.g.log.Warn("cloudevents: delivery failed; dropping the event (no dead-letter topic)", "subscription", r.sub.Name,
			"id", ev.ID(), "source", ev.Source(), "attempts", attempts, "reason", res.reason())
		return true
	}
	dl := ev.Clone()
	dl.SetExtension(ExtDeadLetterReason, res.reason())
	dl.SetExtension(ExtDeadLetterStatus, int32(res.status))
	dl.SetExtension(ExtDeadLetterAttempts, int32(attempts))
	dl.SetExtension(ExtDeadLetterSink, r.sub.Sink)
	for wait := 100 * time.Millisecond; ; wait = min(2*wait, 5*time.Second) {
		t, err := r.g.writeTopic(dlt)
		if err == nil {
			_, err = r.g.publish(r.ctx, t, []event.Event{dl}, false)
		}
		if err == nil {
			r.deadLettered.Add(1)
			r.g.log.Info("cloudevents: event dead-lettered", "subscription", r.sub.Name, "id", ev.ID(),
				"source", ev.Source(), "topic", dlt, "attempts", attempts, "reason", res.reason())
			return true
		}
		if r.ctx.Err() != nil {
			return false
		}
		r.noteError(fmt.Sprintf("dead-lettering event %s to %s: %v", ev.ID(), dlt, err))
		if !r.sleep(wait) {
			return false
		}
	}
}

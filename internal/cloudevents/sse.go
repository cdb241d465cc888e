package cloudevents

import (
	"bytes"
	"context"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/weirhq/weir/internal/batch"
	"github.com/weirhq/weir/internal/broker"
)

// Server-sent events: GET /events/{topic} with Accept: text/event-stream
// streams each event in the JSON format as one SSE message whose id is the
// stream position. On a one-partition topic the id is the event's offset;
// otherwise it lists the last offset delivered of every partition,
// "0:41,1:7" (-1 before the first). A client reconnecting with
// Last-Event-ID (or ?lastEventId=) resumes after it. With ?group=G the
// stream starts from, and periodically commits, G's offsets.

// acceptsSSE reports whether the client asked for an event stream.
func acceptsSSE(r *http.Request) bool {
	for _, v := range r.Header.Values("Accept") {
		if strings.Contains(strings.ToLower(v), "text/event-stream") {
			return true
		}
	}
	return false
}

// parseCursor reads an SSE id: a bare offset (partition 0) or
// "partition:offset" pairs. It returns the next offset per partition.
func parseCursor(id string) (map[int32]int64, error) {
	out := map[int32]int64{}
	if o, err := strconv.ParseInt(id, 10, 64); err == nil {
		out[0] = o + 1
		return out, nil
	}
	for _, part := range strings.Split(id, ",") {
		ps, os, ok := strings.Cut(part, ":")
		p, err1 := strconv.ParseInt(ps, 10, 32)
		o, err2 := strconv.ParseInt(os, 10, 64)
		if !ok || err1 != nil || err2 != nil || p < 0 || o < -1 {
			return nil, badRequest("Last-Event-ID %q is not a position of this gateway", id)
		}
		out[int32(p)] = o + 1
	}
	return out, nil
}

// formatCursor writes the SSE id for positions next (of n partitions).
func formatCursor(next map[int32]int64, n int) string {
	if n == 1 {
		return strconv.FormatInt(next[0]-1, 10)
	}
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
		b.WriteString(strconv.Itoa(int(p)))
		b.WriteByte(':')
		b.WriteString(strconv.FormatInt(next[p]-1, 10))
	}
	return b.String()
}

// sseEventsPerRead bounds the events taken from one partition per round, so
// that a busy partition does not starve the others.
const sseEventsPerRead = 100

func (g *Gateway) serveSSE(w http.ResponseWriter, r *http.Request, topic string) {
	q := r.URL.Query()
	groupID := q.Get("group")
	if groupID != "" {
		if err := checkGroup(groupID); err != nil {
			g.writeError(w, err)
			return
		}
	}
	def := startLatest
	if groupID != "" {
		def = startEarliest
	}
	start, err := parseStart(q.Get("from"), def)
	if err != nil {
		g.writeError(w, err)
		return
	}
	var resume map[int32]int64
	if id := r.Header.Get("Last-Event-ID"); id != "" {
		resume, err = parseCursor(id)
	} else if id := q.Get("lastEventId"); id != "" {
		resume, err = parseCursor(id)
	}
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
	parts := t.Partitions()
	next := map[int32]int64{}
	if groupID != "" {
		c, err := g.committed(ctx, groupID, topic, len(parts))
		if err != nil {
			g.writeError(w, err)
			return
		}
		next = c
	}
	for p, o := range resume {
		if int(p) < len(parts) {
			next[p] = o
		}
	}
	for _, p := range parts {
		if _, ok := next[p.Index()]; !ok {
			next[p.Index()] = startOffset(p, start)
		} else {
			next[p.Index()] = clampOffset(p, next[p.Index()])
		}
	}
	committed := map[int32]int64{}
	for p, o := range next {
		committed[p] = o
	}

	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if _, err := w.Write([]byte(": weir " + topic + "\n\n")); err != nil {
		return
	}
	_ = rc.Flush()

	commit := func(ctx context.Context) {
		if groupID == "" {
			return
		}
		offs := map[int32]int64{}
		for p, o := range next {
			if committed[p] != o {
				offs[p] = o
			}
		}
		if err := g.commit(ctx, groupID, topic, offs); err != nil {
			g.log.Warn("cloudevents: SSE commit", "topic", topic, "group", groupID, "err", err)
			return
		}
		for p, o := range offs {
			committed[p] = o
		}
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		commit(cctx)
	}()

	keepalive := time.NewTicker(g.opts.KeepAlive)
	defer keepalive.Stop()
	lastCommit := time.Now()
	var buf bytes.Buffer
	for {
		chans := changed(t)
		parts = t.Partitions()
		n, moved := 0, false
		for _, p := range parts {
			if _, ok := next[p.Index()]; !ok {
				next[p.Index()] = p.LogStartOffset() // a partition added meanwhile
			}
			got, m, err := g.streamPartition(w, &buf, t.Name, p, next, len(parts))
			if err != nil {
				return
			}
			n += got
			moved = moved || m
		}
		if n > 0 {
			if rc.Flush() != nil {
				return
			}
			if time.Since(lastCommit) >= g.opts.CommitInterval {
				commit(ctx)
				lastCommit = time.Now()
			}
			continue
		}
		if moved {
			continue // skipped aborted records only: read on
		}
		if _, err := g.b.Topic(topic); err != nil {
			return // deleted, or the broker closed
		}
		// Caught up: acknowledge what was streamed, at most once per
		// CommitInterval.
		var commitC <-chan time.Time
		var ct *time.Timer
		if groupID != "" && dirty(next, committed) {
			if wait := g.opts.CommitInterval - time.Since(lastCommit); wait <= 0 {
				commit(ctx)
				lastCommit = time.Now()
			} else {
				ct = time.NewTimer(wait)
				commitC = ct.C
			}
		}
		woke := waitChange(chans, keepalive.C, commitC, ctx.Done(), g.ctx.Done())
		if ct != nil {
			ct.Stop()
		}
		switch woke {
		case -1:
		case 0:
			if _, err := w.Write([]byte(": keepalive\n\n")); err != nil || rc.Flush() != nil {
				return
			}
		case 1:
			commit(ctx)
			lastCommit = time.Now()
		default:
			return
		}
	}
}

// dirty reports whether positions moved past what was committed.
func dirty(next, committed map[int32]int64) bool {
	for p, o := range next {
		if committed[p] != o {
			return true
		}
	}
	return false
}

// streamPartition writes the next events of p as SSE messages, advancing
// next, and returns how many it wrote and whether the position moved
// (also past skipped aborted records and markers); an error means the
// client is gone or the partition failed.
func (g *Gateway) streamPartition(w http.ResponseWriter, buf *bytes.Buffer, topic string, p *broker.Partition, next map[int32]int64, nparts int) (int, bool, error) {
	pi := p.Index()
	n, from := 0, next[pi]
	var werr error
	end, err := readOnce(p, next[pi], 1<<20, func(off, ts int64, r batch.Record) bool {
		ev := recordToEvent(topic, pi, off, ts, r)
		g.egressData(&ev)
		next[pi] = off + 1
		buf.Reset()
		buf.WriteString("id: ")
		buf.WriteString(formatCursor(next, nparts))
		buf.WriteByte('\n')
		var doc bytes.Buffer
		if err := event.WriteJson(&ev, &doc); err != nil {
			g.log.Warn("cloudevents: encoding event", "topic", topic, "partition", pi, "offset", off, "err", err)
			return true
		}
		js := strings.ReplaceAll(strings.ReplaceAll(doc.String(), "\r\n", "\n"), "\r", "\n")
		for _, line := range strings.Split(js, "\n") {
			buf.WriteString("data: ")
			buf.WriteString(line)
			buf.WriteByte('\n')
		}
		buf.WriteByte('\n')
		if _, werr = w.Write(buf.Bytes()); werr != nil {
			next[pi] = off
			return false
		}
		n++
		return n < sseEventsPerRead
	})
	if werr != nil {
		return n, false, werr
	}
	if err != nil {
		g.log.Warn("cloudevents: SSE read", "topic", topic, "partition", pi, "err", err)
		return n, false, err
	}
	next[pi] = end // clamped into the log when retention or a re-created topic moved it
	return n, end != from, nil
}

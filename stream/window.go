package stream

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Windows says how event time is cut into windows: epoch-aligned,
// each [start, end), closed when the watermark reaches end + the allowed
// lateness. Build one with Tumbling or Hopping.
type Windows struct {
	size, advance, lateness int64 // milliseconds
	gap                     int64 // session windows (Sessions): the inactivity gap; 0 otherwise
}

// Tumbling windows of size: back to back, each record in exactly one.
func Tumbling(size time.Duration) Windows { return Hopping(size, size) }

// Hopping windows of size starting every advance: a record belongs to
// size/advance windows (rounded up).
func Hopping(size, advance time.Duration) Windows {
	return Windows{size: size.Milliseconds(), advance: advance.Milliseconds()}
}

// AllowedLateness keeps windows open for d past their end, so records up
// to d behind the watermark still count. Default 0.
func (w Windows) AllowedLateness(d time.Duration) Windows {
	w.lateness = d.Milliseconds()
	return w
}

func (w Windows) check() error {
	if w.gap > 0 && w.size == 0 && w.lateness >= 0 {
		return nil // Sessions
	}
	if w.size <= 0 || w.advance <= 0 || w.advance > w.size || w.lateness < 0 {
		return fmt.Errorf("stream: windows of size %dms advancing %dms with lateness %dms: want 0 < advance <= size and lateness >= 0",
			w.size, w.advance, w.lateness)
	}
	return nil
}

// lastStart is the start of the latest window holding ts.
func (w Windows) lastStart(ts int64) int64 {
	m := ts % w.advance
	if m < 0 {
		m += w.advance
	}
	return ts - m
}

// Windowed is the key of a windowed aggregation's result: the grouping
// key and its window [Start, End). For session windows (Sessions) both
// ends are inclusive: Start is the event time of the session's first
// record and End that of its last, as in Kafka Streams.
type Windowed[K any] struct {
	Key        K
	Start, End time.Time
}

// WindowedGroup is a grouped stream cut into windows, ready for a windowed
// aggregation.
type WindowedGroup[K, V any] struct {
	g    Grouped[K, V]
	w    Windows
	late *lateLink
}

// lateLink connects the aggregations over one WindowedGroup to its Late
// stream, whichever is built first.
type lateLink struct {
	node *node
	aggs []*node
}

// WindowBy cuts a grouped stream into windows.
func WindowBy[K, V any](g Grouped[K, V], w Windows) WindowedGroup[K, V] {
	if err := w.check(); err != nil {
		g.t.errs = append(g.t.errs, err)
	}
	return WindowedGroup[K, V]{g: g, w: w, late: &lateLink{}}
}

// Late is the side output of the aggregations over w: records that arrive
// when every window they belong to has closed. They are counted in the
// late-records metric whether or not Late is used; none is dropped
// silently.
func Late[K, V any](w WindowedGroup[K, V]) Stream[K, V] {
	if w.late.node == nil {
		n := w.g.t.add("late", "", nil)
		n.newOp = passThrough
		w.late.node = n
		for _, a := range w.late.aggs {
			linkLate(a, n)
		}
	}
	return Stream[K, V]{t: w.g.t, n: w.late.node}
}

// linkLate makes late the side output of the aggregation agg: an edge of
// the graph (both run in one task) that the aggregation's results do not
// take.
func linkLate(agg, late *node) {
	agg.late = late
	late.parents = append(late.parents, agg)
}

// CountWindows counts the records per key and window. Each window's count
// is emitted once, when the window closes, with event time end − 1 ms.
func CountWindows[K, V any](w WindowedGroup[K, V], opts ...Option) Stream[Windowed[K], int64] {
	if w.w.gap > 0 {
		return sessionAggregate(w, "count", opts, Int64(), func(_ K, _ V, n int64, _ bool) int64 { return n + 1 },
			func(_ K, a, b int64) int64 { return a + b })
	}
	return windowAggregate(w, "count", opts, Int64(), func(_ K, _ V, n int64, _ bool) int64 { return n + 1 })
}

// ReduceWindows combines the values per key and window with fn, emitting
// each window's result when it closes.
func ReduceWindows[K, V any](w WindowedGroup[K, V], fn func(acc, v V) V, opts ...Option) Stream[Windowed[K], V] {
	add := func(_ K, v V, acc V, had bool) V {
		if !had {
			return v
		}
		return fn(acc, v)
	}
	if w.w.gap > 0 {
		return sessionAggregate(w, "reduce", opts, w.g.value, add, func(_ K, a, b V) V { return fn(a, b) })
	}
	return windowAggregate(w, "reduce", opts, w.g.value, add)
}

// AggregateWindows folds the values per key and window into an A starting
// from init(), emitting each window's result when it closes.
func AggregateWindows[K, V, A any](w WindowedGroup[K, V], init func() A, fn func(key K, v V, acc A) A, serde Serde[A], opts ...Option) Stream[Windowed[K], A] {
	if w.w.gap > 0 {
		w.g.t.errs = append(w.g.t.errs, errors.New("stream: AggregateWindows over session windows: use AggregateSessions, which takes the function merging two sessions"))
		return AggregateSessions(w, init, fn, nil, serde, opts...)
	}
	return windowAggregate(w, "aggregate", opts, serde, func(k K, v V, acc A, had bool) A {
		if !had {
			acc = init()
		}
		return fn(k, v, acc)
	})
}

// Window store layout. Keys sort by window start, then key:
//
//	window entry:  | start (int64 BE, sign bit flipped) | encoded key | → encoded accumulator
//	watermark:     | "wm" |                                            → int64 BE, the operator's
//	                                                                     last finite watermark
//
// The watermark entry is restored with the windows, so records replayed
// after a restart into windows already closed (and emitted) stay late.
var wmKey = []byte("wm")

func windowKey(start int64, kb []byte) []byte {
	b := binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(kb)), uint64(start)^(1<<63))
	return append(b, kb...)
}

func windowAggregate[K, V, A any](w WindowedGroup[K, V], kind string, opts []Option, serde Serde[A], add func(K, V, A, bool) A) Stream[Windowed[K], A] {
	g := w.g
	n := g.t.add(kind+"-windows", applyOpts(opts).name, []*node{g.n})
	n.store = n.name
	w.late.aggs = append(w.late.aggs, n)
	if w.late.node != nil {
		linkLate(n, w.late.node)
	}
	n.newOp = func(env *opEnv) operator {
		op := &windowOp[K, V, A]{env: env, w: w.w, key: g.key, serde: serde, add: add, wm: minTime, open: map[int64]map[string]struct{}{}}
		return operator{process: op.process, advance: op.advance, restored: op.restored}
	}
	return Stream[Windowed[K], A]{t: g.t, n: n, rekeyed: true}
}

// windowOp is one task's windowed aggregation. open indexes the windows in
// the store by start, so closing does not scan the store.
type windowOp[K, V, A any] struct {
	env    *opEnv
	w      Windows
	key    Serde[K]
	serde  Serde[A]
	add    func(K, V, A, bool) A
	wm     int64
	open   map[int64]map[string]struct{}
	starts []int64 // the keys of open, ascending
}

func (o *windowOp[K, V, A]) fail(what string, err error) {
	o.env.t.fail(fmt.Errorf("stream: %s: %s: %w", o.env.node.name, what, err))
}

func (o *windowOp[K, V, A]) process(r rec) {
	k := r.key.(K)
	kb, err := o.key.Encode(k)
	if err != nil {
		o.fail("key", err)
		return
	}
	accepted := false
	for start := o.w.lastStart(r.ts); start > r.ts-o.w.size; start -= o.w.advance {
		if start+o.w.size+o.w.lateness <= o.wm {
			continue // this window has closed
		}
		accepted = true
		sk := windowKey(start, kb)
		var acc A
		old, had, err := o.env.store.Get(sk)
		if err == nil && had {
			acc, err = o.serde.Decode(old)
		}
		if err != nil {
			o.fail("state", err)
			return
		}
		b, err := o.serde.Encode(o.add(k, r.value.(V), acc, had))
		if err == nil {
			err = o.env.store.Set(sk, b)
		}
		if err != nil {
			o.fail("state", err)
			return
		}
		o.index(start, kb)
	}
	if !accepted {
		o.env.t.e.m.lateRecord(o.env.node.name)
		o.env.t.e.late++
		if o.env.late != nil {
			o.env.late(r)
		}
	}
}

func (o *windowOp[K, V, A]) index(start int64, kb []byte) {
	keys, ok := o.open[start]
	if !ok {
		keys = map[string]struct{}{}
		o.open[start] = keys
		i, _ := slices.BinarySearch(o.starts, start)
		o.starts = slices.Insert(o.starts, i, start)
	}
	keys[string(kb)] = struct{}{}
}

// advance closes, emits and forgets the windows the watermark has passed,
// in window order and, within a window, in encoded-key order.
func (o *windowOp[K, V, A]) advance(wm int64) {
	if wm <= o.wm {
		return
	}
	o.wm = wm
	if wm != maxTime {
		if err := o.env.store.Set(wmKey, binary.BigEndian.AppendUint64(nil, uint64(wm))); err != nil {
			o.fail("state", err)
			return
		}
	}
	for len(o.starts) > 0 && o.starts[0]+o.w.size+o.w.lateness <= wm {
		start := o.starts[0]
		keys := make([]string, 0, len(o.open[start]))
		for kb := range o.open[start] {
			keys = append(keys, kb)
		}
		slices.Sort(keys)
		for _, kb := range keys {
			if !o.emit(start, []byte(kb)) {
				return
			}
		}
		delete(o.open, start)
		o.starts = o.starts[1:]
	}
}

func (o *windowOp[K, V, A]) emit(start int64, kb []byte) bool {
	sk := windowKey(start, kb)
	b, ok, err := o.env.store.Get(sk)
	if err != nil || !ok {
		o.fail("state", fmt.Errorf("window entry missing (%v)", err))
		return false
	}
	acc, err := o.serde.Decode(b)
	if err != nil {
		o.fail("state", err)
		return false
	}
	k, err := o.key.Decode(kb)
	if err != nil {
		o.fail("key", err)
		return false
	}
	if err := o.env.store.Delete(sk); err != nil {
		o.fail("state", err)
		return false
	}
	end := start + o.w.size
	o.env.forward(rec{key: Windowed[K]{Key: k, Start: msTime(start), End: msTime(end)}, value: acc, ts: end - 1})
	return true
}

// restored rebuilds the window index and the watermark from the store.
func (o *windowOp[K, V, A]) restored() error {
	err := o.env.store.Range(func(k, v []byte) error {
		switch {
		case string(k) == string(wmKey):
			if len(v) == 8 {
				o.wm = max(o.wm, int64(binary.BigEndian.Uint64(v)))
			}
		case len(k) >= 8:
			o.index(int64(binary.BigEndian.Uint64(k)^(1<<63)), k[8:])
		}
		return nil
	})
	return err
}

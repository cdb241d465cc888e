package stream

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// Sessions are session windows with an inactivity gap (Kafka Streams'
// SessionWindows, Flink's session windows): per key, records less than
// gap apart form one session, [first event time, last event time]. A
// record within gap of a session extends it; a record within gap of two
// sessions connects them, and they merge (their accumulators combined by
// the aggregation's merge function). A session is emitted once, when the
// watermark passes its end + gap + the allowed lateness (no record can
// extend it any more), with event time its end, and then forgotten.
//
// A record is late when the watermark has passed its event time by more
// than the allowed lateness (so no emitted session could have been
// extended by it): counted and sent to Late. Over Sessions, use
// CountWindows, ReduceWindows (reduce is also the merge) or
// AggregateSessions; AggregateWindows is refused, having no merge
// function, and WindowJoin takes fixed windows only.
func Sessions(gap time.Duration) Windows { return Windows{gap: gap.Milliseconds()} }

// AggregateSessions folds the values per key and session into an A, as
// AggregateWindows does per window: a session's first record starts from
// init(); when a record connects sessions, their accumulators are combined
// with merge(key, a, b) in start order (a the earlier session's) before
// fn adds the record. Each session's result is emitted when it closes,
// keyed by Windowed{Key, Start, End} (both inclusive).
func AggregateSessions[K, V, A any](w WindowedGroup[K, V], init func() A, fn func(key K, v V, acc A) A, merge func(key K, a, b A) A, serde Serde[A], opts ...Option) Stream[Windowed[K], A] {
	if w.w.gap <= 0 {
		w.g.t.errs = append(w.g.t.errs, errors.New("stream: AggregateSessions needs Sessions windows"))
	}
	return sessionAggregate(w, "aggregate", opts, serde, func(k K, v V, acc A, had bool) A {
		if !had {
			acc = init()
		}
		return fn(k, v, acc)
	}, merge)
}

// Session store layout. All open sessions of a key are one entry, in start
// order (a key rarely has more than a few open):
//
//	sessions:  | 's' | encoded key | → ( start (varint) | end (varint) | length (uvarint) | encoded accumulator )*
//	watermark: | "wm" |             → int64 BE, the operator's last finite watermark
//
// An in-memory index by session end (rebuilt on restore) finds the
// sessions to close; it may hold stale ends of sessions extended since,
// which closing skips.
type session struct {
	start, end int64
	acc        []byte
}

func sessionKey(kb []byte) []byte { return append([]byte{'s'}, kb...) }

func encodeSessions(ss []session) []byte {
	var b []byte
	for _, s := range ss {
		b = binary.AppendVarint(b, s.start)
		b = binary.AppendVarint(b, s.end)
		b = binary.AppendUvarint(b, uint64(len(s.acc)))
		b = append(b, s.acc...)
	}
	return b
}

func decodeSessions(b []byte) ([]session, error) {
	var ss []session
	for len(b) > 0 {
		start, n1 := binary.Varint(b)
		if n1 <= 0 {
			return nil, errors.New("corrupt session entry")
		}
		end, n2 := binary.Varint(b[n1:])
		if n2 <= 0 {
			return nil, errors.New("corrupt session entry")
		}
		size, n3 := binary.Uvarint(b[n1+n2:])
		h := n1 + n2 + n3
		if n3 <= 0 || uint64(len(b)-h) < size {
			return nil, errors.New("corrupt session entry")
		}
		ss = append(ss, session{start: start, end: end, acc: append([]byte(nil), b[h:h+int(size)]...)})
		b = b[h+int(size):]
	}
	return ss, nil
}

func sessionAggregate[K, V, A any](w WindowedGroup[K, V], kind string, opts []Option, serde Serde[A], add func(K, V, A, bool) A, merge func(K, A, A) A) Stream[Windowed[K], A] {
	g := w.g
	n := g.t.add(kind+"-sessions", applyOpts(opts).name, []*node{g.n})
	n.store = n.name
	w.late.aggs = append(w.late.aggs, n)
	if w.late.node != nil {
		linkLate(n, w.late.node)
	}
	n.newOp = func(env *opEnv) operator {
		op := &sessionOp[K, V, A]{env: env, gap: w.w.gap, lateness: w.w.lateness, key: g.key, serde: serde, add: add, merge: merge,
			wm: minTime, ends: newTimeIndex()}
		return operator{process: op.process, advance: op.advance, restored: op.restored}
	}
	return Stream[Windowed[K], A]{t: g.t, n: n, rekeyed: true}
}

// sessionOp is one task's session-window aggregation.
type sessionOp[K, V, A any] struct {
	env           *opEnv
	gap, lateness int64
	key           Serde[K]
	serde         Serde[A]
	add           func(K, V, A, bool) A
	merge         func(K, A, A) A
	wm            int64
	ends          *timeIndex // session end → encoded keys
}

func (o *sessionOp[K, V, A]) fail(what string, err error) {
	o.env.t.fail(fmt.Errorf("stream: %s: %s: %w", o.env.node.name, what, err))
}

func (o *sessionOp[K, V, A]) load(kb []byte) ([]session, bool) {
	b, ok, err := o.env.store.Get(sessionKey(kb))
	var ss []session
	if err == nil && ok {
		ss, err = decodeSessions(b)
	}
	if err != nil {
		o.fail("state", err)
		return nil, false
	}
	return ss, true
}

func (o *sessionOp[K, V, A]) save(kb []byte, ss []session) bool {
	var err error
	if len(ss) == 0 {
		err = o.env.store.Delete(sessionKey(kb))
	} else {
		err = o.env.store.Set(sessionKey(kb), encodeSessions(ss))
	}
	if err != nil {
		o.fail("state", err)
		return false
	}
	return true
}

func (o *sessionOp[K, V, A]) process(r rec) {
	if o.wm != minTime && r.ts < o.wm-o.lateness {
		o.env.t.e.m.lateRecord(o.env.node.name)
		o.env.t.e.late++
		if o.env.late != nil {
			o.env.late(r)
		}
		return
	}
	k := r.key.(K)
	kb, err := o.key.Encode(k)
	if err != nil {
		o.fail("key", err)
		return
	}
	ss, ok := o.load(kb)
	if !ok {
		return
	}
	// The sessions within gap of the record merge with it.
	merged := session{start: r.ts, end: r.ts}
	var acc A
	had := false
	kept := ss[:0:0]
	for _, s := range ss {
		if s.start-o.gap > r.ts || r.ts > s.end+o.gap {
			kept = append(kept, s)
			continue
		}
		a, err := o.serde.Decode(s.acc)
		if err != nil {
			o.fail("state", err)
			return
		}
		if had {
			acc = o.merge(k, acc, a)
		} else {
			acc, had = a, true
		}
		merged.start, merged.end = min(merged.start, s.start), max(merged.end, s.end)
	}
	if merged.acc, err = o.serde.Encode(o.add(k, r.value.(V), acc, had)); err != nil {
		o.fail("state", err)
		return
	}
	i := 0
	for i < len(kept) && kept[i].start < merged.start {
		i++
	}
	kept = append(kept[:i], append([]session{merged}, kept[i:]...)...)
	if o.save(kb, kept) {
		o.ends.add(merged.end, kb)
	}
}

// closes reports whether a session ending at end can no longer be
// extended at watermark wm.
func (o *sessionOp[K, V, A]) closes(end, wm int64) bool {
	return wm == maxTime || end+o.gap+o.lateness < wm
}

// advance emits and forgets the sessions the watermark has closed, by
// end, then key, then start.
func (o *sessionOp[K, V, A]) advance(wm int64) {
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
	for o.env.t.err == nil {
		end, ok := o.ends.first()
		if !ok || !o.closes(end, wm) {
			return
		}
		_, keys := o.ends.popFirst()
		for _, ks := range keys {
			if !o.emit([]byte(ks), wm) {
				return
			}
		}
	}
}

func (o *sessionOp[K, V, A]) emit(kb []byte, wm int64) bool {
	ss, ok := o.load(kb)
	if !ok {
		return false
	}
	var k K
	open := ss[:0:0]
	decoded := false
	for _, s := range ss {
		if !o.closes(s.end, wm) {
			open = append(open, s)
			continue
		}
		if !decoded {
			var err error
			if k, err = o.key.Decode(kb); err != nil {
				o.fail("key", err)
				return false
			}
			decoded = true
		}
		acc, err := o.serde.Decode(s.acc)
		if err != nil {
			o.fail("state", err)
			return false
		}
		o.env.forward(rec{key: Windowed[K]{Key: k, Start: msTime(s.start), End: msTime(s.end)}, value: acc, ts: s.end})
	}
	if len(open) == len(ss) {
		return true // a stale index entry
	}
	return o.save(kb, open)
}

// restored rebuilds the index of session ends and the watermark.
func (o *sessionOp[K, V, A]) restored() error {
	return o.env.store.Range(func(k, v []byte) error {
		switch {
		case string(k) == string(wmKey):
			if len(v) == 8 {
				o.wm = max(o.wm, int64(binary.BigEndian.Uint64(v)))
			}
		case len(k) >= 1 && k[0] == 's':
			ss, err := decodeSessions(v)
			if err != nil {
				return err
			}
			for _, s := range ss {
				o.ends.add(s.end, k[1:])
			}
		}
		return nil
	})
}

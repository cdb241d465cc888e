package stream

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// Joined carries the serdes of a join: the key's (for the store and, when
// a side was rekeyed, its repartition topic) and each side's values.
type Joined[K, L, R any] struct {
	Key   Serde[K]
	Left  Serde[L]
	Right Serde[R]
}

// Join is an inner join of two streams on their keys, without windows
// (Flink SQL's regular join): every left record meets every right record
// of the same key, whichever arrives first and however far apart in time,
// and fn's result is emitted once per pair, when the second of the two
// arrives, with the later event time of the two. Both sides are kept in
// the operator's store (changelogged) for good, so use it on streams whose
// distinct keys and records per key stay bounded, or filter them first.
//
// A side whose key changed upstream (Map, KeyBy, ...) goes through a
// repartition topic first, as for GroupByKey (named <name>-left and
// <name>-right when the join is Named). The two sides must be
// co-partitioned: their topics have the same partition count (checked at
// start).
func Join[K, L, R, O any](left Stream[K, L], right Stream[K, R], j Joined[K, L, R], fn func(key K, l L, r R) O, opts ...Option) Stream[K, O] {
	n := join(left, right, j, Windows{}, false, opts, func(k K, _ int64, l L, r R, ts int64) rec {
		return rec{key: k, value: fn(k, l, r), ts: ts}
	})
	return Stream[K, O]{t: left.t, n: n}
}

// WindowJoin is an inner join of two streams on their keys within
// windows: a left and a right record of the same key pair up in each
// window holding both (with Tumbling windows: when they fall in the same
// window). fn's result is emitted once per pair and window as soon as the
// second of the two arrives, keyed by the key and the window, with the
// later event time of the two. A window's records are dropped from the
// store when the watermark passes its end plus the allowed lateness;
// records arriving when all their windows have closed are late (counted
// in LateRecords and the late-records metric). Repartitioning and
// co-partitioning are as for Join.
func WindowJoin[K, L, R, O any](left Stream[K, L], right Stream[K, R], w Windows, j Joined[K, L, R], fn func(key K, l L, r R) O, opts ...Option) Stream[Windowed[K], O] {
	if err := w.check(); err != nil {
		left.t.errs = append(left.t.errs, err)
	} else if w.gap > 0 {
		left.t.errs = append(left.t.errs, errors.New("stream: WindowJoin takes Tumbling or Hopping windows, not Sessions"))
		w = Tumbling(time.Millisecond)
	}
	n := join(left, right, j, w, true, opts, func(k K, start int64, l L, r R, ts int64) rec {
		return rec{key: Windowed[K]{Key: k, Start: msTime(start), End: msTime(start + w.size)}, value: fn(k, l, r), ts: ts}
	})
	return Stream[Windowed[K], O]{t: left.t, n: n, rekeyed: true}
}

// joinSide is a record on its way into a join, tagged with its side (the
// join node has two parents and one process function).
type joinSide struct {
	right bool
	v     any
}

func join[K, L, R any](left Stream[K, L], right Stream[K, R], j Joined[K, L, R], w Windows, windowed bool, opts []Option,
	out func(k K, start int64, l L, r R, ts int64) rec) *node {
	o := applyOpts(opts)
	named := func(suffix string) []Option {
		if o.name == "" {
			return nil
		}
		return []Option{Named(o.name + "-" + suffix)}
	}
	t := left.t
	gl := GroupByKey(left, j.Key, j.Left, named("left")...)
	gr := GroupByKey(right, j.Key, j.Right, named("right")...)
	tag := func(p *node, right bool) *node {
		n := t.add("join-in", "", []*node{p})
		n.newOp = func(env *opEnv) operator {
			return operator{process: func(r rec) {
				r.value = joinSide{right: right, v: r.value}
				env.forward(r)
			}}
		}
		return n
	}
	n := t.add("join", o.name, []*node{tag(gl.n, false), tag(gr.n, true)})
	n.store = n.name
	n.newOp = func(env *opEnv) operator {
		op := &joinOp[K, L, R]{env: env, j: j, w: w, windowed: windowed, out: out, wm: minTime, open: newTimeIndex()}
		if !windowed {
			return operator{process: op.process}
		}
		return operator{process: op.process, advance: op.advance, restored: op.restored}
	}
	return n
}

// Join store layout. Per window (unwindowed: one window, start 0), side
// and key, the side's records in arrival order:
//
//	key:    | start (int64 BE, sign bit flipped) | side 'l' or 'r' | encoded key |
//	value:  ( event time (varint) | length (uvarint) | encoded value )*
//	wm:     | "wm" | → int64 BE, the last finite watermark (windowed joins)
//
// Appending a record rewrites its key's entry; joins suit streams with a
// moderate number of records per key and window.
type joinOp[K, L, R any] struct {
	env      *opEnv
	j        Joined[K, L, R]
	w        Windows
	windowed bool
	out      func(k K, start int64, l L, r R, ts int64) rec
	wm       int64
	open     *timeIndex // windowed: start → side+key of the entries
}

func (o *joinOp[K, L, R]) fail(what string, err error) {
	o.env.t.fail(fmt.Errorf("stream: %s: %s: %w", o.env.node.name, what, err))
}

func joinKey(start int64, side byte, kb []byte) []byte {
	b := binary.BigEndian.AppendUint64(make([]byte, 0, 9+len(kb)), uint64(start)^(1<<63))
	return append(append(b, side), kb...)
}

func (o *joinOp[K, L, R]) process(r rec) {
	in := r.value.(joinSide)
	k := r.key.(K)
	kb, err := o.j.Key.Encode(k)
	if err != nil {
		o.fail("key", err)
		return
	}
	var vb []byte
	side, other := byte('l'), byte('r')
	if in.right {
		side, other = other, side
		vb, err = o.j.Right.Encode(in.v.(R))
	} else {
		vb, err = o.j.Left.Encode(in.v.(L))
	}
	if err != nil {
		o.fail("value", err)
		return
	}
	if !o.windowed {
		o.add(in, k, kb, vb, side, other, 0, r.ts)
		return
	}
	accepted := false
	for start := o.w.lastStart(r.ts); start > r.ts-o.w.size; start -= o.w.advance {
		if start+o.w.size+o.w.lateness <= o.wm {
			continue // this window has closed
		}
		accepted = true
		if !o.add(in, k, kb, vb, side, other, start, r.ts) {
			return
		}
	}
	if !accepted {
		o.env.t.e.m.lateRecord(o.env.node.name)
		o.env.t.e.late++
	}
}

// add stores one record in a window and emits its pairs with the other
// side's records there.
func (o *joinOp[K, L, R]) add(in joinSide, k K, kb, vb []byte, side, other byte, start, ts int64) bool {
	own := joinKey(start, side, kb)
	old, _, err := o.env.store.Get(own)
	if err != nil {
		o.fail("state", err)
		return false
	}
	entry := binary.AppendVarint(old[:len(old):len(old)], ts)
	entry = binary.AppendUvarint(entry, uint64(len(vb)))
	if err := o.env.store.Set(own, append(entry, vb...)); err != nil {
		o.fail("state", err)
		return false
	}
	if o.windowed {
		o.open.add(start, own[8:])
	}
	ob, ok, err := o.env.store.Get(joinKey(start, other, kb))
	if err != nil {
		o.fail("state", err)
		return false
	}
	if !ok {
		return true
	}
	ob = append([]byte(nil), ob...) // downstream code runs while we read
	for len(ob) > 0 {
		ots, n1 := binary.Varint(ob)
		size, n2 := binary.Uvarint(ob[max(n1, 0):])
		if n1 <= 0 || n2 <= 0 || uint64(len(ob)-n1-n2) < size {
			o.fail("state", errors.New("corrupt join entry"))
			return false
		}
		b := ob[n1+n2 : n1+n2+int(size)]
		ob = ob[n1+n2+int(size):]
		at := max(ts, ots)
		if in.right {
			l, err := o.j.Left.Decode(b)
			if err != nil {
				o.fail("state", err)
				return false
			}
			o.env.forward(o.out(k, start, l, in.v.(R), at))
		} else {
			r, err := o.j.Right.Decode(b)
			if err != nil {
				o.fail("state", err)
				return false
			}
			o.env.forward(o.out(k, start, in.v.(L), r, at))
		}
	}
	return true
}

// advance drops the windows the watermark has closed.
func (o *joinOp[K, L, R]) advance(wm int64) {
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
	for {
		start, ok := o.open.first()
		if !ok || start+o.w.size+o.w.lateness > wm {
			return
		}
		_, keys := o.open.popFirst()
		for _, sk := range keys {
			if err := o.env.store.Delete(joinKey(start, sk[0], []byte(sk[1:]))); err != nil {
				o.fail("state", err)
				return
			}
		}
	}
}

// restored rebuilds the window index and the watermark from the store.
func (o *joinOp[K, L, R]) restored() error {
	return o.env.store.Range(func(k, v []byte) error {
		switch {
		case string(k) == string(wmKey):
			if len(v) == 8 {
				o.wm = max(o.wm, int64(binary.BigEndian.Uint64(v)))
			}
		case len(k) >= 9:
			o.open.add(int64(binary.BigEndian.Uint64(k)^(1<<63)), k[8:])
		}
		return nil
	})
}

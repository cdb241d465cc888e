package stream

import (
	"encoding/binary"
	"fmt"
	"time"
)

// Processor is the user code of Process (Flink's KeyedProcessFunction):
// called one record or timer at a time, with the state of that record's
// key and event-time timers.
type Processor[K, V, S, O any] struct {
	// OnRecord handles a record of the key c.Key() with event time
	// c.Time(). Required.
	OnRecord func(c *ProcessContext[K, S, O], v V)
	// OnTimer handles an event-time timer of the key c.Key() set for
	// c.Time(). Needed only if OnRecord sets timers.
	OnTimer func(c *ProcessContext[K, S, O])
	// OnProcessingTimer handles a processing-time timer of the key
	// c.Key() set for c.Time() (a wall-clock time). Needed only if timers
	// are set with SetProcessingTimer.
	OnProcessingTimer func(c *ProcessContext[K, S, O])
}

// ProcessContext is what a Processor sees of its key during one call:
// the key's state, its timers and the output. It is valid only during the
// call.
type ProcessContext[K, S, O any] struct {
	op  *procCore[K, S, O]
	key K
	kb  []byte // encoded key
	ts  int64
}

// Key returns the key being processed.
func (c *ProcessContext[K, S, O]) Key() K { return c.key }

// Time returns the event time of the record being processed, or the time
// the firing timer was set for.
func (c *ProcessContext[K, S, O]) Time() time.Time { return msTime(c.ts) }

// Now returns the task's wall-clock time (processing time), as
// SetProcessingTimer counts it: in streamtest, the driver's Now.
func (c *ProcessContext[K, S, O]) Now() time.Time { return msTime(c.op.env.t.e.now) }

// State returns the key's state and whether it has one.
func (c *ProcessContext[K, S, O]) State() (S, bool) {
	var s S
	b, ok, err := c.op.env.store.Get(c.op.stateKey(c.kb))
	if err == nil && ok {
		s, err = c.op.state.Decode(b)
	}
	if err != nil {
		c.op.fail("state", err)
		return s, false
	}
	return s, ok
}

// SetState replaces the key's state.
func (c *ProcessContext[K, S, O]) SetState(s S) {
	b, err := c.op.state.Encode(s)
	if err == nil {
		err = c.op.env.store.Set(c.op.stateKey(c.kb), b)
	}
	if err != nil {
		c.op.fail("state", err)
	}
}

// ClearState deletes the key's state.
func (c *ProcessContext[K, S, O]) ClearState() {
	if err := c.op.env.store.Delete(c.op.stateKey(c.kb)); err != nil {
		c.op.fail("state", err)
	}
}

// Emit sends o downstream with the key and the current event time
// (Time).
func (c *ProcessContext[K, S, O]) Emit(o O) {
	c.op.env.forward(rec{key: c.key, value: o, ts: c.ts})
}

// SetTimer sets an event-time timer for the key at t (at most one per key
// and time). It fires, calling OnTimer, once the watermark has passed t:
// every record with event time up to t has been seen. As in Flink, records
// later than t may have been processed before it fires (the record that
// moves the watermark past t is processed first), so OnRecord should not
// assume that a pending timer's time is still ahead. A timer set at or
// behind the watermark fires at the next watermark advance, at the latest
// at end of input.
func (c *ProcessContext[K, S, O]) SetTimer(t time.Time) {
	ms := t.UnixMilli()
	if err := c.op.env.store.Set(timerKey(ms, c.kb), timerSet); err != nil {
		c.op.fail("state", err)
		return
	}
	c.op.timers.add(ms, c.kb)
}

// DeleteTimer deletes the key's timer at t, if set.
func (c *ProcessContext[K, S, O]) DeleteTimer(t time.Time) {
	ms := t.UnixMilli()
	if err := c.op.env.store.Delete(timerKey(ms, c.kb)); err != nil {
		c.op.fail("state", err)
		return
	}
	c.op.timers.remove(ms, c.kb)
}

// SetProcessingTimer sets a processing-time timer for the key at the
// wall-clock time t (at most one per key and time). It fires, calling
// OnProcessingTimer with Time() = t, once the task's wall clock reaches t:
// the App looks at the clock before each poll (at least once per
// CommitInterval, so a timer may fire up to about that late); streamtest
// moves it with Driver.Advance. What the callback emits carries t as its
// event time. Processing-time timers are kept in the store and changelog
// like event-time timers, so they survive restarts: one that came due
// while the application was down fires at the first look at the clock.
// End of input does not fire them.
func (c *ProcessContext[K, S, O]) SetProcessingTimer(t time.Time) {
	ms := t.UnixMilli()
	if err := c.op.env.store.Set(ptimerKey(ms, c.kb), timerSet); err != nil {
		c.op.fail("state", err)
		return
	}
	c.op.ptimers.add(ms, c.kb)
}

// DeleteProcessingTimer deletes the key's processing-time timer at t, if
// set.
func (c *ProcessContext[K, S, O]) DeleteProcessingTimer(t time.Time) {
	ms := t.UnixMilli()
	if err := c.op.env.store.Delete(ptimerKey(ms, c.kb)); err != nil {
		c.op.fail("state", err)
		return
	}
	c.op.ptimers.remove(ms, c.kb)
}

// Process runs p over a grouped stream: for each record, p.OnRecord with
// the state of the record's key (one S per key, kept in the operator's
// store and changelog with the serde) and the right to set event-time
// timers; for each timer, once the watermark passes it, p.OnTimer. What
// they Emit keeps the key, so the result stays partitioned as g.
//
// Timers fire in time order, then in encoded-key order; at end of input
// every event-time timer fires. Processing-time timers
// (SetProcessingTimer) fire on the task's wall clock. State and timers survive restarts through the
// changelog.
func Process[K, V, S, O any](g Grouped[K, V], state Serde[S], p Processor[K, V, S, O], opts ...Option) Stream[K, O] {
	n := g.t.add("process", applyOpts(opts).name, []*node{g.n})
	n.store = n.name
	if p.OnRecord == nil {
		g.t.errs = append(g.t.errs, fmt.Errorf("stream: %s: Processor.OnRecord is nil", n.name))
	}
	n.newOp = func(env *opEnv) operator {
		op := &procCore[K, S, O]{env: env, key: g.key, state: state, onTimer: p.OnTimer, onPTimer: p.OnProcessingTimer,
			timers: newTimeIndex(), ptimers: newTimeIndex()}
		process := func(r rec) {
			k := r.key.(K)
			kb, err := g.key.Encode(k)
			if err != nil {
				op.fail("key", err)
				return
			}
			p.OnRecord(&ProcessContext[K, S, O]{op: op, key: k, kb: kb, ts: r.ts}, r.value.(V))
		}
		return operator{process: process, advance: op.advance, restored: op.restored, tick: op.tick}
	}
	return Stream[K, O]{t: g.t, n: n}
}

// Process store layout:
//
//	state:  | 's' | encoded key |                                 → encoded S
//	timer:  | 't' | time (int64 BE, sign bit flipped) | encoded key | → 0x01
//	processing-time timer: the same with 'p'
//
// (A timer's value is not empty: a changelog record with a null value is
// a deletion.)
func (o *procCore[K, S, O]) stateKey(kb []byte) []byte {
	o.buf = append(append(o.buf[:0], 's'), kb...)
	return o.buf
}

var timerSet = []byte{1}

func timerKey(t int64, kb []byte) []byte { return timeKey('t', t, kb) }

func ptimerKey(t int64, kb []byte) []byte { return timeKey('p', t, kb) }

func timeKey(kind byte, t int64, kb []byte) []byte {
	b := binary.BigEndian.AppendUint64(append(make([]byte, 0, 9+len(kb)), kind), uint64(t)^(1<<63))
	return append(b, kb...)
}

// procCore is one task's Process operator, without the input type.
type procCore[K, S, O any] struct {
	env      *opEnv
	key      Serde[K]
	state    Serde[S]
	onTimer  func(*ProcessContext[K, S, O])
	onPTimer func(*ProcessContext[K, S, O])
	timers   *timeIndex
	ptimers  *timeIndex // processing-time timers
	buf      []byte
}

func (o *procCore[K, S, O]) fail(what string, err error) {
	o.env.t.fail(fmt.Errorf("stream: %s: %s: %w", o.env.node.name, what, err))
}

// advance fires the event-time timers the watermark has passed, earliest
// first, including those the callbacks set behind the watermark.
func (o *procCore[K, S, O]) advance(wm int64) {
	o.fire(o.timers, 't', func(t int64) bool { return t < wm }, o.onTimer, "OnTimer")
}

// tick fires the processing-time timers the wall clock has reached.
func (o *procCore[K, S, O]) tick(now int64) {
	o.fire(o.ptimers, 'p', func(t int64) bool { return t <= now }, o.onPTimer, "OnProcessingTimer")
}

func (o *procCore[K, S, O]) fire(timers *timeIndex, kind byte, due func(int64) bool, cb func(*ProcessContext[K, S, O]), name string) {
	for o.env.t.err == nil {
		t, ok := timers.first()
		if !ok || !due(t) {
			return
		}
		_, keys := timers.popFirst()
		for _, ks := range keys {
			kb := []byte(ks)
			tk := timeKey(kind, t, kb)
			if _, set, err := o.env.store.Get(tk); err != nil || !set {
				continue // deleted by an earlier callback
			}
			if err := o.env.store.Delete(tk); err != nil {
				o.fail("state", err)
				return
			}
			k, err := o.key.Decode(kb)
			if err != nil {
				o.fail("key", err)
				return
			}
			if cb == nil {
				o.fail("timer", fmt.Errorf("a timer fired but Processor.%s is nil", name))
				return
			}
			cb(&ProcessContext[K, S, O]{op: o, key: k, kb: kb, ts: t})
		}
	}
}

// restored rebuilds the timer index from the store.
func (o *procCore[K, S, O]) restored() error {
	return o.env.store.Range(func(k, _ []byte) error {
		if len(k) >= 9 && (k[0] == 't' || k[0] == 'p') {
			x := o.timers
			if k[0] == 'p' {
				x = o.ptimers
			}
			x.add(int64(binary.BigEndian.Uint64(k[1:9])^(1<<63)), k[9:])
		}
		return nil
	})
}

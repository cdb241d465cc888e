package stream

import (
	"fmt"
	"strconv"

	"github.com/twmb/franz-go/pkg/kgo"
)

// task runs one sub-topology on one partition number: its operators,
// their stores and one clock per input partition.
type task struct {
	id        TaskID
	e         *Engine
	sub       *subtopology
	ops       []operator // by sub.index
	clocks    map[string]*clock
	order     []*clock // clocks in source order, for a deterministic minimum
	stores    []*loggedStore
	storeOf   map[*node]*loggedStore
	wm        int64 // min over the input partitions' watermarks, never decreasing
	marked    int64 // the watermark last written as a marker
	restoring bool
	sampled   int64 // e.now when a record's latencies were last sampled
	err       error
}

func newTask(e *Engine, id TaskID) (*task, error) {
	sub := e.plan.subs[id.Subtopology]
	t := &task{id: id, e: e, sub: sub, ops: make([]operator, len(sub.nodes)), clocks: map[string]*clock{},
		storeOf: map[*node]*loggedStore{}, wm: minTime, marked: minTime, restoring: true}
	for _, n := range sub.sources {
		topic := n.source.topic
		if n.source.repartition {
			topic = e.app + "-" + topic
		}
		c := newClock(n.source, e.plan.inputs[topic].producers, e.now)
		t.clocks[topic] = c
		t.order = append(t.order, c)
	}
	for cl, ref := range e.plan.changelogs {
		if ref.sub != sub {
			continue
		}
		s, err := e.newStore(StoreSpec{App: e.app, Name: ref.node.store, Task: id})
		if err != nil {
			for _, s := range t.stores {
				_ = s.Close()
			}
			return nil, fmt.Errorf("stream: task %s: open store %s: %w", id, ref.node.store, err)
		}
		ls := &loggedStore{Store: s, changelog: cl, dirty: map[string]struct{}{}}
		t.stores = append(t.stores, ls)
		t.storeOf[ref.node] = ls
	}
	for i, n := range sub.nodes {
		env := &opEnv{t: t, node: n, store: t.storeOf[n], forward: t.forwarder(n.children)}
		if n.late != nil {
			env.late = t.forwarder([]*node{n.late})
		}
		op := n.newOp(env)
		if c := e.m.in(n.name); c != nil {
			p := op.process
			op.process = func(r rec) { c.Inc(); p(r) }
		}
		t.ops[i] = op
	}
	return t, nil
}

// forwarder returns the function passing a record to the children's
// operators (looked up at call time: all are built by then).
func (t *task) forwarder(children []*node) func(rec) {
	idx := make([]int, len(children))
	for i, c := range children {
		idx[i] = t.sub.index[c]
	}
	return func(r rec) {
		if t.err != nil {
			return
		}
		for _, i := range idx {
			t.ops[i].process(r)
		}
	}
}

func (t *task) fail(err error) {
	if t.err == nil {
		t.err = err
		t.e.log.Error("stream task failed", "task", t.id.String(), "err", err)
	}
}

// updateWatermark recomputes the task watermark, the minimum over its
// input partitions, leaving out ended ones (+∞) and idle ones. When every
// partition not ended is idle it holds still; when all have ended it is
// +∞. If it moved forward, operators see it in topological order, so a
// window closed upstream reaches a downstream window before that one
// closes.
func (t *task) updateWatermark() {
	w, active, ended := int64(maxTime), false, true
	for _, c := range t.order {
		cw := c.watermark()
		if cw == maxTime {
			continue
		}
		ended = false
		if c.isIdle(t.e.now) {
			continue
		}
		active = true
		w = min(w, cw)
	}
	if (!active && !ended) || w <= t.wm {
		return
	}
	t.wm = w
	t.e.m.watermark(t.id, w, t.e.now)
	for _, op := range t.ops {
		if op.advance != nil && t.err == nil {
			op.advance(w)
		}
	}
}

// tick tells the operators with processing-time timers the wall clock.
func (t *task) tick() {
	for _, op := range t.ops {
		if op.tick != nil && t.err == nil {
			op.tick(t.e.now)
		}
	}
}

// emit encodes a sink's record into the engine's output.
func (t *task) emit(n *node, r rec) {
	k, v, h, err := n.sink.encode(r)
	if err != nil {
		t.fail(fmt.Errorf("stream: %s: encode: %w", n.name, err))
		return
	}
	topic := t.e.plan.sinks[n]
	if c := t.e.m.sink(topic); c != nil {
		c.Inc()
	}
	out := &kgo.Record{Topic: topic, Partition: -1, Key: k, Value: v, Headers: h, Timestamp: msTime(r.ts)}
	if n.sink.repartition {
		out.Partition = KafkaPartition(k, t.e.plan.partitions[topic])
	}
	t.e.out = append(t.e.out, out)
}

var keyPartitioner = kgo.StickyKeyPartitioner(nil).ForTopic("")

// KafkaPartition is the partition Kafka's default partitioner gives a
// non-null key among n partitions (murmur2); null keys go to partition 0.
func KafkaPartition(key []byte, n int32) int32 {
	if key == nil || n <= 1 {
		return 0
	}
	return int32(keyPartitioner.Partition(&kgo.Record{Key: key}, int(n)))
}

// sample observes the end-to-end latencies of one record per task and
// Tick (a polled batch in App), from its event time and its Kafka
// timestamp, both Unix ms.
func (t *task) sample(eventMs, kafkaMs int64) {
	if t.e.m == nil || t.e.now == 0 || t.sampled == t.e.now {
		return
	}
	t.sampled = t.e.now
	t.e.m.e2e(strconv.Itoa(t.id.Subtopology), t.e.now-eventMs, t.e.now-kafkaMs)
}

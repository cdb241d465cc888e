package stream

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TaskID names a task: one sub-topology on one partition number of its
// input topics.
type TaskID struct {
	Subtopology int
	Partition   int32
}

func (id TaskID) String() string { return fmt.Sprintf("%d_%d", id.Subtopology, id.Partition) }

// EngineConfig configures an Engine.
type EngineConfig struct {
	// ApplicationID prefixes the internal topics. Required.
	ApplicationID string
	// Partitions reports the partition count of a source topic.
	Partitions func(topic string) (int32, bool)
	// NewStore opens a task's state store; default NewMemoryStore.
	NewStore func(StoreSpec) (Store, error)
	// Registerer receives the engine's metrics; nil: none.
	Registerer prometheus.Registerer
	// Logger; default: discarded.
	Logger *slog.Logger
}

// Engine is the I/O-free core of a stream application, shared by the
// Kafka runtime (App) and streamtest: records go in (Process, Restore),
// time goes in (Tick, EndPartition), records to produce come out (Drain,
// Commit). It never touches the network or a clock, so the same operator
// code runs deterministically under test. Like etcd raft's RawNode, its
// owner does all I/O.
//
// An Engine is not safe for concurrent use.
type Engine struct {
	app      string
	plan     *plan
	tasks    map[TaskID]*task
	out      []*kgo.Record
	now      int64
	newStore func(StoreSpec) (Store, error)
	m        *metrics
	log      *slog.Logger
	late     int64
}

// NewEngine prepares t to run as application cfg.ApplicationID.
func NewEngine(t *Topology, cfg EngineConfig) (*Engine, error) {
	if cfg.ApplicationID == "" {
		return nil, errors.New("stream: ApplicationID is required")
	}
	if cfg.Partitions == nil {
		return nil, errors.New("stream: EngineConfig.Partitions is required")
	}
	p, err := makePlan(t, cfg.ApplicationID, cfg.Partitions)
	if err != nil {
		return nil, err
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	e := &Engine{app: cfg.ApplicationID, plan: p, tasks: map[TaskID]*task{}, newStore: cfg.NewStore, m: m, log: cfg.Logger}
	if e.newStore == nil {
		e.newStore = NewMemoryStore
	}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	return e, nil
}

// Topics lists the topics of the application.
type Topics struct {
	Sources     []string         // input topics, read by the application
	Sinks       []string         // output topics, written by To
	Repartition map[string]int32 // internal: written and read, with their partition counts
	Changelogs  map[string]int32 // internal, compacted: written, read back only to restore
	// Compacted are the sinks written by ToTable (upsert sinks, also in
	// Sinks): the runtime creates those missing as compacted topics with
	// this partition count (the writing tasks').
	Compacted map[string]int32
}

// Topics returns the application's topics.
func (e *Engine) Topics() Topics {
	ts := Topics{Repartition: map[string]int32{}, Changelogs: map[string]int32{}, Compacted: maps.Clone(e.plan.compacted)}
	for topic, in := range e.plan.inputs {
		if !in.node.source.repartition {
			ts.Sources = append(ts.Sources, topic)
		}
	}
	for n, topic := range e.plan.sinks {
		if n.sink.repartition {
			ts.Repartition[topic] = e.plan.partitions[topic]
		} else if !slices.Contains(ts.Sinks, topic) {
			ts.Sinks = append(ts.Sinks, topic)
		}
	}
	for topic, ref := range e.plan.changelogs {
		if !ref.source {
			ts.Changelogs[topic] = e.plan.partitions[topic]
		}
	}
	slices.Sort(ts.Sources)
	slices.Sort(ts.Sinks)
	return ts
}

// TaskFor returns the task consuming a partition of an input topic.
func (e *Engine) TaskFor(topic string, partition int32) (TaskID, bool) {
	in, ok := e.plan.inputs[topic]
	if !ok || partition < 0 || partition >= in.sub.partitions {
		return TaskID{}, false
	}
	return TaskID{in.sub.id, partition}, true
}

// ChangelogTask returns the task whose store a changelog partition
// restores.
func (e *Engine) ChangelogTask(topic string, partition int32) (TaskID, bool) {
	ref, ok := e.plan.changelogs[topic]
	if !ok || partition < 0 || partition >= ref.sub.partitions {
		return TaskID{}, false
	}
	return TaskID{ref.sub.id, partition}, true
}

// Changelogs returns the changelog topics of a task's stores; their
// partition id.Partition restores the task. A table read with TableSource
// has its source topic as changelog (see SourceChangelog).
func (e *Engine) Changelogs(id TaskID) []string {
	var out []string
	for topic, ref := range e.plan.changelogs {
		if ref.sub.id == id.Subtopology {
			out = append(out, topic)
		}
	}
	slices.Sort(out)
	return out
}

// SourceChangelog reports whether a changelog topic is a table's source
// topic (TableSource), as in Kafka Streams: the engine never writes it, and
// a restore must read it from the start only up to the consumer group's
// committed offset for the partition (the records after that are processed
// as input), not to its end.
func (e *Engine) SourceChangelog(topic string) bool {
	ref, ok := e.plan.changelogs[topic]
	return ok && ref.source
}

// Tasks returns the open tasks in order.
func (e *Engine) Tasks() []TaskID {
	return slices.SortedFunc(maps.Keys(e.tasks), func(a, b TaskID) int {
		return cmp.Or(cmp.Compare(a.Subtopology, b.Subtopology), cmp.Compare(a.Partition, b.Partition))
	})
}

// OpenTask creates a task with empty stores, ready for Restore and then
// Process. Opening an open task does nothing.
func (e *Engine) OpenTask(id TaskID) error {
	if _, ok := e.tasks[id]; ok {
		return nil
	}
	if id.Subtopology < 0 || id.Subtopology >= len(e.plan.subs) || id.Partition < 0 || id.Partition >= e.plan.subs[id.Subtopology].partitions {
		return fmt.Errorf("stream: no task %s", id)
	}
	t, err := newTask(e, id)
	if err != nil {
		return err
	}
	e.tasks[id] = t
	return nil
}

// CloseTask closes a task and its stores, discarding state not yet
// committed (its outputs already Drained stay with the caller).
func (e *Engine) CloseTask(id TaskID) error {
	t, ok := e.tasks[id]
	if !ok {
		return nil
	}
	delete(e.tasks, id)
	e.m.forget(id)
	var errs []error
	for _, s := range t.stores {
		errs = append(errs, s.Close())
	}
	return errors.Join(errs...)
}

// Restore applies a changelog record to the store of its open task. Call
// it for the whole changelog partition before the task's first Process.
func (e *Engine) Restore(r *kgo.Record) error {
	ref, ok := e.plan.changelogs[r.Topic]
	if !ok {
		return fmt.Errorf("stream: %s is not a changelog", r.Topic)
	}
	t := e.tasks[TaskID{ref.sub.id, r.Partition}]
	if t == nil || !t.restoring {
		return fmt.Errorf("stream: restore %s/%d: task not open or already running", r.Topic, r.Partition)
	}
	s := t.storeOf[ref.node]
	k, v := r.Key, r.Value
	if ref.source {
		var err error
		if k, v, err = ref.node.source.restore(r); err != nil {
			return fmt.Errorf("stream: restore %s/%d@%d: %w", r.Topic, r.Partition, r.Offset, err)
		}
	}
	if v == nil {
		return s.Store.Delete(k)
	}
	return s.Store.Set(k, v)
}

// Process runs one input record through its task. An error fails the task
// for good: the application must stop (state may be half-updated; the
// changelog and offsets of the last commit are the truth).
func (e *Engine) Process(r *kgo.Record) error {
	in, ok := e.plan.inputs[r.Topic]
	if !ok {
		return fmt.Errorf("stream: %s is not an input topic", r.Topic)
	}
	t, err := e.running(TaskID{in.sub.id, r.Partition})
	if err != nil {
		return err
	}
	c := t.clocks[r.Topic]
	if in.producers > 0 {
		if producer, wm, ok := marker(r); ok {
			c.mark(producer, wm, e.now)
			t.updateWatermark()
			return t.err
		}
	}
	spec := in.node.source
	k, v, err := spec.decode(r.Key, r.Value, r.Headers)
	if err != nil {
		t.fail(fmt.Errorf("stream: decode %s/%d@%d: %w", r.Topic, r.Partition, r.Offset, err))
		return t.err
	}
	ts := spec.eventTime(k, v, r.Timestamp)
	t.sample(ts, r.Timestamp.UnixMilli())
	c.observe(ts, e.now)
	t.ops[in.sub.index[in.node]].process(rec{key: k, value: v, ts: ts})
	t.updateWatermark()
	return t.err
}

// Tick tells the engine the wall-clock time, which only idle-partition
// detection uses.
func (e *Engine) Tick(now time.Time) error {
	e.now = now.UnixMilli()
	var errs []error
	for _, id := range e.Tasks() {
		t, err := e.running(id)
		if err == nil {
			t.updateWatermark()
			t.tick()
			err = t.err
		}
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// EndPartition marks the end of an input partition (a bounded run):
// its watermark becomes +∞, and when every input of a task has ended,
// the task closes all its windows.
func (e *Engine) EndPartition(topic string, partition int32) error {
	in, ok := e.plan.inputs[topic]
	if !ok {
		return fmt.Errorf("stream: %s is not an input topic", topic)
	}
	t, err := e.running(TaskID{in.sub.id, partition})
	if err != nil {
		return err
	}
	t.clocks[topic].ended = true
	t.updateWatermark()
	return t.err
}

// Ended reports whether every input of the task has ended (see
// EndPartition; a repartition input ends when every upstream task has).
func (e *Engine) Ended(id TaskID) bool {
	t, ok := e.tasks[id]
	return ok && t.wm == maxTime
}

// Watermark returns a task's watermark (math.MinInt64 before any, as Unix
// ms; math.MaxInt64 once its input has ended).
func (e *Engine) Watermark(id TaskID) int64 {
	if t, ok := e.tasks[id]; ok {
		return t.wm
	}
	return minTime
}

// LateRecords counts the records dropped from windowed aggregations for
// arriving after all their windows had closed (each also went to Late).
func (e *Engine) LateRecords() int64 { return e.late }

// Drain returns and forgets the records produced since the last Drain or
// Commit: outputs and repartition records. A record whose Partition is -1
// goes where Kafka's default partitioner puts its key; others name their
// partition.
func (e *Engine) Drain() []*kgo.Record {
	out := e.out
	e.out = nil
	return out
}

// Commit is Drain plus what must be written before the input offsets
// processed so far may be committed: the changes of every store since the
// last commit (to the changelogs) and watermark markers (to the
// repartition topics).
func (e *Engine) Commit() ([]*kgo.Record, error) {
	for _, id := range e.Tasks() {
		t, err := e.running(id)
		if err != nil {
			return nil, err
		}
		if t.wm > t.marked {
			for _, topic := range t.sub.writes {
				for p := range e.plan.partitions[topic] {
					e.out = append(e.out, markerRecord(topic, p, id.Partition, t.wm, e.now))
				}
			}
			t.marked = t.wm
		}
		for _, s := range t.stores {
			if e.plan.changelogs[s.changelog].source {
				clear(s.dirty) // a source table: its topic is its changelog already
				continue
			}
			err := s.changes(func(k, v []byte) {
				e.out = append(e.out, &kgo.Record{Topic: s.changelog, Partition: id.Partition, Key: k, Value: v, Timestamp: msTime(e.now)})
			})
			if err != nil {
				return nil, fmt.Errorf("stream: task %s: changelog: %w", id, err)
			}
		}
	}
	return e.Drain(), nil
}

// running returns an open task, finishing its restoration first.
func (e *Engine) running(id TaskID) (*task, error) {
	t, ok := e.tasks[id]
	if !ok {
		return nil, fmt.Errorf("stream: task %s is not open", id)
	}
	if t.restoring {
		t.restoring = false
		for _, op := range t.ops {
			if op.restored != nil {
				if err := op.restored(); err != nil {
					t.fail(fmt.Errorf("stream: task %s: restore: %w", id, err))
				}
			}
		}
	}
	return t, t.err
}

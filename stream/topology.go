package stream

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Topology is the graph of a stream application: sources, operators,
// state stores and sinks. Build it with Source and the operator
// functions, then run it with New (against Kafka) or streamtest.New (in
// memory). A Topology is not safe for concurrent building; once running it
// is only read.
type Topology struct {
	nodes []*node
	names map[string]bool
	errs  []error
}

// NewTopology returns an empty topology.
func NewTopology() *Topology { return &Topology{names: map[string]bool{}} }

// Err reports the mistakes made while building (a mistyped option, a
// duplicate name, ...). New and streamtest.New return it too.
func (t *Topology) Err() error { return errors.Join(t.errs...) }

// rec is a record between operators: typed key and value boxed, event time
// in Unix milliseconds.
type rec struct {
	key, value any
	ts         int64
}

// node is one operator of the graph. Its typed behaviour lives in newOp,
// built once per task, so the graph itself stays untyped and shared.
type node struct {
	id       int
	name     string // operator name: metrics label, store and repartition topic names
	parents  []*node
	children []*node
	late     *node // a windowed aggregation's side output of late records
	source   *sourceSpec
	sink     *sinkSpec
	store    string // state store name, "" if stateless
	newOp    func(env *opEnv) operator
	// reads are the nodes whose stores this node reads (a join looking up a
	// table): they must run in the same task, so the plan keeps them in one
	// sub-topology.
	reads []*node
}

// operator is one node's behaviour inside one task.
type operator struct {
	process  func(r rec)
	advance  func(wm int64)  // the task watermark moved forward; nil if stateless
	restored func() error    // the store was restored; nil if stateless
	tick     func(now int64) // the wall clock moved (processing-time timers); usually nil
}

// opEnv is what an operator may use in its task.
type opEnv struct {
	t       *task
	node    *node
	forward func(rec)
	late    func(rec) // windowed aggregations: the late-records stream, or nil
	store   *loggedStore
}

// sourceSpec describes where a source reads and how.
type sourceSpec struct {
	topic       string
	repartition bool // topic is "<app>-<topic>" and carries watermark markers
	decode      func(k, v []byte, h []kgo.RecordHeader) (any, any, error)
	extract     func(k, v any, recordTime time.Time) int64 // nil: the record's timestamp
	opts        sourceOptions
	// table: the source materializes a table (TableSource) whose store is
	// restored from the topic itself; its partitions hold no task
	// watermark back.
	table bool
	// restore (tables) turns a record of the topic into the store's entry:
	// the key and value re-encoded by the table's serdes (nil: deleted).
	restore func(r *kgo.Record) (key, value []byte, err error)
}

// sinkSpec describes where a sink writes.
type sinkSpec struct {
	topic       string
	repartition bool
	compact     bool // an upsert sink (ToTable): the runtime creates the topic compacted
	encode      func(r rec) (k, v []byte, h []kgo.RecordHeader, err error)
}

func (t *Topology) add(kind string, name string, parents []*node) *node {
	n := &node{id: len(t.nodes), parents: parents}
	if name == "" {
		name = fmt.Sprintf("%s-%d", kind, n.id)
	} else if t.names[name] {
		t.errs = append(t.errs, fmt.Errorf("stream: operator name %q used twice", name))
	}
	t.names[name] = true
	n.name = name
	for _, p := range parents {
		p.children = append(p.children, n)
	}
	t.nodes = append(t.nodes, n)
	return n
}

// Stream is an unbounded sequence of keyed records of type K, V flowing
// through the topology. Its zero value is not usable.
type Stream[K, V any] struct {
	t *Topology
	n *node
	// rekeyed: the key changed since the source, so a keyed aggregation
	// must first go through a repartition topic.
	rekeyed bool
}

// Option configures an operator.
type Option func(*opOptions)

type opOptions struct{ name string }

// Named names an operator. The name is the metrics label and, for stateful
// operators, names the state store (changelog topic
// <app>-<name>-changelog); for GroupByKey, the repartition topic
// <app>-<name>-repartition. Name stateful operators of long-lived
// applications: generated names follow the building order, so inserting an
// operator renames the topics that follow.
func Named(name string) Option { return func(o *opOptions) { o.name = name } }

func applyOpts(opts []Option) opOptions {
	var o opOptions
	for _, f := range opts {
		f(&o)
	}
	return o
}

// SourceOption configures a source.
type SourceOption func(*sourceOptions)

type sourceOptions struct {
	name      string
	extractor any // func(K, V, time.Time) time.Time
	bound     time.Duration
	idle      time.Duration
}

// EventTime sets how a source finds a record's event time; by default it
// is the record's Kafka timestamp, which fn receives as recordTime. K and
// V must be the source's types.
func EventTime[K, V any](fn func(key K, value V, recordTime time.Time) time.Time) SourceOption {
	return func(o *sourceOptions) { o.extractor = fn }
}

// OutOfOrderness bounds how far behind the newest event time seen on a
// partition a record may arrive without being late: the partition's
// watermark is max event time − d. Default 0.
func OutOfOrderness(d time.Duration) SourceOption {
	return func(o *sourceOptions) { o.bound = d }
}

// IdleTimeout lets the task watermark advance without a partition that has
// had no record for d of wall-clock time (0, the default, waits for every
// partition forever).
func IdleTimeout(d time.Duration) SourceOption {
	return func(o *sourceOptions) { o.idle = d }
}

// SourceName names the source operator (see Named).
func SourceName(name string) SourceOption {
	return func(o *sourceOptions) { o.name = name }
}

// Source reads a topic, decoding keys and values with the serdes.
func Source[K, V any](t *Topology, topic string, key Serde[K], value Serde[V], opts ...SourceOption) Stream[K, V] {
	var o sourceOptions
	for _, f := range opts {
		f(&o)
	}
	spec := &sourceSpec{topic: topic, decode: decoder(key, value), opts: o}
	if o.extractor != nil {
		fn, ok := o.extractor.(func(K, V, time.Time) time.Time)
		if !ok {
			t.errs = append(t.errs, fmt.Errorf("stream: source %s: EventTime function has type %T, want func(%T, %T, time.Time) time.Time",
				topic, o.extractor, *new(K), *new(V)))
		} else {
			spec.extract = func(k, v any, rt time.Time) int64 { return fn(k.(K), v.(V), rt).UnixMilli() }
		}
	}
	n := t.add("source", o.name, nil)
	n.source = spec
	n.newOp = passThrough
	return Stream[K, V]{t: t, n: n}
}

func decoder[K, V any](key Serde[K], value Serde[V]) func(k, v []byte, h []kgo.RecordHeader) (any, any, error) {
	return func(kb, vb []byte, h []kgo.RecordHeader) (any, any, error) {
		k, err := key.Decode(kb)
		if err != nil {
			return nil, nil, fmt.Errorf("key: %w", err)
		}
		v, err := DecodeValue(value, vb, h)
		if err != nil {
			return nil, nil, fmt.Errorf("value: %w", err)
		}
		return k, v, nil
	}
}

func encoder[K, V any](key Serde[K], value Serde[V]) func(r rec) ([]byte, []byte, []kgo.RecordHeader, error) {
	return func(r rec) ([]byte, []byte, []kgo.RecordHeader, error) {
		k, err := key.Encode(r.key.(K))
		if err != nil {
			return nil, nil, nil, fmt.Errorf("key: %w", err)
		}
		v, h, err := EncodeValue(value, r.value.(V))
		if err != nil {
			return nil, nil, nil, fmt.Errorf("value: %w", err)
		}
		return k, v, h, nil
	}
}

// eventTime returns the event time of a decoded record in Unix ms.
func (s *sourceSpec) eventTime(k, v any, recordTime time.Time) int64 {
	if s.extract == nil {
		return recordTime.UnixMilli()
	}
	return s.extract(k, v, recordTime)
}

func passThrough(env *opEnv) operator { return operator{process: env.forward} }

// To writes a stream to a topic, encoding with the serdes. The output
// record's timestamp is its event time; its partition follows Kafka's
// default partitioner on the encoded key.
func To[K, V any](s Stream[K, V], topic string, key Serde[K], value Serde[V], opts ...Option) {
	o := applyOpts(opts)
	n := s.t.add("sink", o.name, []*node{s.n})
	n.sink = &sinkSpec{topic: topic, encode: encoder(key, value)}
	n.newOp = func(env *opEnv) operator { return operator{process: func(r rec) { env.t.emit(n, r) }} }
}

// Merge interleaves streams of the same types into one. Merged sources are
// consumed together by the same tasks, so their topics must have the same
// partition count (checked at start).
func Merge[K, V any](streams ...Stream[K, V]) Stream[K, V] {
	if len(streams) == 0 {
		panic("stream: Merge of no streams")
	}
	parents := make([]*node, len(streams))
	rekeyed := false
	for i, s := range streams {
		parents[i] = s.n
		rekeyed = rekeyed || s.rekeyed
	}
	t := streams[0].t
	n := t.add("merge", "", parents)
	n.newOp = passThrough
	return Stream[K, V]{t: t, n: n, rekeyed: rekeyed}
}

// msTime converts Unix milliseconds to a UTC time.
func msTime(ms int64) time.Time { return time.UnixMilli(ms).UTC() }

const (
	minTime = math.MinInt64
	maxTime = math.MaxInt64
)

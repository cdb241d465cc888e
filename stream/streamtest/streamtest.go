// Package streamtest runs a stream.Topology deterministically in memory,
// with no broker and no goroutines: Kafka Streams' TopologyTestDriver for
// Weir's stream library. Records are piped into named input topics with
// explicit event times, wall-clock time only moves when the test advances
// it, and output topics are read back as typed records.
//
// The driver runs the very operator code of the Kafka runtime: both wrap
// one stream.Engine. Repartition topics are kept in memory and their
// records (and watermark markers) are processed as soon as they are
// produced; the driver commits after every input record, so changelog
// topics can be read too.
//
//	d, _ := streamtest.New(topo, streamtest.Config{})
//	in := streamtest.Input(d, "clicks", stream.String(), stream.String())
//	out := streamtest.Output(d, "counts", stream.String(), stream.Int64())
//	in.Pipe("alice", "/home", t0)
//	d.EndOfInput()
//	recs := out.ReadAll()
//	if err := d.Err(); err != nil { ... }
//
// A Driver is not safe for concurrent use. It imports only the stream
// package and external libraries.
package streamtest

import (
	"cmp"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weirhq/weir/stream"
)

// Config configures a Driver. The zero value is usable.
type Config struct {
	// ApplicationID names the internal topics; default "streamtest".
	ApplicationID string
	// Partitions gives topics' partition counts; default 1. Input topics
	// consumed together must agree, as on a real cluster.
	Partitions map[string]int32
	// Start is the initial wall-clock time; default the Unix epoch.
	Start time.Time
	// Registerer receives the engine's metrics; nil: none.
	Registerer prometheus.Registerer
}

// Driver runs a topology in memory.
type Driver struct {
	e       *stream.Engine
	cfg     Config
	now     time.Time
	topics  map[string][]*kgo.Record // every record produced, by topic
	read    map[string]int           // per topic, how many records ReadAll has returned
	offsets map[string]map[int32]int64
	repart  map[string]int32
	err     error
}

// New prepares a driver for topology t; every task is opened at once.
func New(t *stream.Topology, cfg Config) (*Driver, error) {
	cfg.ApplicationID = cmp.Or(cfg.ApplicationID, "streamtest")
	d := &Driver{cfg: cfg, now: cfg.Start, topics: map[string][]*kgo.Record{}, read: map[string]int{}, offsets: map[string]map[int32]int64{}}
	if d.now.IsZero() {
		d.now = time.UnixMilli(0)
	}
	e, err := stream.NewEngine(t, stream.EngineConfig{ApplicationID: cfg.ApplicationID, Partitions: d.partitionsOf, Registerer: cfg.Registerer})
	if err != nil {
		return nil, err
	}
	d.e = e
	topics := e.Topics()
	d.repart = topics.Repartition
	for _, topic := range topics.Sources {
		for p := range d.partitions(topic) {
			if id, ok := e.TaskFor(topic, p); ok {
				if err := e.OpenTask(id); err != nil {
					return nil, err
				}
			}
		}
	}
	for topic, n := range topics.Repartition {
		for p := range n {
			if id, ok := e.TaskFor(topic, p); ok {
				if err := e.OpenTask(id); err != nil {
					return nil, err
				}
			}
		}
	}
	if err := e.Tick(d.now); err != nil {
		return nil, err
	}
	return d, nil
}

func (d *Driver) partitionsOf(topic string) (int32, bool) { return d.partitions(topic), true }

func (d *Driver) partitions(topic string) int32 {
	if n, ok := d.repart[topic]; ok {
		return n
	}
	if n := d.cfg.Partitions[topic]; n > 0 {
		return n
	}
	return 1
}

// Engine returns the driver's engine, for inspection (watermarks, tasks).
func (d *Driver) Engine() *stream.Engine { return d.e }

// Err returns the first error the driver met; once set, the driver does
// nothing more.
func (d *Driver) Err() error { return d.err }

// LateRecords counts the records windowed aggregations found late.
func (d *Driver) LateRecords() int64 { return d.e.LateRecords() }

// Now returns the driver's wall-clock time.
func (d *Driver) Now() time.Time { return d.now }

// PipeRecord processes one raw record on an input topic. A Partition of -1
// means: by key, as Kafka's default partitioner would. The driver assigns
// the offset.
func (d *Driver) PipeRecord(r *kgo.Record) {
	if d.err != nil {
		return
	}
	if r.Partition < 0 {
		r.Partition = stream.KafkaPartition(r.Key, d.partitions(r.Topic))
	}
	d.process(r)
}

// Advance moves wall-clock time forward (idle-partition timeouts).
func (d *Driver) Advance(dur time.Duration) {
	if d.err != nil {
		return
	}
	d.now = d.now.Add(dur)
	if d.fail(d.e.Tick(d.now)) {
		return
	}
	d.flush()
}

// EndOfInput ends every input partition, as a bounded run does at the end
// offsets: watermarks go to +∞, every open window closes and is emitted,
// and the results flow through repartition topics to the end.
func (d *Driver) EndOfInput() {
	for _, topic := range d.e.Topics().Sources {
		for p := range d.partitions(topic) {
			if d.err != nil || d.fail(d.e.EndPartition(topic, p)) {
				return
			}
			d.flush()
		}
	}
	for _, id := range d.e.Tasks() {
		if !d.e.Ended(id) {
			d.fail(fmt.Errorf("streamtest: task %s did not end at end of input", id))
			return
		}
	}
}

func (d *Driver) fail(err error) bool {
	if err != nil && d.err == nil {
		d.err = err
	}
	return d.err != nil
}

func (d *Driver) append(r *kgo.Record) {
	if d.offsets[r.Topic] == nil {
		d.offsets[r.Topic] = map[int32]int64{}
	}
	r.Offset = d.offsets[r.Topic][r.Partition]
	d.offsets[r.Topic][r.Partition]++
	d.topics[r.Topic] = append(d.topics[r.Topic], r)
}

// process runs one input record, then commits and runs what it produced
// on repartition topics, until nothing is left.
func (d *Driver) process(r *kgo.Record) {
	d.append(r)
	if d.fail(d.e.Process(r)) {
		return
	}
	d.flush()
}

func (d *Driver) flush() {
	var queue []*kgo.Record
	for {
		outs, err := d.e.Commit()
		if d.fail(err) {
			return
		}
		for _, o := range outs {
			if o.Partition < 0 {
				o.Partition = stream.KafkaPartition(o.Key, d.partitions(o.Topic))
			}
			d.append(o)
			if _, ok := d.repart[o.Topic]; ok {
				queue = append(queue, o)
			}
		}
		if len(queue) == 0 {
			return
		}
		r := queue[0]
		queue = queue[1:]
		if d.fail(d.e.Process(r)) {
			return
		}
	}
}

// Records returns every record produced to a topic so far (input,
// output, repartition and changelog topics alike), in production order.
func (d *Driver) Records(topic string) []*kgo.Record { return d.topics[topic] }

// Record is an output record, decoded.
type Record[K, V any] struct {
	Key       K
	Value     V
	Time      time.Time
	Partition int32
}

// InputTopic pipes typed records into a topic.
type InputTopic[K, V any] struct {
	d     *Driver
	topic string
	key   Serde[K]
	value Serde[V]
}

// Serde is stream.Serde.
type Serde[T any] = stream.Serde[T]

// Input returns a typed handle on an input topic.
func Input[K, V any](d *Driver, topic string, key Serde[K], value Serde[V]) *InputTopic[K, V] {
	return &InputTopic[K, V]{d: d, topic: topic, key: key, value: value}
}

// Pipe encodes and processes one record with event (record) time ts,
// partitioned by key.
func (in *InputTopic[K, V]) Pipe(key K, value V, ts time.Time) {
	if in.d.err != nil {
		return
	}
	kb, err := in.key.Encode(key)
	if in.d.fail(err) {
		return
	}
	vb, hdrs, err := stream.EncodeValue(in.value, value)
	if in.d.fail(err) {
		return
	}
	in.d.PipeRecord(&kgo.Record{Topic: in.topic, Partition: -1, Key: kb, Value: vb, Headers: hdrs, Timestamp: ts})
}

// OutputTopic reads typed records from a topic.
type OutputTopic[K, V any] struct {
	d     *Driver
	topic string
	key   Serde[K]
	value Serde[V]
}

// Output returns a typed handle on an output topic.
func Output[K, V any](d *Driver, topic string, key Serde[K], value Serde[V]) *OutputTopic[K, V] {
	return &OutputTopic[K, V]{d: d, topic: topic, key: key, value: value}
}

// ReadAll returns the records produced to the topic since the last
// ReadAll, in production order. A decoding error is the driver's Err.
func (out *OutputTopic[K, V]) ReadAll() []Record[K, V] {
	recs := out.d.topics[out.topic][out.d.read[out.topic]:]
	out.d.read[out.topic] += len(recs)
	res := make([]Record[K, V], 0, len(recs))
	for _, r := range recs {
		k, err := out.key.Decode(r.Key)
		if err == nil {
			var v V
			v, err = stream.DecodeValue(out.value, r.Value, r.Headers)
			res = append(res, Record[K, V]{Key: k, Value: v, Time: r.Timestamp, Partition: r.Partition})
		}
		if err != nil {
			out.d.fail(errors.Join(fmt.Errorf("streamtest: read %s", out.topic), err))
			return nil
		}
	}
	return res
}

// Values returns ReadAll's values only.
func (out *OutputTopic[K, V]) Values() []V {
	var vs []V
	for _, r := range out.ReadAll() {
		vs = append(vs, r.Value)
	}
	return vs
}

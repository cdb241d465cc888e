package stream

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Tables. A Table is the latest value per key: read from a compacted topic
// (TableSource) or produced by an unwindowed aggregation (Count, Reduce,
// Aggregate), transformed (MapTableValues, FilterTable), joined with a
// stream (JoinTable, LeftJoinTable) or with another table (JoinTables,
// LeftJoinTables, OuterJoinTables), and written as upserts (ToTable).
//
// Between operators a table's records are its changes: a new value, or a
// deletion (the tombstone value below, a nil value on a topic). Tables are
// materialized only where they are read from a topic or aggregated; the
// tables derived from those compute a key's value when asked (Kafka
// Streams' value getters), by looking it up in the store they derive from.

// tombstone is a table record's value when its key was deleted.
type tombstone struct{}

// Table is a changelog: the latest value per key. Its zero value is not
// usable.
type Table[K, V any] struct {
	t *Topology
	n *node
	// key encodes keys for lookups in the stores below.
	key Serde[K]
	// get, built once per task, returns the current value of a key.
	get getter[K, V]
	// stores are the nodes whose stores get reads: whoever looks the
	// table up must run in their task.
	stores []*node
	// deletes: n may forward tombstones.
	deletes bool
}

// getter builds, for one task, the lookup of a key's current value.
type getter[K, V any] func(t *task) func(k K, kb []byte) (V, bool, error)

// storeGetter reads a key's value from the store of n, encoded by serde.
func storeGetter[K, V any](n *node, serde Serde[V]) getter[K, V] {
	return func(t *task) func(K, []byte) (V, bool, error) {
		s := t.storeOf[n]
		return func(_ K, kb []byte) (V, bool, error) {
			var v V
			if s == nil {
				return v, false, fmt.Errorf("stream: the store of %s is not in task %s", n.name, t.id)
			}
			b, ok, err := s.Get(kb)
			if err != nil || !ok {
				return v, false, err
			}
			v, err = serde.Decode(slices.Clone(b)) // the store may reuse b
			return v, err == nil, err
		}
	}
}

// ToStream returns the table's changes: one record per update, carrying
// the key's new value and the event time of the record that caused it.
// Deletions are left out (a Go value cannot be null); ToTable writes them.
func (t Table[K, V]) ToStream() Stream[K, V] {
	if !t.deletes {
		return Stream[K, V]{t: t.t, n: t.n}
	}
	n := t.t.add("tostream", "", []*node{t.n})
	n.newOp = func(env *opEnv) operator {
		return operator{process: func(r rec) {
			if _, del := r.value.(tombstone); !del {
				env.forward(r)
			}
		}}
	}
	return Stream[K, V]{t: t.t, n: n}
}

// TableSource reads a topic as a table: each record sets its key's value,
// and a record with a null value (a tombstone) deletes the key. Use it on
// compacted topics (cleanup.policy=compact), whose log keeps every key's
// latest record.
//
// The table lives in a store of each task, named by SourceName (else
// generated). As in Kafka Streams, the topic itself is the store's
// changelog: nothing more is written, and when a task is assigned its
// store is restored by reading the topic's partition from the start up to
// the group's committed offset, the records after it being processed as
// input. Keys are stored as key.Encode gives them; the stream joined with
// the table must encode its keys the same way (the same serde).
//
// A table source's partitions hold no task watermark back: a table is
// state, and a rarely updated one must not stall the windows of the
// streams it is joined with. EventTime applies to its records (a
// tombstone's event time is its record timestamp); OutOfOrderness and
// IdleTimeout do not matter.
func TableSource[K, V any](t *Topology, topic string, key Serde[K], value Serde[V], opts ...SourceOption) Table[K, V] {
	var o sourceOptions
	for _, f := range opts {
		f(&o)
	}
	spec := &sourceSpec{topic: topic, table: true, opts: o}
	spec.decode = func(kb, vb []byte, h []kgo.RecordHeader) (any, any, error) {
		k, err := key.Decode(kb)
		if err != nil {
			return nil, nil, fmt.Errorf("key: %w", err)
		}
		if vb == nil {
			return k, tombstone{}, nil
		}
		v, err := DecodeValue(value, vb, h)
		if err != nil {
			return nil, nil, fmt.Errorf("value: %w", err)
		}
		return k, v, nil
	}
	spec.restore = func(r *kgo.Record) ([]byte, []byte, error) {
		k, v, err := spec.decode(r.Key, r.Value, r.Headers)
		if err != nil {
			return nil, nil, err
		}
		kb, err := key.Encode(k.(K))
		if err != nil {
			return nil, nil, fmt.Errorf("key: %w", err)
		}
		if _, del := v.(tombstone); del {
			return kb, nil, nil
		}
		vb, err := value.Encode(v.(V))
		if err != nil {
			return nil, nil, fmt.Errorf("value: %w", err)
		}
		if vb == nil {
			vb = []byte{} // a value, not a deletion
		}
		return kb, vb, nil
	}
	if o.extractor != nil {
		fn, ok := o.extractor.(func(K, V, time.Time) time.Time)
		if !ok {
			t.errs = append(t.errs, fmt.Errorf("stream: table source %s: EventTime function has type %T, want func(%T, %T, time.Time) time.Time",
				topic, o.extractor, *new(K), *new(V)))
		} else {
			spec.extract = func(k, v any, rt time.Time) int64 {
				if _, del := v.(tombstone); del {
					return rt.UnixMilli()
				}
				return fn(k.(K), v.(V), rt).UnixMilli()
			}
		}
	}
	n := t.add("table", o.name, nil)
	n.source = spec
	n.store = n.name
	n.newOp = func(env *opEnv) operator {
		return operator{process: func(r rec) {
			kb, err := key.Encode(r.key.(K))
			if err != nil {
				env.t.fail(fmt.Errorf("stream: %s: key: %w", n.name, err))
				return
			}
			if _, del := r.value.(tombstone); del {
				_, had, err := env.store.Get(kb)
				if err == nil && had {
					err = env.store.Delete(kb)
				}
				if err != nil {
					env.t.fail(fmt.Errorf("stream: %s: state: %w", n.name, err))
				} else if had {
					env.forward(r) // deleting an absent key changes nothing
				}
				return
			}
			vb, err := value.Encode(r.value.(V))
			if err == nil {
				if vb == nil {
					vb = []byte{}
				}
				err = env.store.Set(kb, vb)
			}
			if err != nil {
				env.t.fail(fmt.Errorf("stream: %s: state: %w", n.name, err))
				return
			}
			env.forward(r)
		}}
	}
	return Table[K, V]{t: t, n: n, key: key, get: storeGetter[K](n, value), stores: []*node{n}, deletes: true}
}

// MapTableValues is the table of fn applied to each value of tb (a
// deleted key stays deleted). It is not materialized: a lookup maps the
// value read from tb.
func MapTableValues[K, V, V2 any](tb Table[K, V], fn func(K, V) V2, opts ...Option) Table[K, V2] {
	n := tb.t.add("table-mapvalues", applyOpts(opts).name, []*node{tb.n})
	n.newOp = func(env *opEnv) operator {
		return operator{process: func(r rec) {
			if _, del := r.value.(tombstone); !del {
				k := r.key.(K)
				r = rec{key: k, value: fn(k, r.value.(V)), ts: r.ts}
			}
			env.forward(r)
		}}
	}
	get := func(t *task) func(K, []byte) (V2, bool, error) {
		parent := tb.get(t)
		return func(k K, kb []byte) (V2, bool, error) {
			var v2 V2
			v, ok, err := parent(k, kb)
			if ok {
				v2 = fn(k, v)
			}
			return v2, ok, err
		}
	}
	return Table[K, V2]{t: tb.t, n: n, key: tb.key, get: get, stores: tb.stores, deletes: tb.deletes}
}

// FilterTable is the table of the entries of tb for which keep returns
// true: an update that keep rejects deletes the key. Such deletions are
// forwarded even if the key had no value before (consumers of a table's
// tombstones must take deleting an absent key as a no-op, as compaction
// does).
func FilterTable[K, V any](tb Table[K, V], keep func(K, V) bool, opts ...Option) Table[K, V] {
	n := tb.t.add("table-filter", applyOpts(opts).name, []*node{tb.n})
	n.newOp = func(env *opEnv) operator {
		return operator{process: func(r rec) {
			if _, del := r.value.(tombstone); !del && !keep(r.key.(K), r.value.(V)) {
				r.value = tombstone{}
			}
			env.forward(r)
		}}
	}
	get := func(t *task) func(K, []byte) (V, bool, error) {
		parent := tb.get(t)
		return func(k K, kb []byte) (V, bool, error) {
			v, ok, err := parent(k, kb)
			if ok && !keep(k, v) {
				var zero V
				return zero, false, nil
			}
			return v, ok, err
		}
	}
	return Table[K, V]{t: tb.t, n: n, key: tb.key, get: get, stores: tb.stores, deletes: true}
}

// ToTable writes a table's changes to a topic as upserts: each update as
// a record of the key and its new value, each deletion as a tombstone
// (null value), so the topic's compacted log is the table. When the topic
// does not exist, the runtime (App) creates it with cleanup.policy=compact
// and as many partitions as the writing tasks; an existing topic is used
// as it is. Records go where Kafka's default partitioner puts their key.
func ToTable[K, V any](tb Table[K, V], topic string, key Serde[K], value Serde[V], opts ...Option) {
	n := tb.t.add("totable", applyOpts(opts).name, []*node{tb.n})
	n.sink = &sinkSpec{topic: topic, compact: true, encode: func(r rec) ([]byte, []byte, []kgo.RecordHeader, error) {
		kb, err := key.Encode(r.key.(K))
		if err != nil {
			return nil, nil, nil, fmt.Errorf("key: %w", err)
		}
		if _, del := r.value.(tombstone); del {
			return kb, nil, nil, nil
		}
		vb, h, err := EncodeValue(value, r.value.(V))
		if err != nil {
			return nil, nil, nil, fmt.Errorf("value: %w", err)
		}
		if vb == nil {
			vb = []byte{} // an update, not a deletion
		}
		return kb, vb, h, nil
	}}
	n.newOp = func(env *opEnv) operator { return operator{process: func(r rec) { env.t.emit(n, r) }} }
}

var errNoValueSerde = errors.New("the stream's key changed upstream, so it goes through a repartition topic: pass its value serde")

package stream

import "fmt"

// Grouped is a stream whose records are grouped by key for an
// aggregation: all records of one key meet in one task.
type Grouped[K, V any] struct {
	t     *Topology
	n     *node
	key   Serde[K]
	value Serde[V]
}

// GroupByKey groups a stream by its key. The serdes encode keys for state
// stores and, when the key changed upstream (Map, FlatMap, KeyBy), records
// for the automatic repartition topic <app>-<name>-repartition (name from
// Named, else generated), which has as many partitions as the upstream
// tasks and carries event-time watermarks to the downstream tasks.
func GroupByKey[K, V any](s Stream[K, V], key Serde[K], value Serde[V], opts ...Option) Grouped[K, V] {
	g := Grouped[K, V]{t: s.t, n: s.n, key: key, value: value}
	if !s.rekeyed {
		return g
	}
	sink := s.t.add("groupby", applyOpts(opts).name, []*node{s.n})
	topic := sink.name + "-repartition"
	sink.sink = &sinkSpec{topic: topic, repartition: true, encode: encoder(key, value)}
	sink.newOp = func(env *opEnv) operator { return operator{process: func(r rec) { env.t.emit(sink, r) }} }
	src := s.t.add("source", sink.name+"-source", nil)
	src.source = &sourceSpec{topic: topic, repartition: true, decode: decoder(key, value)}
	src.newOp = passThrough
	g.n = src
	return g
}

// Count counts the records per key.
func Count[K, V any](g Grouped[K, V], opts ...Option) Table[K, int64] {
	return aggregate(g, "count", opts, Int64(), func(_ K, _ V, n int64, _ bool) int64 { return n + 1 })
}

// Reduce combines the values per key with fn, starting from the key's
// first value.
func Reduce[K, V any](g Grouped[K, V], fn func(acc, v V) V, opts ...Option) Table[K, V] {
	return aggregate(g, "reduce", opts, g.value, func(_ K, v V, acc V, had bool) V {
		if !had {
			return v
		}
		return fn(acc, v)
	})
}

// Aggregate folds the values per key into an A, starting from init();
// serde encodes A for the state store and its changelog.
func Aggregate[K, V, A any](g Grouped[K, V], init func() A, fn func(key K, v V, acc A) A, serde Serde[A], opts ...Option) Table[K, A] {
	return aggregate(g, "aggregate", opts, serde, func(k K, v V, acc A, had bool) A {
		if !had {
			acc = init()
		}
		return fn(k, v, acc)
	})
}

// aggregate builds an unwindowed aggregation: a store keyed by the encoded
// key holding the encoded accumulator, each update forwarded downstream.
func aggregate[K, V, A any](g Grouped[K, V], kind string, opts []Option, serde Serde[A], add func(K, V, A, bool) A) Table[K, A] {
	n := g.t.add(kind, applyOpts(opts).name, []*node{g.n})
	n.store = n.name
	n.newOp = func(env *opEnv) operator {
		return operator{process: func(r rec) {
			k := r.key.(K)
			kb, err := g.key.Encode(k)
			if err != nil {
				env.t.fail(fmt.Errorf("stream: %s: key: %w", n.name, err))
				return
			}
			var acc A
			old, had, err := env.store.Get(kb)
			if err == nil && had {
				acc, err = serde.Decode(old)
			}
			if err != nil {
				env.t.fail(fmt.Errorf("stream: %s: state: %w", n.name, err))
				return
			}
			acc = add(k, r.value.(V), acc, had)
			b, err := serde.Encode(acc)
			if err == nil {
				err = env.store.Set(kb, b)
			}
			if err != nil {
				env.t.fail(fmt.Errorf("stream: %s: state: %w", n.name, err))
				return
			}
			env.forward(rec{key: k, value: acc, ts: r.ts})
		}}
	}
	return Table[K, A]{t: g.t, n: n, key: g.key, get: storeGetter[K](n, serde), stores: []*node{n}}
}

package stream

// The stateless operators. Each builds one node whose operator calls the
// user's function on the typed key and value and forwards the result with
// the record's event time unchanged.

// KV is a key and a value, the element type of FlatMap's results.
type KV[K, V any] struct {
	Key   K
	Value V
}

// Map replaces each record's key and value. Because the key may change,
// a keyed aggregation downstream goes through a repartition topic.
func Map[K, V, K2, V2 any](s Stream[K, V], fn func(K, V) (K2, V2), opts ...Option) Stream[K2, V2] {
	n := s.t.add("map", applyOpts(opts).name, []*node{s.n})
	n.newOp = func(env *opEnv) operator {
		return operator{process: func(r rec) {
			k, v := fn(r.key.(K), r.value.(V))
			env.forward(rec{key: k, value: v, ts: r.ts})
		}}
	}
	return Stream[K2, V2]{t: s.t, n: n, rekeyed: true}
}

// MapValues replaces each record's value, keeping its key (and so its
// partitioning).
func MapValues[K, V, V2 any](s Stream[K, V], fn func(K, V) V2, opts ...Option) Stream[K, V2] {
	n := s.t.add("mapvalues", applyOpts(opts).name, []*node{s.n})
	n.newOp = func(env *opEnv) operator {
		return operator{process: func(r rec) {
			k := r.key.(K)
			env.forward(rec{key: k, value: fn(k, r.value.(V)), ts: r.ts})
		}}
	}
	return Stream[K, V2]{t: s.t, n: n, rekeyed: s.rekeyed}
}

// Filter keeps the records for which keep returns true.
func Filter[K, V any](s Stream[K, V], keep func(K, V) bool, opts ...Option) Stream[K, V] {
	n := s.t.add("filter", applyOpts(opts).name, []*node{s.n})
	n.newOp = func(env *opEnv) operator {
		return operator{process: func(r rec) {
			if keep(r.key.(K), r.value.(V)) {
				env.forward(r)
			}
		}}
	}
	return Stream[K, V]{t: s.t, n: n, rekeyed: s.rekeyed}
}

// FlatMap replaces each record with zero or more records, all with its
// event time. Like Map, it marks the stream for repartitioning.
func FlatMap[K, V, K2, V2 any](s Stream[K, V], fn func(K, V) []KV[K2, V2], opts ...Option) Stream[K2, V2] {
	n := s.t.add("flatmap", applyOpts(opts).name, []*node{s.n})
	n.newOp = func(env *opEnv) operator {
		return operator{process: func(r rec) {
			for _, kv := range fn(r.key.(K), r.value.(V)) {
				env.forward(rec{key: kv.Key, value: kv.Value, ts: r.ts})
			}
		}}
	}
	return Stream[K2, V2]{t: s.t, n: n, rekeyed: true}
}

// Branch splits a stream: the i-th result holds the records for which
// preds[i] is the first predicate to return true. Records no predicate
// accepts are dropped; add a last predicate returning true to keep them.
func Branch[K, V any](s Stream[K, V], preds ...func(K, V) bool) []Stream[K, V] {
	out := make([]Stream[K, V], len(preds))
	for i := range preds {
		out[i] = Filter(s, func(k K, v V) bool {
			for _, p := range preds[:i] {
				if p(k, v) {
					return false
				}
			}
			return preds[i](k, v)
		})
	}
	return out
}

// KeyBy gives each record a new key computed from it (Kafka Streams'
// selectKey). A keyed aggregation downstream goes through a repartition
// topic, so that all records of a key meet in one task.
func KeyBy[K, V, K2 any](s Stream[K, V], fn func(K, V) K2, opts ...Option) Stream[K2, V] {
	n := s.t.add("keyby", applyOpts(opts).name, []*node{s.n})
	n.newOp = func(env *opEnv) operator {
		return operator{process: func(r rec) {
			env.forward(rec{key: fn(r.key.(K), r.value.(V)), value: r.value, ts: r.ts})
		}}
	}
	return Stream[K2, V]{t: s.t, n: n, rekeyed: true}
}

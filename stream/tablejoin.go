package stream

import "fmt"

// JoinTable enriches a stream with a table (Kafka Streams' KStream–KTable
// join): for each record of s, fn gets the record and the table's value
// for its key, and the result is emitted with the record's key and event
// time; a record whose key has no value in the table is dropped
// (LeftJoinTable keeps it). Table updates emit nothing.
//
// Time: the record meets the table as it is when the record is processed
// (as in Kafka Streams without versioned stores), not as of the record's
// event time. Within a task, records of the stream and of the table's
// topic are processed in the order they are fetched, so load a table
// before the stream records that need it (a restarted application
// restores the table from its topic first). The table is looked up in the
// task's store, so the stream and the table must be co-partitioned: the
// table's topic and the stream's (or, when the stream's key changed
// upstream, its repartition topic <app>-<name>-stream-repartition) have
// the same partition count and keys partitioned alike (checked at start:
// the counts), and the stream's keys must encode as the table's key serde
// encodes them. value encodes the stream's values for that repartition
// topic; it may be nil when the key did not change.
func JoinTable[K, V, T, O any](s Stream[K, V], tb Table[K, T], value Serde[V], fn func(key K, v V, t T) O, opts ...Option) Stream[K, O] {
	return streamTableJoin(s, tb, value, "join-table", opts, func(k K, v V, t T, ok bool) (O, bool) {
		if !ok {
			var o O
			return o, false
		}
		return fn(k, v, t), true
	})
}

// LeftJoinTable is JoinTable keeping every stream record: fn gets ok =
// false and T's zero value when the key has no value in the table.
func LeftJoinTable[K, V, T, O any](s Stream[K, V], tb Table[K, T], value Serde[V], fn func(key K, v V, t T, ok bool) O, opts ...Option) Stream[K, O] {
	return streamTableJoin(s, tb, value, "leftjoin-table", opts, func(k K, v V, t T, ok bool) (O, bool) {
		return fn(k, v, t, ok), true
	})
}

func streamTableJoin[K, V, T, O any](s Stream[K, V], tb Table[K, T], value Serde[V], kind string, opts []Option, fn func(K, V, T, bool) (O, bool)) Stream[K, O] {
	o := applyOpts(opts)
	in := s.n
	if s.rekeyed {
		if value == nil {
			s.t.errs = append(s.t.errs, fmt.Errorf("stream: %s: %w", kind, errNoValueSerde))
		} else {
			var gopts []Option
			if o.name != "" {
				gopts = []Option{Named(o.name + "-stream")}
			}
			in = GroupByKey(s, tb.key, value, gopts...).n
		}
	}
	n := s.t.add(kind, o.name, []*node{in})
	n.reads = tb.stores
	n.newOp = func(env *opEnv) operator {
		get := tb.get(env.t)
		return operator{process: func(r rec) {
			k := r.key.(K)
			kb, err := tb.key.Encode(k)
			if err != nil {
				env.t.fail(fmt.Errorf("stream: %s: key: %w", n.name, err))
				return
			}
			t, ok, err := get(k, kb)
			if err != nil {
				env.t.fail(fmt.Errorf("stream: %s: table: %w", n.name, err))
				return
			}
			if out, emit := fn(k, r.value.(V), t, ok); emit {
				env.forward(rec{key: k, value: out, ts: r.ts})
			}
		}}
	}
	return Stream[K, O]{t: s.t, n: n}
}

// JoinTables is the inner join of two tables on their keys (Kafka
// Streams' KTable–KTable join): a table holding fn(key, l, r) for every key
// with a value in both. It is updated whenever either side changes: an
// update of one side for a key the other side has emits the new result;
// a deletion on either side of a key that had a result emits a deletion.
// A result carries the event time of the change that caused it. The
// result is not materialized (a lookup joins the two sides' values), so it
// can be joined, filtered, mapped or written with ToTable.
//
// Both tables are looked up in the same task, so they must be
// co-partitioned (same partition count, checked at start; keys
// partitioned alike, with the same key serde).
func JoinTables[K, L, R, O any](l Table[K, L], r Table[K, R], fn func(key K, l L, r R) O, opts ...Option) Table[K, O] {
	return tableJoin(l, r, "join-tables", opts, func(lok, rok bool) bool { return lok && rok },
		func(k K, lv L, _ bool, rv R, _ bool) O { return fn(k, lv, rv) })
}

// LeftJoinTables is the left join of two tables: fn(key, l, r, ok) for
// every key of l, ok reporting whether r has the key (r is R's zero value
// if not). Changes of r update the keys l has; a deletion in l deletes.
func LeftJoinTables[K, L, R, O any](l Table[K, L], r Table[K, R], fn func(key K, l L, r R, ok bool) O, opts ...Option) Table[K, O] {
	return tableJoin(l, r, "leftjoin-tables", opts, func(lok, _ bool) bool { return lok },
		func(k K, lv L, _ bool, rv R, rok bool) O { return fn(k, lv, rv, rok) })
}

// OuterJoinTables is the full outer join of two tables: a result for
// every key of either side, fn told which sides have it. A key leaves the
// result when it is deleted from both.
func OuterJoinTables[K, L, R, O any](l Table[K, L], r Table[K, R], fn func(key K, l L, lok bool, r R, rok bool) O, opts ...Option) Table[K, O] {
	return tableJoin(l, r, "outerjoin-tables", opts, func(lok, rok bool) bool { return lok || rok }, fn)
}

// tableJoin builds a table–table join. On a change of one side it reads
// the other side's current value and emits the result if the key has one
// (present). If the change was a deletion leaving no result, it emits a
// deletion when the deleted value, with the other side as it is, made a
// result: the old value is not known, but a table source forwards a
// deletion only for a key that had a value (a FilterTable deletion may
// be spurious). An update leaving no result removed none (a side's value
// only adds results).
func tableJoin[K, L, R, O any](l Table[K, L], r Table[K, R], kind string, opts []Option,
	present func(lok, rok bool) bool, fn func(k K, l L, lok bool, r R, rok bool) O) Table[K, O] {
	t := l.t
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
	n := t.add(kind, applyOpts(opts).name, []*node{tag(l.n, false), tag(r.n, true)})
	stores := append(append([]*node(nil), l.stores...), r.stores...)
	n.reads = stores
	n.newOp = func(env *opEnv) operator {
		getL, getR := l.get(env.t), r.get(env.t)
		return operator{process: func(in rec) {
			side := in.value.(joinSide)
			k := in.key.(K)
			kb, err := l.key.Encode(k)
			if err != nil {
				env.t.fail(fmt.Errorf("stream: %s: key: %w", n.name, err))
				return
			}
			_, deleted := side.v.(tombstone)
			var (
				lv       L
				rv       R
				lok, rok bool
			)
			if side.right {
				if rok = !deleted; rok {
					rv = side.v.(R)
				}
				lv, lok, err = getL(k, kb)
			} else {
				if lok = !deleted; lok {
					lv = side.v.(L)
				}
				rv, rok, err = getR(k, kb)
			}
			if err != nil {
				env.t.fail(fmt.Errorf("stream: %s: table: %w", n.name, err))
				return
			}
			switch {
			case present(lok, rok):
				env.forward(rec{key: k, value: fn(k, lv, lok, rv, rok), ts: in.ts})
			case deleted && present(lok || !side.right, rok || side.right):
				// The result the deleted value made, if it had one.
				env.forward(rec{key: k, value: tombstone{}, ts: in.ts})
			}
		}}
	}
	get := func(tk *task) func(K, []byte) (O, bool, error) {
		getL, getR := l.get(tk), r.get(tk)
		return func(k K, kb []byte) (O, bool, error) {
			var o O
			lv, lok, err := getL(k, kb)
			if err != nil {
				return o, false, err
			}
			rv, rok, err := getR(k, kb)
			if err != nil || !present(lok, rok) {
				return o, false, err
			}
			return fn(k, lv, lok, rv, rok), true, nil
		}
	}
	return Table[K, O]{t: t, n: n, key: l.key, get: get, stores: stores, deletes: true}
}

package stream

import (
	"fmt"
	"slices"
)

// A plan is a topology cut into sub-topologies for one application: the
// parts connected without a repartition topic. A task runs one
// sub-topology on one partition number of its input topics.
//
//	source A ─ map ─ groupby ─▶ [<app>-groupby-2-repartition] ─▶ source ─ count-windows ─ sink
//	└──────── sub-topology 0 ───────┘                           └────── sub-topology 1 ──────┘
type plan struct {
	subs       []*subtopology
	inputs     map[string]*input // by topic: source topics and repartition topics
	changelogs map[string]*storeRef
	sinks      map[*node]string // resolved topic of every sink
	partitions map[string]int32 // of every topic the engine partitions itself
	compacted  map[string]int32 // upsert sinks (ToTable), with their writers' partition count
}

type subtopology struct {
	id         int
	nodes      []*node // in building order, which is topological
	index      map[*node]int
	sources    []*node
	partitions int32
	writes     []string // repartition topics this sub-topology writes
}

type input struct {
	sub       *subtopology
	node      *node
	producers int32 // repartition topic: the tasks writing it
}

type storeRef struct {
	sub  *subtopology
	node *node
	// source: the "changelog" is a table's source topic (TableSource), as
	// in Kafka Streams: nothing is written to it, and a restore reads it
	// only up to the group's committed offset.
	source bool
}

func makePlan(t *Topology, app string, partitions func(topic string) (int32, bool)) (*plan, error) {
	if err := t.Err(); err != nil {
		return nil, err
	}
	// Union-find over the graph's edges; repartition topics are not edges.
	parent := make([]int, len(t.nodes))
	for i := range parent {
		parent[i] = i
	}
	var find func(int) int
	find = func(i int) int {
		if parent[i] != i {
			parent[i] = find(parent[i])
		}
		return parent[i]
	}
	for _, n := range t.nodes {
		for _, p := range append(slices.Clip(n.parents), n.reads...) {
			a, b := find(n.id), find(p.id)
			parent[max(a, b)] = min(a, b)
		}
	}
	p := &plan{inputs: map[string]*input{}, changelogs: map[string]*storeRef{}, sinks: map[*node]string{}, partitions: map[string]int32{}, compacted: map[string]int32{}}
	byRoot := map[int]*subtopology{}
	for _, n := range t.nodes { // roots are the smallest ids: subs come out in topological order
		r := find(n.id)
		s := byRoot[r]
		if s == nil {
			s = &subtopology{index: map[*node]int{}}
			byRoot[r] = s
			p.subs = append(p.subs, s)
		}
		s.index[n] = len(s.nodes)
		s.nodes = append(s.nodes, n)
		if n.source != nil {
			s.sources = append(s.sources, n)
		}
	}
	resolve := func(name string, internal bool) string {
		if internal {
			return app + "-" + name
		}
		return name
	}
	writer := map[string]*subtopology{}
	p.subs = writersFirst(slices.DeleteFunc(p.subs, func(s *subtopology) bool { return len(s.sources) == 0 }))
	for i, s := range p.subs {
		s.id = i
		var first string
		for _, n := range s.sources {
			topic := resolve(n.source.topic, n.source.repartition)
			if _, dup := p.inputs[topic]; dup {
				return nil, fmt.Errorf("stream: topic %s is read by two sources", topic)
			}
			in := &input{sub: s, node: n}
			var count int32
			if n.source.repartition {
				w := writer[topic]
				in.producers, count = w.partitions, w.partitions
				p.partitions[topic] = count
			} else {
				c, ok := partitions(topic)
				if !ok {
					return nil, fmt.Errorf("stream: source topic %s does not exist", topic)
				}
				count = c
			}
			p.inputs[topic] = in
			if s.partitions == 0 {
				s.partitions, first = count, topic
			} else if count != s.partitions {
				return nil, fmt.Errorf("stream: topics %s (%d partitions) and %s (%d partitions) are consumed together by one task, so they must be co-partitioned: same partition count",
					first, s.partitions, topic, count)
			}
		}
		for _, n := range s.nodes {
			if n.sink != nil {
				topic := resolve(n.sink.topic, n.sink.repartition)
				p.sinks[n] = topic
				if n.sink.compact {
					p.compacted[topic] = s.partitions
				}
				if n.sink.repartition {
					writer[topic] = s
					s.writes = append(s.writes, topic)
				}
			}
			if n.store != "" && n.source != nil && n.source.table {
				p.changelogs[n.source.topic] = &storeRef{sub: s, node: n, source: true}
			} else if n.store != "" {
				cl := app + "-" + n.store + "-changelog"
				p.changelogs[cl] = &storeRef{sub: s, node: n}
				p.partitions[cl] = s.partitions
			}
		}
	}
	return p, nil
}

// writersFirst orders sub-topologies so that each comes after those
// writing the repartition topics it reads (a join may put an early source
// in the same sub-topology as a late repartition topic), keeping building
// order otherwise.
func writersFirst(subs []*subtopology) []*subtopology {
	writes := map[string]*subtopology{}
	for _, s := range subs {
		for _, n := range s.nodes {
			if n.sink != nil && n.sink.repartition {
				writes[n.sink.topic] = s
			}
		}
	}
	placed := map[*subtopology]bool{}
	out := make([]*subtopology, 0, len(subs))
	for len(out) < len(subs) {
		progress := false
		for _, s := range subs {
			ready := !placed[s]
			for _, n := range s.sources {
				if w := writes[n.source.topic]; ready && n.source.repartition && w != nil && w != s && !placed[w] {
					ready = false
				}
			}
			if ready {
				placed[s] = true
				out = append(out, s)
				progress = true
				break
			}
		}
		if !progress { // a cycle cannot be built; keep the rest as they are
			for _, s := range subs {
				if !placed[s] {
					out = append(out, s)
				}
			}
			return out
		}
	}
	return out
}

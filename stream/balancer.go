package stream

import (
	"cmp"
	"maps"
	"slices"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TaskBalancerProtocol is the group protocol name of the task-aware
// balancer (TaskBalancer).
const TaskBalancerProtocol = "weir-stream-tasks"

// TaskBalancer returns the group balancer App uses: cooperative and
// sticky like kgo's CooperativeStickyBalancer, but it assigns whole tasks
// rather than partitions. A task is one sub-topology on one partition
// number, so partition p of every topic a sub-topology reads (its sources
// and repartition topics, co-partitioned) goes to the same member: a join,
// or a Merge into an aggregation, never has its inputs split across
// instances. taskOf maps an input partition to its task (Engine.TaskFor);
// partitions it does not know are balanced one by one.
//
// Balance: every member ends with ⌊tasks/members⌋ or one more tasks; a
// task stays with the member that owned it (most of its partitions, at
// the group's latest generation) while that member is within its share
// (kept in partition order across sub-topologies, so each member keeps a
// share of each); the others go to the least loaded members, spreading
// each sub-topology.
// Cooperative (KIP-429): a task moving between two members is first
// revoked by its owner and assigned in the next round, so its state is
// committed before the new owner restores it.
//
// Members must all run the same topology (the group leader balances for
// everyone). App lists this balancer first and kgo's cooperative-sticky
// second, so instances of a release without it can share the group
// during a rolling upgrade (the group then uses cooperative-sticky, which
// may split tasks, as before).
func TaskBalancer(taskOf func(topic string, partition int32) (TaskID, bool)) kgo.GroupBalancer {
	return &taskBalancer{taskOf: taskOf}
}

type taskBalancer struct {
	taskOf func(string, int32) (TaskID, bool)
}

func (*taskBalancer) ProtocolName() string { return TaskBalancerProtocol }
func (*taskBalancer) IsCooperative() bool  { return true }

func (*taskBalancer) JoinGroupMetadata(interests []string, current map[string][]int32, generation int32) []byte {
	meta := kmsg.NewConsumerMemberMetadata()
	meta.Version = 3
	meta.Topics = interests
	meta.Generation = generation
	for _, topic := range slices.Sorted(maps.Keys(current)) {
		owned := kmsg.NewConsumerMemberMetadataOwnedPartition()
		owned.Topic = topic
		owned.Partitions = current[topic]
		meta.OwnedPartitions = append(meta.OwnedPartitions, owned)
	}
	return meta.AppendTo(nil)
}

func (*taskBalancer) ParseSyncAssignment(assignment []byte) (map[string][]int32, error) {
	return kgo.ParseConsumerSyncAssignment(assignment)
}

func (b *taskBalancer) MemberBalancer(members []kmsg.JoinGroupResponseMember) (kgo.GroupMemberBalancer, map[string]struct{}, error) {
	cb, err := kgo.NewConsumerBalancer(b, members)
	if err != nil {
		return nil, nil, err
	}
	return cb, cb.MemberTopics(), nil
}

// unit is what the balancer moves: a task, or a partition no task reads.
type unit struct {
	sub   int // -1: a lone partition
	part  int32
	topic string // lone partitions only
}

type topicPartition struct {
	topic string
	part  int32
}

type balMember struct {
	m      *kmsg.JoinGroupResponseMember
	topics map[string]bool
	owned  []unit
	count  int
	perSub map[int]int
}

func (b *taskBalancer) unitOf(topic string, p int32) unit {
	if id, ok := b.taskOf(topic, p); ok {
		return unit{sub: id.Subtopology, part: id.Partition}
	}
	return unit{sub: -1, part: p, topic: topic}
}

func compareUnits(a, b unit) int {
	return cmp.Or(cmp.Compare(a.sub, b.sub), cmp.Compare(a.part, b.part), cmp.Compare(a.topic, b.topic))
}

func (b *taskBalancer) Balance(cb *kgo.ConsumerBalancer, topics map[string]int32) kgo.IntoSyncAssignment {
	units := map[unit][]topicPartition{}
	for topic, n := range topics {
		for p := range n {
			u := b.unitOf(topic, p)
			units[u] = append(units[u], topicPartition{topic, p})
		}
	}
	order := slices.SortedFunc(maps.Keys(units), compareUnits)

	// Claims: only those at the latest generation claiming a partition
	// count (KIP-792), and a task belongs to whoever holds most of it.
	maxGen := map[topicPartition]int32{}
	cb.EachMember(func(_ *kmsg.JoinGroupResponseMember, meta *kmsg.ConsumerMemberMetadata) {
		for _, o := range meta.OwnedPartitions {
			for _, p := range o.Partitions {
				tp := topicPartition{o.Topic, p}
				if g, ok := maxGen[tp]; !ok || meta.Generation > g {
					maxGen[tp] = meta.Generation
				}
			}
		}
	})
	var members []*balMember
	held := map[unit]map[int]int{} // unit → member index → partitions held
	cb.EachMember(func(m *kmsg.JoinGroupResponseMember, meta *kmsg.ConsumerMemberMetadata) {
		bm := &balMember{m: m, topics: map[string]bool{}, perSub: map[int]int{}}
		for _, t := range meta.Topics {
			bm.topics[t] = true
		}
		i := len(members)
		members = append(members, bm)
		for _, o := range meta.OwnedPartitions {
			if _, ok := topics[o.Topic]; !ok {
				continue
			}
			for _, p := range o.Partitions {
				if p >= topics[o.Topic] || meta.Generation < maxGen[topicPartition{o.Topic, p}] {
					continue
				}
				u := b.unitOf(o.Topic, p)
				if held[u] == nil {
					held[u] = map[int]int{}
				}
				held[u][i]++
			}
		}
	})
	plan := cb.NewPlan()
	if len(members) == 0 {
		return plan
	}
	eligible := func(bm *balMember, u unit) bool {
		for _, tp := range units[u] {
			if !bm.topics[tp.topic] {
				return false
			}
		}
		return true
	}
	for _, u := range order {
		best, most := -1, 0
		for i, n := range held[u] {
			if n > most || n == most && i < best {
				best, most = i, n
			}
		}
		if best >= 0 && eligible(members[best], u) {
			members[best].owned = append(members[best].owned, u)
		}
	}

	// Owned tasks are kept partition by partition across sub-topologies, so
	// a member giving tasks up keeps a share of each sub-topology (its
	// sources and its repartition readers) rather than all of one.
	for _, bm := range members {
		slices.SortFunc(bm.owned, func(a, b unit) int {
			return cmp.Or(cmp.Compare(a.part, b.part), cmp.Compare(a.sub, b.sub), cmp.Compare(a.topic, b.topic))
		})
	}
	assigned := map[unit]*balMember{}
	give := func(bm *balMember, u unit) {
		assigned[u] = bm
		bm.count++
		bm.perSub[u.sub]++
	}
	quota, extra := len(order)/len(members), len(order)%len(members)
	for _, bm := range members { // sticky, within the share
		for _, u := range bm.owned {
			if bm.count < quota {
				give(bm, u)
			}
		}
	}
	for _, bm := range members { // sticky, one over the share while some remain
		for _, u := range bm.owned {
			if assigned[u] == nil && bm.count == quota && extra > 0 {
				give(bm, u)
				extra--
			}
		}
	}
	for _, u := range order { // the rest to the least loaded
		if assigned[u] != nil {
			continue
		}
		var to *balMember
		for _, bm := range members {
			if !eligible(bm, u) {
				continue
			}
			if to == nil || bm.count < to.count || bm.count == to.count && bm.perSub[u.sub] < to.perSub[u.sub] {
				to = bm
			}
		}
		if to != nil {
			give(to, u)
		}
	}
	for _, u := range order {
		if bm := assigned[u]; bm != nil {
			for _, tp := range units[u] {
				plan.AddPartition(bm.m, tp.topic, tp.part)
			}
		}
	}
	plan.AdjustCooperative(cb)
	return plan
}

package stream_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weirhq/weir/stream"
)

// taskOf: topics a and b are read by sub-topology 0, c by 1; x by none.
func taskOf(topic string, p int32) (stream.TaskID, bool) {
	switch topic {
	case "a", "b":
		return stream.TaskID{Subtopology: 0, Partition: p}, true
	case "c":
		return stream.TaskID{Subtopology: 1, Partition: p}, true
	}
	return stream.TaskID{}, false
}

type assignment = map[string]map[string][]int32 // member → topic → partitions

// balance runs one round of the balancer as the group leader would.
func balance(t *testing.T, gen int32, owned assignment, members []string, topics map[string]int32) assignment {
	t.Helper()
	b := stream.TaskBalancer(taskOf)
	var ms []kmsg.JoinGroupResponseMember
	for _, id := range members {
		m := kmsg.NewJoinGroupResponseMember()
		m.MemberID = id
		m.ProtocolMetadata = b.JoinGroupMetadata(slices.Sorted(maps.Keys(topics)), owned[id], gen)
		ms = append(ms, m)
	}
	mb, _, err := b.MemberBalancer(ms)
	if err != nil {
		t.Fatal(err)
	}
	into, err := mb.(kgo.GroupMemberBalancerOrError).BalanceOrError(topics)
	if err != nil {
		t.Fatal(err)
	}
	out := assignment{}
	for _, a := range into.IntoSyncAssignment() {
		got, err := b.ParseSyncAssignment(a.MemberAssignment)
		if err != nil {
			t.Fatal(err)
		}
		out[a.MemberID] = got
	}
	return out
}

// settle rebalances until the assignment stops changing (the cooperative
// rounds: revoke, then assign), checking no partition is ever held twice.
func settle(t *testing.T, owned assignment, members []string, topics map[string]int32) assignment {
	t.Helper()
	for gen := int32(1); gen < 10; gen++ {
		next := balance(t, gen, owned, members, topics)
		holders := map[string]string{}
		for m, a := range next {
			for topic, ps := range a {
				for _, p := range ps {
					tp := fmt.Sprintf("%s/%d", topic, p)
					if h, ok := holders[tp]; ok {
						t.Fatalf("%s assigned to %s and %s", tp, h, m)
					}
					holders[tp] = m
				}
			}
		}
		if fmt.Sprint(next) == fmt.Sprint(owned) {
			return next
		}
		owned = next
	}
	t.Fatal("no stable assignment after 10 rounds")
	return nil
}

// checkTasks: every partition assigned, each task whole on one member,
// tasks balanced within one.
func checkTasks(t *testing.T, a assignment, topics map[string]int32) {
	t.Helper()
	owner := map[string]string{}
	count := map[string]int{}
	seen := 0
	for m, ts := range a {
		for topic, ps := range ts {
			for _, p := range ps {
				seen++
				key := fmt.Sprintf("%s/%d", topic, p)
				if id, ok := taskOf(topic, p); ok {
					key = id.String()
				}
				if o, ok := owner[key]; ok && o != m {
					t.Fatalf("task %s split between %s and %s: %v", key, o, m, a)
				}
				if _, ok := owner[key]; !ok {
					count[m]++
				}
				owner[key] = m
			}
		}
	}
	total := 0
	for _, n := range topics {
		total += int(n)
	}
	if seen != total {
		t.Fatalf("%d partitions assigned, want %d: %v", seen, total, a)
	}
	lo, hi := 1<<30, 0
	for m := range a {
		lo, hi = min(lo, count[m]), max(hi, count[m])
	}
	if hi-lo > 1 {
		t.Fatalf("unbalanced: %v tasks per member", count)
	}
}

func TestTaskBalancer(t *testing.T) {
	topics := map[string]int32{"a": 4, "b": 4, "c": 4, "x": 2}
	one := settle(t, assignment{}, []string{"m1"}, topics)
	checkTasks(t, one, topics)

	two := settle(t, one, []string{"m1", "m2"}, topics)
	checkTasks(t, two, topics)
	// Both members hold a share of each sub-topology.
	for _, m := range []string{"m1", "m2"} {
		if len(two[m]["a"]) == 0 || len(two[m]["c"]) == 0 {
			t.Fatalf("sub-topologies not spread: %v", two)
		}
	}
	three := settle(t, two, []string{"m1", "m2", "m3"}, topics)
	checkTasks(t, three, topics)
	moved := 0
	for _, m := range []string{"m1", "m2"} {
		for topic, ps := range two[m] {
			for _, p := range ps {
				if !slices.Contains(three[m][topic], p) {
					moved++
				}
			}
		}
	}
	// 10 tasks (14 partitions): m3 takes 3 tasks; with sticky moves no
	// more than those 3 tasks' partitions leave m1 and m2.
	if moved > 6 {
		t.Fatalf("%d partitions moved when m3 joined: %v → %v", moved, two, three)
	}
	// A member leaves: its tasks go, whole, to the others.
	gone := settle(t, assignment{"m1": three["m1"], "m3": three["m3"]}, []string{"m1", "m3"}, topics)
	checkTasks(t, gone, topics)
	// A split task (from another balancer) is made whole.
	split := assignment{"m1": {"a": {0, 1, 2, 3}, "c": {0, 1}}, "m2": {"b": {0, 1, 2, 3}, "c": {2, 3}, "x": {0, 1}}}
	checkTasks(t, settle(t, split, []string{"m1", "m2"}, topics), topics)
}

// TestAppTaskAssignmentJoin: three instances run a join of two
// co-partitioned topics of 4 partitions (and, in another sub-topology, a
// copy of a third topic of 1 partition). Two join while the first runs.
// The group's assignment keeps each task's partitions (users/p and
// orders/p) on one member, although 9 partitions over 3 members make a
// partition balancer split at least two join tasks; every order is joined
// with its user exactly once.
func TestAppTaskAssignmentJoin(t *testing.T) {
	c := newCluster(t)
	c.create("users", 4)
	c.create("orders", 4)
	S := stream.String()
	topo := stream.NewTopology()
	users := stream.Source(topo, "users", S, S)   // user → name
	orders := stream.Source(topo, "orders", S, S) // user → item
	joined := stream.Join(users, orders, stream.Joined[string, string, string]{Key: S, Left: S, Right: S},
		func(_ string, name, item string) string { return name + " bought " + item }, stream.Named("orders-by-user"))
	stream.To(joined, "named-orders", S, S)
	// Another sub-topology, on one partition: the partition counts no
	// longer line up, so a partition balancer splits the join's tasks.
	c.create("audit", 1)
	stream.To(stream.Source(topo, "audit", S, S), "audit-out", S, S)

	cfg := stream.Config{Brokers: []string{c.b.Addr()}, ApplicationID: "join-app", CommitInterval: 50 * time.Millisecond}
	start := func() (stop func()) {
		app, err := stream.New(topo, cfg)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(c.ctx)
		errc := make(chan error, 1)
		go func() { errc <- app.Run(ctx) }()
		return func() {
			cancel()
			if err := <-errc; err != nil {
				t.Errorf("instance: %v", err)
			}
		}
	}
	now := time.Now()
	var want []string
	for i := range 40 {
		c.produce(&kgo.Record{Topic: "users", Key: fmt.Appendf(nil, "u%d", i), Value: fmt.Appendf(nil, "name%d", i), Timestamp: now})
	}
	stopA := start()
	defer stopA()
	for c.committed("join-app") < 40 {
		if c.ctx.Err() != nil {
			t.Fatal("the first instance did not commit")
		}
		time.Sleep(5 * time.Millisecond)
	}
	stopB := start()
	defer stopB()
	stopC := start()
	defer stopC()
	for !c.assignedTo("join-app", 3) || !c.tasksWhole(t, "join-app") {
		if c.ctx.Err() != nil {
			t.Fatal("no stable assignment with three members and whole tasks")
		}
		time.Sleep(5 * time.Millisecond)
	}
	for i := range 120 {
		u := i % 40
		c.produce(&kgo.Record{Topic: "orders", Key: fmt.Appendf(nil, "u%d", u), Value: fmt.Appendf(nil, "item%d", i), Timestamp: now})
		want = append(want, fmt.Sprintf("u%d: name%d bought item%d", u, u, i))
	}
	var got []string
	for len(got) < len(want) {
		if c.ctx.Err() != nil {
			t.Fatalf("%d of %d joined records", len(got), len(want))
		}
		time.Sleep(20 * time.Millisecond)
		got = got[:0]
		for _, r := range c.readAll("named-orders") {
			got = append(got, fmt.Sprintf("%s: %s", r.Key, r.Value))
		}
	}
	if !c.tasksWhole(t, "join-app") {
		t.Fatal("a task split across members")
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("joined %d records, want %d:\n%v", len(got), len(want), got)
	}
}

// assignedTo: the group is stable with n members, each assigned
// partitions.
func (c *cluster) assignedTo(group string, n int) bool {
	gs, err := c.adm.DescribeGroups(c.ctx, group)
	if err != nil {
		return false
	}
	g := gs[group]
	if g.State != "Stable" || len(g.Members) != n {
		return false
	}
	for _, m := range g.Members {
		a, ok := m.Assigned.AsConsumer()
		if !ok || len(a.Topics) == 0 {
			return false
		}
	}
	return true
}

// tasksWhole: every member of the group holds, for each partition number,
// users and orders together or neither.
func (c *cluster) tasksWhole(t *testing.T, group string) bool {
	gs, err := c.adm.DescribeGroups(c.ctx, group)
	if err != nil {
		return false
	}
	for _, m := range gs[group].Members {
		a, ok := m.Assigned.AsConsumer()
		if !ok {
			return false
		}
		held := map[string][]int32{}
		for _, tp := range a.Topics {
			held[tp.Topic] = slices.Sorted(slices.Values(tp.Partitions))
		}
		if !slices.Equal(held["users"], held["orders"]) {
			t.Logf("member %s holds users %v, orders %v", m.MemberID, held["users"], held["orders"])
			return false
		}
	}
	return true
}

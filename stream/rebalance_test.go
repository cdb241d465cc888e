package stream_test

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/weirhq/weir/stream"
)

// recordsIn sums the operator input counter of a registry.
func recordsIn(t *testing.T, reg *prometheus.Registry) float64 {
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var n float64
	for _, mf := range mfs {
		if mf.GetName() == "weir_stream_operator_records_total" {
			for _, m := range mf.GetMetric() {
				n += m.GetCounter().GetValue()
			}
		}
	}
	return n
}

func (c *cluster) committed(group string) int64 {
	c.t.Helper()
	offs, err := c.adm.FetchOffsets(c.ctx, group)
	if err != nil {
		c.t.Fatal(err)
	}
	var n int64
	offs.Each(func(o kadm.OffsetResponse) { n += max(o.At, 0) })
	return n
}

// TestAppScalesOutWithState: a second instance joins a running one; the
// cooperative rebalance moves tasks, which the first commits before
// giving up and the second restores from their changelogs. After both
// stop, a bounded instance closes the open windows. Every window's final
// count is exact and none is emitted more than twice.
func TestAppScalesOutWithState(t *testing.T) {
	c := newCluster(t)
	c.create("clicks", 4)
	all := events("clicks", 0, 800, recent)
	c.produce(all[:300]...)
	cfg := stream.Config{Brokers: []string{c.b.Addr()}, ApplicationID: "clicks-app", CommitInterval: 50 * time.Millisecond}
	start := func(reg *prometheus.Registry) (stop func()) {
		cfg := cfg
		cfg.Registerer = reg
		app, err := stream.New(clickCounts(), cfg)
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
	stopA := start(prometheus.NewRegistry())
	for c.committed("clicks-app") < 300 && c.ctx.Err() == nil {
	}
	regB := prometheus.NewRegistry()
	stopB := start(regB)
	for !c.bothAssigned("clicks-app") {
		if c.ctx.Err() != nil {
			t.Fatal("the second instance never got a task")
		}
	}
	c.produce(all[300:]...)
	for c.committed("clicks-app") < 800 && c.ctx.Err() == nil {
	}
	stopA()
	stopB()
	if recordsIn(t, regB) == 0 {
		t.Fatal("the second instance processed nothing")
	}

	cfg.Bounded = true
	app, err := stream.New(clickCounts(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := app.Run(c.ctx); err != nil {
		t.Fatal(err)
	}
	got := decodeCounts(t, c.readAll("counts"))
	want := expectedCounts(all)
	if len(got) != len(want) {
		t.Fatalf("%d windows, want %d", len(got), len(want))
	}
	for k, n := range want {
		g := got[k]
		if len(g) == 0 || g[len(g)-1] != n || len(g) > 2 {
			t.Fatalf("window %s: emitted %v, want a final %d, at most twice", k, g, n)
		}
	}
}

// bothAssigned: the group is stable with two members, each assigned
// partitions.
func (c *cluster) bothAssigned(group string) bool {
	gs, err := c.adm.DescribeGroups(c.ctx, group)
	if err != nil {
		return false
	}
	g := gs[group]
	if g.State != "Stable" || len(g.Members) != 2 {
		return false
	}
	for _, m := range g.Members {
		a, ok := m.Assigned.AsConsumer()
		if !ok || len(a.Topics) == 0 || len(a.Topics[0].Partitions) == 0 {
			return false
		}
	}
	return true
}

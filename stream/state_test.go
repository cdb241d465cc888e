package stream_test

import (
	"context"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/weirhq/weir/stream"
)

// sum adds up every series of a metric.
func sum(t *testing.T, reg *prometheus.Registry, name string) (float64, bool) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		var n float64
		for _, m := range mf.GetMetric() {
			switch {
			case m.Counter != nil:
				n += m.GetCounter().GetValue()
			case m.Gauge != nil:
				n += m.GetGauge().GetValue()
			case m.Histogram != nil:
				n += float64(m.GetHistogram().GetSampleCount())
			}
		}
		return n, true
	}
	return 0, false
}

// TestAppPebbleCheckpointRestore: three instances one after the other
// count windows with pebble stores. The second reuses the first's state
// directory: its stores hold the checkpoint of the first's last commit,
// so it restores nothing from the changelog. The third starts with an
// empty directory and restores the whole changelog. The final counts are
// exact either way.
func TestAppPebbleCheckpointRestore(t *testing.T) {
	c := newCluster(t)
	c.create("clicks", 3)
	all := events("clicks", 0, 600, recent)
	dir := t.TempDir()
	var stateBytes float64
	run := func(recs int64, stateDir string, bounded bool) *prometheus.Registry {
		t.Helper()
		reg := prometheus.NewRegistry()
		cfg := stream.Config{Brokers: []string{c.b.Addr()}, ApplicationID: "clicks-app", CommitInterval: 50 * time.Millisecond,
			NewStore: stream.PebbleStore(stateDir), Registerer: reg, Bounded: bounded}
		app, err := stream.New(clickCounts(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		if bounded {
			if err := app.Run(c.ctx); err != nil {
				t.Fatal(err)
			}
			return reg
		}
		ctx, stop := context.WithCancel(c.ctx)
		errc := make(chan error, 1)
		go func() { errc <- app.Run(ctx) }()
		for c.committed("clicks-app") < recs {
			if c.ctx.Err() != nil {
				t.Fatal("the instance did not commit its input")
			}
			time.Sleep(5 * time.Millisecond)
		}
		stateBytes, _ = sum(t, reg, "weir_stream_state_bytes")
		stop()
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
		return reg
	}

	c.produce(all[:200]...)
	reg := run(200, dir, false)
	if stateBytes == 0 {
		t.Error("no state size reported")
	}
	if n, _ := sum(t, reg, "weir_stream_restore_records_total"); n != 0 {
		t.Fatalf("first run restored %v records from an empty changelog", n)
	}
	c.produce(all[200:400]...)
	reg = run(400, dir, false)
	if n, ok := sum(t, reg, "weir_stream_restore_records_total"); !ok || n != 0 {
		t.Fatalf("restarted on its own state: restored %v records (metric present %v), want 0", n, ok)
	}
	c.produce(all[400:]...)
	reg = run(600, t.TempDir(), true)
	if n, _ := sum(t, reg, "weir_stream_restore_records_total"); n == 0 {
		t.Fatal("a new state directory restored nothing")
	}
	if n, _ := sum(t, reg, "weir_stream_restore_remaining_records"); n != 0 {
		t.Fatalf("%v records still to restore", n)
	}

	got := decodeCounts(t, c.readAll("counts"))
	want := expectedCounts(all)
	if len(got) != len(want) {
		t.Fatalf("%d windows, want %d: %v", len(got), len(want), slices.Sorted(maps.Keys(got)))
	}
	for k, n := range want {
		g := got[k]
		if len(g) == 0 || g[len(g)-1] != n || len(g) > 3 {
			t.Fatalf("window %s: emitted %v, want a final %d", k, g, n)
		}
	}
}

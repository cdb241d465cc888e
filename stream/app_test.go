package stream_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weirhq/weir/embedded"
	"github.com/weirhq/weir/stream"
)

// cluster is an embedded Weir broker with a client for the test's own
// producing and reading.
type cluster struct {
	t   *testing.T
	ctx context.Context
	b   *embedded.Broker
	cl  *kgo.Client
	adm *kadm.Client
}

func newCluster(t *testing.T) *cluster {
	t.Helper()
	b, err := embedded.Start(embedded.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close(); cancel(); b.Close() })
	return &cluster{t: t, ctx: ctx, b: b, cl: cl, adm: kadm.NewClient(cl)}
}

func (c *cluster) create(topic string, partitions int32) {
	c.t.Helper()
	if _, err := c.adm.CreateTopic(c.ctx, partitions, 1, nil, topic); err != nil {
		c.t.Fatal(err)
	}
}

func (c *cluster) produce(recs ...*kgo.Record) {
	c.t.Helper()
	if err := c.cl.ProduceSync(c.ctx, recs...).FirstErr(); err != nil {
		c.t.Fatal(err)
	}
}

// readAll reads a topic up to its current end offsets.
func (c *cluster) readAll(topic string) []*kgo.Record {
	c.t.Helper()
	ends, err := c.adm.ListEndOffsets(c.ctx, topic)
	if err != nil {
		c.t.Fatal(err)
	}
	want := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			want[o.Partition] = o.Offset
		}
	})
	rd, err := kgo.NewClient(kgo.SeedBrokers(c.b.Addr()), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		c.t.Fatal(err)
	}
	defer rd.Close()
	var out []*kgo.Record
	for len(want) > 0 {
		fs := rd.PollFetches(c.ctx)
		if err := fs.Err0(); err != nil {
			c.t.Fatalf("read %s: %v", topic, err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			out = append(out, r)
			if r.Offset+1 >= want[r.Partition] {
				delete(want, r.Partition)
			}
		})
	}
	return out
}

// events makes n click records over keys k0..k22, 100 ms apart with up to
// 900 ms of disorder, starting at base.
// recent is a base event time near now: the broker's time retention
// (7 days) applies to record timestamps, so 2024 records would vanish.
var recent = time.Now().Truncate(time.Hour)

func events(topic string, from, n int, base time.Time) []*kgo.Record {
	var recs []*kgo.Record
	for i := from; i < from+n; i++ {
		ts := base.Add(time.Duration(i)*100*time.Millisecond - time.Duration(i*7919%10)*90*time.Millisecond)
		recs = append(recs, &kgo.Record{Topic: topic, Key: fmt.Appendf(nil, "k%d", i%23), Value: []byte("click"), Timestamp: ts})
	}
	return recs
}

// expectedCounts counts recs per key and 10-second window, keyed as the
// app writes them.
func expectedCounts(recs []*kgo.Record) map[string]int64 {
	want := map[string]int64{}
	for _, r := range recs {
		start := r.Timestamp.UnixMilli() / 10000 * 10000
		want[fmt.Sprintf("%s@%d", r.Key, start)]++
	}
	return want
}

// clickCounts is the app under test: clicks per user and 10-second window.
func clickCounts() *stream.Topology {
	topo := stream.NewTopology()
	clicks := stream.Source(topo, "clicks", stream.String(), stream.String(), stream.OutOfOrderness(time.Second))
	counts := stream.CountWindows(stream.WindowBy(stream.GroupByKey(clicks, stream.String(), stream.String()),
		stream.Tumbling(10*time.Second)), stream.Named("clicks-per-window"))
	named := stream.Map(counts, func(k stream.Windowed[string], n int64) (string, int64) {
		return fmt.Sprintf("%s@%d", k.Key, k.Start.UnixMilli()), n
	})
	stream.To(named, "counts", stream.String(), stream.Int64())
	return topo
}

func decodeCounts(t *testing.T, recs []*kgo.Record) map[string][]int64 {
	got := map[string][]int64{}
	for _, r := range recs {
		n, err := stream.Int64().Decode(r.Value)
		if err != nil {
			t.Fatal(err)
		}
		got[string(r.Key)] = append(got[string(r.Key)], n)
	}
	return got
}

func TestAppBoundedWindowedCount(t *testing.T) {
	c := newCluster(t)
	c.create("clicks", 3)
	recs := events("clicks", 0, 600, recent)
	c.produce(recs...)
	reg := prometheus.NewRegistry()
	app, err := stream.New(clickCounts(), stream.Config{Brokers: []string{c.b.Addr()}, ApplicationID: "clicks-app", Bounded: true, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	if err := app.Run(c.ctx); err != nil {
		t.Fatal(err)
	}
	got := decodeCounts(t, c.readAll("counts"))
	want := expectedCounts(recs)
	if len(got) != len(want) {
		t.Fatalf("%d windows, want %d", len(got), len(want))
	}
	for k, n := range want {
		if !slices.Equal(got[k], []int64{n}) {
			t.Fatalf("window %s: got %v, want [%d]", k, got[k], n)
		}
	}
	// The group committed every input offset.
	offs, err := c.adm.FetchOffsets(c.ctx, "clicks-app")
	if err != nil {
		t.Fatal(err)
	}
	var committed int64
	offs.Each(func(o kadm.OffsetResponse) { committed += o.At })
	if committed != 600 {
		t.Fatalf("committed %d offsets, want 600", committed)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, mf := range mfs {
		names = append(names, mf.GetName())
	}
	for _, n := range []string{"weir_stream_operator_records_total", "weir_stream_commit_seconds", "weir_stream_sink_records_total",
		"weir_stream_process_batch_seconds", "weir_stream_e2e_event_time_seconds", "weir_stream_e2e_append_time_seconds",
		"weir_stream_restore_records_total"} {
		if !slices.Contains(names, n) {
			t.Errorf("metric %s missing from %v", n, names)
		}
	}
	if n, _ := sum(t, reg, "weir_stream_sink_records_total"); int(n) != len(c.readAll("counts")) {
		t.Errorf("sink records %v, want %d", n, len(c.readAll("counts")))
	}
	// Sampled: at most one record per task and polled batch, at least one.
	if n, _ := sum(t, reg, "weir_stream_e2e_event_time_seconds"); n < 1 || n > 600 {
		t.Errorf("%v end-to-end latency samples", n)
	}
}

// TestAppRestartRestoresState: a first instance counts the first half of
// the input and is stopped with windows open; a second one restores them
// from the changelog and finishes. Every window's final count is exact (no
// loss; records from before the stop counted once, through the restored
// state) and no window is emitted more than twice.
func TestAppRestartRestoresState(t *testing.T) {
	c := newCluster(t)
	c.create("clicks", 3)
	first, second := events("clicks", 0, 300, recent), events("clicks", 300, 300, recent)
	c.produce(first...)
	cfg := stream.Config{Brokers: []string{c.b.Addr()}, ApplicationID: "clicks-app", CommitInterval: 50 * time.Millisecond}
	app, err := stream.New(clickCounts(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(c.ctx)
	errc := make(chan error, 1)
	go func() { errc <- app.Run(ctx) }()
	for committed := int64(0); committed < 300; {
		offs, err := c.adm.FetchOffsets(c.ctx, "clicks-app")
		if err != nil {
			t.Fatal(err)
		}
		committed = 0
		offs.Each(func(o kadm.OffsetResponse) { committed += max(o.At, 0) })
		if c.ctx.Err() != nil {
			t.Fatal("first instance did not commit its input")
		}
	}
	stop()
	if err := <-errc; err != nil {
		t.Fatalf("first instance: %v", err)
	}
	if n := len(c.readAll("clicks-app-clicks-per-window-changelog")); n == 0 {
		t.Fatal("no changelog written")
	}

	c.produce(second...)
	cfg.Bounded = true
	app2, err := stream.New(clickCounts(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := app2.Run(c.ctx); err != nil {
		t.Fatalf("second instance: %v", err)
	}
	got := decodeCounts(t, c.readAll("counts"))
	want := expectedCounts(append(first, second...))
	if len(got) != len(want) {
		t.Fatalf("%d windows, want %d: %v", len(got), len(want), slices.Sorted(maps.Keys(got)))
	}
	for k, n := range want {
		g := got[k]
		if len(g) == 0 || g[len(g)-1] != n || len(g) > 2 {
			t.Fatalf("window %s: emitted %v, want a final %d, at most twice", k, g, n)
		}
	}
}

// TestAppRepartitionThroughTopic: a KeyBy goes through a repartition
// topic, which keeps its records without a time limit (retention.ms -1):
// they carry their event time, and time retention would otherwise delete
// those of old event times before they are read (lost silently: a
// NEXMark run over 2025 events lost repartition records 5 s in, at the
// broker's first retention check).
func TestAppRepartitionThroughTopic(t *testing.T) {
	c := newCluster(t)
	c.create("views", 3)
	pages := []string{"/home", "/cart", "/pay"}
	want := map[string]int64{}
	var recs []*kgo.Record
	for i := range 300 {
		page := pages[(i/2)%3]
		want[page]++
		recs = append(recs, &kgo.Record{Topic: "views", Key: fmt.Appendf(nil, "user%d", i%11), Value: []byte(page),
			Timestamp: recent.Add(time.Duration(i) * 10 * time.Millisecond)})
	}
	c.produce(recs...)

	topo := stream.NewTopology()
	views := stream.Source(topo, "views", stream.String(), stream.String())
	byPage := stream.KeyBy(views, func(_, page string) string { return page })
	g := stream.GroupByKey(byPage, stream.String(), stream.String(), stream.Named("by-page"))
	counts := stream.CountWindows(stream.WindowBy(g, stream.Tumbling(time.Hour)))
	stream.To(stream.Map(counts, func(k stream.Windowed[string], n int64) (string, int64) { return k.Key, n }),
		"page-counts", stream.String(), stream.Int64())
	app, err := stream.New(topo, stream.Config{Brokers: []string{c.b.Addr()}, ApplicationID: "pages", Bounded: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := app.Run(c.ctx); err != nil {
		t.Fatal(err)
	}
	got := decodeCounts(t, c.readAll("page-counts"))
	for _, p := range pages {
		if !slices.Equal(got[p], []int64{want[p]}) {
			t.Fatalf("page %s: got %v, want [%d]", p, got[p], want[p])
		}
	}
	data := 0
	for _, r := range c.readAll("pages-by-page-repartition") {
		if r.Value != nil {
			data++
		}
	}
	if data != 300 {
		t.Fatalf("%d records through the repartition topic, want 300", data)
	}
	rcs, err := c.adm.DescribeTopicConfigs(c.ctx, "pages-by-page-repartition")
	if err != nil {
		t.Fatal(err)
	}
	rc, err := rcs.On("pages-by-page-repartition", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, cfg := range rc.Configs {
		if cfg.Key == "retention.ms" && (cfg.Value == nil || *cfg.Value != "-1") {
			t.Fatalf("repartition topic retention.ms %v, want -1", cfg.MaybeValue())
		}
	}
}

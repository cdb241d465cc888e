package server

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weirhq/weir/internal/config"
	"github.com/weirhq/weir/internal/metrics"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// startServer starts a durable node on loopback with free ports.
func startServer(t *testing.T, dir string, reg *metrics.Registry) *Server {
	t.Helper()
	cfg := config.Defaults()
	cfg.DataDir = dir
	cfg.KafkaAddr = "127.0.0.1:0"
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.RegistryAddr = "127.0.0.1:0"
	cfg.GroupInitialRebalanceDelay = 0
	cfg.Durability = config.DurabilityAlways
	s, err := Start(cfg, Options{Logger: quiet, Metrics: reg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func client(t *testing.T, s *Server, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(s.KafkaAddr())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// scrape reads /metrics as Prometheus does.
type scrape map[string]*dto.MetricFamily

func scrapeMetrics(t *testing.T, s *Server) scrape {
	t.Helper()
	code, body := get(t, "http://"+s.HTTPAddr()+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: status %d\n%s", code, body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return fams
}

// find returns the series of name whose labels include want ("k=v" pairs).
func (sc scrape) find(name string, want ...string) (*dto.Metric, bool) {
	f := sc[name]
	if f == nil {
		return nil, false
	}
next:
	for _, m := range f.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		for _, kv := range want {
			k, v, _ := strings.Cut(kv, "=")
			if have[k] != v {
				continue next
			}
		}
		return m, true
	}
	return nil, false
}

// value returns a counter or gauge value, failing if the series is absent.
func (sc scrape) value(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	m, ok := sc.find(name, labels...)
	if !ok {
		t.Fatalf("no series %s%v", name, labels)
	}
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	}
	t.Fatalf("%s%v is neither a counter nor a gauge", name, labels)
	return 0
}

// sum adds a counter or gauge over every series matching labels.
func (sc scrape) sum(name string, labels ...string) float64 {
	total := 0.0
	f := sc[name]
	if f == nil {
		return 0
	}
	for _, m := range f.GetMetric() {
		one := scrape{name: &dto.MetricFamily{Metric: []*dto.Metric{m}}}
		if _, ok := one.find(name, labels...); !ok {
			continue
		}
		total += m.GetCounter().GetValue() + m.GetGauge().GetValue()
	}
	return total
}

func (sc scrape) histogram(t *testing.T, name string, labels ...string) *dto.Histogram {
	t.Helper()
	m, ok := sc.find(name, labels...)
	if !ok || m.Histogram == nil {
		t.Fatalf("no histogram %s%v", name, labels)
	}
	return m.Histogram
}

// TestMetricsKnownWorkload produces and consumes a known number of records
// and checks that the counters and gauges moved by exactly that much.
func TestMetricsKnownWorkload(t *testing.T) {
	s := startServer(t, t.TempDir(), metrics.New())
	ctx := context.Background()
	cl := client(t, s, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerBatchCompression(kgo.NoCompression()))
	adm := kadm.NewClient(cl)
	if _, err := adm.CreateTopic(ctx, 2, 1, nil, "m"); err != nil {
		t.Fatal(err)
	}
	const n = 100
	recs := make([]*kgo.Record, n)
	for i := range recs {
		recs[i] = &kgo.Record{Topic: "m", Partition: int32(i % 2), Value: []byte(fmt.Sprintf("%0100d", i))}
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	// One request that fails with a known code: Metadata for an unknown
	// topic without auto-creation.
	meta := kmsg.NewPtrMetadataRequest()
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr("no-such-topic")
	meta.Topics = append(meta.Topics, mt)
	meta.AllowAutoTopicCreation = false
	if _, err := meta.RequestWith(ctx, cl); err != nil {
		t.Fatal(err)
	}

	cons := client(t, s, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{
		"m": {0: kgo.NewOffset().AtStart(), 1: kgo.NewOffset().AtStart()},
	}))
	got := 0
	cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	for got < n {
		fs := cons.PollFetches(cctx)
		if err := cctx.Err(); err != nil {
			t.Fatalf("consumed %d of %d records: %v", got, n, err)
		}
		got += fs.NumRecords()
	}
	cons.Close() // no fetch in flight while we scrape

	sc := scrapeMetrics(t, s)
	if v := sc.value(t, "weir_topic_records_in_total", "topic=m"); v != n {
		t.Errorf("weir_topic_records_in_total = %v, want %d", v, n)
	}
	if v := sc.value(t, "weir_topic_records_out_total", "topic=m"); v != n {
		t.Errorf("weir_topic_records_out_total = %v, want %d", v, n)
	}
	bytesIn := sc.value(t, "weir_topic_bytes_in_total", "topic=m")
	if size := sc.sum("weir_partition_size_bytes", "topic=m"); bytesIn != size || bytesIn < n*100 {
		t.Errorf("weir_topic_bytes_in_total = %v, partition sizes %v: want equal and >= %d", bytesIn, size, n*100)
	}
	if v := sc.value(t, "weir_topic_bytes_out_total", "topic=m"); v != bytesIn {
		t.Errorf("weir_topic_bytes_out_total = %v, want bytes in %v", v, bytesIn)
	}
	for p := range 2 {
		part := fmt.Sprintf("partition=%d", p)
		if v := sc.value(t, "weir_partition_log_end_offset", "topic=m", part); v != n/2 {
			t.Errorf("weir_partition_log_end_offset{%s} = %v, want %d", part, v, n/2)
		}
		if v := sc.value(t, "kafka_topic_partition_current_offset", "topic=m", part); v != n/2 {
			t.Errorf("kafka_topic_partition_current_offset{%s} = %v, want %d", part, v, n/2)
		}
		if v := sc.value(t, "weir_partition_log_start_offset", "topic=m", part); v != 0 {
			t.Errorf("weir_partition_log_start_offset{%s} = %v, want 0", part, v)
		}
	}
	if v := sc.value(t, "weir_topic_partitions", "topic=m"); v != 2 {
		t.Errorf("weir_topic_partitions = %v, want 2", v)
	}
	if v := sc.value(t, "weir_kafka_request_errors_total", "api=Metadata", "error=UNKNOWN_TOPIC_OR_PARTITION"); v != 1 {
		t.Errorf("Metadata UNKNOWN_TOPIC_OR_PARTITION errors = %v, want 1", v)
	}
	if _, ok := sc.find("weir_kafka_request_errors_total", "api=Produce"); ok {
		t.Errorf("Produce errors reported for a clean produce")
	}
	produces := sc.value(t, "weir_kafka_requests_total", "api=Produce")
	if h := sc.histogram(t, "weir_kafka_request_duration_seconds", "api=Produce"); produces < 1 || float64(h.GetSampleCount()) != produces {
		t.Errorf("Produce requests %v, latency samples %d: want equal and >= 1", produces, h.GetSampleCount())
	}
	// acks=all: every record became durable in exactly one group commit.
	if h := sc.histogram(t, "weir_log_group_commit_records"); h.GetSampleSum() != n {
		t.Errorf("group-commit records sum = %v, want %d", h.GetSampleSum(), n)
	}
	if h := sc.histogram(t, "weir_log_fsync_duration_seconds"); h.GetSampleCount() < 1 {
		t.Errorf("no fsync timed")
	}
	if v := sc.value(t, "weir_kafka_connections"); v < 1 {
		t.Errorf("weir_kafka_connections = %v with a client connected", v)
	}
	if v := sc.value(t, "kafka_brokers"); v != 1 {
		t.Errorf("kafka_brokers = %v", v)
	}
	if _, ok := sc.find("go_goroutines"); !ok {
		t.Errorf("Go runtime metrics missing")
	}

	cl.Close()
	waitFor(t, "connections to drop to 0", func() bool {
		return scrapeMetrics(t, s).value(t, "weir_kafka_connections") == 0
	})
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestGroupLagWhenConsumerStops: a group consumes everything, commits and
// stops; then records arrive. Lag must show them, in records and as the
// age of the oldest.
func TestGroupLagWhenConsumerStops(t *testing.T) {
	s := startServer(t, t.TempDir(), metrics.New())
	ctx := context.Background()
	prod := client(t, s)
	if _, err := kadm.NewClient(prod).CreateTopic(ctx, 1, 1, nil, "lag"); err != nil {
		t.Fatal(err)
	}
	produce := func(n int, ts time.Time) {
		t.Helper()
		for i := range n {
			r := &kgo.Record{Topic: "lag", Value: []byte(fmt.Sprint(i)), Timestamp: ts}
			if err := prod.ProduceSync(ctx, r).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	produce(5, time.Now())

	cons := client(t, s, kgo.ConsumerGroup("g"), kgo.ConsumeTopics("lag"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit())
	cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	for got := 0; got < 5; {
		fs := cons.PollFetches(cctx)
		if cctx.Err() != nil {
			t.Fatalf("consumed %d of 5", got)
		}
		got += fs.NumRecords()
	}
	if err := cons.CommitUncommittedOffsets(cctx); err != nil {
		t.Fatal(err)
	}
	sc := scrapeMetrics(t, s)
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"weir_group_members", []string{"group=g"}, 1},
		{"kafka_consumergroup_members", []string{"consumergroup=g"}, 1},
		{"weir_group_state", []string{"group=g", "state=Stable"}, 1},
		{"weir_group_state", []string{"group=g", "state=Empty"}, 0},
		{"weir_group_committed_offset", []string{"group=g", "topic=lag", "partition=0"}, 5},
		{"weir_group_lag_records", []string{"group=g", "topic=lag", "partition=0"}, 0},
		{"weir_group_lag_seconds", []string{"group=g", "topic=lag", "partition=0"}, 0},
		{"kafka_consumergroup_lag", []string{"consumergroup=g", "topic=lag", "partition=0"}, 0},
	} {
		if v := sc.value(t, c.name, c.labels...); v != c.want {
			t.Errorf("while consuming: %s%v = %v, want %v", c.name, c.labels, v, c.want)
		}
	}

	cons.Close() // leaves the group: it stops consuming
	old := time.Now().Add(-time.Minute)
	produce(3, old)
	produce(2, time.Now())

	sc = scrapeMetrics(t, s)
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"weir_group_members", []string{"group=g"}, 0},
		{"weir_group_state", []string{"group=g", "state=Empty"}, 1},
		{"weir_group_state", []string{"group=g", "state=Stable"}, 0},
		{"weir_group_lag_records", []string{"group=g", "topic=lag", "partition=0"}, 5},
		{"kafka_consumergroup_lag", []string{"consumergroup=g", "topic=lag", "partition=0"}, 5},
		{"kafka_consumergroup_lag_sum", []string{"consumergroup=g", "topic=lag"}, 5},
		{"kafka_consumergroup_current_offset", []string{"consumergroup=g", "topic=lag", "partition=0"}, 5},
		{"kafka_consumergroup_current_offset_sum", []string{"consumergroup=g", "topic=lag"}, 5},
	} {
		if v := sc.value(t, c.name, c.labels...); v != c.want {
			t.Errorf("after stopping: %s%v = %v, want %v", c.name, c.labels, v, c.want)
		}
	}
	// The oldest unconsumed record is a minute old (millisecond
	// timestamps; allow for a slow machine).
	secs := sc.value(t, "weir_group_lag_seconds", "group=g", "topic=lag", "partition=0")
	if want := time.Since(old).Seconds(); secs < 59 || secs > want+1 {
		t.Errorf("weir_group_lag_seconds = %v, want about %.1f", secs, want)
	}
}

// TestHealthReflectsStoppedListener: /readyz fails once the Kafka listener
// stops, /healthz keeps answering, and Wait reports the failure.
func TestHealthReflectsStoppedListener(t *testing.T) {
	s := startServer(t, t.TempDir(), nil)
	base := "http://" + s.HTTPAddr()
	if code, body := get(t, base+"/healthz"); code != 200 || body != "ok\n" {
		t.Fatalf("/healthz: %d %q", code, body)
	}
	if code, body := get(t, base+"/readyz"); code != 200 || !strings.Contains(body, "[+]kafka-listener ok") || !strings.Contains(body, "[+]storage ok") {
		t.Fatalf("/readyz before: %d %q", code, body)
	}

	_ = s.kln.Close() // the Kafka listener dies under the server
	waitFor(t, "/readyz to fail", func() bool {
		code, _ := get(t, base+"/readyz")
		return code == http.StatusServiceUnavailable
	})
	_, body := get(t, base+"/readyz")
	if !strings.Contains(body, "[-]kafka-listener failed") || !strings.Contains(body, "[+]storage ok") {
		t.Errorf("/readyz after: %q", body)
	}
	if code, _ := get(t, base+"/healthz"); code != 200 {
		t.Errorf("/healthz after the listener stopped: %d, want 200 (the process is up)", code)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Wait(ctx); err == nil || ctx.Err() != nil {
		t.Fatalf("Wait = %v (ctx %v), want the listener failure", err, ctx.Err())
	}
	if _, err := http.Get(base + "/healthz"); err == nil {
		t.Errorf("HTTP still served after Close")
	}
}

// TestReadyzWhileClosing: a node shutting down is not ready.
func TestReadyzWhileClosing(t *testing.T) {
	s := startServer(t, t.TempDir(), nil)
	s.closing.Store(true)
	defer s.closing.Store(false)
	rec := &responseRecorder{header: http.Header{}}
	s.serveReadyz(rec, &http.Request{URL: &url.URL{Path: "/readyz"}})
	if rec.code != http.StatusServiceUnavailable || !strings.Contains(rec.body.String(), "[-]storage failed: shutting down") {
		t.Fatalf("readyz while closing: %d %q", rec.code, rec.body.String())
	}
}

type responseRecorder struct {
	header http.Header
	code   int
	body   strings.Builder
}

func (r *responseRecorder) Header() http.Header  { return r.header }
func (r *responseRecorder) WriteHeader(code int) { r.code = code }
func (r *responseRecorder) Write(b []byte) (int, error) {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	return r.body.Write(b)
}

// TestRestartSameRegistry: a node restarted in-process on the same registry
// keeps its counters and reports the new broker's partitions.
func TestRestartSameRegistry(t *testing.T) {
	reg := metrics.New()
	dir := t.TempDir()
	s := startServer(t, dir, reg)
	cl := client(t, s, kgo.AllowAutoTopicCreation())
	if err := cl.ProduceSync(context.Background(), &kgo.Record{Topic: "r", Value: []byte("x")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	cl.Close()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := startServer(t, dir, reg)
	sc := scrapeMetrics(t, s2)
	if v := sc.value(t, "weir_topic_records_in_total", "topic=r"); v != 1 {
		t.Errorf("records in after restart = %v, want 1", v)
	}
	if v := sc.value(t, "weir_partition_log_end_offset", "topic=r", "partition=0"); v != 1 {
		t.Errorf("log end offset after restart = %v, want 1", v)
	}
}

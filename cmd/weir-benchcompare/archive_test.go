package main

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

func TestParseRchar(t *testing.T) {
	in := "rchar: 123456789\nwchar: 42\nsyscr: 10\nread_bytes: 4096\n"
	if got := parseRchar(in); got != 123456789 {
		t.Errorf("parseRchar = %d", got)
	}
	for _, bad := range []string{"", "wchar: 1\n", "rchar: x\n"} {
		if got := parseRchar(bad); got != -1 {
			t.Errorf("parseRchar(%q) = %d, want -1", bad, got)
		}
	}
}

func TestTopicLocalBytes(t *testing.T) {
	m := map[string]float64{
		`weir_partition_size_bytes{partition="0",topic="archive"}`:     10,
		`weir_partition_size_bytes{partition="1",topic="archive"}`:     5,
		`weir_partition_size_bytes{topic="archive",partition="2"}`:     1,
		`weir_partition_size_bytes{partition="0",topic="archive-2"}`:   100,
		`weir_partition_size_bytes{partition="0",xtopic="archive"}`:    1000,
		`weir_partition_log_end_offset{partition="0",topic="archive"}`: 10000,
	}
	if got := topicLocalBytes(m, "archive"); got != 16 {
		t.Errorf("topicLocalBytes = %v, want 16", got)
	}
	if got := topicLocalBytes(m, "none"); got != 0 {
		t.Errorf("topicLocalBytes of no topic = %v", got)
	}
}

// fakeArchiveWeir answers `weir bench`: produce at 100 MB/s (ack p50 2,
// p99 9 ms), 1,000 records of 1,024 bytes; consume of catchup-archive at
// 50 MB/s, of catchup-local at 200. It appends its arguments to args.
func fakeArchiveWeir(t *testing.T) (bin, args string) {
	return fakeWeirScript(t, `
*"consume -t catchup-archive "*) echo '{"consume":{"records":1000,"bytes":1024000,"mb_per_sec":50}}' ;;
*"consume -t catchup-local "*) echo '{"consume":{"records":1000,"bytes":1024000,"mb_per_sec":200}}' ;;
*) echo '{"produce":{"records":1000,"bytes":1024000,"records_per_sec":1000,"mb_per_sec":100,"latency_ms":{"p50":2,"p99":9}}}' ;;
`)
}

// archiveMetricsServer serves /metrics as a tiered broker would through
// the archive run: the first scrape (before the produce) finds 2 segments
// (32 MB) archived, the second (after it) 4 segments (64 MB) with 3
// lagging; the lag then falls to 1 and to 0, and nothing more is
// uploaded. The produce topic has 20 MB locally, the tiered catch-up
// topic 4 MB, the local one 16 MB; each scrape finds 1 MB more served
// from the archive.
func archiveMetricsServer(t *testing.T) (addr string, scrapes *atomic.Int64) {
	t.Helper()
	scrapes = &atomic.Int64{}
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/metrics" {
			http.NotFound(w, r)
			return
		}
		n := scrapes.Add(1)
		lag := map[int64]float64{1: 0, 2: 3, 3: 1}[n]
		fmt.Fprintf(w, "# TYPE %s counter\n%s %g\n%s %g\n%s %g\n%s %g\n%s 0\n", metricArchiveBytes, metricArchiveBytes, float64(min(n, 2))*32e6,
			metricArchiveSegments, float64(min(n, 2))*2, metricArchiveLag, lag, metricArchiveRemoteRead, float64(n)*1e6, metricArchiveFailures)
		for topic, size := range map[string]float64{archiveTopic: 10e6, readArchiveTopic: 2e6, readLocalTopic: 8e6} {
			for p := range 2 {
				fmt.Fprintf(w, "%s{partition=\"%d\",topic=\"%s\"} %g\n", metricPartitionSize, p, topic, size)
			}
		}
	}))
	t.Cleanup(web.Close)
	return strings.TrimPrefix(web.URL, "http://"), scrapes
}

func shortArchiveWaits(t *testing.T) {
	t.Helper()
	bound, settle, poll := archiveDrainBound, archiveSettle, archivePoll
	archiveDrainBound, archiveSettle, archivePoll = 10*time.Second, 50*time.Millisecond, 5*time.Millisecond
	t.Cleanup(func() { archiveDrainBound, archiveSettle, archivePoll = bound, settle, poll })
}

// TestArchiveRun: on weir-archive-on the produce topic is tiered, the
// uploader's figures are the counters' deltas around the produce, the
// harness waits for the lag and then writes and reads both catch-up
// topics in the rotated order; weir-archive-off only produces.
func TestArchiveRun(t *testing.T) {
	shortArchiveWaits(t)
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	web, _ := archiveMetricsServer(t)
	var log strings.Builder
	bin, argsFile := fakeArchiveWeir(t)
	h := &harness{weir: bin, log: &log}
	s := settings{partitions: 2, recordSize: 1024, duration: time.Second, archiveBacklog: 1024000}
	p := &proc{kind: "weir-archive-on", addr: c.ListenAddrs()[0], http: web, cmd: selfCmd(t)}
	vals, err := archiveRun(context.Background(), h, s, p, 2)
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]float64{"mbps": 100, "ack_p50": 2, "ack_p99": 9, "archived_segments": 2, "lag_end": 3, "local_mb": 20,
		"read_archive_mbps": 50, "read_local_mbps": 200, "read_ratio": 0.25, "archive_share": 0.75, "read_archive_amp": 0, "read_local_amp": 0} {
		if math.Abs(vals[k]-want) > 1e-9 {
			t.Errorf("%s = %v, want %v (all: %v)", k, vals[k], want, vals)
		}
	}
	for _, k := range []string{"archived_mbps", "drain_s", "cpu_per_gb", "read_archive_cpu_per_gb", "read_local_cpu_per_gb"} {
		if _, ok := vals[k]; !ok {
			t.Errorf("no %s (all: %v)", k, vals)
		}
	}
	if vals["archived_mbps"] <= 0 || vals["drain_s"] < 0 {
		t.Errorf("archived_mbps %v, drain_s %v", vals["archived_mbps"], vals["drain_s"])
	}
	b, err := os.ReadFile(argsFile)
	if err != nil {
		t.Fatal(err)
	}
	runs := strings.Split(strings.TrimSpace(string(b)), "\n")
	want := []string{
		"bench produce -t archive -p 2 -s 1024 -d 1s --no-progress",
		"bench produce -t catchup-archive -p 2 -s 1024 -n 1000 --no-progress",
		"bench produce -t catchup-local -p 2 -s 1024 -n 1000 --no-progress",
		"bench consume -t catchup-local --no-progress", // rep 2: the rotated order
		"bench consume -t catchup-archive --no-progress",
	}
	if len(runs) != len(want) {
		t.Fatalf("weir bench runs:\n%s", b)
	}
	for i := range want {
		if !strings.HasSuffix(runs[i], want[i]) {
			t.Errorf("run %d: %q, want …%q", i, runs[i], want[i])
		}
	}

	// The topics' configs.
	adm, cl, err := adminClient(p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for topic, want := range map[string]map[string]string{
		archiveTopic:     {"segment.bytes": "67108864", "remote.storage.enable": "true", "local.retention.bytes": "67108864"},
		readArchiveTopic: {"segment.bytes": "16777216", "remote.storage.enable": "true", "local.retention.bytes": "1"},
		readLocalTopic:   {"segment.bytes": "16777216"},
	} {
		rc, err := adm.DescribeTopicConfigs(context.Background(), topic)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := rc.On(topic, nil)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, c := range cfg.Configs {
			if c.Value != nil && c.Source == 1 { // DYNAMIC_TOPIC_CONFIG: set at creation
				got[c.Key] = *c.Value
			}
		}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s: %s = %q, want %q (all set: %v)", topic, k, got[k], v, got)
			}
		}
		if topic == readLocalTopic && got["remote.storage.enable"] == "true" {
			t.Errorf("%s is tiered", topic)
		}
	}

	// Off: the produce only, on its own broker (a fresh kfake).
	c2, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	web2, scrapes := archiveMetricsServer(t)
	bin2, argsFile2 := fakeArchiveWeir(t)
	h.weir = bin2
	off := &proc{kind: "weir-archive-off", addr: c2.ListenAddrs()[0], http: web2, cmd: p.cmd}
	vals, err = archiveRun(context.Background(), h, s, off, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(vals) != 5 || vals["mbps"] != 100 || vals["local_mb"] != 20 {
		t.Errorf("off values %v", vals)
	}
	if scrapes.Load() != 2 {
		t.Errorf("%d scrapes of the off broker, want 2", scrapes.Load())
	}
	if b, _ := os.ReadFile(argsFile2); strings.Count(string(b), "\n") != 1 {
		t.Errorf("off runs:\n%s", b)
	}
	// A broker without an HTTP address cannot be measured.
	if _, err := archiveRun(context.Background(), h, s, &proc{kind: "weir-archive-on", addr: p.addr}, 1); err == nil {
		t.Error("archiveRun without /metrics: no error")
	}
}

// TestWaitArchived: the lag must read 0 twice, archiveSettle apart, with
// no upload between; past the bound the run goes on with a note.
func TestWaitArchived(t *testing.T) {
	shortArchiveWaits(t)
	var lag, segs atomic.Int64
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s %d\n%s %d\n", metricArchiveLag, lag.Load(), metricArchiveSegments, segs.Load())
	}))
	defer web.Close()
	var log strings.Builder
	h := &harness{log: &log}
	p := &proc{kind: "weir-archive-on", http: strings.TrimPrefix(web.URL, "http://")}

	// The gauge reads 0 while uploads go on (a pass still running): not
	// done until the count stops.
	lag.Store(0)
	stop := make(chan struct{})
	go func() {
		for i := 0; i < 20; i++ {
			segs.Add(1)
			time.Sleep(10 * time.Millisecond)
		}
		close(stop)
	}()
	begin := time.Now()
	d, err := waitArchived(context.Background(), h, p)
	if err != nil {
		t.Fatal(err)
	}
	<-stop
	if time.Since(begin) < 200*time.Millisecond || d < 150*time.Millisecond {
		t.Errorf("waitArchived returned after %s (reported %s) while uploads went on for 200 ms", time.Since(begin), d)
	}

	lag.Store(2)
	archiveDrainBound = 100 * time.Millisecond
	if d, err := waitArchived(context.Background(), h, p); err != nil || d != archiveDrainBound {
		t.Errorf("waitArchived past the bound = %s, %v", d, err)
	}
	if !strings.Contains(log.String(), "archive lag still 2 segments") {
		t.Errorf("log: %q", log.String())
	}

	// Without the gauge (no archive): an error, not a wait.
	p.http = strings.TrimPrefix(httptest.NewServer(http.NotFoundHandler()).URL, "http://")
	if _, err := waitArchived(context.Background(), h, p); err == nil {
		t.Error("waitArchived without /metrics: no error")
	}
}

// TestReportArchive: the table lists both brokers (n/a where off measures
// nothing); the goal is the on/off ratio of median MB/s, at least 0.9,
// inconclusive when the off runs' own spread covers the miss; the
// catch-up read is reported as the median of per-run ratios.
func TestReportArchive(t *testing.T) {
	s := settings{reps: 3, partitions: 16, recordSize: 1024, duration: 30 * time.Second, archiveBacklog: 1e9}
	wl := archiveWorkload(s)
	if !wl.rotate || len(wl.targets) != 3 || wl.run == nil {
		t.Fatalf("archive workload %+v", wl)
	}
	r := report{s: s, workloads: []workload{wl}}
	on, off := []float64{95, 92, 90}, []float64{100, 101, 99} // medians 92 and 100; off spread 1.02
	ratios := []float64{0.5, 0.6, 0.4}
	for i := range 3 {
		r.results = append(r.results,
			result{"archive", "weir-archive-on", i + 1, map[string]float64{"mbps": on[i], "ack_p99": 12, "cpu_per_gb": 4.4,
				"archived_mbps": 80, "archived_segments": 40, "lag_end": 2, "drain_s": 3, "local_mb": 2100,
				"read_archive_mbps": 200 * ratios[i], "read_local_mbps": 200, "read_ratio": ratios[i], "archive_share": 0.75,
				"read_archive_cpu_per_gb": 3, "read_local_cpu_per_gb": 1, "read_archive_amp": 4, "read_local_amp": 1}},
			result{"archive", "weir-archive-off", i + 1, map[string]float64{"mbps": off[i], "ack_p99": 10, "cpu_per_gb": 4, "local_mb": 3000}})
	}
	var b strings.Builder
	if err := r.write(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"kfake has no tiered storage",
		"`produce -t archive -p 16 -s 1024 -d 30s (one broker each; segment.bytes=67108864, on: remote.storage.enable=true, local.retention.bytes=67108864);",
		"produce -n 976562 to catchup-archive and catchup-local",
		"| Target | MB/s | ack p50 ms | ack p99 ms | broker CPU s/GB | archived MB/s (during produce) |",
		"| weir-archive-off | 100 | n/a | 10.0 | 4 | n/a |",
		"| 100, 101, 99.0 |",
		"| Durable publish: archiving on vs off (Weir, file://) | 92.0 vs 100 MB/s (off runs' spread 1.02×) | 0.92× | ≥ 0.90× | yes |",
		"| Durable publish ack p99: archiving on vs off (Weir) | 12.0 vs 10.0 ms | 1.20× | (context) | – |",
		"| Uploader during the produce (archiving on) | 80.0 MB/s archived, 40.0 segments, lag 2 segments at the end, archived 3 s later; 2100 MB of the topic local at the end | – | (measured) | – |",
		"| Catch-up read: from the archive vs local (Weir, file://, same broker) | 100 vs 200 MB/s (ratio: median of runs; 75% of the tiered topic only in the archive) | 0.50× | (measured) | – |",
		"| Catch-up bytes read() per byte consumed: archive vs local | 4 vs 1 bytes/byte | 4.00× | (context) | – |",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	// Below 0.9 beyond the off runs' spread: not met.
	for i := range r.results {
		if r.results[i].target == "weir-archive-on" {
			r.results[i].vals["mbps"] = 80
		}
	}
	if g := r.goals(); !strings.Contains(g, "| 80.0 vs 100 MB/s (off runs' spread 1.02×) | 0.80× | ≥ 0.90× | no |") {
		t.Errorf("goals:\n%s", g)
	}
	// Off runs 1.2× apart cover a 0.8× ratio: inconclusive.
	r.results[1].vals["mbps"] = 84 // off 84, 101, 99: median 99, spread 1.20
	if g := r.goals(); !strings.Contains(g, "| 80.0 vs 99.0 MB/s (off runs' spread 1.20×) | 0.81× | ≥ 0.90× | inconclusive (noise) |") {
		t.Errorf("goals:\n%s", g)
	}
}

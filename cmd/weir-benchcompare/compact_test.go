package main

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

func TestParseReady(t *testing.T) {
	for _, tc := range []struct {
		line, addr, http string
		bad              bool
	}{
		{line: "ready 127.0.0.1:9092", addr: "127.0.0.1:9092"},
		{line: "ready 127.0.0.1:9092 http=127.0.0.1:8080", addr: "127.0.0.1:9092", http: "127.0.0.1:8080"},
		{line: "ready", bad: true},
		{line: "listening 127.0.0.1:9092", bad: true},
		{line: "ready 127.0.0.1:9092 web=127.0.0.1:8080", bad: true},
	} {
		addr, http, err := parseReady(tc.line)
		if (err != nil) != tc.bad || addr != tc.addr || http != tc.http {
			t.Errorf("parseReady(%q) = %q, %q, %v; want %q, %q, error %v", tc.line, addr, http, err, tc.addr, tc.http, tc.bad)
		}
	}
}

func TestParseMetrics(t *testing.T) {
	in := `# HELP weir_cleaner_bytes_read_total Bytes the cleaner read.
# TYPE weir_cleaner_bytes_read_total counter
weir_cleaner_bytes_read_total 1.2345e+08
weir_cleaner_cleans_total 7

go_gc_duration_seconds{quantile="0.5"} 3.1e-05
weir_topic_bytes_total{topic="a b",dir="in"} 42 1700000000000
weir_nan NaN
`
	got, err := parseMetrics(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{
		"weir_cleaner_bytes_read_total":                1.2345e8,
		"weir_cleaner_cleans_total":                    7,
		`go_gc_duration_seconds{quantile="0.5"}`:       3.1e-5,
		`weir_topic_bytes_total{topic="a b",dir="in"}`: 42,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v (all: %v)", k, got[k], v, got)
		}
	}
	if !math.IsNaN(got["weir_nan"]) || len(got) != len(want)+1 {
		t.Errorf("got %v", got)
	}
	for _, bad := range []string{"weir_x\n", "weir_x one\n"} {
		if _, err := parseMetrics(strings.NewReader(bad)); err == nil {
			t.Errorf("parseMetrics(%q): no error", bad)
		}
	}
}

func TestRatesAndNoise(t *testing.T) {
	before := map[string]float64{metricCleanRead: 1e6, metricCleanWritten: 0, metricCleanRemoved: 10, metricCleans: 1}
	after := map[string]float64{metricCleanRead: 21e6, metricCleanWritten: 2e6, metricCleanRemoved: 110, metricCleans: 5}
	if got, want := rates(before, after, 2), (cleanerRates{readMBps: 10, writtenMBps: 1, removedPerSec: 50, cleans: 4}); got != want {
		t.Errorf("rates = %+v, want %+v", got, want)
	}
	// A counter missing (an older broker) or gone backwards (a restart)
	// does not move.
	if got := rates(map[string]float64{}, after, 2); got != (cleanerRates{}) {
		t.Errorf("rates without a first scrape = %+v", got)
	}
	if got := rates(after, before, 2); got != (cleanerRates{}) {
		t.Errorf("rates backwards = %+v", got)
	}
	if got := noise([]float64{10, 12, 15}); got != 1.5 {
		t.Errorf("noise = %v, want 1.5", got)
	}
	// Histogram buckets are cumulative; between the scrapes 100
	// observations: 90 ≤ 1 ms, 9 in (1, 5] ms, 1 in (5, 25] ms.
	h0 := map[string]float64{`f_bucket{le="0.001"}`: 10, `f_bucket{le="0.005"}`: 10, `f_bucket{le="0.025"}`: 10, `f_bucket{le="+Inf"}`: 10}
	h1 := map[string]float64{`f_bucket{le="0.001"}`: 100, `f_bucket{le="0.005"}`: 109, `f_bucket{le="0.025"}`: 110, `f_bucket{le="+Inf"}`: 110}
	for q, want := range map[float64]float64{0.5: 0.001, 0.9: 0.001, 0.95: 0.005, 0.99: 0.005, 0.999: 0.025} {
		if got := bucketQuantile(h0, h1, "f", q); got != want {
			t.Errorf("bucketQuantile(%v) = %v, want %v", q, got, want)
		}
	}
	// Past the last finite bound: that bound; nothing observed: NaN.
	h1[`f_bucket{le="+Inf"}`] = 120
	if got := bucketQuantile(h0, h1, "f", 0.99); got != 0.025 {
		t.Errorf("bucketQuantile past the buckets = %v, want 0.025", got)
	}
	if got := bucketQuantile(h0, h0, "f", 0.99); !math.IsNaN(got) {
		t.Errorf("bucketQuantile of nothing = %v", got)
	}
	for _, vs := range [][]float64{nil, {3}, {0, 1}} {
		if !math.IsNaN(noise(vs)) {
			t.Errorf("noise(%v) is not NaN", vs)
		}
	}
}

// fakeCompactWeir answers `weir bench produce`: at --rate 20000 records/s
// with ack p50/p99/p99.9 of 1/4/9 ms, without at 250 MB/s (p99 50 ms). It
// appends its arguments to the file args.
func fakeCompactWeir(t *testing.T) (bin, args string) {
	return fakeWeirScript(t, `
*"--rate 20000"*) echo '{"produce":{"records":100000,"records_per_sec":20000,"mb_per_sec":20.5,"latency_ms":{"p50":1,"p99":4,"p99_9":9}}}' ;;
*) echo '{"produce":{"records":1000000,"records_per_sec":244140,"mb_per_sec":250,"latency_ms":{"p50":20,"p99":50,"p99_9":60}}}' ;;
`)
}

// TestCompactRun: the topic is created compacted, the two weir bench runs
// get the keys, the second the rate, and the cleaner's figures are the
// deltas of the broker's counters around each run.
func TestCompactRun(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Every scrape finds the cleaner 10 MB read, 1 MB written, 1,000
	// records removed and one clean further.
	var scrapes atomic.Int64
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/metrics" {
			http.NotFound(w, r)
			return
		}
		n := float64(scrapes.Add(1))
		fmt.Fprintf(w, "# TYPE %s counter\n%s %g\n%s %g\n%s %g\n%s %g\n", metricCleanRead, metricCleanRead, n*10e6,
			metricCleanWritten, n*1e6, metricCleanRemoved, n*1000, metricCleans, n)
		// And 100 log fsyncs of 2 ms each.
		fmt.Fprintf(w, "%[1]s_bucket{le=\"0.001\"} 0\n%[1]s_bucket{le=\"0.0025\"} %[2]g\n%[1]s_bucket{le=\"+Inf\"} %[2]g\n%[1]s_sum %[3]g\n%[1]s_count %[2]g\n",
			metricFsync, n*100, n*0.2)
	}))
	defer web.Close()

	var log strings.Builder
	bin, argsFile := fakeCompactWeir(t)
	h := &harness{weir: bin, log: &log}
	s := settings{partitions: 4, recordSize: 1024, duration: time.Second, compactRate: 20000}
	p := &proc{kind: "weir-cleaner-busy", addr: c.ListenAddrs()[0], http: strings.TrimPrefix(web.URL, "http://"), cmd: selfCmd(t)}
	vals, err := compactRun(context.Background(), h, s, p, 1)
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]float64{"sat_mbps": 250, "sat_p99": 50, "rate_rps": 20000, "ack_p50": 1, "ack_p99": 4, "ack_p999": 9, "cleans": 1,
		"fsync_mean_ms": 2, "fsync_p99_ms": 2.5} {
		if math.Abs(vals[k]-want) > 1e-9 {
			t.Errorf("%s = %v, want %v (all: %v)", k, vals[k], want, vals)
		}
	}
	// 10 MB over the run's wall time: a fraction of a second here.
	if v := vals["clean_mbps"]; v < 10 || math.Abs(vals["clean_write_mbps"]*10-v) > 1e-6*v || math.Abs(vals["removed_per_s"]/100-v) > 1e-6*v {
		t.Errorf("cleaner rates %v", vals)
	}
	if scrapes.Load() != 4 {
		t.Errorf("%d scrapes, want 4 (before and after each run)", scrapes.Load())
	}
	b, err := os.ReadFile(argsFile)
	if err != nil {
		t.Fatal(err)
	}
	runs := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(runs) != 2 || !strings.Contains(runs[0], "produce -t compact -p 4 -s 1024 --keys 10000 -d 1s") ||
		strings.Contains(runs[0], "--rate") || !strings.HasSuffix(runs[1], "-d 1s --rate 20000 --no-progress") {
		t.Errorf("weir bench runs:\n%s", b)
	}

	// The topic was created with the compacted configs.
	adm, cl, err := adminClient(p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	rc, err := adm.DescribeTopicConfigs(context.Background(), compactTopic)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := rc.On(compactTopic, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, c := range cfg.Configs {
		if c.Value != nil {
			got[c.Key] = *c.Value
		}
	}
	if got["cleanup.policy"] != "compact" || got["segment.bytes"] != "8388608" {
		t.Errorf("topic configs %v", got)
	}

	// A broker without an HTTP address cannot be measured.
	if _, err := compactRun(context.Background(), h, s, &proc{kind: "weir-always", addr: p.addr}, 1); err == nil {
		t.Error("compactRun without /metrics: no error")
	}
}

// TestReportCompact: the compact table lists both brokers, the p99 goal
// is the busy/idle ratio of medians judged against the idle runs' spread,
// and the cleaner's throughput is reported.
func TestReportCompact(t *testing.T) {
	s := settings{reps: 3, partitions: 16, recordSize: 1024, duration: 10 * time.Second, compactRate: 20000}
	wl := compactWorkload(s)
	if !wl.rotate || len(wl.targets) != 4 {
		t.Fatalf("compact workload %+v", wl)
	}
	r := report{s: s, workloads: []workload{wl}}
	busyP99, idleP99 := []float64{5, 4.4, 4.2}, []float64{4, 3.8, 4.4} // medians 4.4 and 4; idle spread 4.4/3.8 = 1.16
	for i := range 3 {
		r.results = append(r.results,
			result{"compact", "weir-cleaner-busy", i + 1, map[string]float64{"ack_p99": busyP99[i], "sat_mbps": 240, "clean_mbps": 40,
				"clean_write_mbps": 3, "removed_per_s": 40000, "cleans": 20, "sat_clean_mbps": 230}},
			result{"compact", "weir-cleaner-idle", i + 1, map[string]float64{"ack_p99": idleP99[i], "sat_mbps": 250, "clean_mbps": 0}})
	}
	var b strings.Builder
	if err := r.write(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"kfake has no log compaction",
		"| Target | MB/s (max rate) | ack p99 ms (max rate) |",
		"| weir-cleaner-busy | 240 | n/a | 230 |",
		"| 5, 4.4, 4.2 |",
		"| Produce p99 at 20000 rec/s: cleaner busy vs idle (Weir) | 4.4 vs 4 ms | 1.10× | ≤ 1.16× (idle runs' spread) | yes |",
		"| Max-rate produce: cleaner busy vs idle (Weir) | 240 vs 250 MB/s | 0.96× | (idle runs' spread 1.00×) | – |",
		"| Cleaner throughput while producing at 20000 rec/s (busy) | 40.0 MB/s read, 3 MB/s written, 40000 records removed/s, 20.0 cleans | – | (measured) | – |",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "p99.9 at") {
		t.Errorf("a comparison without measurements is listed:\n%s", out)
	}
	// Beyond the idle runs' spread, the goal is not met.
	r.results[0].vals["ack_p99"], r.results[2].vals["ack_p99"] = 6, 6 // busy median 6: 1.5×
	if g := r.goals(); !strings.Contains(g, "| 6 vs 4 ms | 1.50× | ≤ 1.16× (idle runs' spread) | no |") {
		t.Errorf("goals:\n%s", g)
	}
	// Idle runs more than 2× apart tell nothing either way.
	r.results[1].vals["ack_p99"] = 9 // idle 9, 3.8, 4.4: median 4.4, spread 2.37
	if g := r.goals(); !strings.Contains(g, "| 6 vs 4.4 ms | 1.36× | ≤ 2.37× (idle runs' spread) | inconclusive (noise) |") {
		t.Errorf("goals:\n%s", g)
	}
}

// selfCmd is a running child whose /proc entries stand in for a broker's.
func selfCmd(t *testing.T) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err) // sleep(1) is on every machine these tests run on
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return cmd
}

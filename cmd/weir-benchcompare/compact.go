package main

import (
	"bufio"
	"cmp"
	"context"
	"fmt"
	"io"
	"maps"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The compact workload (issue 16): produce to a compacted topic on Weir
// with the log cleaner busy (weir-cleaner-busy: it looks for work every
// 100 ms and min.cleanable.dirty.ratio is 0.01, so every sealed segment
// sets it going) and idle (weir-cleaner-idle: every hour, so never in a
// run), the same topic configs on both. On each broker, one max-rate run
// (MB/s; it also leaves a backlog of dirty segments the busy cleaner
// works through next) and then one at a fixed rate well below saturation
// (acknowledgement latency). The cleaner's own throughput comes from the
// broker's /metrics around each run. kfake has no log compaction, so
// Weir only.

const (
	compactTopic = "compact"
	// compactKeys distinct keys (weir bench --keys), so the cleaner
	// removes most records.
	compactKeys         = 10000
	compactSegmentBytes = 8 << 20
	// compactThrottle is weir-cleaner-throttled's
	// --log-cleaner-io-max-bytes-per-second: the rate the benchmark
	// produces at (20 MB/s), so the cleaner can keep up at that rate.
	compactThrottle = 20e6
)

// compactTopicConfigs are the topic's configs on every broker but
// weir-cleaner-default, which keeps min.cleanable.dirty.ratio's default
// (0.5).
var compactTopicConfigs = map[string]string{
	"cleanup.policy":            "compact",
	"segment.bytes":             strconv.Itoa(compactSegmentBytes),
	"min.cleanable.dirty.ratio": "0.01",
}

// compactConfigsFor returns the topic's configs on broker kind.
func compactConfigsFor(kind string) map[string]string {
	c := maps.Clone(compactTopicConfigs)
	if strings.HasSuffix(kind, "weir-cleaner-default") {
		delete(c, "min.cleanable.dirty.ratio")
	}
	return c
}

var compactMetrics = []metric{
	{key: "sat_mbps", label: "MB/s (max rate)"},
	{key: "sat_p99", label: "ack p99 ms (max rate)", lowerBetter: true},
	{key: "sat_clean_mbps", label: "cleaner read MB/s (max rate)"},
	{key: "rate_rps", label: "rec/s (at rate)"},
	{key: "ack_p50", label: "ack p50 ms", lowerBetter: true},
	{key: "ack_p99", label: "ack p99 ms", lowerBetter: true},
	{key: "ack_p999", label: "ack p99.9 ms", lowerBetter: true},
	{key: "rate_cpu_pct", label: "broker CPU % (at rate)", lowerBetter: true},
	{key: "fsync_mean_ms", label: "log fsync mean ms (at rate)", lowerBetter: true},
	{key: "fsync_p99_ms", label: "log fsync p99 ms ≤ (at rate)", lowerBetter: true},
	{key: "clean_mbps", label: "cleaner read MB/s (at rate)"},
	{key: "clean_write_mbps", label: "cleaner written MB/s (at rate)"},
	{key: "removed_per_s", label: "records removed/s (at rate)"},
	{key: "cleans", label: "cleans (at rate)"},
}

// The broker's cleaner counters (internal/broker/cleaner.go).
const (
	metricCleanRead    = "weir_cleaner_bytes_read_total"
	metricCleanWritten = "weir_cleaner_bytes_written_total"
	metricCleanRemoved = "weir_cleaner_records_removed_total"
	metricCleans       = "weir_cleaner_cleans_total"
	// metricFsync is the partition logs' data fdatasync latency
	// (internal/server/metrics.go), the produce path's; the cleaner's own
	// syncs are not in it.
	metricFsync = "weir_log_fsync_duration_seconds"
)

func compactWorkload(s settings) workload {
	produce := fmt.Sprintf("produce -t %s -p %d -s %d --keys %d -d %s", compactTopic, s.partitions, s.recordSize, compactKeys, s.duration)
	return workload{
		name:  "compact",
		title: fmt.Sprintf("Compaction: produce with the log cleaner busy vs idle (Weir, durable), max rate and %d records/s", s.compactRate),
		command: fmt.Sprintf("%s, then %s --rate %d (one broker; topic cleanup.policy=compact, segment.bytes=%d, min.cleanable.dirty.ratio=0.01)",
			produce, produce, s.compactRate, compactSegmentBytes),
		note: "weir-cleaner-busy: `weir serve --log-cleaner-backoff 100ms --log-retention-check-interval 200ms`; " +
			"weir-cleaner-idle: the same with `--log-cleaner-backoff 1h` (the cleaner never runs); " +
			"weir-cleaner-throttled: busy with `--log-cleaner-io-max-bytes-per-second 20000000`; " +
			"weir-cleaner-default: the cleaner's defaults (5 s backoff, topic without min.cleanable.dirty.ratio: 0.5). " +
			"Cleaner figures are deltas of the broker's weir_cleaner_* counters over each run's wall time " +
			"(bytes read count both passes: each log byte is read twice). " +
			"kfake has no log compaction: Weir only.",
		targets: []string{"weir-cleaner-busy", "weir-cleaner-idle", "weir-cleaner-throttled", "weir-cleaner-default"},
		metrics: compactMetrics, perRun: "ack_p99", rotate: true,
		run: compactRun,
	}
}

// compactRun creates the compacted topic, then runs weir bench produce at
// max rate and at s.compactRate, reading the cleaner's counters and the
// broker's CPU around each run.
func compactRun(ctx context.Context, h *harness, s settings, p *proc, _ int) (map[string]float64, error) {
	if p.http == "" {
		return nil, fmt.Errorf("%s: the peer printed no HTTP address", p.kind)
	}
	if err := createTopic(ctx, p.addr, compactTopic, s.partitions, compactConfigsFor(p.kind)); err != nil {
		return nil, err
	}
	args := []string{"produce", "-t", compactTopic, "-p", strconv.Itoa(s.partitions), "-s", strconv.Itoa(s.recordSize),
		"--keys", strconv.Itoa(compactKeys), "-d", s.duration.String()}
	vals := map[string]float64{}
	var m0, m1 map[string]float64
	// phase runs weir bench with extra and returns its report and the
	// cleaner's rates and broker CPU over it; m0 and m1 hold the metrics
	// scraped before and after.
	phase := func(extra ...string) (*benchReport, cleanerRates, float64, error) {
		var err error
		if m0, err = scrapeMetrics(ctx, p.http); err != nil {
			return nil, cleanerRates{}, 0, err
		}
		c0, t0 := p.cpu(), time.Now()
		r, err := h.bench(ctx, p.addr, append(slices.Clone(args), extra...)...)
		if err != nil {
			return nil, cleanerRates{}, 0, err
		}
		secs, cpu := time.Since(t0).Seconds(), p.cpu()-c0
		if m1, err = scrapeMetrics(ctx, p.http); err != nil {
			return nil, cleanerRates{}, 0, err
		}
		if r.Produce == nil || r.Produce.Latency == nil {
			return nil, cleanerRates{}, 0, fmt.Errorf("weir bench reported no produce latency")
		}
		return r, rates(m0, m1, secs), 100 * cpu / secs, nil
	}
	r, cr, _, err := phase()
	if err != nil {
		return nil, err
	}
	vals["sat_mbps"], vals["sat_p99"], vals["sat_clean_mbps"] = r.Produce.MBPerSec, r.Produce.Latency.P99, cr.readMBps
	r, cr, cpu, err := phase("--rate", strconv.Itoa(s.compactRate))
	if err != nil {
		return nil, err
	}
	lat := r.Produce.Latency
	vals["rate_rps"], vals["ack_p50"], vals["ack_p99"], vals["ack_p999"] = r.Produce.RecordsPerSec, lat.P50, lat.P99, lat.P999
	vals["rate_cpu_pct"] = cpu
	if n := delta(m0, m1, metricFsync+"_count"); n > 0 {
		vals["fsync_mean_ms"] = 1000 * delta(m0, m1, metricFsync+"_sum") / n
		vals["fsync_p99_ms"] = 1000 * bucketQuantile(m0, m1, metricFsync, 0.99)
	}
	vals["clean_mbps"], vals["clean_write_mbps"], vals["removed_per_s"], vals["cleans"] = cr.readMBps, cr.writtenMBps, cr.removedPerSec, cr.cleans
	return vals, nil
}

// createTopic creates topic with partitions and configs.
func createTopic(ctx context.Context, addr, topic string, partitions int, configs map[string]string) error {
	adm, cl, err := adminClient(addr)
	if err != nil {
		return err
	}
	defer cl.Close()
	cfg := map[string]*string{}
	for k, v := range configs {
		cfg[k] = &v
	}
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	resp, err := adm.CreateTopic(cctx, int32(partitions), -1, cfg, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		return fmt.Errorf("create topic %s: %w", topic, err)
	}
	return nil
}

// cleanerRates are the cleaner's counters' deltas over a run, per second
// (cleans: the count).
type cleanerRates struct {
	readMBps, writtenMBps, removedPerSec, cleans float64
}

// rates computes the cleaner's rates from two scrapes secs apart. A
// counter missing from either scrape counts as not moving.
func rates(before, after map[string]float64, secs float64) cleanerRates {
	d := func(name string) float64 { return delta(before, after, name) }
	if secs <= 0 {
		return cleanerRates{cleans: d(metricCleans)}
	}
	return cleanerRates{
		readMBps:      d(metricCleanRead) / 1e6 / secs,
		writtenMBps:   d(metricCleanWritten) / 1e6 / secs,
		removedPerSec: d(metricCleanRemoved) / secs,
		cleans:        d(metricCleans),
	}
}

// delta is how far the counter name moved from before to after; 0 when
// either lacks it or it went backwards (a restart).
func delta(before, after map[string]float64, name string) float64 {
	a, ok1 := after[name]
	b, ok2 := before[name]
	if !ok1 || !ok2 || a < b {
		return 0
	}
	return a - b
}

// bucketQuantile estimates quantile q of the observations histogram name
// received between two scrapes: the upper bound of the first bucket
// whose cumulative count reaches q of them (so the true value is at most
// this); the highest finite bound when it lies past it; NaN without
// observations.
func bucketQuantile(before, after map[string]float64, name string, q float64) float64 {
	type bucket struct{ le, n float64 }
	var bs []bucket
	prefix := name + `_bucket{le="`
	for k := range after {
		le, ok := strings.CutPrefix(k, prefix)
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSuffix(le, `"}`), 64)
		if err != nil {
			continue
		}
		bs = append(bs, bucket{v, delta(before, after, k)})
	}
	slices.SortFunc(bs, func(a, b bucket) int { return cmp.Compare(a.le, b.le) })
	if len(bs) == 0 || bs[len(bs)-1].n == 0 {
		return math.NaN()
	}
	total := bs[len(bs)-1].n
	finite := math.NaN()
	for _, b := range bs {
		if !math.IsInf(b.le, 1) {
			finite = b.le
		}
		if b.n >= q*total {
			if math.IsInf(b.le, 1) {
				return finite
			}
			return b.le
		}
	}
	return finite
}

// scrapeMetrics reads the Prometheus text exposition at http://addr/metrics.
func scrapeMetrics(ctx context.Context, addr string) (map[string]float64, error) {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(cctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("metrics: %s", resp.Status)
	}
	return parseMetrics(resp.Body)
}

// parseMetrics reads samples of the Prometheus text format: "name value"
// or "name{labels} value", optionally followed by a timestamp; the key is
// the name with its labels as written. Comments and blank lines are
// skipped; NaN and ±Inf parse as such.
func parseMetrics(r io.Reader) (map[string]float64, error) {
	out := map[string]float64{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if l == "" || l[0] == '#' {
			continue
		}
		// Label values may hold spaces: the name ends at the closing brace.
		name, rest := l, ""
		if i := strings.LastIndexByte(l, '}'); i >= 0 && strings.IndexByte(l, '{') >= 0 {
			name, rest = l[:i+1], l[i+1:]
		} else if i := strings.IndexAny(l, " \t"); i >= 0 {
			name, rest = l[:i], l[i:]
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			return nil, fmt.Errorf("metrics: no value in %q", l)
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			return nil, fmt.Errorf("metrics: %q: %w", l, err)
		}
		out[name] = v
	}
	return out, sc.Err()
}

// noise is the spread of vs, max over min: how far apart runs of one
// target fell; NaN with fewer than two or a non-positive minimum.
func noise(vs []float64) float64 {
	if len(vs) < 2 {
		return math.NaN()
	}
	lo, hi := vs[0], vs[0]
	for _, v := range vs[1:] {
		lo, hi = min(lo, v), max(hi, v)
	}
	if lo <= 0 {
		return math.NaN()
	}
	return hi / lo
}

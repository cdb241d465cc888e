package main

import (
	"context"
	"fmt"
	"maps"
	"math"
	"strconv"
	"strings"
	"time"
)

// The archive workload (issue 16): durable publish with tiered storage on
// vs off, and a catch-up read served by the archive vs by the local log.
// Weir only (kfake has no tiered storage).
//
// weir-archive-off is `weir serve` (durability always); weir-archive-on
// is `weir serve --archive file://DIR` with DIR on the same disk as the
// data. On each the harness creates topic "archive" (segment.bytes
// 64 MiB; on weir-archive-on also remote.storage.enable=true and
// local.retention.bytes 64 MiB per partition, so a partition that holds
// two sealed segments has the older deleted locally once it is archived)
// and runs `weir bench produce` at max rate, acks=all, for the run's
// duration. On weir-archive-on, the archive's counters from /metrics
// around the run say how much the uploader copied meanwhile; then the
// harness waits (bounded) for the archive lag to reach 0, writes the same
// backlog to two more topics, one tiered with local.retention.bytes 1 (so
// every sealed segment is deleted locally once archived) and one not, waits
// for the lag again, and reads each from the start with `weir bench
// consume`, in an order rotated per repetition: both reads on one broker,
// the same bytes, one from the archive (but its active segments) and one
// from the local log.

const (
	archiveTopic        = "archive"
	archiveSegmentBytes = 64 << 20
	// archiveLocalRetention is local.retention.bytes of the tiered produce
	// topic: one segment per partition.
	archiveLocalRetention = 64 << 20
	// archiveReadSegmentBytes is segment.bytes of the catch-up topics:
	// smaller than the produce topic's, so that a 1 GB backlog in 16
	// partitions seals several segments per partition (62.5 MB each).
	archiveReadSegmentBytes = 16 << 20
	readArchiveTopic        = "catchup-archive"
	readLocalTopic          = "catchup-local"
	// archiveGoal is the goal for publish with archiving on vs off.
	archiveGoal = 0.9
)

// The broker's archive metrics (internal/broker/uploader.go) and its
// per-partition log size (internal/server/metrics.go).
const (
	metricArchiveBytes      = "weir_archive_bytes_total"
	metricArchiveSegments   = "weir_archive_segments_total"
	metricArchiveFailures   = "weir_archive_upload_failures_total"
	metricArchiveRemoteRead = "weir_archive_remote_read_bytes_total"
	metricArchiveLag        = "weir_archive_lag_segments"
	metricPartitionSize     = "weir_partition_size_bytes"
)

// How long to wait for the uploader: at most archiveDrainBound; the lag
// counts as 0 once two scrapes archiveSettle apart (longer than the
// uploader's 1 s pass interval) both read 0 and no segment was uploaded
// between them. Variables for the tests.
var (
	archiveDrainBound = 2 * time.Minute
	archiveSettle     = 2 * time.Second
	archivePoll       = 250 * time.Millisecond
)

var archiveMetrics = []metric{
	{key: "mbps", label: "MB/s"},
	{key: "ack_p50", label: "ack p50 ms", lowerBetter: true},
	{key: "ack_p99", label: "ack p99 ms", lowerBetter: true},
	{key: "cpu_per_gb", label: "broker CPU s/GB", lowerBetter: true},
	{key: "archived_mbps", label: "archived MB/s (during produce)"},
	{key: "archived_segments", label: "segments archived (during produce)"},
	{key: "lag_end", label: "archive lag segments (end of produce)", lowerBetter: true},
	{key: "local_mb", label: "local MB of the topic (end of produce)"},
	{key: "drain_s", label: "s to archive lag 0", lowerBetter: true},
	{key: "read_archive_mbps", label: "catch-up MB/s from archive"},
	{key: "read_local_mbps", label: "catch-up MB/s local"},
	{key: "read_ratio", label: "archive ÷ local read"},
	{key: "read_archive_cpu_per_gb", label: "broker CPU s/GB read (archive)", lowerBetter: true},
	{key: "read_local_cpu_per_gb", label: "broker CPU s/GB read (local)", lowerBetter: true},
	{key: "read_archive_amp", label: "bytes read() per byte consumed (archive)", lowerBetter: true},
	{key: "read_local_amp", label: "bytes read() per byte consumed (local)", lowerBetter: true},
	{key: "archive_share", label: "share of the archived topic only in the archive"},
}

func archiveWorkload(s settings) workload {
	return workload{
		name:  "archive",
		title: "Tiered storage: durable publish with archiving on vs off, catch-up read from the archive vs local (Weir)",
		command: fmt.Sprintf("produce -t %s -p %d -s %d -d %s (one broker each; segment.bytes=%d, on: remote.storage.enable=true, local.retention.bytes=%d); "+
			"on weir-archive-on then produce -n %d to %s and %s (segment.bytes=%d; the first tiered with local.retention.bytes=1) and consume each from the start",
			archiveTopic, s.partitions, s.recordSize, s.duration, archiveSegmentBytes, archiveLocalRetention,
			s.archiveBacklog/int64(max(s.recordSize, 1)), readArchiveTopic, readLocalTopic, archiveReadSegmentBytes),
		note: "weir-archive-off: `weir serve`; weir-archive-on: `weir serve --archive file://DIR` (DIR on the data's filesystem: " +
			"segments hard-linked; weir-archive-copy: the same with file://DIR?link=false, segments copied; " +
			"S3 would add HTTP and network costs, not measured here). Archive figures are deltas of the broker's weir_archive_* " +
			"counters over the produce run; the catch-up reads run on weir-archive-on after the archive lag reached 0, " +
			"in an order rotated per repetition; \"bytes read()\" is the broker's rchar (/proc/PID/io) over the read. " +
			"kfake has no tiered storage: Weir only.",
		targets: []string{"weir-archive-off", "weir-archive-on", "weir-archive-copy"},
		metrics: archiveMetrics, perRun: "mbps", rotate: true,
		run: archiveRun,
	}
}

// archiveTopicConfigs are the produce topic's configs, tiered or not.
func archiveTopicConfigs(tiered bool) map[string]string {
	c := map[string]string{"segment.bytes": strconv.Itoa(archiveSegmentBytes)}
	if tiered {
		c["remote.storage.enable"] = "true"
		c["local.retention.bytes"] = strconv.Itoa(archiveLocalRetention)
	}
	return c
}

// readTopicConfigs are a catch-up topic's configs: tiered ones keep only
// the active segment locally once the rest is archived.
func readTopicConfigs(tiered bool) map[string]string {
	c := map[string]string{"segment.bytes": strconv.Itoa(archiveReadSegmentBytes)}
	if tiered {
		c["remote.storage.enable"] = "true"
		c["local.retention.bytes"] = "1"
	}
	return c
}

// archiveRun measures one broker: the produce run, and on weir-archive-on
// the uploader's work during it and the catch-up reads after.
func archiveRun(ctx context.Context, h *harness, s settings, p *proc, rep int) (map[string]float64, error) {
	if p.http == "" {
		return nil, fmt.Errorf("%s: the peer printed no HTTP address", p.kind)
	}
	tiered := strings.HasSuffix(p.kind, "weir-archive-on") || strings.HasSuffix(p.kind, "weir-archive-copy")
	if err := createTopic(ctx, p.addr, archiveTopic, s.partitions, archiveTopicConfigs(tiered)); err != nil {
		return nil, err
	}
	m0, err := scrapeMetrics(ctx, p.http)
	if err != nil {
		return nil, err
	}
	c0, t0 := p.cpu(), time.Now()
	r, err := h.bench(ctx, p.addr, "produce", "-t", archiveTopic, "-p", strconv.Itoa(s.partitions), "-s", strconv.Itoa(s.recordSize),
		"-d", s.duration.String())
	if err != nil {
		return nil, err
	}
	secs, cpu := time.Since(t0).Seconds(), p.cpu()-c0
	m1, err := scrapeMetrics(ctx, p.http)
	if err != nil {
		return nil, err
	}
	pr := r.Produce
	if pr == nil || pr.Latency == nil || pr.Bytes == 0 {
		return nil, fmt.Errorf("weir bench reported no produce")
	}
	vals := map[string]float64{
		"mbps": pr.MBPerSec, "ack_p50": pr.Latency.P50, "ack_p99": pr.Latency.P99,
		"cpu_per_gb": cpu / (float64(pr.Bytes) / 1e9),
		"local_mb":   topicLocalBytes(m1, archiveTopic) / 1e6,
	}
	if !tiered {
		return vals, nil
	}
	vals["archived_mbps"] = delta(m0, m1, metricArchiveBytes) / 1e6 / secs
	vals["archived_segments"] = delta(m0, m1, metricArchiveSegments)
	vals["lag_end"] = m1[metricArchiveLag]
	if f := delta(m0, m1, metricArchiveFailures); f > 0 {
		fmt.Fprintf(h.log, "   %-12s %g archive upload failures during the produce\n", p.kind, f)
	}
	if vals["archived_segments"] == 0 {
		fmt.Fprintf(h.log, "   %-12s no segment was archived during the produce (%.0f MB in %d partitions of %d MiB segments): "+
			"the on/off ratio measures the archive idle; use a longer -duration\n", p.kind, float64(pr.Bytes)/1e6, s.partitions, archiveSegmentBytes>>20)
	}
	drain, err := waitArchived(ctx, h, p)
	if err != nil {
		return nil, err
	}
	vals["drain_s"] = drain.Seconds()
	if strings.HasSuffix(p.kind, "weir-archive-copy") {
		// Its archive holds the same bytes as weir-archive-on's: the
		// catch-up reads would measure the same path again.
		return vals, nil
	}
	read, err := archiveCatchup(ctx, h, s, p, rep)
	if err != nil {
		return nil, err
	}
	maps.Copy(vals, read)
	return vals, nil
}

// archiveCatchup writes s.archiveBacklog to a tiered and to a local topic,
// waits for the archive, and reads both from the start.
func archiveCatchup(ctx context.Context, h *harness, s settings, p *proc, rep int) (map[string]float64, error) {
	n := s.archiveBacklog / int64(s.recordSize)
	if n <= 0 {
		return nil, fmt.Errorf("-archive-backlog %d: less than one record", s.archiveBacklog)
	}
	for _, t := range []struct {
		name   string
		tiered bool
	}{{readArchiveTopic, true}, {readLocalTopic, false}} {
		if err := createTopic(ctx, p.addr, t.name, s.partitions, readTopicConfigs(t.tiered)); err != nil {
			return nil, err
		}
		if _, err := h.bench(ctx, p.addr, "produce", "-t", t.name, "-p", strconv.Itoa(s.partitions), "-s", strconv.Itoa(s.recordSize),
			"-n", strconv.FormatInt(n, 10)); err != nil {
			return nil, err
		}
	}
	if _, err := waitArchived(ctx, h, p); err != nil {
		return nil, err
	}
	m, err := scrapeMetrics(ctx, p.http)
	if err != nil {
		return nil, err
	}
	vals := map[string]float64{}
	if all := topicLocalBytes(m, readLocalTopic); all > 0 {
		vals["archive_share"] = 1 - topicLocalBytes(m, readArchiveTopic)/all
	}
	for _, key := range rotated([]string{"read_archive", "read_local"}, rep) {
		topic := readLocalTopic
		if key == "read_archive" {
			topic = readArchiveTopic
		}
		m0, err := scrapeMetrics(ctx, p.http)
		if err != nil {
			return nil, err
		}
		c0, io0 := p.cpu(), p.readBytes()
		r, err := h.bench(ctx, p.addr, "consume", "-t", topic)
		if err != nil {
			return nil, err
		}
		cpu, io1 := p.cpu()-c0, p.readBytes()
		m1, err := scrapeMetrics(ctx, p.http)
		if err != nil {
			return nil, err
		}
		c := r.Consume
		if c == nil || c.Records < n || c.Bytes == 0 {
			return nil, fmt.Errorf("%s: consumed too little of %d records: %+v", topic, n, c)
		}
		gb := float64(c.Bytes) / 1e9
		vals[key+"_mbps"], vals[key+"_cpu_per_gb"] = c.MBPerSec, cpu/gb
		if io0 >= 0 && io1 >= io0 {
			vals[key+"_amp"] = float64(io1-io0) / float64(c.Bytes)
		}
		if key == "read_archive" && delta(m0, m1, metricArchiveRemoteRead) == 0 {
			fmt.Fprintf(h.log, "   %-12s the read of %s served nothing from the archive\n", p.kind, topic)
		}
	}
	if a, l := vals["read_archive_mbps"], vals["read_local_mbps"]; l > 0 {
		vals["read_ratio"] = a / l
	}
	return vals, nil
}

// waitArchived polls p's /metrics until the archive lag is 0 and settled
// (see archiveSettle), at most archiveDrainBound; past the bound it logs
// the lag and returns the bound: the run goes on, and archive_share shows
// what the catch-up read then found local.
func waitArchived(ctx context.Context, h *harness, p *proc) (time.Duration, error) {
	begin := time.Now()
	var (
		zeroAt   time.Time
		zeroSegs float64
	)
	for {
		m, err := scrapeMetrics(ctx, p.http)
		if err != nil {
			return 0, err
		}
		lag, ok := m[metricArchiveLag]
		if !ok {
			return 0, fmt.Errorf("%s: /metrics has no %s", p.kind, metricArchiveLag)
		}
		segs, now := m[metricArchiveSegments], time.Now()
		switch {
		case lag > 0 || zeroAt.IsZero() || segs != zeroSegs:
			if lag > 0 {
				zeroAt = time.Time{}
			} else {
				zeroAt, zeroSegs = now, segs
			}
		case now.Sub(zeroAt) >= archiveSettle:
			return zeroAt.Sub(begin), nil
		}
		if now.Sub(begin) >= archiveDrainBound {
			fmt.Fprintf(h.log, "   %-12s archive lag still %g segments after %s; going on\n", p.kind, lag, archiveDrainBound)
			return archiveDrainBound, nil
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(archivePoll):
		}
	}
}

// topicLocalBytes sums the weir_partition_size_bytes samples of topic's
// partitions (its log on local disk).
func topicLocalBytes(m map[string]float64, topic string) float64 {
	var sum float64
	label := `topic="` + topic + `"`
	for k, v := range m {
		labels, ok := strings.CutPrefix(k, metricPartitionSize+"{")
		if !ok {
			continue
		}
		if i := strings.Index(labels, label); i >= 0 && (i == 0 || labels[i-1] == ',') {
			sum += v
		}
	}
	return sum
}

// archiveGoals are the archive workload's rows of the targets table.
func (r *report) archiveGoals() []goal {
	const wl, on, off = "archive", "weir-archive-on", "weir-archive-off"
	have := func(t, k string) bool { return len(r.values(wl, t, k)) > 0 }
	med := func(t, k string) float64 { return r.median(wl, t, k) }
	var gs []goal
	if have(on, "mbps") && have(off, "mbps") {
		von, voff := med(on, "mbps"), med(off, "mbps")
		g := goal{name: "Durable publish: archiving on vs off (Weir, file://)", value: von / voff,
			measured: fmt.Sprintf("%s vs %s MB/s", num(von), num(voff)), want: fmt.Sprintf("≥ %.2f×", archiveGoal)}
		g.ok = g.value >= archiveGoal
		if n := noise(r.values(wl, off, "mbps")); !math.IsNaN(n) {
			g.measured += fmt.Sprintf(" (off runs' spread %.2f×)", n)
			// A miss the off runs' own spread covers tells nothing.
			g.inconclusive = !g.ok && g.value*n >= archiveGoal
		}
		gs = append(gs, g)
	}
	ctxRow := func(name, key, unit string) {
		if have(on, key) && have(off, key) {
			a, b := med(on, key), med(off, key)
			gs = append(gs, goal{name: name, measured: fmt.Sprintf("%s vs %s %s", num(a), num(b), unit), value: a / b,
				want: "(context)", context: true})
		}
	}
	const cp = "weir-archive-copy"
	if have(cp, "mbps") && have(off, "mbps") {
		vc, voff := med(cp, "mbps"), med(off, "mbps")
		g := goal{name: "Durable publish: archiving on, copying (file://DIR?link=false) vs off (Weir)", value: vc / voff,
			measured: fmt.Sprintf("%s vs %s MB/s", num(vc), num(voff)), want: fmt.Sprintf("(the goal %.2f× before links)", archiveGoal), context: true}
		gs = append(gs, g)
		if have(on, "mbps") {
			gs = append(gs, goal{name: "Durable publish: archiving on, linking vs copying (Weir)", value: med(on, "mbps") / vc,
				measured: fmt.Sprintf("%s vs %s MB/s", num(med(on, "mbps")), num(vc)), want: "(context)", context: true})
		}
		if have(cp, "cpu_per_gb") && have(off, "cpu_per_gb") {
			a, b := med(cp, "cpu_per_gb"), med(off, "cpu_per_gb")
			gs = append(gs, goal{name: "Durable publish broker CPU per GB: copying vs off (Weir)", value: a / b,
				measured: fmt.Sprintf("%s vs %s CPU-s/GB", num(a), num(b)), want: "(context)", context: true})
		}
	}
	ctxRow("Durable publish ack p99: archiving on vs off (Weir)", "ack_p99", "ms")
	ctxRow("Durable publish broker CPU per GB: archiving on vs off (Weir)", "cpu_per_gb", "CPU-s/GB")
	if have(on, "archived_mbps") {
		gs = append(gs, goal{name: "Uploader during the produce (archiving on)", value: math.NaN(), want: "(measured)", context: true,
			measured: fmt.Sprintf("%s MB/s archived, %s segments, lag %s segments at the end, archived %s s later; %s MB of the topic local at the end",
				num(med(on, "archived_mbps")), num(med(on, "archived_segments")), num(med(on, "lag_end")), num(med(on, "drain_s")), num(med(on, "local_mb")))})
	}
	if have(on, "read_ratio") {
		share := ""
		if have(on, "archive_share") {
			share = fmt.Sprintf("; %.0f%% of the tiered topic only in the archive", 100*med(on, "archive_share"))
		}
		gs = append(gs, goal{name: "Catch-up read: from the archive vs local (Weir, file://, same broker)", value: med(on, "read_ratio"),
			want: "(measured)", context: true,
			measured: fmt.Sprintf("%s vs %s MB/s (ratio: median of runs%s)", num(med(on, "read_archive_mbps")), num(med(on, "read_local_mbps")), share)})
	}
	pair := func(name, keyA, keyB, unit string) {
		if have(on, keyA) && have(on, keyB) {
			a, b := med(on, keyA), med(on, keyB)
			gs = append(gs, goal{name: name, measured: fmt.Sprintf("%s vs %s %s", num(a), num(b), unit), value: a / b,
				want: "(context)", context: true})
		}
	}
	pair("Catch-up broker CPU per GB read: archive vs local", "read_archive_cpu_per_gb", "read_local_cpu_per_gb", "CPU-s/GB")
	pair("Catch-up bytes read() per byte consumed: archive vs local", "read_archive_amp", "read_local_amp", "bytes/byte")
	return gs
}

package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// settings are the run's knobs (flags of run).
type settings struct {
	reps         int
	duration     time.Duration
	partitions   int
	recordSize   int
	rate         int
	backlog      int64 // bytes of the catch-up backlog
	restartBytes int64 // bytes in the log before the kill -9 restarts
	idleParts    int   // partitions of the idle-memory measurement
	manyParts    int   // partitions of the many-partition throughput run
	compactRate  int   // records/s of the compact workload's latency run
	// archiveBacklog is the bytes of each catch-up topic of the archive
	// workload.
	archiveBacklog int64
}

// metric is one figure a workload reports per run.
type metric struct {
	key, label  string
	lowerBetter bool
}

// workload is one comparison: the same load against each target, reps
// times, interleaved.
type workload struct {
	name, title string
	command     string // the weir bench command, for the report
	note        string // said under the command in the report; "" for nothing
	targets     []string
	metrics     []metric
	// perRun is the metric whose every run the table lists (default: the
	// first).
	perRun string
	// rotate runs the targets in an order rotated per repetition (A, B;
	// B, A; …), so that none always follows the same one.
	rotate bool
	// run measures one broker that is up and empty; rep counts from 1.
	run func(ctx context.Context, h *harness, s settings, p *proc, rep int) (map[string]float64, error)
	// custom replaces the standard start/run/stop cycle.
	custom func(ctx context.Context, h *harness, s settings, rep int) (map[string]map[string]float64, error)
}

var (
	mMBps    = metric{key: "mbps", label: "MB/s"}
	mAckP50  = metric{key: "ack_p50", label: "ack p50 ms", lowerBetter: true}
	mAckP99  = metric{key: "ack_p99", label: "ack p99 ms", lowerBetter: true}
	mE2EP50  = metric{key: "e2e_p50", label: "e2e p50 ms", lowerBetter: true}
	mE2EP99  = metric{key: "e2e_p99", label: "e2e p99 ms", lowerBetter: true}
	mCPUGB   = metric{key: "cpu_per_gb", label: "broker CPU s/GB", lowerBetter: true}
	mReadMB  = metric{key: "read_mbps", label: "read MB/s"}
	mReadCPU = metric{key: "read_cpu_per_gb", label: "broker CPU s/GB read", lowerBetter: true}
	mRSS     = metric{key: "rss_mb", label: "peak RSS MB", lowerBetter: true}
)

func workloads(s settings) []workload {
	produce := fmt.Sprintf("produce -p %d -s %d -d %s", s.partitions, s.recordSize, s.duration)
	return []workload{
		{
			name: "durable", title: "Durable publish (acks=all, fsync before ack)",
			command: produce, targets: []string{"weir-always", "kfake-sync", "null-fsync", "null-fsync-pp"},
			metrics: []metric{mMBps, mAckP50, mAckP99, mCPUGB, mRSS},
			run: func(ctx context.Context, h *harness, st settings, p *proc, _ int) (map[string]float64, error) {
				return produceRun(ctx, h, st, p, st.partitions)
			},
		},
		{
			name: "pagecache", title: "Page-cache publish (no fsync before ack)",
			command: produce, targets: []string{"weir-never", "kfake-dir", "null-file", "kfake-mem", "null-ack"},
			metrics: []metric{mMBps, mAckP50, mAckP99, mCPUGB, mRSS},
			run: func(ctx context.Context, h *harness, st settings, p *proc, _ int) (map[string]float64, error) {
				return produceRun(ctx, h, st, p, st.partitions)
			},
		},
		{
			name: "e2e", title: fmt.Sprintf("End-to-end latency at %d records/s", s.rate),
			command: fmt.Sprintf("e2e -p %d -s %d -d %s --rate %d", s.partitions, s.recordSize, s.duration, s.rate),
			targets: []string{"weir-always", "kfake-sync", "weir-never", "kfake-mem"},
			metrics: []metric{mE2EP50, mE2EP99, mAckP50, mAckP99},
			run:     e2eRun,
		},
		{
			name: "catchup", title: fmt.Sprintf("Catch-up read of a %s backlog", bytesLabel(s.backlog)),
			command: fmt.Sprintf("produce -p %d -s %d -n %d, then consume", s.partitions, s.recordSize, s.backlog/int64(s.recordSize)),
			targets: []string{"weir-always", "kfake-dir"},
			metrics: []metric{mReadMB, mReadCPU},
			run:     catchupRun,
		},
		{
			name: "partitions", title: fmt.Sprintf("Durable publish to %d partitions", s.manyParts),
			command: fmt.Sprintf("produce -p %d -s %d -d %s", s.manyParts, s.recordSize, s.duration),
			targets: []string{"weir-always", "null-fsync", "null-fsync-pp"},
			metrics: []metric{mMBps, mAckP50, mAckP99, mCPUGB, mRSS},
			run: func(ctx context.Context, h *harness, st settings, p *proc, _ int) (map[string]float64, error) {
				return produceRun(ctx, h, st, p, st.manyParts)
			},
		},
		{
			name: "txn", title: "Transactions: idempotent produce vs 100- and 1,000-record transactions (acks=all)",
			command: fmt.Sprintf("produce -p %d -s %d -d %s, then with --txn-records 100 and --txn-records 1000 (one broker, each on its own topic, order rotated per repetition)",
				s.partitions, s.recordSize, s.duration),
			targets: []string{"weir-always", "kfake-sync", "kfake-mem"},
			metrics: txnMetrics, perRun: "t1000_vs_idem",
			run: txnRun,
		},
		compactWorkload(s),
		archiveWorkload(s),
		{
			name: "idle", title: fmt.Sprintf("Memory of %d idle partitions", s.idleParts),
			command: fmt.Sprintf("create a topic of %d partitions, no traffic", s.idleParts),
			targets: []string{"weir-always"},
			metrics: []metric{{key: "kib_per_partition", label: "RSS KiB per partition", lowerBetter: true},
				{key: "create_s", label: "create s", lowerBetter: true}, {key: "fds", label: "open files", lowerBetter: true}},
			custom: idleRun,
		},
		{
			name: "restart", title: fmt.Sprintf("Restart after kill -9 with %s of data", bytesLabel(s.restartBytes)),
			command: fmt.Sprintf("produce %s to %d partitions once, then kill -9 and restart", bytesLabel(s.restartBytes), s.partitions),
			targets: []string{"weir-always"},
			metrics: []metric{{key: "serving_s", label: "s to serving", lowerBetter: true}},
			custom:  nil, // set in runMain: it keeps its data across reps
		},
	}
}

func bytesLabel(n int64) string {
	if n >= 1e9 {
		return strconv.FormatFloat(float64(n)/1e9, 'g', 3, 64) + " GB"
	}
	return strconv.FormatFloat(float64(n)/1e6, 'g', 3, 64) + " MB"
}

// produceRun is one max-rate produce run.
func produceRun(ctx context.Context, h *harness, s settings, p *proc, parts int) (map[string]float64, error) {
	c0 := p.cpu()
	r, err := h.bench(ctx, p.addr, "produce", "-t", "bench", "-p", strconv.Itoa(parts), "-s", strconv.Itoa(s.recordSize), "-d", s.duration.String())
	if err != nil {
		return nil, err
	}
	cpu := p.cpu() - c0
	_, hwm := p.memory()
	pr := r.Produce
	return map[string]float64{
		"mbps": pr.MBPerSec, "ack_p50": pr.Latency.P50, "ack_p99": pr.Latency.P99,
		"cpu_per_gb": cpu / (float64(pr.Bytes) / 1e9), "rss_mb": float64(hwm) / 1e6,
	}, nil
}

// e2eRun is one fixed-rate produce+consume run.
func e2eRun(ctx context.Context, h *harness, s settings, p *proc, _ int) (map[string]float64, error) {
	r, err := h.bench(ctx, p.addr, "e2e", "-t", "bench", "-p", strconv.Itoa(s.partitions), "-s", strconv.Itoa(s.recordSize),
		"-d", s.duration.String(), "--rate", strconv.Itoa(s.rate))
	if err != nil {
		return nil, err
	}
	return map[string]float64{
		"e2e_p50": r.EndToEnd.P50, "e2e_p99": r.EndToEnd.P99,
		"ack_p50": r.Produce.Latency.P50, "ack_p99": r.Produce.Latency.P99,
	}, nil
}

// catchupRun writes the backlog, then reads it from the start.
func catchupRun(ctx context.Context, h *harness, s settings, p *proc, _ int) (map[string]float64, error) {
	n := s.backlog / int64(s.recordSize)
	if _, err := h.bench(ctx, p.addr, "produce", "-t", "bench", "-p", strconv.Itoa(s.partitions), "-s", strconv.Itoa(s.recordSize),
		"-n", strconv.FormatInt(n, 10)); err != nil {
		return nil, err
	}
	c0 := p.cpu()
	r, err := h.bench(ctx, p.addr, "consume", "-t", "bench")
	if err != nil {
		return nil, err
	}
	cpu := p.cpu() - c0
	if r.Consume.Records < n {
		return nil, fmt.Errorf("consumed %d of %d records", r.Consume.Records, n)
	}
	return map[string]float64{"read_mbps": r.Consume.MBPerSec, "read_cpu_per_gb": cpu / (float64(r.Consume.Bytes) / 1e9)}, nil
}

func adminClient(addr string) (*kadm.Client, *kgo.Client, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RequestRetries(0), kgo.RetryTimeout(time.Second))
	if err != nil {
		return nil, nil, err
	}
	return kadm.NewClient(cl), cl, nil
}

// idleRun creates many partitions on a fresh Weir and reads how much
// memory that took.
func idleRun(ctx context.Context, h *harness, s settings, rep int) (map[string]map[string]float64, error) {
	dir, err := h.newDir(fmt.Sprintf("idle-%d", rep))
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	p, err := h.start("weir-always", dir, "", "")
	if err != nil {
		return nil, err
	}
	defer p.stop()
	adm, cl, err := adminClient(p.addr)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	// Settle the runtime with one small topic and a metadata round trip.
	cctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	if _, err := adm.CreateTopic(cctx, 1, -1, nil, "warmup"); err != nil {
		return nil, err
	}
	time.Sleep(time.Second)
	rss0, _ := p.memory()
	begin := time.Now()
	resp, err := adm.CreateTopic(cctx, int32(s.idleParts), -1, nil, "idle")
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		return nil, fmt.Errorf("create %d partitions: %w", s.idleParts, err)
	}
	created := time.Since(begin)
	time.Sleep(2 * time.Second)
	rss1, _ := p.memory()
	ents, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", p.cmd.Process.Pid))
	return map[string]map[string]float64{"weir-always": {
		"kib_per_partition": float64(rss1-rss0) / 1024 / float64(s.idleParts),
		"create_s":          created.Seconds(),
		"fds":               float64(len(ents)),
	}}, nil
}

// restartWorkload returns the custom run of the restart workload: the
// first call writes the data; every call then, for each target in turn,
// kills -9 the running broker and times a fresh start of the target until
// it serves the topic with every acknowledged record. The targets share
// the data (one on-disk format).
func restartWorkload(h *harness, s settings, targets []string) func(ctx context.Context, h *harness, s settings, rep int) (map[string]map[string]float64, error) {
	var (
		dir, addr string
		acked     int64
		running   *proc
	)
	fail := func(err error) (map[string]map[string]float64, error) {
		if running != nil {
			running.kill() // no broker outlives the run
			running = nil
		}
		return nil, err
	}
	return func(ctx context.Context, _ *harness, _ settings, rep int) (map[string]map[string]float64, error) {
		if running == nil {
			var err error
			if dir, err = h.newDir("restart"); err != nil {
				return nil, err
			}
			if running, err = h.start(targets[0], dir, "", ""); err != nil {
				return nil, err
			}
			addr = running.addr
			n := s.restartBytes / int64(s.recordSize)
			r, err := h.bench(ctx, addr, "produce", "-t", "bench", "-p", strconv.Itoa(s.partitions), "-s", strconv.Itoa(s.recordSize),
				"-n", strconv.FormatInt(n, 10))
			if err != nil {
				return fail(err)
			}
			acked = r.Produce.Records
		}
		out := map[string]map[string]float64{}
		for _, t := range targets {
			running.kill()
			running = nil
			begin := time.Now()
			p, err := h.start(t, dir, addr, "")
			if err != nil {
				return nil, err
			}
			running = p
			if err := waitServing(ctx, addr, "bench", acked); err != nil {
				return fail(err)
			}
			out[t] = map[string]float64{"serving_s": time.Since(begin).Seconds()}
		}
		if rep == s.reps {
			running.stop()
			running = nil
			_ = os.RemoveAll(dir)
		}
		return out, nil
	}
}

// waitServing polls until the broker at addr lists topic's end offsets
// summing to at least want.
func waitServing(ctx context.Context, addr, topic string, want int64) error {
	deadline := time.Now().Add(5 * time.Minute)
	for time.Now().Before(deadline) {
		adm, cl, err := adminClient(addr)
		if err == nil {
			octx, cancel := context.WithTimeout(ctx, 2*time.Second)
			ends, err := adm.ListEndOffsets(octx, topic)
			cancel()
			cl.Close()
			if err == nil && ends.Error() == nil {
				var sum int64
				ends.Each(func(o kadm.ListedOffset) { sum += o.Offset })
				if sum >= want {
					return nil
				}
				return fmt.Errorf("after restart the end offsets sum to %d, %d were acknowledged", sum, want)
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	return fmt.Errorf("not serving %s within 5 minutes", topic)
}

package main

import (
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"
)

// report prints the results as markdown: one table per workload, then
// the targets as ratios of medians.
type report struct {
	s         settings
	workloads []workload
	results   []result
	took      time.Duration
	cpus      int
}

// values returns the per-rep values of key for target in workload.
func (r *report) values(workload, target, key string) []float64 {
	var out []float64
	for _, res := range r.results {
		if res.workload == workload && res.target == target {
			if v, ok := res.vals[key]; ok {
				out = append(out, v)
			}
		}
	}
	return out
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func (r *report) median(workload, target, key string) float64 {
	return median(r.values(workload, target, key))
}

func num(v float64) string {
	switch {
	case math.IsNaN(v):
		return "–"
	case math.Abs(v) >= 100:
		return fmt.Sprintf("%.0f", v)
	case math.Abs(v) >= 10:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.3g", v)
}

// cell is a table's median of vs, or n/a when the target measured nothing
// (a run it cannot do).
func cell(vs []float64) string {
	if len(vs) == 0 {
		return "n/a"
	}
	return num(median(vs))
}

func machine() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for l := range strings.SplitSeq(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	return fmt.Sprintf("%d CPUs (%s), Linux %s, %s", runtime.NumCPU(), model, strings.TrimSpace(string(kernel)), runtime.Version())
}

func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func (r *report) write(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "Run of %s, %s; load average at the end %s.\n", time.Now().UTC().Format("2006-01-02 15:04 UTC"), machine(), loadavg())
	fmt.Fprintf(&b, "%d interleaved repetitions per target, medians shown; %d-byte records, %d partitions, %s per timed run; took %s.\n",
		r.s.reps, r.s.recordSize, r.s.partitions, r.s.duration, r.took.Round(time.Second))
	for _, wl := range r.workloads {
		fmt.Fprintf(&b, "\n#### %s\n\n", wl.title)
		fmt.Fprintf(&b, "`%s`\n\n", wl.command)
		if wl.note != "" {
			fmt.Fprintf(&b, "%s\n\n", wl.note)
		}
		head := []string{"Target"}
		for _, m := range wl.metrics {
			head = append(head, m.label)
		}
		first := wl.metrics[0]
		for _, m := range wl.metrics {
			if m.key == wl.perRun {
				first = m
			}
		}
		head = append(head, first.label+" per run")
		fmt.Fprintf(&b, "| %s |\n|---|%s\n", strings.Join(head, " | "), strings.Repeat("---:|", len(head)-1))
		targets := wl.targets
		for _, t := range targets {
			row := []string{t}
			for _, m := range wl.metrics {
				row = append(row, cell(r.values(wl.name, t, m.key)))
			}
			var runs []string
			for _, v := range r.values(wl.name, t, first.key) {
				runs = append(runs, num(v))
			}
			row = append(row, strings.Join(runs, ", "))
			fmt.Fprintf(&b, "| %s |\n", strings.Join(row, " | "))
		}
	}
	b.WriteString(r.goals())
	_, err := io.WriteString(w, b.String())
	return err
}

// maxNoise is the widest spread of runs (max/min) a "within noise" goal
// is judged on.
const maxNoise = 2.0

// goal is one target of the issue, evaluated on medians.
type goal struct {
	name     string
	measured string
	value    float64
	want     string
	ok       bool
	context  bool // not a target: a ceiling or floor to read one by
	// inconclusive: the runs were too far apart for the goal to tell
	// (reported as such, neither met nor missed).
	inconclusive bool
}

func (r *report) goals() string {
	var gs []goal
	have := func(wl, t, k string) bool { return len(r.values(wl, t, k)) > 0 }
	// ratioOf compares key a of target a with key b of target b: two
	// figures of one run (transactional vs idempotent) or of two.
	ratioOf := func(name, wl, a, keyA, bWl, b, keyB, unit string, atLeast, atMost float64) {
		if !have(wl, a, keyA) || !have(bWl, b, keyB) {
			return
		}
		va, vb := r.median(wl, a, keyA), r.median(bWl, b, keyB)
		g := goal{name: name, measured: fmt.Sprintf("%s vs %s %s", num(va), num(vb), unit), value: va / vb}
		if atLeast > 0 {
			g.want, g.ok = fmt.Sprintf("≥ %.2f×", atLeast), g.value >= atLeast
		} else {
			g.want, g.ok = fmt.Sprintf("≤ %.2f×", atMost), g.value <= atMost
		}
		gs = append(gs, g)
	}
	ratio := func(name, wl, a, bWl, b, key, unit string, atLeast, atMost float64) {
		ratioOf(name, wl, a, key, bWl, b, key, unit, atLeast, atMost)
	}
	// context adds a row that is no target but bounds one: what the
	// ceilings and floors measured in the same run allow here.
	contextOf := func(name, wl, a, keyA, bWl, b, keyB, unit, label string) {
		if !have(wl, a, keyA) || !have(bWl, b, keyB) {
			return
		}
		va, vb := r.median(wl, a, keyA), r.median(bWl, b, keyB)
		gs = append(gs, goal{name: name, measured: fmt.Sprintf("%s vs %s %s", num(va), num(vb), unit), value: va / vb,
			want: label, context: true})
	}
	context := func(name, wl, a, bWl, b, key, unit string) {
		contextOf(name, wl, a, key, bWl, b, key, unit, "(bound)")
	}
	// peer adds a row that compares, without a goal: another broker, or
	// the peer's own cost of the same feature.
	peer := func(name, wl, a, keyA, b, keyB, unit string) {
		contextOf(name, wl, a, keyA, wl, b, keyB, unit, "(peer)")
	}
	// paired is a goal on the median of per-run ratios (ratioKey) of two
	// figures measured on the same broker in the same run: their noise is
	// shared, so the ratio is steadier than one of medians.
	paired := func(name, wl, t, keyA, keyB, ratioKey, unit string, atLeast float64) {
		if !have(wl, t, ratioKey) {
			return
		}
		v := r.median(wl, t, ratioKey)
		gs = append(gs, goal{name: name, value: v, want: fmt.Sprintf("≥ %.2f×", atLeast), ok: v >= atLeast,
			measured: fmt.Sprintf("%s vs %s %s (ratio: median of runs)", num(r.median(wl, t, keyA)), num(r.median(wl, t, keyB)), unit)})
	}
	absolute := func(name, wl, t, key, unit string, limit float64, want string) {
		if !have(wl, t, key) {
			return
		}
		v := r.median(wl, t, key)
		gs = append(gs, goal{name: name, measured: num(v) + " " + unit, value: math.NaN(), want: want, ok: v <= limit})
	}
	ratio("Durable publish: Weir vs kfake+SyncWrites", "durable", "weir-always", "durable", "kfake-sync", "mbps", "MB/s", 1.8, 0)
	ratio("Durable publish: Weir vs the fsync ceiling", "durable", "weir-always", "durable", "null-fsync", "mbps", "MB/s", 0.65, 0)
	ratio("Page-cache publish: Weir vs kfake+DataDir", "pagecache", "weir-never", "pagecache", "kfake-dir", "mbps", "MB/s", 1.3, 0)
	context("Page-cache publish: file ceiling (null-file) vs kfake+DataDir", "pagecache", "null-file", "pagecache", "kfake-dir", "mbps", "MB/s")
	context("Page-cache publish per core: kfake+DataDir vs Weir broker CPU per GB", "pagecache", "kfake-dir", "pagecache", "weir-never", "cpu_per_gb", "CPU-s/GB")
	ratio("E2E p50 at fixed rate: Weir (durable) vs kfake (memory)", "e2e", "weir-always", "e2e", "kfake-mem", "e2e_p50", "ms", 0, 0.65)
	ratio("E2E p50 at fixed rate: Weir (durable) vs kfake+SyncWrites", "e2e", "weir-always", "e2e", "kfake-sync", "e2e_p50", "ms", 0, 0.65)
	ratio("E2E p50 at fixed rate: Weir (page cache) vs kfake (memory)", "e2e", "weir-never", "e2e", "kfake-mem", "e2e_p50", "ms", 0, 0.65)
	ratio("E2E p99 at fixed rate: Weir (durable) vs kfake (memory)", "e2e", "weir-always", "e2e", "kfake-mem", "e2e_p99", "ms", 0, 1)
	ratio("E2E p99 at fixed rate: Weir (durable) vs kfake+SyncWrites", "e2e", "weir-always", "e2e", "kfake-sync", "e2e_p99", "ms", 0, 1)
	absolute("E2E p99 at fixed rate: Weir (durable), absolute", "e2e", "weir-always", "e2e_p99", "ms", 1.0, "≤ 1 ms")
	ratio("Catch-up read: Weir vs kfake", "catchup", "weir-always", "catchup", "kfake-dir", "read_mbps", "MB/s", 1.4, 0)
	absolute("CPU per GB published durably (Weir process)", "durable", "weir-always", "cpu_per_gb", "CPU-s/GB", 6.5, "≤ 6.5")
	ratio(fmt.Sprintf("%d partitions vs %d (Weir, durable)", r.s.manyParts, r.s.partitions), "partitions", "weir-always", "durable", "weir-always", "mbps", "MB/s", 0.8, 0)
	context(fmt.Sprintf("%d partitions vs %d: file-per-partition fsync ceiling (null-fsync-pp)", r.s.manyParts, r.s.partitions), "partitions", "null-fsync-pp", "durable", "null-fsync-pp", "mbps", "MB/s")
	context(fmt.Sprintf("%d partitions vs %d: one shared file fsync ceiling (null-fsync)", r.s.manyParts, r.s.partitions), "partitions", "null-fsync", "durable", "null-fsync", "mbps", "MB/s")
	// Transactions (issue 15): records/s of committed transactions
	// against idempotent produce on the same broker, and against kfake.
	paired("Transactions of 1,000 records vs idempotent produce (Weir, durable)", "txn", "weir-always", "t1000_rps", "idem_rps", "t1000_vs_idem", "rec/s", 0.8)
	pairedPeer := func(name, t, keyA, ratioKey string) {
		if have("txn", t, ratioKey) {
			v := r.median("txn", t, ratioKey)
			gs = append(gs, goal{name: name, value: v, want: "(context)", context: true,
				measured: fmt.Sprintf("%s vs %s rec/s (ratio: median of runs)", num(r.median("txn", t, keyA)), num(r.median("txn", t, "idem_rps")))})
		}
	}
	if have("txn", "weir-always", "t1000x4_vs_idem4") {
		gs = append(gs, goal{name: "Transactions of 1,000 records vs idempotent produce, 4 producers each (Weir, durable)",
			value: r.median("txn", "weir-always", "t1000x4_vs_idem4"), want: "(same goal, 4 producers)", context: true,
			measured: fmt.Sprintf("%s vs %s rec/s (ratio: median of runs)", num(r.median("txn", "weir-always", "t1000x4_rps")),
				num(r.median("txn", "weir-always", "idem4_rps")))})
	}
	pairedPeer("Transactions of 100 records vs idempotent produce (Weir, durable)", "weir-always", "t100_rps", "t100_vs_idem")
	pairedPeer("Transactions of 1,000 records vs idempotent produce (kfake+SyncWrites)", "kfake-sync", "t1000_rps", "t1000_vs_idem")
	pairedPeer("Transactions of 1,000 records vs idempotent produce (kfake, memory)", "kfake-mem", "t1000_rps", "t1000_vs_idem")
	peer("Transactions of 1,000 records: Weir vs kfake+SyncWrites", "txn", "weir-always", "t1000_rps", "kfake-sync", "t1000_rps", "rec/s")
	peer("Transactions of 100 records: Weir vs kfake+SyncWrites", "txn", "weir-always", "t100_rps", "kfake-sync", "t100_rps", "rec/s")
	peer("Commit p50, 1,000-record transactions: Weir vs kfake+SyncWrites", "txn", "weir-always", "t1000_p50", "kfake-sync", "t1000_p50", "ms")
	peer("Commit p99, 1,000-record transactions: Weir vs kfake+SyncWrites", "txn", "weir-always", "t1000_p99", "kfake-sync", "t1000_p99", "ms")
	// Compaction (issue 16): "no visible effect on produce p99 beyond
	// noise" with the cleaner busy vs idle. Noise is how far the idle
	// broker's own runs fell apart (max/min of its per-run values); past
	// maxNoise the goal is reported inconclusive.
	busyIdleOf := func(busy, name, key, unit string, judged bool) {
		const wl, idle = "compact", "weir-cleaner-idle"
		if !have(wl, busy, key) || !have(wl, idle, key) {
			return
		}
		vb, vi := r.median(wl, busy, key), r.median(wl, idle, key)
		n := noise(r.values(wl, idle, key))
		g := goal{name: name, measured: fmt.Sprintf("%s vs %s %s", num(vb), num(vi), unit), value: vb / vi}
		switch {
		case math.IsNaN(n):
			g.want, g.context = "(no spread: one run)", true
		case !judged:
			g.want, g.context = fmt.Sprintf("(idle runs' spread %.2f×)", n), true
		default:
			g.want, g.ok = fmt.Sprintf("≤ %.2f× (idle runs' spread)", n), g.value <= n
			// Noise wider than 2× would hide any effect worth the name.
			g.inconclusive = n > maxNoise
		}
		gs = append(gs, g)
	}
	busyIdle := func(name, key, unit string, judged bool) { busyIdleOf("weir-cleaner-busy", name, key, unit, judged) }
	busyIdle(fmt.Sprintf("Produce p99 at %d rec/s: cleaner busy vs idle (Weir)", r.s.compactRate), "ack_p99", "ms", true)
	busyIdle(fmt.Sprintf("Produce p99.9 at %d rec/s: cleaner busy vs idle (Weir)", r.s.compactRate), "ack_p999", "ms", false)
	busyIdle(fmt.Sprintf("Produce p50 at %d rec/s: cleaner busy vs idle (Weir)", r.s.compactRate), "ack_p50", "ms", false)
	busyIdle("Max-rate produce: cleaner busy vs idle (Weir)", "sat_mbps", "MB/s", false)
	busyIdle(fmt.Sprintf("Broker CPU at %d rec/s: cleaner busy vs idle (Weir)", r.s.compactRate), "rate_cpu_pct", "% of a core", false)
	// The other cleaner brokers against the same idle runs.
	for _, o := range []struct{ target, label string }{
		{"base:weir-cleaner-busy", "busy (older build)"},
		{"weir-cleaner-throttled", "busy, I/O throttled to 20 MB/s"},
		{"weir-cleaner-default", "at its defaults"},
	} {
		busyIdleOf(o.target, fmt.Sprintf("Produce p99 at %d rec/s: cleaner %s vs idle (Weir)", r.s.compactRate, o.label), "ack_p99", "ms", true)
		busyIdleOf(o.target, fmt.Sprintf("Max-rate produce: cleaner %s vs idle (Weir)", o.label), "sat_mbps", "MB/s", false)
	}
	if have("compact", "weir-cleaner-busy", "clean_mbps") {
		m := func(k string) string { return num(r.median("compact", "weir-cleaner-busy", k)) }
		gs = append(gs,
			goal{name: fmt.Sprintf("Cleaner throughput while producing at %d rec/s (busy)", r.s.compactRate), value: math.NaN(), want: "(measured)", context: true,
				measured: fmt.Sprintf("%s MB/s read, %s MB/s written, %s records removed/s, %s cleans", m("clean_mbps"), m("clean_write_mbps"), m("removed_per_s"), m("cleans"))},
			goal{name: "Cleaner throughput while producing at max rate (busy)", value: math.NaN(), want: "(measured)", context: true,
				measured: fmt.Sprintf("%s MB/s read", m("sat_clean_mbps"))})
	}
	// Tiered storage (issue 16): publish with archiving on vs off, and
	// the catch-up read from the archive vs local.
	gs = append(gs, r.archiveGoals()...)
	absolute(fmt.Sprintf("Memory per idle partition (%d partitions)", r.s.idleParts), "idle", "weir-always", "kib_per_partition", "KiB", 10, "≤ 10 KiB (100 MB for 10,000)")
	absolute("Restart after kill -9 to serving", "restart", "weir-always", "serving_s", "s", 2, "< 2 s")
	// Before/after, when an older build ran beside (-base).
	ratio("After vs before: durable publish", "durable", "weir-always", "durable", "base:weir-always", "mbps", "MB/s", 1, 0)
	ratio("After vs before: durable CPU per GB", "durable", "weir-always", "durable", "base:weir-always", "cpu_per_gb", "CPU-s/GB", 0, 1)
	ratio("After vs before: page-cache publish", "pagecache", "weir-never", "pagecache", "base:weir-never", "mbps", "MB/s", 1, 0)
	ratio("After vs before: page-cache CPU per GB", "pagecache", "weir-never", "pagecache", "base:weir-never", "cpu_per_gb", "CPU-s/GB", 0, 1)
	ratio("After vs before: e2e p50 (durable)", "e2e", "weir-always", "e2e", "base:weir-always", "e2e_p50", "ms", 0, 1)
	ratio("After vs before: catch-up read", "catchup", "weir-always", "catchup", "base:weir-always", "read_mbps", "MB/s", 1, 0)
	ratio("After vs before: restart after kill -9", "restart", "weir-always", "restart", "base:weir-always", "serving_s", "s", 0, 1)
	ratio("After vs before: catch-up CPU per GB read", "catchup", "weir-always", "catchup", "base:weir-always", "read_cpu_per_gb", "CPU-s/GB", 0, 1)
	if len(gs) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("\n#### Targets (medians)\n\n| Target | Measured | Ratio | Goal | Met |\n|---|---|---:|---|---|\n")
	for _, g := range gs {
		ratio := "–"
		if !math.IsNaN(g.value) {
			ratio = fmt.Sprintf("%.2f×", g.value)
		}
		met := "no"
		switch {
		case g.context:
			met = "–"
		case g.inconclusive:
			met = "inconclusive (noise)"
		case g.ok:
			met = "yes"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", g.name, g.measured, ratio, g.want, met)
	}
	return b.String()
}

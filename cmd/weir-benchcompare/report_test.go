package main

import (
	"math"
	"os"
	"os/exec"
	"strings"
	"testing"
)

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		in   []float64
		want float64
	}{
		{[]float64{3, 1, 2}, 2},
		{[]float64{4, 1, 3, 2}, 2.5},
		{[]float64{7}, 7},
	} {
		if got := median(tc.in); got != tc.want {
			t.Errorf("median(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
	if !math.IsNaN(median(nil)) {
		t.Error("median of nothing is not NaN")
	}
}

// TestReportGoals: ratios are of medians, and a goal is met or not by
// its bound.
func TestReportGoals(t *testing.T) {
	r := report{s: settings{reps: 3, partitions: 16, manyParts: 1000, idleParts: 10000}}
	add := func(wl, target, key string, vals ...float64) {
		for i, v := range vals {
			r.results = append(r.results, result{wl, target, i + 1, map[string]float64{key: v}})
		}
	}
	add("durable", "weir-always", "mbps", 300, 100, 310) // median 300
	add("durable", "kfake-sync", "mbps", 150, 160, 140)  // median 150
	add("durable", "null-fsync", "mbps", 500, 520, 480)  // median 500
	add("partitions", "null-fsync", "mbps", 400, 410, 390)
	out := r.goals()
	for _, want := range []string{
		"| Durable publish: Weir vs kfake+SyncWrites | 300 vs 150 MB/s | 2.00× | ≥ 1.80× | yes |",
		"| Durable publish: Weir vs the fsync ceiling | 300 vs 500 MB/s | 0.60× | ≥ 0.65× | no |",
		// A bound is shown, never judged.
		"| 1000 partitions vs 16: one shared file fsync ceiling (null-fsync) | 400 vs 500 MB/s | 0.80× | (bound) | – |",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("goals lack %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "Page-cache") {
		t.Errorf("a goal without measurements is listed:\n%s", out)
	}
}

// TestProcCPU reads a child's CPU time and memory from /proc.
func TestProcCPU(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	cmd := exec.Command("sleep", "1")
	if err := cmd.Start(); err != nil {
		t.Skip(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	p := &proc{cmd: cmd}
	if c := p.cpu(); c < 0 || c > 1 {
		t.Errorf("cpu %v s for a sleeping child", c)
	}
	if rss, hwm := p.memory(); rss <= 0 || hwm < rss {
		t.Errorf("rss %d, peak %d", rss, hwm)
	}
}

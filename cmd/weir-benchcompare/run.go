package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"
)

// result is one run of one target.
type result struct {
	workload, target string
	rep              int
	vals             map[string]float64
}

func runMain(args []string) error {
	fs := flag.NewFlagSet("run", flag.ExitOnError)
	var s settings
	weir := fs.String("weir", "bin/weir", "the weir CLI (for `weir bench`)")
	tmp := fs.String("tmp", "", "directory for the brokers' data (default: a new one under $TMPDIR)")
	only := fs.String("only", "", "comma-separated workloads to run (default all): durable,pagecache,e2e,catchup,partitions,txn,compact,archive,idle,restart")
	out := fs.String("out", "", "also write the report (markdown) to this file")
	profile := fs.String("profile", "", "write CPU and allocation profiles of every Weir run to this directory")
	targets := fs.String("targets", "", "comma-separated targets to run (default all of each workload's), e.g. weir-always,kfake-sync")
	base := fs.String("base", "", "this command built from older Weir sources: adds base:weir-* targets beside Weir's (before/after)")
	fs.IntVar(&s.reps, "reps", 3, "repetitions per target (interleaved)")
	fs.DurationVar(&s.duration, "duration", 10*time.Second, "length of each timed run")
	fs.IntVar(&s.partitions, "partitions", 16, "partitions of the topic")
	fs.IntVar(&s.recordSize, "record-size", 1024, "record value size in bytes")
	fs.IntVar(&s.rate, "rate", 5000, "records/s of the end-to-end latency run")
	fs.Int64Var(&s.backlog, "backlog", 1e9, "bytes of the catch-up backlog")
	fs.Int64Var(&s.restartBytes, "restart-bytes", 10e9, "bytes written before the kill -9 restarts")
	fs.IntVar(&s.idleParts, "idle-partitions", 10000, "partitions of the idle-memory run")
	fs.IntVar(&s.manyParts, "many-partitions", 1000, "partitions of the many-partition run")
	fs.IntVar(&s.compactRate, "compact-rate", 20000, "records/s of the compact workload's latency run")
	fs.Int64Var(&s.archiveBacklog, "archive-backlog", 1e9, "bytes of each catch-up topic of the archive workload")
	_ = fs.Parse(args)

	self, err := os.Executable()
	if err != nil {
		return err
	}
	if _, err := exec.LookPath(*weir); err != nil {
		return fmt.Errorf("the weir CLI %s: %w (make build)", *weir, err)
	}
	h := &harness{self: self, weir: *weir, log: os.Stderr, profile: *profile, base: *base}
	if h.weir, err = filepath.Abs(*weir); err != nil {
		return err
	}
	if *tmp == "" {
		if *tmp, err = os.MkdirTemp("", "weir-benchcompare-"); err != nil {
			return err
		}
		defer os.RemoveAll(*tmp)
	}
	h.tmp = *tmp
	if h.profile != "" {
		if err := os.MkdirAll(h.profile, 0o755); err != nil {
			return err
		}
	}
	ctx := context.Background()
	started := time.Now()
	var ran []workload
	var results []result
	for _, w := range workloads(s) {
		if *only != "" && !slices.Contains(strings.Split(*only, ","), w.name) {
			continue
		}
		if h.base != "" && w.name != "idle" && w.name != "archive" {
			// Each Weir target runs right before its older build (not
			// for archive, and for compact only weir-cleaner-busy: older
			// peers lack the other broker kinds).
			var ts []string
			for _, t := range w.targets {
				ts = append(ts, t)
				if strings.HasPrefix(t, "weir-") && (w.name != "compact" || t == "weir-cleaner-busy") {
					ts = append(ts, "base:"+t)
				}
			}
			w.targets = ts
		}
		if *targets != "" {
			want := strings.Split(*targets, ",")
			w.targets = slices.DeleteFunc(w.targets, func(t string) bool { return !slices.Contains(want, t) })
			if len(w.targets) == 0 {
				continue
			}
		}
		if w.name == "restart" {
			w.custom = restartWorkload(h, s, w.targets)
		}
		ran = append(ran, w)
		fmt.Fprintf(os.Stderr, "== %s: %s\n", w.name, w.title)
		for rep := 1; rep <= s.reps; rep++ {
			if w.custom != nil {
				res, err := w.custom(ctx, h, s, rep)
				if err != nil {
					return fmt.Errorf("%s rep %d: %w", w.name, rep, err)
				}
				for t, v := range res {
					results = append(results, result{w.name, t, rep, v})
					fmt.Fprintf(os.Stderr, "   %-12s rep %d %v\n", t, rep, brief(v))
				}
				continue
			}
			ts := w.targets
			if w.rotate {
				ts = rotated(ts, rep)
			}
			for _, t := range ts {
				v, err := runOne(ctx, h, s, w, t, rep)
				if err != nil {
					return fmt.Errorf("%s %s rep %d: %w", w.name, t, rep, err)
				}
				results = append(results, result{w.name, t, rep, v})
				fmt.Fprintf(os.Stderr, "   %-12s rep %d %v\n", t, rep, brief(v))
			}
		}
	}
	var sinks []io.Writer
	sinks = append(sinks, os.Stdout)
	if *out != "" {
		f, err := os.Create(*out)
		if err != nil {
			return err
		}
		defer f.Close()
		sinks = append(sinks, f)
	}
	rep := report{s: s, workloads: ran, results: results, took: time.Since(started), cpus: runtime.NumCPU()}
	return rep.write(io.MultiWriter(sinks...))
}

// runOne starts target on an empty directory, runs w once and stops it.
func runOne(ctx context.Context, h *harness, s settings, w workload, target string, rep int) (map[string]float64, error) {
	dir, err := h.newDir(fmt.Sprintf("%s-%s-%d", w.name, target, rep))
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	p, err := h.start(target, dir, "", fmt.Sprintf("%s-%s-%d", w.name, target, rep))
	if err != nil {
		return nil, err
	}
	defer p.stop()
	rctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	return w.run(rctx, h, s, p, rep)
}

func brief(v map[string]float64) string {
	keys := make([]string, 0, len(v))
	for k := range v {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%.3g ", k, v[k])
	}
	return b.String()
}

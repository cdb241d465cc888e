package commitlog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weirhq/weir/internal/batch"
	"github.com/weirhq/weir/internal/vfs"
)

// fsEnv is one filesystem the behaviour suite runs on. mem is nil for the
// OS filesystem; tests that need crash simulation or media corruption
// skip there.
type fsEnv struct {
	fs  vfs.FS
	mem *vfs.MemFS
	dir string
}

// forEachFS runs fn as a subtest on the in-memory and the OS filesystem.
func forEachFS(t *testing.T, fn func(t *testing.T, e fsEnv)) {
	t.Helper()
	t.Run("mem", func(t *testing.T) {
		m := vfs.NewMem()
		fn(t, fsEnv{fs: m, mem: m, dir: "/data/p0"})
	})
	t.Run("os", func(t *testing.T) {
		fn(t, fsEnv{fs: vfs.OS(), dir: filepath.Join(t.TempDir(), "data", "p0")})
	})
}

func (e fsEnv) needMem(t *testing.T) {
	t.Helper()
	if e.mem == nil {
		t.Skip("needs the in-memory filesystem")
	}
}

// quiet discards the log's warnings (torn tails are expected in tests).
var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// opts returns default options on e that log nothing; tests override
// fields after the call.
func (e fsEnv) opts() Options {
	return Options{FS: e.fs, Dir: e.dir, Logger: quiet}
}

func openLog(t testing.TB, o Options) *Log {
	t.Helper()
	if o.Logger == nil {
		o.Logger = quiet
	}
	l, err := Open(o)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

func closeLog(t testing.TB, l *Log) {
	t.Helper()
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// clock is an injectable Options.Now.
type clock struct{ ms atomic.Int64 }

func newClock(ms int64) *clock {
	c := &clock{}
	c.ms.Store(ms)
	return c
}

func (c *clock) now() time.Time { return time.UnixMilli(c.ms.Load()) }
func (c *clock) set(ms int64)   { c.ms.Store(ms) }

// value returns size deterministic bytes for record i of seed.
func value(seed, i, size int) []byte {
	v := make([]byte, size)
	x := uint32(seed*7919 + i*104729 + 1)
	for j := range v {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		v[j] = byte(x)
	}
	return v
}

// mkBatch builds one uncompressed batch of n records of size-byte values
// with timestamps ts, ts+1, ...
func mkBatch(t testing.TB, seed, n, size int, ts int64) []byte {
	t.Helper()
	tss := make([]int64, n)
	for i := range tss {
		tss[i] = ts + int64(i)
	}
	return mkBatchTs(t, seed, size, tss...)
}

// mkBatchTs builds one batch with one record per timestamp.
func mkBatchTs(t testing.TB, seed, size int, tss ...int64) []byte {
	t.Helper()
	recs := make([]batch.Record, len(tss))
	for i, ts := range tss {
		recs[i] = batch.Record{
			TimestampDelta: ts - tss[0],
			Key:            fmt.Appendf(nil, "k%d-%d", seed, i),
			Value:          value(seed, i, size),
		}
	}
	b, err := batch.Build(batch.BuildOptions{BaseTimestamp: tss[0]}, recs)
	if err != nil {
		t.Fatalf("batch.Build: %v", err)
	}
	return b
}

func mustAppend(t testing.TB, l *Log, b []byte) AppendResult {
	t.Helper()
	res, err := l.Append(b)
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	return res
}

// appendDurable appends b and waits until it is durable.
func appendDurable(t testing.TB, l *Log, b []byte) AppendResult {
	t.Helper()
	res := mustAppend(t, l, b)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := l.WaitDurable(ctx, res.LastOffset+1); err != nil {
		t.Fatalf("WaitDurable(%d): %v", res.LastOffset+1, err)
	}
	return res
}

// splitAll cuts a concatenation of batches into whole batches.
func splitAll(t testing.TB, data []byte) [][]byte {
	t.Helper()
	var out [][]byte
	for len(data) > 0 {
		one, rest, err := batch.Split(data)
		if err != nil {
			t.Fatalf("split: %v", err)
		}
		out = append(out, one)
		data = rest
	}
	return out
}

func header(t testing.TB, b []byte) batch.Header {
	t.Helper()
	h, err := batch.ParseHeader(b)
	if err != nil {
		t.Fatalf("ParseHeader: %v", err)
	}
	return h
}

// readAll reads every visible batch from the log start to the high
// watermark, checking that offsets are contiguous and every batch is
// intact.
func readAll(t testing.TB, l *Log) [][]byte {
	t.Helper()
	var out [][]byte
	hw := l.HighWatermark()
	next := l.LogStartOffset()
	for next < hw {
		data, err := l.Read(next, 1<<20)
		if err != nil {
			t.Fatalf("Read(%d): %v", next, err)
		}
		if len(data) == 0 {
			t.Fatalf("Read(%d) below the high watermark %d returned nothing", next, hw)
		}
		for _, b := range splitAll(t, data) {
			h, err := batch.Verify(b)
			if err != nil {
				t.Fatalf("batch at %d: %v", next, err)
			}
			if len(out) == 0 && (h.BaseOffset > next || h.LastOffset() < next) {
				t.Fatalf("Read(%d) starts with batch [%d, %d]", next, h.BaseOffset, h.LastOffset())
			}
			if len(out) > 0 && h.BaseOffset != next {
				t.Fatalf("batch at %d has base offset %d", next, h.BaseOffset)
			}
			out = append(out, b)
			next = h.LastOffset() + 1
		}
	}
	if next != hw {
		t.Fatalf("read up to %d, high watermark %d", next, hw)
	}
	return out
}

// wantErr fails unless errors.Is(err, target).
func wantErr(t testing.TB, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: err = %v, want %v", what, err, target)
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// listDir returns the names in dir, without the partition's checkpoint.
func listDir(t testing.TB, fsys vfs.FS, dir string) []string {
	t.Helper()
	names, err := fsys.List(dir)
	if err != nil {
		t.Fatalf("List(%s): %v", dir, err)
	}
	return slices.DeleteFunc(names, func(n string) bool { return n == logStartFile })
}

// segFiles returns the expected file names for sealed bases and the
// active one.
func segFiles(active int64, sealed ...int64) []string {
	var out []string
	for _, b := range sealed {
		out = append(out, segmentName(b, indexSuffix), segmentName(b, logSuffix), segmentName(b, timeIndexSuffix))
	}
	out = append(out, segmentName(active, logSuffix))
	slices.Sort(out)
	return out
}

func bases(l *Log) []int64 {
	var out []int64
	for _, s := range *l.segs.Load() {
		out = append(out, s.base)
	}
	return out
}

func equalBatches(t testing.TB, what string, got, want [][]byte) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d batches, want %d", what, len(got), len(want))
	}
	for i := range got {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("%s: batch %d differs (base %d vs %d)", what, i, header(t, got[i]).BaseOffset, header(t, want[i]).BaseOffset)
		}
	}
}

// gate is an Injector that, while held, blocks every fsync of a .log file
// until released, so tests can observe the log between write and fsync.
type gate struct {
	held    atomic.Bool
	release chan struct{}
	waiting chan struct{}
	done    <-chan struct{} // the test ended: let everything through
}

func newGate(t *testing.T) *gate {
	return &gate{release: make(chan struct{}), waiting: make(chan struct{}, 100), done: t.Context().Done()}
}

func (g *gate) hold() { g.held.Store(true) }

// open lets every blocked and future fsync through.
func (g *gate) open() {
	g.held.Store(false)
	close(g.release)
}

func (g *gate) MaybeError(op vfs.Op, path string) error {
	if op == vfs.OpSync && g.held.Load() && filepath.Ext(path) == logSuffix {
		select {
		case g.waiting <- struct{}{}:
		default:
		}
		select {
		case <-g.release:
		case <-g.done:
		}
	}
	return nil
}

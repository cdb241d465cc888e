package commitlog

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/weirhq/weir/internal/batch"
	"github.com/weirhq/weir/internal/vfs"
)

// Benchmarks on the OS filesystem (b.TempDir, so $TMPDIR decides the
// disk). One op is one Append call carrying one batch of n 1 KiB records;
// b.SetBytes counts the batch's bytes, so MB/s compare directly.
//
// BenchmarkAppend/<impl>/<sync>/batch=n/partitions=p runs p logs (or
// files) with benchAppenders goroutines appending to each. impl=log is
// Log.Append (then WaitDurable under sync=always: group commit by the
// log's syncer). impl=file is the baseline: the same bytes written with
// WriteAt to one plain file per partition, and under sync=always the
// classic leader group commit, one fdatasync per group of waiting
// writers. The log's overhead is the ratio of the two at equal settings;
// each log benchmark runs right before its baseline so that noise on a
// shared machine hits both alike.

const (
	benchRecordSize = 1024
	benchAppenders  = 8 // concurrent appenders per partition
	benchSegment    = 64 << 20
)

func benchBatch(b *testing.B, seed, n int) []byte {
	b.Helper()
	recs := make([]batch.Record, n)
	for i := range recs {
		recs[i] = batch.Record{Value: value(seed, i, benchRecordSize)}
	}
	out, err := batch.Build(batch.BuildOptions{BaseTimestamp: 1}, recs)
	if err != nil {
		b.Fatal(err)
	}
	return out
}

func BenchmarkAppend(b *testing.B) {
	for _, d := range []Durability{Always, Never} {
		for _, n := range []int{1, 16, 64, 256} {
			for _, p := range []int{1, 16} {
				name := fmt.Sprintf("%v/batch=%d/partitions=%d", d, n, p)
				b.Run("log/"+name, func(b *testing.B) { benchLog(b, d, n, p) })
				b.Run("file/"+name, func(b *testing.B) { benchFile(b, d == Always, n, p) })
			}
		}
	}
}

// runAppenders runs benchAppenders goroutines per partition until b.N ops
// are done in total; op(part, buf) performs one append of buf.
func runAppenders(b *testing.B, n, partitions int, op func(part int, buf []byte) error) {
	b.Helper()
	bufs := make([][]byte, partitions*benchAppenders)
	for i := range bufs {
		bufs[i] = benchBatch(b, i, n)
	}
	b.SetBytes(int64(len(bufs[0])))
	var done atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	for i := range bufs {
		wg.Go(func() {
			for done.Add(1) <= int64(b.N) {
				if err := op(i%partitions, bufs[i]); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
}

func benchLog(b *testing.B, d Durability, n, partitions int) {
	dir := b.TempDir()
	logs := make([]*Log, partitions)
	for i := range logs {
		l, err := Open(Options{
			FS: vfs.OS(), Dir: filepath.Join(dir, fmt.Sprint(i)), Durability: d, Logger: quiet,
			SegmentBytes: benchSegment, RetentionBytes: 2 * benchSegment, RetentionMs: -1,
		})
		if err != nil {
			b.Fatal(err)
		}
		defer l.Close()
		logs[i] = l
	}
	// Retention runs beside the appenders, as a broker's ticker would,
	// to bound the disk footprint as the baseline's truncation does.
	kick, stop := make(chan struct{}, 1), make(chan struct{})
	var retention sync.WaitGroup
	retention.Go(func() {
		for {
			select {
			case <-stop:
				return
			case <-kick:
			}
			for _, l := range logs {
				if _, err := l.EnforceRetention(); err != nil {
					b.Error(err)
				}
			}
		}
	})
	defer retention.Wait()
	defer close(stop)
	var ops atomic.Int64
	ctx := context.Background()
	runAppenders(b, n, partitions, func(part int, buf []byte) error {
		l := logs[part]
		res, err := l.Append(buf)
		if err != nil {
			return err
		}
		if ops.Add(1)%1024 == 0 {
			select {
			case kick <- struct{}{}:
			default:
			}
		}
		if d == Always {
			return l.WaitDurable(ctx, res.LastOffset+1)
		}
		return nil
	})
}

// plainFile is the baseline: a file appended with WriteAt and made
// durable by leader group commit. It starts over (truncates) when it
// reaches benchSegment bytes, like a log rolling.
type plainFile struct {
	f vfs.File

	mu      sync.Mutex // write position
	pos     int64
	written int64 // bytes written in total

	syncMu  sync.Mutex // held by the leader while it fdatasyncs
	durable atomic.Int64
}

func (p *plainFile) append(buf []byte, durable bool) error {
	p.mu.Lock()
	if p.pos+int64(len(buf)) > benchSegment {
		if err := p.f.Truncate(0); err != nil {
			p.mu.Unlock()
			return err
		}
		p.pos = 0
	}
	_, err := p.f.WriteAt(buf, p.pos)
	p.pos += int64(len(buf))
	p.written += int64(len(buf))
	end := p.written
	p.mu.Unlock()
	if err != nil || !durable {
		return err
	}
	for p.durable.Load() < end {
		p.syncMu.Lock()
		if p.durable.Load() < end {
			p.mu.Lock()
			w := p.written
			p.mu.Unlock()
			if err := p.f.Sync(); err != nil {
				p.syncMu.Unlock()
				return err
			}
			p.durable.Store(w)
		}
		p.syncMu.Unlock()
	}
	return nil
}

func benchFile(b *testing.B, durable bool, n, partitions int) {
	dir := b.TempDir()
	files := make([]*plainFile, partitions)
	for i := range files {
		f, err := vfs.OS().Create(filepath.Join(dir, fmt.Sprint(i)))
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		files[i] = &plainFile{f: f}
	}
	runAppenders(b, n, partitions, func(part int, buf []byte) error {
		return files[part].append(buf, durable)
	})
}

// BenchmarkRead reads a 64 MiB log of 16-record batches sequentially,
// 1 MiB per Read, as a fetch does.
func BenchmarkRead(b *testing.B) {
	l, err := Open(Options{FS: vfs.OS(), Dir: b.TempDir(), Durability: Never, Logger: quiet, SegmentBytes: benchSegment / 4})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	buf := benchBatch(b, 1, 16)
	for total := 0; total < 64<<20; total += len(buf) {
		if _, err := l.Append(buf); err != nil {
			b.Fatal(err)
		}
	}
	var read int64
	off := int64(0)
	b.ResetTimer()
	for range b.N {
		data, err := l.Read(off, 1<<20)
		if err != nil {
			b.Fatal(err)
		}
		if len(data) == 0 {
			b.Fatalf("nothing at %d", off)
		}
		read += int64(len(data))
		h, err := batch.ParseHeader(data[len(data)-len(buf):])
		if err != nil {
			b.Fatal(err)
		}
		if off = h.LastOffset() + 1; off == l.HighWatermark() {
			off = 0
		}
	}
	b.StopTimer()
	b.SetBytes(read / int64(b.N))
}

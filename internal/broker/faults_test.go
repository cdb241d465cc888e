package broker

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/weirhq/weir/internal/batch"
	"github.com/weirhq/weir/internal/commitlog"
	"github.com/weirhq/weir/internal/vfs"
)

// Disk faults at the broker level: what a partition does when the disk
// fails an fsync (EIO), fills up (ENOSPC) or silently flips a byte of a
// sealed segment. The Kafka-level error codes, logs and metrics for the
// same faults are checked in internal/kafka/storage_faults_test.go.

// faultLog collects a broker's log output for the operator-visibility
// checks.
type faultLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *faultLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *faultLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// faultBatch is one uncompressed batch whose values name tag and i.
func faultBatch(t *testing.T, tag string, n int) []byte {
	t.Helper()
	recs := make([]batch.Record, n)
	for i := range recs {
		recs[i] = batch.Record{OffsetDelta: int32(i), Value: fmt.Appendf(nil, "%s-%d-%s", tag, i, strings.Repeat("v", 40))}
	}
	b, err := batch.Build(batch.BuildOptions{BaseTimestamp: time.Now().UnixMilli()}, recs)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// produceDurable appends and waits as an acks=all produce does.
func produceDurable(p *Partition, records []byte) (Appended, error) {
	a, err := p.Produce(records)
	if err != nil {
		return a, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return a, p.WaitDurable(ctx, a.LastOffset+1)
}

// partitionDir is where the broker keeps one partition's log.
func partitionDir(b *Broker, p *Partition) string {
	return filepath.Join(b.logsDir(), hex.EncodeToString(p.topic.ID[:]), strconv.Itoa(int(p.index)))
}

// readValues reads a partition from its log start to its high watermark,
// checking the CRC of every batch served, and returns the record values.
func readValues(t *testing.T, p *Partition) ([]string, error) {
	t.Helper()
	var out []string
	for off := p.LogStartOffset(); off < p.HighWatermark(); {
		data, err := p.Read(off, 1<<20)
		if err != nil {
			return out, err
		}
		if len(data) == 0 {
			t.Fatalf("empty read at %d below the high watermark %d", off, p.HighWatermark())
		}
		for len(data) > 0 {
			one, rest, err := batch.Split(data)
			if err != nil {
				t.Fatalf("served bytes do not frame: %v", err)
			}
			data = rest
			h, recs, err := batch.Records(one, 1<<20)
			if err != nil {
				t.Fatalf("served a damaged batch at %d: %v", h.BaseOffset, err)
			}
			for _, r := range recs {
				if o := r.Offset(h); o >= off {
					out = append(out, string(r.Value))
				}
			}
			off = h.LastOffset() + 1
		}
	}
	return out, nil
}

// TestFsyncEIO: once an fsync of a partition fails, nothing written after
// the last good fsync is acknowledged or made visible, the partition
// refuses further writes with ErrStorage, the operator is told in the log,
// and the other partitions keep working. A restart recovers the partition
// with everything that was acknowledged.
func TestFsyncEIO(t *testing.T) {
	mem := vfs.NewMem()
	var target atomic.Pointer[string]
	var inj atomic.Pointer[vfs.Injector]
	fsys := vfs.NewErrorFS(mem, vfs.InjectorFunc(func(op vfs.Op, path string) error {
		dir, f := target.Load(), inj.Load()
		if dir == nil || f == nil || !strings.HasPrefix(path, *dir+"/") {
			return nil
		}
		return (*f).MaybeError(op, path)
	}))
	logs := &faultLog{}
	opts := Options{FS: fsys, Dir: "/data", Logger: slog.New(slog.NewTextHandler(logs, nil))}
	b, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = b.Close() }()
	if _, err := b.CreateTopic("t", 2, nil, false); err != nil {
		t.Fatal(err)
	}
	p0, _ := b.Partition("t", 0)
	p1, _ := b.Partition("t", 1)
	if _, err := produceDurable(p0, faultBatch(t, "acked", 3)); err != nil {
		t.Fatal(err)
	}
	hw := p0.HighWatermark()

	dir := partitionDir(b, p0)
	target.Store(&dir)
	eio := vfs.FailOnce(vfs.OpSync, syscall.EIO)
	inj.Store(&eio)

	// The write succeeds, its fsync fails: not acknowledged, not visible.
	_, err = produceDurable(p0, faultBatch(t, "lost", 2))
	if !errors.Is(err, ErrStorage) || !errors.Is(err, syscall.EIO) {
		t.Fatalf("acks=all append whose fsync fails: %v, want ErrStorage wrapping EIO", err)
	}
	if got := p0.HighWatermark(); got != hw {
		t.Fatalf("high watermark moved to %d past the failed fsync (was %d)", got, hw)
	}
	if p0.Err() == nil {
		t.Fatal("partition reports no error after a failed fsync")
	}
	// Later fsyncs would succeed (FailOnce), but nothing is trusted again.
	for i := 0; i < 3; i++ {
		if _, err := p0.Produce(faultBatch(t, "refused", 1)); !errors.Is(err, ErrStorage) {
			t.Fatalf("append %d after a failed fsync: %v, want ErrStorage", i, err)
		}
	}
	if got := p0.HighWatermark(); got != hw {
		t.Fatalf("high watermark %d, want %d", got, hw)
	}
	if vals, err := readValues(t, p0); err != nil || len(vals) != 3 {
		t.Fatalf("readable after the failure: %q, %v; want the 3 acknowledged records", vals, err)
	}
	if !strings.Contains(logs.String(), "level=ERROR") || !strings.Contains(logs.String(), "refusing appends") ||
		!strings.Contains(logs.String(), "input/output error") {
		t.Errorf("the failure is not in the log:\n%s", logs.String())
	}
	// Other partitions keep working.
	if _, err := produceDurable(p1, faultBatch(t, "other", 2)); err != nil {
		t.Fatalf("another partition after the failure: %v", err)
	}

	// Power loss now: the acknowledged records survive, the rest never
	// became durable.
	crashed := mem.CrashStrict()
	b2, err := Open(Options{FS: crashed, Dir: "/data", Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = b2.Close() }()
	q0, _ := b2.Partition("t", 0)
	vals, err := readValues(t, q0)
	if err != nil {
		t.Fatal(err)
	}
	if len(vals) != 3 || !strings.HasPrefix(vals[0], "acked-0") {
		t.Fatalf("after the crash partition 0 holds %q, want the 3 acknowledged records", vals)
	}
	if _, err := produceDurable(q0, faultBatch(t, "again", 1)); err != nil {
		t.Fatalf("append after recovery: %v", err)
	}
	if got := q0.HighWatermark(); got != 4 {
		t.Fatalf("high watermark %d after recovery and one append, want 4", got)
	}
}

// TestENOSPC: a full disk fails the produce cleanly (nothing written,
// nothing visible, no offset consumed, the partition stays usable) and
// produce works again once space is freed, also when the disk filled up
// part-way through a write, at a segment roll, or during topic creation.
func TestENOSPC(t *testing.T) {
	for _, partial := range []bool{false, true} {
		t.Run(fmt.Sprintf("partial=%v", partial), func(t *testing.T) {
			mem := vfs.NewMem()
			full := vfs.NewToggle(vfs.OpWrite, vfs.OpCreate)
			var inj vfs.Injector = full
			if partial {
				inj = vfs.WithPartialWrite(full, func(n int) int { return n / 2 })
			}
			b, err := Open(Options{FS: vfs.NewErrorFS(mem, inj), Dir: "/data", Logger: quiet(), SegmentBytes: 1024})
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = b.Close() }()
			if _, err := b.CreateTopic("t", 1, nil, false); err != nil {
				t.Fatal(err)
			}
			p, _ := b.Partition("t", 0)
			var want []string
			for i := 0; i < 40; i++ {
				tag := fmt.Sprintf("r%d", i)
				if i%7 == 3 {
					full.Set(syscall.ENOSPC)
					end := p.HighWatermark()
					_, err := produceDurable(p, faultBatch(t, "nospace", 2))
					if !errors.Is(err, syscall.ENOSPC) || !errors.Is(err, ErrStorage) {
						t.Fatalf("append on a full disk: %v, want ErrStorage wrapping ENOSPC", err)
					}
					if p.HighWatermark() != end || p.Err() != nil {
						t.Fatalf("after ENOSPC: high watermark %d (was %d), partition error %v", p.HighWatermark(), end, p.Err())
					}
					if _, err := b.CreateTopic("new", 1, nil, false); !errors.Is(err, syscall.ENOSPC) {
						t.Fatalf("create topic on a full disk: %v, want ENOSPC", err)
					}
					if _, err := b.Topic("new"); !errors.Is(err, ErrUnknownTopicOrPartition) {
						t.Fatalf("topic created on a full disk: %v", err)
					}
					full.Clear()
				}
				a, err := produceDurable(p, faultBatch(t, tag, 2))
				if err != nil {
					t.Fatalf("append %d after space was freed: %v", i, err)
				}
				if a.BaseOffset != int64(2*i) {
					t.Fatalf("append %d got offset %d, want %d: a failed append used offsets", i, a.BaseOffset, 2*i)
				}
				want = append(want, tag+"-0", tag+"-1")
			}
			if _, err := b.CreateTopic("new", 1, nil, false); err != nil {
				t.Fatalf("create topic once space was freed: %v", err)
			}
			check := func(p *Partition) {
				t.Helper()
				vals, err := readValues(t, p)
				if err != nil {
					t.Fatal(err)
				}
				if len(vals) != len(want) {
					t.Fatalf("%d records, want %d", len(vals), len(want))
				}
				for i := range want {
					if !strings.HasPrefix(vals[i], want[i]+"-") {
						t.Fatalf("record %d is %q, want %s", i, vals[i], want[i])
					}
				}
			}
			check(p)
			if err := b.Close(); err != nil {
				t.Fatal(err)
			}
			b2, err := Open(Options{FS: mem.CrashStrict(), Dir: "/data", Logger: quiet(), SegmentBytes: 1024})
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = b2.Close() }()
			q, _ := b2.Partition("t", 0)
			check(q)
		})
	}
}

// TestCorruptSealedSegment: a byte flipped on disk inside a sealed
// segment (media corruption: it survives fsync and restarts) is caught by
// the batch CRC and never served as data: reads up to the damaged batch
// return the intact ones, a read of the damaged batch fails with
// ErrCorrupt, whether the log was open when the byte flipped, cleanly
// reopened (indexes trusted) or recovered after a crash.
func TestCorruptSealedSegment(t *testing.T) {
	for _, tc := range []struct {
		name  string
		pos   func(batchStart, batchSize int) int // byte to flip
		after string                              // "open", "reopen", "crash"
	}{
		{"record value", func(s, n int) int { return s + n - 10 }, "open"},
		{"record value after reopen", func(s, n int) int { return s + n - 10 }, "reopen"},
		{"record value after crash", func(s, n int) int { return s + n - 10 }, "crash"},
		{"crc field", func(s, _ int) int { return s + 18 }, "open"},
		{"attributes", func(s, _ int) int { return s + 22 }, "reopen"},
		{"record count", func(s, _ int) int { return s + 60 }, "open"},
		{"batch length", func(s, _ int) int { return s + 11 }, "open"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mem := vfs.NewMem()
			opts := Options{FS: mem, Dir: "/data", Logger: quiet(), SegmentBytes: 1024}
			b, err := Open(opts)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := b.CreateTopic("t", 1, nil, false); err != nil {
				t.Fatal(err)
			}
			p, _ := b.Partition("t", 0)
			var sizes []int
			for i := 0; i < 30; i++ {
				raw := faultBatch(t, fmt.Sprintf("r%d", i), 2)
				sizes = append(sizes, len(raw))
				if _, err := produceDurable(p, raw); err != nil {
					t.Fatal(err)
				}
			}
			dir := partitionDir(b, p)
			names, err := mem.List(dir)
			if err != nil {
				t.Fatal(err)
			}
			var segs []string
			for _, n := range names {
				if strings.HasSuffix(n, ".log") {
					segs = append(segs, n)
				}
			}
			if len(segs) < 3 {
				t.Fatalf("want several segments, have %v", segs)
			}
			// The third batch of the first (sealed) segment: offsets 4 and 5.
			start := sizes[0] + sizes[1]
			pos := tc.pos(start, sizes[2])
			seg := filepath.Join(dir, segs[0])
			orig, _ := mem.ReadFile(seg)
			if err := mem.Corrupt(seg, int64(pos), []byte{orig[pos] ^ 0x5a}); err != nil {
				t.Fatal(err)
			}

			switch tc.after {
			case "reopen":
				if err := b.Close(); err != nil {
					t.Fatal(err)
				}
				if b, err = Open(opts); err != nil {
					t.Fatal(err)
				}
			case "crash":
				_ = b.Close()
				opts.FS = mem.CrashStrict()
				// Drop the clean-shutdown markers: recover as after a crash.
				if err := opts.FS.Remove(filepath.Join(dir, ".clean")); err != nil {
					t.Fatal(err)
				}
				if b, err = Open(opts); err != nil {
					if !errors.Is(err, commitlog.ErrCorrupt) {
						t.Fatalf("recovery: %v, want success or ErrCorrupt", err)
					}
					return // refusing to open a damaged sealed segment is fine too
				}
			}
			defer func() { _ = b.Close() }()
			p, _ = b.Partition("t", 0)

			// Offsets 0-3 are intact and served.
			data, err := p.Read(0, 1<<20)
			if err != nil {
				t.Fatalf("read before the damage: %v", err)
			}
			var served int64
			for len(data) > 0 {
				one, rest, err := batch.Split(data)
				if err != nil {
					t.Fatal(err)
				}
				h, err := batch.Verify(one)
				if err != nil {
					t.Fatalf("served a damaged batch at %d: %v", h.BaseOffset, err)
				}
				served = h.LastOffset() + 1
				data = rest
			}
			if served != 4 {
				t.Fatalf("read from 0 served offsets up to %d, want the 4 before the damage", served)
			}
			for _, off := range []int64{4, 5} {
				data, err := p.Read(off, 1<<20)
				if !errors.Is(err, commitlog.ErrCorrupt) {
					t.Fatalf("read at damaged offset %d: %d bytes, err %v; want ErrCorrupt", off, len(data), err)
				}
			}
			// Past the damage: valid batches, or an error when the damage
			// (a broken length) hides where the next batch starts.
			data, err = p.Read(6, 1<<20)
			if err != nil && !errors.Is(err, commitlog.ErrCorrupt) {
				t.Fatalf("read past the damage: %v", err)
			}
			for len(data) > 0 {
				one, rest, err := batch.Split(data)
				if err != nil {
					t.Fatal(err)
				}
				if h, err := batch.Verify(one); err != nil || h.LastOffset() < 6 {
					t.Fatalf("read past the damage served batch %+v, %v", h, err)
				}
				data = rest
			}
		})
	}
}

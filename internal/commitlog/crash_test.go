package commitlog

import (
	"bytes"
	"context"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weirhq/weir/internal/vfs"
)

// Power-loss tests. A crashRun drives a log on a MemFS wrapped in an
// injector that, before a random share of filesystem operations, takes
// the filesystem a power loss at that instant would leave (MemFS.Crash,
// with random torn tails, or CrashStrict). Each crash point remembers how
// many appends had been acknowledged durable (WaitDurable returned nil)
// before it. After the run every crash point is recovered and checked:
//
//   - Open succeeds;
//   - the log is a valid prefix: contiguous offsets from the log start,
//     every batch intact and byte-identical to what was appended there;
//   - every acknowledged batch at or above the log start is present, and
//     the log start is no higher than retention/DeleteRecords had asked;
//   - no offset is reused: the next append gets the recovered end, which
//     is past every acknowledged offset.

type crashConfig struct {
	seed       uint64
	appenders  int
	appends    int     // per appender
	prob       float64 // share of filesystem operations that crash
	durability Durability
	nested     int // every nested-th point also crashes during recovery
}

type ackRange struct{ base, last int64 }

type crashPoint struct {
	fs       *vfs.MemFS
	acked    int   // acknowledged appends before the crash
	maxStart int64 // highest log start the crash may recover
}

type crashRun struct {
	cfg crashConfig
	mem *vfs.MemFS
	l   atomic.Pointer[Log]

	mu      sync.Mutex // guards everything below
	rng     *rand.Rand
	acks    []ackRange
	written map[int64][]byte // base offset → batch as appended
	points  []crashPoint
	ops     int

	deleteTarget atomic.Int64
}

func (r *crashRun) MaybeError(vfs.Op, string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ops++
	if r.rng.Float64() >= r.cfg.prob {
		return nil
	}
	p := crashPoint{acked: len(r.acks), maxStart: r.deleteTarget.Load()}
	if l := r.l.Load(); l != nil {
		p.maxStart = max(p.maxStart, l.LogStartOffset())
	}
	if r.rng.IntN(3) == 0 {
		p.fs = r.mem.CrashStrict()
	} else {
		p.fs = r.mem.Crash(r.rng)
	}
	r.points = append(r.points, p)
	return nil
}

func (r *crashRun) options(fsys vfs.FS) Options {
	bs := len(mkBatch(nopTB{}, 0, 1, 1024, 0))
	return Options{
		FS: fsys, Dir: "/data/topic-0", Logger: quiet,
		SegmentBytes:       int64(5 * bs),
		RetentionBytes:     int64(12 * bs),
		RetentionMs:        -1,
		IndexIntervalBytes: 700,
		Durability:         r.cfg.durability,
		SyncInterval:       time.Millisecond,
	}
}

// nopTB lets helpers that take a testing.TB build batches outside a test.
type nopTB struct{ testing.TB }

func (nopTB) Helper()               {}
func (nopTB) Fatalf(string, ...any) { panic("mkBatch failed") }

func runCrash(t *testing.T, cfg crashConfig) (points, acked, records int) {
	r := &crashRun{cfg: cfg, mem: vfs.NewMem(), rng: rand.New(rand.NewPCG(cfg.seed, 99)), written: map[int64][]byte{}}
	o := r.options(vfs.NewErrorFS(r.mem, r))
	l, err := Open(o)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	r.l.Store(l)
	var wg sync.WaitGroup
	for g := range cfg.appenders {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(cfg.seed, uint64(g)))
			for i := range cfg.appends {
				var in []byte
				for k := range 1 + rng.IntN(3) {
					in = append(in, mkBatch(t, g*10000+i*10+k, 1+rng.IntN(3), 50+rng.IntN(400), int64(i))...)
				}
				res, err := l.Append(in)
				if err != nil {
					t.Errorf("Append: %v", err)
					return
				}
				r.mu.Lock()
				for _, b := range splitAll(t, in) {
					base := header(t, b).BaseOffset
					if r.written[base] != nil {
						t.Errorf("offset %d assigned twice", base)
					}
					r.written[base] = b
				}
				r.mu.Unlock()
				if err := l.WaitDurable(context.Background(), res.LastOffset+1); err != nil {
					t.Errorf("WaitDurable: %v", err)
					return
				}
				r.mu.Lock()
				r.acks = append(r.acks, ackRange{res.BaseOffset, res.LastOffset})
				r.mu.Unlock()
				switch {
				case g == 0 && i%5 == 4:
					if _, err := l.EnforceRetention(); err != nil {
						t.Errorf("EnforceRetention: %v", err)
					}
				case g == cfg.appenders-1 && i%13 == 12:
					target := l.HighWatermark() - int64(rng.IntN(4))
					if target > l.LogStartOffset() {
						r.deleteTarget.Store(max(r.deleteTarget.Load(), target))
						if _, err := l.DeleteRecordsBefore(target); err != nil {
							t.Errorf("DeleteRecordsBefore(%d): %v", target, err)
						}
					}
				}
			}
		})
	}
	wg.Wait()
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if t.Failed() {
		return 0, 0, 0
	}
	for i, p := range r.points {
		nest := cfg.nested > 0 && i%cfg.nested == 0
		var pristine *vfs.MemFS
		if nest {
			pristine = p.fs.CrashStrict() // a copy: verify appends to p.fs
		}
		a, n := r.verify(t, i, p)
		acked, records = acked+a, records+n
		if t.Failed() {
			return
		}
		if nest {
			p.fs = pristine
			points += r.nested(t, i, p)
		}
	}
	return points + len(r.points), acked, records
}

// nested crashes at random operations of the recovery of p itself and
// checks each of those states too.
func (r *crashRun) nested(t *testing.T, i int, p crashPoint) int {
	t.Helper()
	inner := &crashRun{cfg: r.cfg, mem: p.fs, rng: rand.New(rand.NewPCG(r.cfg.seed, uint64(i)))}
	inner.cfg.prob = 0.3
	l, err := Open(r.options(vfs.NewErrorFS(inner.mem, inner)))
	if err != nil {
		t.Fatalf("crash point %d: Open: %v", i, err)
	}
	must(t, l.Close())
	for _, q := range inner.points {
		q.acked, q.maxStart = p.acked, p.maxStart
		r.verify(t, i, q)
	}
	return len(inner.points)
}

// verify recovers crash point p and returns how many acknowledged appends,
// and records in them, it found.
func (r *crashRun) verify(t *testing.T, i int, p crashPoint) (checked, records int) {
	t.Helper()
	o := r.options(p.fs)
	l, err := Open(o)
	if err != nil {
		t.Fatalf("crash point %d: Open: %v", i, err)
	}
	defer l.Close()
	start, hw := l.LogStartOffset(), l.HighWatermark()
	if end := l.EndOffset(); end != hw || l.DurableOffset() != hw {
		t.Fatalf("crash point %d: end %d durable %d high watermark %d differ after recovery", i, end, l.DurableOffset(), hw)
	}
	if start > p.maxStart {
		t.Fatalf("crash point %d: log start %d, but nothing below %d was deleted", i, start, p.maxStart)
	}
	for _, b := range readAll(t, l) {
		h := header(t, b)
		if !bytes.Equal(b, r.written[h.BaseOffset]) {
			w := r.written[h.BaseOffset]
			t.Fatalf("crash point %d: batch at %d is not what was appended there (len %d vs %d, hdr %+v vs %+v)", i, h.BaseOffset, len(b), len(w), h, header(t, w))
		}
	}
	for _, a := range r.acks[:p.acked] {
		if r.cfg.durability != Always {
			break // nothing was promised
		}
		if a.last < start {
			continue // deleted by retention or DeleteRecords
		}
		if a.last >= hw {
			t.Fatalf("crash point %d: acknowledged offsets [%d, %d] lost; recovered [%d, %d)", i, a.base, a.last, start, hw)
		}
		checked++
		records += int(a.last - a.base + 1)
	}
	// Indexes agree with a scan: every offset's read starts with its batch.
	for off := start; off < hw; off += 3 {
		data, err := l.Read(off, 1)
		if err != nil {
			t.Fatalf("crash point %d: Read(%d): %v", i, off, err)
		}
		if h := header(t, data); h.BaseOffset > off || h.LastOffset() < off {
			t.Fatalf("crash point %d: Read(%d) starts at [%d, %d]", i, off, h.BaseOffset, h.LastOffset())
		}
	}
	b := mkBatch(t, 1, 1, 10, 0)
	res, err := l.Append(b)
	if err != nil {
		t.Fatalf("crash point %d: Append after recovery: %v", i, err)
	}
	if res.BaseOffset != hw {
		t.Fatalf("crash point %d: append after recovery got %d, want %d", i, res.BaseOffset, hw)
	}
	if err := l.WaitDurable(context.Background(), res.LastOffset+1); err != nil {
		t.Fatalf("crash point %d: WaitDurable after recovery: %v", i, err)
	}
	return checked, records
}

func TestCrashConcurrent(t *testing.T) {
	var points, acked, records int
	for seed := range uint64(3) {
		p, a, n := runCrash(t, crashConfig{seed: seed, appenders: 4, appends: 50, prob: 0.12, nested: 10})
		points, acked, records = points+p, acked+a, records+n
	}
	if points < 300 {
		t.Fatalf("only %d crash points", points)
	}
	t.Logf("%d crash points; %d acknowledged appends (%d records) checked present after recovery", points, acked, records)
}

// TestCrashEveryOp crashes before every filesystem operation of one
// appender's run (appends, rolls, retention, DeleteRecords, Close).
func TestCrashEveryOp(t *testing.T) {
	p, a, n := runCrash(t, crashConfig{seed: 42, appenders: 1, appends: 40, prob: 1})
	t.Logf("%d crash points; %d acknowledged appends (%d records) checked present after recovery", p, a, n)
}

// TestCrashWeakDurability: under Never and Interval nothing is promised
// for the active segment, but recovery still yields a valid prefix and
// never goes below a DeleteRecords checkpoint.
func TestCrashWeakDurability(t *testing.T) {
	for _, d := range []Durability{Never, Interval} {
		p, _, _ := runCrash(t, crashConfig{seed: 7, appenders: 3, appends: 30, prob: 0.2, durability: d})
		t.Logf("%v: %d crash points", d, p)
	}
}

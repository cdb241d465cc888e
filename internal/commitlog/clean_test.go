package commitlog

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/weirhq/weir/internal/batch"
	"github.com/weirhq/weir/internal/vfs"
)

// cleanRec is one record the model appended.
type cleanRec struct {
	key, value []byte // nil key: no key; nil value: tombstone
	producer   bool
}

// cleanModel is what a compacted-topic workload appended: every record by
// offset.
type cleanModel struct {
	recs map[int64]cleanRec
	end  int64
}

// fillCompacted appends n records in batches of 1-4 over nKeys keys:
// some batches compressed, some of an idempotent producer, about 5 %
// tombstones and 3 % records without a key. Timestamps are 0, 1, 2, ...
func fillCompacted(t *testing.T, l *Log, rng *rand.Rand, n, nKeys int) *cleanModel {
	t.Helper()
	m := &cleanModel{recs: map[int64]cleanRec{}}
	seq := int32(0)
	for i := 0; i < n; {
		k := min(1+rng.IntN(4), n-i)
		opts := batch.BuildOptions{BaseTimestamp: int64(i)}
		if rng.IntN(3) == 0 {
			opts.Codec = batch.CodecZstd
		}
		producer := rng.IntN(3) == 0
		if producer {
			opts.HasProducer, opts.ProducerID, opts.BaseSequence = true, 7, seq
			seq += int32(k)
		}
		var recs []batch.Record
		var model []cleanRec
		for j := range k {
			r := batch.Record{OffsetDelta: int32(j), TimestampDelta: int64(j)}
			switch x := rng.IntN(100); {
			case x < 3:
				r.Value = fmt.Appendf(nil, "nokey-%d", i+j)
			case x < 8:
				r.Key = fmt.Appendf(nil, "key-%d", rng.IntN(nKeys))
			default:
				r.Key = fmt.Appendf(nil, "key-%d", rng.IntN(nKeys))
				r.Value = fmt.Appendf(nil, "value-%d", i+j)
			}
			recs = append(recs, r)
			model = append(model, cleanRec{key: r.Key, value: r.Value, producer: producer})
		}
		b, err := batch.Build(opts, recs)
		must(t, err)
		res := appendDurable(t, l, b)
		for j, r := range model {
			m.recs[res.BaseOffset+int64(j)] = r
		}
		m.end = res.LastOffset + 1
		i += k
	}
	return m
}

// lastOf returns, per key, the offset of its last record in [from, to).
func (m *cleanModel) lastOf(from, to int64) map[string]int64 {
	last := map[string]int64{}
	for off := from; off < to; off++ {
		if r, ok := m.recs[off]; ok && r.key != nil {
			last[string(r.key)] = off
		}
	}
	return last
}

// readCompacted reads every batch from the log start to the high
// watermark (thinned ones included), checking that batch offsets are
// contiguous, and returns the records by offset.
func readCompacted(t *testing.T, l *Log) (map[int64]batch.Record, []batch.Header) {
	t.Helper()
	out := map[int64]batch.Record{}
	var hdrs []batch.Header
	next, hw := l.LogStartOffset(), l.HighWatermark()
	for next < hw {
		data, err := l.Read(next, 1<<20)
		if err != nil || len(data) == 0 {
			t.Fatalf("Read(%d) below %d: %d bytes, %v", next, hw, len(data), err)
		}
		for _, b := range splitAll(t, data) {
			h, recs, err := batch.RecordsCompacted(b, 1<<20)
			if err != nil {
				t.Fatalf("batch at %d: %v", next, err)
			}
			if h.BaseOffset != next {
				t.Fatalf("batch at %d has base offset %d", next, h.BaseOffset)
			}
			for _, r := range recs {
				r.Key, r.Value = clone(r.Key), clone(r.Value)
				out[r.Offset(h)] = r
			}
			hdrs = append(hdrs, h)
			next = h.LastOffset() + 1
		}
	}
	return out, hdrs
}

func clone(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append([]byte{}, b...)
}

// checkCompacted checks what a Clean must leave: every record still
// there is the one appended at its offset; records without a key and
// those at or past cleanedTo are all there; in [start, cleanedTo) a keyed
// record is there only if it is its key's last in that range, and every
// key's last record of the whole log is there, unless it is a tombstone
// and dropTombstones. cleanedTo -1 (unknown: after a crash, or cleans of
// different extents) checks only the first and the last of these.
func checkCompacted(t *testing.T, l *Log, m *cleanModel, cleanedTo int64, dropTombstones bool) map[int64]batch.Record {
	t.Helper()
	got, _ := readCompacted(t, l)
	if hw := l.HighWatermark(); hw != m.end {
		t.Fatalf("high watermark %d, appended up to %d", hw, m.end)
	}
	for off, r := range got {
		want, ok := m.recs[off]
		if !ok || string(r.Key) != string(want.key) || string(r.Value) != string(want.value) || (r.Value == nil) != (want.value == nil) {
			t.Fatalf("offset %d holds %q=%q, appended %q=%q", off, r.Key, r.Value, want.key, want.value)
		}
	}
	start := l.LogStartOffset()
	cleanedLast := m.lastOf(start, cleanedTo)
	for off := start; off < m.end; off++ {
		r := m.recs[off]
		_, there := got[off]
		switch {
		case cleanedTo < 0:
			if r.key == nil && !there {
				t.Fatalf("offset %d (no key) was removed", off)
			}
		case r.key == nil || off >= cleanedTo:
			if !there {
				t.Fatalf("offset %d (key %q, cleaned up to %d) was removed", off, r.key, cleanedTo)
			}
		case there && cleanedLast[string(r.key)] != off:
			t.Fatalf("offset %d (key %q) survived the clean, but the key's last record is at %d", off, r.key, cleanedLast[string(r.key)])
		}
	}
	for k, off := range m.lastOf(start, m.end) {
		if _, there := got[off]; !there && !(dropTombstones && m.recs[off].value == nil) {
			t.Fatalf("key %q lost its last record, at %d", k, off)
		}
	}
	return got
}

func TestCleanKeepsLastValuePerKey(t *testing.T) {
	forEachFS(t, func(t *testing.T, e fsEnv) {
		o := e.opts()
		o.SegmentBytes = 700
		l := openLog(t, o)
		m := fillCompacted(t, l, rand.New(rand.NewPCG(1, 2)), 400, 12)
		sizeBefore := l.Size()

		st, err := l.Clean(CleanOptions{UpTo: l.HighWatermark(), DeleteRetention: time.Hour, Now: time.UnixMilli(1000)})
		must(t, err)
		active := bases(l)[len(bases(l))-1]
		if st.CleanedTo != active || st.Rewritten == 0 || st.RecordsRemoved == 0 {
			t.Fatalf("clean: %+v, active segment at %d", st, active)
		}
		got := checkCompacted(t, l, m, st.CleanedTo, false)
		if l.Size() >= sizeBefore {
			t.Fatalf("log of %d bytes after the clean, %d before", l.Size(), sizeBefore)
		}
		t.Logf("%d of %d records kept, %d -> %d bytes, %+v", len(got), len(m.recs), sizeBefore, l.Size(), st)

		// Cleaning again merges the small cleaned segments (up to
		// segment.bytes each), and then finds nothing more to do; a
		// reopened log reads the same.
		segsBefore := len(bases(l))
		st2, err := l.Clean(CleanOptions{UpTo: l.HighWatermark(), DeleteRetention: time.Hour, Now: time.UnixMilli(1000)})
		must(t, err)
		checkCompacted(t, l, m, st.CleanedTo, false)
		if len(bases(l)) >= segsBefore || st2.RecordsRemoved != 0 {
			t.Fatalf("second clean: %+v, %d segments before, %d after", st2, segsBefore, len(bases(l)))
		}
		for i := 0; st2.Rewritten > 0; i++ {
			if i == 10 {
				t.Fatalf("cleans still rewriting after 10 rounds: %+v", st2)
			}
			st2, err = l.Clean(CleanOptions{UpTo: l.HighWatermark(), DeleteRetention: time.Hour, Now: time.UnixMilli(1000)})
			must(t, err)
		}
		// Stable: each sealed segment but the last is too full to take
		// the next one in.
		segs := *l.segs.Load()
		for i := 0; i+2 < len(segs); i++ {
			if segs[i].size.Load()+segs[i+1].size.Load() <= o.SegmentBytes {
				t.Fatalf("segments %d and %d (%d + %d bytes) left unmerged", segs[i].base, segs[i+1].base, segs[i].size.Load(), segs[i+1].size.Load())
			}
		}
		checkCompacted(t, l, m, st.CleanedTo, false)
		closeLog(t, l)
		l = openLog(t, o)
		checkCompacted(t, l, m, st.CleanedTo, false)

		// Tombstones older than delete.retention.ms go once they are their
		// key's last record.
		st3, err := l.Clean(CleanOptions{UpTo: l.HighWatermark(), DeleteRetention: time.Millisecond, Now: time.UnixMilli(1 << 40)})
		must(t, err)
		checkCompacted(t, l, m, st3.CleanedTo, true)
	})
}

// TestCleanKeepsProducerBatches: a batch of an idempotent producer that
// loses every record stays, empty, with its header; one without a
// producer goes (an empty batch holds its offsets).
func TestCleanKeepsProducerBatches(t *testing.T) {
	m := vfs.NewMem()
	o := Options{FS: m, Dir: "/p", SegmentBytes: 1 << 20, Logger: quiet}
	l := openLog(t, o)
	add := func(opts batch.BuildOptions, key, val string) {
		b, err := batch.Build(opts, []batch.Record{{Key: []byte(key), Value: []byte(val)}})
		must(t, err)
		appendDurable(t, l, b)
	}
	add(batch.BuildOptions{HasProducer: true, ProducerID: 9, ProducerEpoch: 2, BaseSequence: 5}, "k", "old-idempotent")
	add(batch.BuildOptions{}, "k", "old-plain")
	add(batch.BuildOptions{}, "k", "old-plain-2")
	add(batch.BuildOptions{}, "k", "new")
	l.mu.Lock()
	must(t, l.roll())
	l.mu.Unlock()
	// Until an append moves the high watermark into the new segment the
	// sealed one is left alone.
	if st, err := l.Clean(CleanOptions{UpTo: l.HighWatermark()}); err != nil || st.Segments != 0 {
		t.Fatalf("clean of a segment the high watermark points into: %+v, %v", st, err)
	}
	add(batch.BuildOptions{}, "other", "x")
	st, err := l.Clean(CleanOptions{UpTo: l.HighWatermark()})
	must(t, err)
	if st.RecordsRemoved != 3 {
		t.Fatalf("%+v", st)
	}
	got, hdrs := readCompacted(t, l)
	if len(got) != 2 || string(got[3].Value) != "new" {
		t.Fatalf("records after the clean: %v", got)
	}
	// [producer 9, empty] [empty over 1-2] [new] | [other]
	if len(hdrs) != 4 || hdrs[0].ProducerID != 9 || hdrs[0].BaseSequence != 5 || hdrs[0].ProducerEpoch != 2 || hdrs[0].NumRecords != 0 ||
		hdrs[1].ProducerID != -1 || hdrs[1].BaseOffset != 1 || hdrs[1].LastOffset() != 2 || hdrs[1].NumRecords != 0 {
		t.Fatalf("batches after the clean: %+v", hdrs)
	}
}

// TestCleanBounds: nothing at or past UpTo, nor newer than
// min.compaction.lag.ms, is cleaned; a key map too small for a segment
// cleans less, never wrongly.
func TestCleanBounds(t *testing.T) {
	mem := vfs.NewMem()
	o := Options{FS: mem, Dir: "/p", SegmentBytes: 700, Logger: quiet}
	l := openLog(t, o)
	m := fillCompacted(t, l, rand.New(rand.NewPCG(3, 4)), 300, 8)
	bs := bases(l)

	st, err := l.Clean(CleanOptions{UpTo: bs[3], DeleteRetention: time.Hour, Now: time.UnixMilli(1000)})
	must(t, err)
	if st.CleanedTo > bs[3] || st.Segments > 3 {
		t.Fatalf("UpTo %d: %+v", bs[3], st)
	}
	checkCompacted(t, l, m, st.CleanedTo, false)

	// Timestamps are the record numbers: a lag of 150 ms at "now" 300
	// keeps the segments with records from 150 on.
	st, err = l.Clean(CleanOptions{UpTo: l.HighWatermark(), Now: time.UnixMilli(300), MinCompactionLag: 150 * time.Millisecond, DeleteRetention: time.Hour})
	must(t, err)
	checkCompacted(t, l, m, st.CleanedTo, false)
	cleaned := st.CleanedTo
	for _, s := range *l.segs.Load() {
		if s.base < st.CleanedTo && s.maxTs.Load() > 150 {
			t.Fatalf("segment %d (max timestamp %d) cleaned with a 150 ms lag at 300", s.base, s.maxTs.Load())
		}
	}

	st, err = l.Clean(CleanOptions{UpTo: l.HighWatermark(), MaxKeys: 3, DeleteRetention: time.Hour, Now: time.UnixMilli(1000)})
	must(t, err)
	checkCompacted(t, l, m, max(cleaned, st.CleanedTo), false)
}

// TestCleanPowerLoss cuts the power before every filesystem operation of
// a clean (creating and writing the cleaned file, its fsync, removing the
// index files, the renames, the directory fsyncs) and reopens each image:
// every one opens, holds every appended offset, and loses no key's last
// record — the old segment or the new one, never a mix.
func TestCleanPowerLoss(t *testing.T) {
	mem := vfs.NewMem()
	var (
		mu        sync.Mutex
		capturing bool
		images    []*vfs.MemFS
		seq       uint64
	)
	fsys := vfs.NewErrorFS(mem, vfs.InjectorFunc(func(op vfs.Op, _ string) error {
		mu.Lock()
		defer mu.Unlock()
		if capturing && op != vfs.OpRead && op != vfs.OpStat {
			seq++
			images = append(images, mem.Crash(rand.New(rand.NewPCG(11, seq))))
		}
		return nil
	}))
	o := Options{FS: fsys, Dir: "/p", SegmentBytes: 900, Logger: quiet}
	l := openLog(t, o)
	m := fillCompacted(t, l, rand.New(rand.NewPCG(5, 6)), 250, 10)
	mu.Lock()
	capturing = true
	mu.Unlock()
	// The first clean thins each segment, the second merges them.
	st, err := l.Clean(CleanOptions{UpTo: l.HighWatermark(), DeleteRetention: time.Hour, Now: time.UnixMilli(1000)})
	must(t, err)
	segsBefore := len(bases(l))
	if _, err := l.Clean(CleanOptions{UpTo: l.HighWatermark(), DeleteRetention: time.Hour, Now: time.UnixMilli(1000)}); err != nil {
		t.Fatal(err)
	}
	if len(bases(l)) >= segsBefore {
		t.Fatalf("the second clean left %d of %d segments", len(bases(l)), segsBefore)
	}
	mu.Lock()
	capturing = false
	mu.Unlock()
	if st.Rewritten < 2 || len(images) < 10 {
		t.Fatalf("clean %+v with %d crash points", st, len(images))
	}
	checkCompacted(t, l, m, st.CleanedTo, false)
	for i, img := range images {
		o := Options{FS: img, Dir: "/p", SegmentBytes: 900, Logger: quiet}
		l, err := Open(o)
		if err != nil {
			t.Fatalf("image %d of %d: Open: %v", i, len(images), err)
		}
		// Each segment is cleaned or not; the checks that hold either way.
		checkCompacted(t, l, m, -1, false)
		got, _ := readCompacted(t, l)
		for k, off := range m.lastOf(0, m.end) {
			if _, ok := got[off]; !ok {
				t.Fatalf("image %d: key %s lost its last record at %d", i, k, off)
			}
		}
		// And a clean on the recovered log finishes the job.
		if _, err := l.Clean(CleanOptions{UpTo: l.HighWatermark(), DeleteRetention: time.Hour, Now: time.UnixMilli(1000)}); err != nil {
			t.Fatalf("image %d: clean after recovery: %v", i, err)
		}
		checkCompacted(t, l, m, -1, false)
		_ = l.Close()
	}
	t.Logf("%d crash points in a clean of %d segments", len(images), st.Segments)
}

// TestCleanConcurrent cleans again and again while a writer appends and
// a reader reads from the start: every read sees contiguous, intact
// batches, and the result keeps every key's last record.
func TestCleanConcurrent(t *testing.T) {
	mem := vfs.NewMem()
	l := openLog(t, Options{FS: mem, Dir: "/p", SegmentBytes: 800, Logger: quiet})
	var m *cleanModel
	done := make(chan struct{})
	go func() {
		defer close(done)
		m = fillCompacted(t, l, rand.New(rand.NewPCG(8, 9)), 600, 15)
	}()
	stop := make(chan struct{})
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		for {
			select {
			case <-stop:
				return
			default:
			}
			next, hw := l.LogStartOffset(), l.HighWatermark()
			for next < hw {
				data, err := l.Read(next, 4096)
				if err != nil || len(data) == 0 {
					t.Errorf("Read(%d) below %d: %d bytes, %v", next, hw, len(data), err)
					return
				}
				// A read's first batch may start before the offset asked
				// for (a clean can merge runs of emptied batches into one
				// over a wider range); the rest follow contiguously.
				for first := true; len(data) > 0; first = false {
					one, rest, err := batch.Split(data)
					if err != nil {
						t.Errorf("at %d: %v", next, err)
						return
					}
					h, err := batch.VerifyCompacted(one)
					if err != nil || !first && h.BaseOffset != next || first && (h.BaseOffset > next || h.LastOffset() < next) {
						t.Errorf("batch at %d: [%d, %d], %v", next, h.BaseOffset, h.LastOffset(), err)
						return
					}
					next, data = h.LastOffset()+1, rest
				}
			}
		}
	}()
	cleans := 0
	for running := true; running; cleans++ {
		select {
		case <-done:
			running = false
		default:
		}
		if _, err := l.Clean(CleanOptions{UpTo: l.HighWatermark(), DeleteRetention: time.Hour, Now: time.UnixMilli(1000)}); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	<-readerDone
	checkCompacted(t, l, m, -1, false)
	t.Logf("%d cleans during the appends", cleans)
}

// TestCleanEmptiedBatchesDoNotAccumulate: 300 single-record batches of one
// key from an idempotent producer, compressed, cleaned again and again as
// more arrive: only the producer's last emptied batch stays as a batch of
// its own (uncompressed, as Kafka writes empty batches); the others and
// earlier cleans' empty batches become one empty batch per run, so the
// log stays a few batches long however many were written.
func TestCleanEmptiedBatchesDoNotAccumulate(t *testing.T) {
	l := openLog(t, Options{FS: vfs.NewMem(), Dir: "/p", SegmentBytes: 2000, Logger: quiet})
	seq := int32(0)
	for round := range 3 {
		for range 100 {
			b, err := batch.Build(batch.BuildOptions{Codec: batch.CodecSnappy, HasProducer: true, ProducerID: 5, BaseSequence: seq},
				[]batch.Record{{Key: []byte("k"), Value: fmt.Appendf(nil, "v%d", seq)}})
			must(t, err)
			appendDurable(t, l, b)
			seq++
		}
		for i := 0; i < 5; i++ {
			if _, err := l.Clean(CleanOptions{UpTo: l.HighWatermark()}); err != nil {
				t.Fatal(err)
			}
		}
		_, hdrs := readCompacted(t, l)
		var sealed []batch.Header
		active := bases(l)[len(bases(l))-1]
		for _, h := range hdrs {
			if h.BaseOffset < active {
				sealed = append(sealed, h)
			}
		}
		producerEmpty := 0
		for _, h := range sealed {
			if h.NumRecords == 0 && h.ProducerID == 5 {
				producerEmpty++
				if h.Codec() != batch.CodecNone {
					t.Fatalf("round %d: an emptied batch kept codec %v", round, h.Codec())
				}
			}
		}
		if producerEmpty > 1 || len(sealed) > 4 {
			t.Fatalf("round %d: %d sealed batches (%d emptied of the producer) after the cleans: %+v", round, len(sealed), producerEmpty, sealed)
		}
	}
}

// TestCleanTransactionMarkers: records of an aborted transaction go at
// the first clean; a commit or abort marker stays while a batch of its
// transaction is read by the clean, goes at the next one once older than
// delete.retention.ms, and stays if it is its producer's last batch. The
// log reopens with contiguous offsets and the same batches.
func TestCleanTransactionMarkers(t *testing.T) {
	mem := vfs.NewMem()
	o := Options{FS: mem, Dir: "/p", SegmentBytes: 1 << 20, Logger: quiet}
	l := openLog(t, o)
	seqs := map[int64]int32{}
	data := func(pid int64, kv ...string) int64 {
		var recs []batch.Record
		for i := 0; i < len(kv); i += 2 {
			recs = append(recs, batch.Record{OffsetDelta: int32(i / 2), Key: []byte(kv[i]), Value: []byte(kv[i+1])})
		}
		b, err := batch.Build(batch.BuildOptions{HasProducer: true, ProducerID: pid, ProducerEpoch: 1, BaseSequence: seqs[pid],
			Transactional: true, BaseTimestamp: 10}, recs)
		must(t, err)
		seqs[pid] += int32(len(recs))
		return appendDurable(t, l, b).BaseOffset
	}
	marker := func(pid int64, typ batch.ControlType) int64 {
		b, err := batch.Build(batch.BuildOptions{HasProducer: true, ProducerID: pid, ProducerEpoch: 1, BaseSequence: -1,
			Transactional: true, Control: true, BaseTimestamp: 20}, []batch.Record{batch.EndTxnMarker(typ, 0)})
		must(t, err)
		return appendDurable(t, l, b).BaseOffset
	}
	plain := func(k, v string) {
		b, err := batch.Build(batch.BuildOptions{BaseTimestamp: 30}, []batch.Record{{Key: []byte(k), Value: []byte(v)}})
		must(t, err)
		appendDurable(t, l, b)
	}
	data(7, "a", "1", "b", "1")
	m1 := marker(7, batch.ControlCommit)
	aborted := data(7, "a", "x")
	m2 := marker(7, batch.ControlAbort)
	data(7, "a", "3")
	m3 := marker(7, batch.ControlCommit)
	data(7, "b", "3")
	m4 := marker(7, batch.ControlCommit) // producer 7's last batch
	data(8, "c", "1")
	m5 := marker(8, batch.ControlCommit) // its transaction's record stays
	plain("a", "4")
	plain("b", "4")
	l.mu.Lock()
	must(t, l.roll())
	l.mu.Unlock()
	plain("z", "0")

	markers := func() map[int64]bool {
		_, hdrs := readCompacted(t, l)
		out := map[int64]bool{}
		for _, h := range hdrs {
			if h.Control() {
				out[h.BaseOffset] = true
			}
		}
		return out
	}
	var dropped [][2]int64
	clean := func(now int64, retention time.Duration) CleanStats {
		st, err := l.Clean(CleanOptions{UpTo: l.HighWatermark(), Now: time.UnixMilli(now), DeleteRetention: retention,
			Aborted:      func(h batch.Header) bool { return h.ProducerID == 7 && h.BaseOffset == aborted },
			AbortDropped: func(pid, off int64) { dropped = append(dropped, [2]int64{pid, off}) }})
		must(t, err)
		return st
	}
	all := map[int64]bool{m1: true, m2: true, m3: true, m4: true, m5: true}

	clean(1000, 0)
	got, _ := readCompacted(t, l)
	for off, r := range got {
		if string(r.Key) == "a" && string(r.Value) != "4" || string(r.Key) == "b" && string(r.Value) != "4" {
			t.Fatalf("after the first clean offset %d holds %s=%s", off, r.Key, r.Value)
		}
	}
	if m := markers(); !maps.Equal(m, all) {
		t.Fatalf("the first clean read every transaction's batches; markers left %v, want %v", m, all)
	}
	// Within delete.retention.ms (markers written at 20, now 1000, an
	// hour's retention) they stay.
	clean(1000, time.Hour)
	if m := markers(); !maps.Equal(m, all) {
		t.Fatalf("markers inside delete.retention.ms: %v, want %v", m, all)
	}
	st := clean(1000, 0)
	want := map[int64]bool{m4: true, m5: true}
	if m := markers(); !maps.Equal(m, want) {
		t.Fatalf("markers after the second clean: %v, want %v (%+v)", m, want, st)
	}
	if !slices.Equal(dropped, [][2]int64{{7, m2}}) {
		t.Fatalf("abort markers reported dropped: %v, want producer 7's at %d", dropped, m2)
	}
	l.Close()
	l = openLog(t, o)
	if m := markers(); !maps.Equal(m, want) {
		t.Fatalf("markers after reopening: %v, want %v", m, want)
	}
	got, _ = readCompacted(t, l)
	vals := map[string]string{}
	for off, r := range got {
		if !want[off] {
			vals[string(r.Key)] = string(r.Value)
		}
	}
	if !maps.Equal(vals, map[string]string{"a": "4", "b": "4", "c": "1", "z": "0"}) || len(got) != 6 {
		t.Fatalf("records after the cleans: %v (%d with the markers')", vals, len(got))
	}
}

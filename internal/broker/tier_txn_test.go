package broker

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/weirhq/weir/internal/batch"
	"github.com/weirhq/weir/internal/vfs"
)

// tierTxnFixture is a broker with one tiered partition of small segments
// on the in-memory filesystem and a fake archive, reopened on both.
type tierTxnFixture struct {
	t      *testing.T
	fs     *vfs.MemFS
	remote *fakeRemote
	b      *Broker
	p      *Partition
	seq    map[int64]int32
	// committed lists the values a read_committed reader must see, in
	// offset order.
	committed []string
}

func newTierTxnFixture(t *testing.T) *tierTxnFixture {
	t.Helper()
	f := &tierTxnFixture{t: t, fs: vfs.NewMem(), remote: newFakeRemote(), seq: map[int64]int32{}}
	f.open()
	if _, err := f.b.CreateTopic("tiered", 1, map[string]string{"remote.storage.enable": "true",
		"segment.bytes": "4096", "local.retention.bytes": "1", "retention.ms": "-1"}, false); err != nil {
		t.Fatal(err)
	}
	f.p, _ = f.b.Partition("tiered", 0)
	return f
}

func (f *tierTxnFixture) open() {
	f.t.Helper()
	b, err := Open(Options{FS: f.fs, Dir: "/data", Logger: quiet(), Remote: f.remote, RemoteInterval: time.Hour,
		RetentionCheckInterval: time.Hour})
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { _ = b.Close() })
	f.b = b
	if f.p != nil {
		if f.p, err = b.Partition("tiered", 0); err != nil {
			f.t.Fatal(err)
		}
	}
}

// restart closes the broker and opens it again on the same directory and
// archive: the in-memory transaction index is rebuilt from the local log.
func (f *tierTxnFixture) restart() {
	f.t.Helper()
	if err := f.b.Close(); err != nil {
		f.t.Fatal(err)
	}
	f.open()
}

// produce appends one batch of values for pid (-1: no producer),
// transactional when txn, and waits until it is durable.
func (f *tierTxnFixture) produce(pid int64, txn bool, values ...string) {
	f.t.Helper()
	o := batch.BuildOptions{BaseSequence: -1, BaseTimestamp: time.Now().UnixMilli()}
	if pid >= 0 {
		o.HasProducer, o.ProducerID, o.BaseSequence, o.Transactional = true, pid, f.seq[pid], txn
		f.seq[pid] += int32(len(values))
	}
	recs := make([]batch.Record, len(values))
	for i, v := range values {
		recs[i] = batch.Record{OffsetDelta: int32(i), Key: []byte(v), Value: []byte(v)}
	}
	raw, err := batch.Build(o, recs)
	if err != nil {
		f.t.Fatal(err)
	}
	a, err := f.p.Produce(raw)
	if err != nil {
		f.t.Fatal(err)
	}
	if err := f.p.WaitDurable(context.Background(), a.LastOffset+1); err != nil {
		f.t.Fatal(err)
	}
}

func (f *tierTxnFixture) end(pid int64, commit bool) {
	f.t.Helper()
	res := f.b.WriteTxnMarkers(context.Background(), []TxnMarker{{ProducerID: pid, Commit: commit,
		Partitions: []TopicPartition{{Topic: "tiered", Partition: 0}}}})
	if len(res) != 1 || res[0].Err != nil {
		f.t.Fatalf("WriteTxnMarkers = %+v", res)
	}
}

// fill writes n rounds of: a plain batch, two transactions interleaved
// (one committed, one aborted, alternating which), each of two batches,
// so aborted transactions span batches of others and, often, segments.
func (f *tierTxnFixture) fill(rounds int) {
	f.t.Helper()
	for i := range rounds {
		plain := fmt.Sprintf("plain-%d", i)
		f.produce(-1, false, plain)
		f.committed = append(f.committed, plain)
		c, a := int64(1000+2*i), int64(1001+2*i) // a producer per transaction
		commitFirst := i%2 == 0
		var cvals []string
		for j := range 2 {
			cv := []string{fmt.Sprintf("commit-%d-%d-a", i, j), fmt.Sprintf("commit-%d-%d-b", i, j)}
			av := []string{fmt.Sprintf("abort-%d-%d-a", i, j), fmt.Sprintf("abort-%d-%d-b", i, j)}
			f.produce(c, true, cv...)
			f.produce(a, true, av...)
			cvals = append(cvals, cv...)
		}
		if commitFirst {
			f.end(c, true)
			f.end(a, false)
		} else {
			f.end(a, false)
			f.end(c, true)
		}
		f.committed = append(f.committed, cvals...)
	}
}

// readCommitted reads the partition from its log start to its last
// stable offset as a read_committed consumer does — each answer's aborted
// transactions applied to that answer's batches only — and returns the
// values it keeps.
func readCommitted(t *testing.T, p *Partition, maxBytes int) ([]string, error) {
	t.Helper()
	var out []string
	for off := p.LogStartOffset(); off < p.LastStableOffset(); {
		r, err := p.ReadCommittedBuf(off, maxBytes, nil)
		if err != nil {
			return out, fmt.Errorf("read_committed at %d: %w", off, err)
		}
		if len(r.Data) == 0 {
			return out, fmt.Errorf("read_committed at %d: nothing (LSO %d)", off, r.LastStableOffset)
		}
		var kept []string
		kept, off = applyAborted(t, r.Data, r.Aborted)
		out = append(out, kept...)
	}
	return out, nil
}

// applyAborted is a consumer's filter (Kafka's): an aborted transaction
// is active for its producer from its first offset to its abort marker.
func applyAborted(t *testing.T, data []byte, aborted []AbortedTxn) (kept []string, next int64) {
	t.Helper()
	aborted = slices.Clone(aborted)
	active := map[int64]bool{}
	for rest := data; len(rest) > 0; {
		one, r, err := batch.Split(rest)
		if err != nil {
			t.Fatal(err)
		}
		rest = r
		h, recs, err := batch.RecordsCompacted(one, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		next = h.LastOffset() + 1
		for len(aborted) > 0 && aborted[0].FirstOffset <= h.LastOffset() {
			active[aborted[0].ProducerID] = true
			aborted = aborted[1:]
		}
		if h.Control() {
			if k, err := batch.ParseControlKey(recs[0].Key); err == nil && k.Type == batch.ControlAbort {
				delete(active, h.ProducerID)
			}
			continue
		}
		if h.Transactional() && active[h.ProducerID] {
			continue
		}
		for _, rec := range recs {
			kept = append(kept, string(rec.Value))
		}
	}
	return kept, next
}

func (f *tierTxnFixture) wantCommitted(when string) {
	f.t.Helper()
	for _, maxBytes := range []int{1, 1500, 1 << 20} {
		got, err := readCommitted(f.t, f.p, maxBytes)
		if err != nil {
			f.t.Fatalf("%s, %d bytes a read: %v", when, maxBytes, err)
		}
		if !slices.Equal(got, f.committed) {
			var leaked []string
			for _, v := range got {
				if strings.HasPrefix(v, "abort-") {
					leaked = append(leaked, v)
				}
			}
			f.t.Fatalf("%s, %d bytes a read: read %d values, want %d; %d aborted ones read as committed: %v",
				when, maxBytes, len(got), len(f.committed), len(leaked), leaked[:min(len(leaked), 6)])
		}
	}
}

// TestTieredReadCommittedAfterRestart: a tiered partition holding
// committed and aborted transactions is archived and its local copies
// deleted; after a restart, whose in-memory index knows only the local
// log, read_committed reads from offset 0 still skip every aborted record:
// the aborted transactions of archived offsets come from the transaction
// indexes uploaded with their segments.
func TestTieredReadCommittedAfterRestart(t *testing.T) {
	f := newTierTxnFixture(t)
	f.fill(40)
	f.b.TierOnce(context.Background())
	local := f.p.LocalLogStartOffset()
	if local < f.p.HighWatermark()/2 {
		t.Fatalf("local log start %d of %d: too little archived", local, f.p.HighWatermark())
	}
	if len(f.remote.txnIdx) == 0 {
		t.Fatal("no transaction index uploaded")
	}
	f.wantCommitted("before the restart")
	f.restart()
	if f.p.LocalLogStartOffset() != local || f.p.LogStartOffset() != 0 {
		t.Fatalf("after the restart: log start %d, local %d (was %d)", f.p.LogStartOffset(), f.p.LocalLogStartOffset(), local)
	}
	f.wantCommitted("after a restart")
	// Each index is fetched once, then served from memory.
	reads := f.remote.txnReads.Load()
	f.wantCommitted("again")
	if got := f.remote.txnReads.Load(); got != reads {
		t.Fatalf("transaction indexes fetched again: %d then %d", reads, got)
	}
	// Every archived segment records its index; those without aborted
	// transactions have no object.
	m := f.p.remoteManifest()
	withObject := 0
	for _, s := range m.Segments {
		if !s.TxnIndex {
			t.Fatalf("segment %d-%d uploaded without its transaction index", s.BaseOffset, s.LastOffset)
		}
		if s.TxnIndexSize > 0 {
			withObject++
		}
	}
	if withObject != len(f.remote.txnIdx) {
		t.Fatalf("%d segments name an index, %d objects", withObject, len(f.remote.txnIdx))
	}
	// Verify reads the indexes too.
	if segs, _, problems, err := f.b.VerifyArchive(context.Background(), "tiered"); err != nil || len(problems) > 0 || segs == 0 {
		t.Fatalf("verify: %d segments, %v, %v", segs, problems, err)
	}
	// DeleteRecords below the local start trims the archive: the trimmed
	// segments' indexes go with them.
	trimTo := m.Segments[len(m.Segments)/2].BaseOffset
	if _, err := f.p.DeleteRecords(trimTo); err != nil {
		t.Fatal(err)
	}
	for k := range f.remote.txnIdx {
		if k.base < trimTo {
			t.Fatalf("transaction index of trimmed segment %d left behind", k.base)
		}
	}
}

// A damaged or missing transaction index fails the read_committed reads
// of its segment (KAFKA_STORAGE_ERROR to clients, who retry), never
// serves them without their aborted transactions; read_uncommitted reads
// are unaffected, and the reads recover once the object does.
func TestTieredReadCommittedDamagedIndex(t *testing.T) {
	f := newTierTxnFixture(t)
	f.fill(40)
	f.b.TierOnce(context.Background())
	f.restart()
	var victim RemoteSegment
	for _, s := range f.p.remoteManifest().Segments {
		if s.TxnIndexSize > 0 && s.LastOffset < f.p.LocalLogStartOffset() {
			victim = s
			break
		}
	}
	if victim.TxnIndexSize == 0 {
		t.Fatal("no archived segment with aborted transactions")
	}
	key := segmentKey{f.p.remotePartition(), victim.BaseOffset}
	good := f.remote.txnIdx[key]
	for name, damage := range map[string]func(){
		"flipped byte": func() {
			b := bytes.Clone(good)
			b[len(b)/2] ^= 1
			f.remote.txnIdx[key] = b
		},
		"missing": func() { delete(f.remote.txnIdx, key) },
	} {
		f.remote.mu.Lock()
		damage()
		f.remote.mu.Unlock()
		f.b.remoteCache.txns.forget(key.rp, victim.BaseOffset+1)
		_, err := f.p.ReadCommittedBuf(victim.BaseOffset, 1<<20, nil)
		if !errors.Is(err, ErrStorage) && !errors.Is(err, ErrLogCorrupt) {
			t.Fatalf("%s: read_committed of the segment: %v, want a storage error", name, err)
		}
		if data, err := f.p.Read(victim.BaseOffset, 1<<20); err != nil || len(data) == 0 {
			t.Fatalf("%s: read_uncommitted: %d bytes, %v", name, len(data), err)
		}
		if _, problems, _ := f.verify(); len(problems) != 1 || problems[0].BaseOffset != victim.BaseOffset {
			t.Fatalf("%s: verify found %v", name, problems)
		}
	}
	f.remote.mu.Lock()
	f.remote.txnIdx[key] = good
	f.remote.mu.Unlock()
	f.b.remoteCache.txns.forget(key.rp, victim.BaseOffset+1) // the retry delay, passed
	f.wantCommitted("repaired")
}

func (f *tierTxnFixture) verify() (int64, []VerifyProblem, error) {
	segs, _, problems, err := f.b.VerifyArchive(context.Background(), "tiered")
	return segs, problems, err
}

// A sealed segment holding an undecided transaction is not uploaded (its
// index could still change, and local retention could then delete the
// transaction's first batches before a restart); it is once the
// transaction ends.
func TestTieredUploadWaitsForTransactions(t *testing.T) {
	f := newTierTxnFixture(t)
	f.produce(7, true, "open-0")
	for i := range 40 {
		v := []string{fmt.Sprintf("plain-%d", i), strings.Repeat("x", 200)}
		f.produce(-1, false, v...)
		f.committed = append(f.committed, v...)
	}
	if len(f.p.log.SealedSegments()) < 2 {
		t.Fatal("no sealed segments")
	}
	f.b.TierOnce(context.Background())
	if m := f.p.remoteManifest(); !m.Empty() || f.p.LocalLogStartOffset() != 0 {
		t.Fatalf("uploaded %d segments past an open transaction", len(m.Segments))
	}
	f.end(7, false)
	f.b.TierOnce(context.Background())
	m := f.p.remoteManifest()
	if m.Empty() || f.p.LocalLogStartOffset() == 0 {
		t.Fatal("nothing uploaded once the transaction ended")
	}
	// The first segment's index names the aborted transaction, which
	// began in it and ended in a segment written after it.
	data := f.remote.txnIdx[segmentKey{f.p.remotePartition(), 0}]
	got, err := decodeTxnIndex(data, 0, m.Segments[0].LastOffset)
	if err != nil || len(got) != 1 || got[0].ProducerID != 7 || got[0].FirstOffset != 0 || got[0].LastOffset <= m.Segments[0].LastOffset {
		t.Fatalf("first segment's index: %+v, %v", got, err)
	}
	// After a restart (the local log holds the abort marker only), the
	// aborted record is still skipped.
	f.restart()
	f.wantCommitted("after a restart")
}

func TestTxnIndexEncoding(t *testing.T) {
	aborted := []AbortedTxn{{ProducerID: 1, FirstOffset: 5, LastOffset: 120}, {ProducerID: 2, FirstOffset: 100, LastOffset: 104},
		{ProducerID: 3, FirstOffset: 150, LastOffset: 150}}
	b := encodeTxnIndex(100, 199, aborted)
	if len(b) != txnIndexHeaderLen+3*txnIndexEntryLen+txnIndexTrailerLen || string(b[:4]) != "WTXI" {
		t.Fatalf("encoding of %d bytes", len(b))
	}
	got, err := decodeTxnIndex(b, 100, 199)
	if err != nil || !reflect.DeepEqual(got, aborted) {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	if encodeTxnIndex(0, 9, nil) != nil {
		t.Fatal("an empty index is encoded")
	}
	reseal := func(b []byte) []byte {
		body := b[:len(b)-4]
		return binary.BigEndian.AppendUint32(bytes.Clone(body), crc32.Checksum(body, txnIndexCRC))
	}
	edit := func(f func(c []byte)) []byte { c := bytes.Clone(b); f(c); return reseal(c) }
	entry := func(i, field int) int { return txnIndexHeaderLen + i*txnIndexEntryLen + field*8 }
	for name, bad := range map[string][]byte{
		"empty":          nil,
		"short":          b[:20],
		"truncated":      b[:len(b)-1],
		"bit flip":       func() []byte { c := bytes.Clone(b); c[40] ^= 1; return c }(),
		"bad magic":      edit(func(c []byte) { c[0] = 'X' }),
		"version 2":      edit(func(c []byte) { c[5] = 2 }),
		"flags":          edit(func(c []byte) { c[7] = 1 }),
		"count high":     edit(func(c []byte) { binary.BigEndian.PutUint32(c[24:], 1<<31) }),
		"count low":      edit(func(c []byte) { binary.BigEndian.PutUint32(c[24:], 2) }),
		"negative pid":   edit(func(c []byte) { binary.BigEndian.PutUint64(c[entry(0, 0):], 1<<63) }),
		"first > last":   edit(func(c []byte) { binary.BigEndian.PutUint64(c[entry(1, 1):], 105) }),
		"before segment": edit(func(c []byte) { binary.BigEndian.PutUint64(c[entry(0, 2):], 99) }),
		"after segment": edit(func(c []byte) {
			binary.BigEndian.PutUint64(c[entry(2, 1):], 200)
			binary.BigEndian.PutUint64(c[entry(2, 2):], 200)
		}),
		"out of order": edit(func(c []byte) { binary.BigEndian.PutUint64(c[entry(1, 1):], 4) }),
		"extra byte":   reseal(append(bytes.Clone(b), 0)),
	} {
		if _, err := decodeTxnIndex(bad, 100, 199); !errors.Is(err, ErrLogCorrupt) {
			t.Errorf("%s: %v, want ErrLogCorrupt", name, err)
		}
	}
	// Another segment's index (a swapped object) is refused.
	if _, err := decodeTxnIndex(b, 100, 198); !errors.Is(err, ErrLogCorrupt) {
		t.Errorf("another segment's index: %v", err)
	}
}

// FuzzTxnIndexDecode: the decoder takes untrusted bytes from the object
// store: it never panics, allocates in proportion to its input whatever
// the count field says, returns only entries it checked, and whatever it
// accepts re-encodes to the same bytes.
func FuzzTxnIndexDecode(f *testing.F) {
	good := encodeTxnIndex(100, 199, []AbortedTxn{{ProducerID: 1, FirstOffset: 5, LastOffset: 120},
		{ProducerID: 2, FirstOffset: 100, LastOffset: 104}})
	f.Add(good)
	f.Add(encodeTxnIndex(100, 199, []AbortedTxn{{ProducerID: 0, FirstOffset: 199, LastOffset: 300}}))
	f.Add(good[:30])
	f.Add([]byte("WTXI"))
	f.Fuzz(func(t *testing.T, b []byte) {
		checkTxnIndexDecode(t, b)
		if len(b) >= txnIndexTrailerLen { // again with a valid checksum, to reach the checks behind it
			body := b[:len(b)-txnIndexTrailerLen]
			checkTxnIndexDecode(t, binary.BigEndian.AppendUint32(bytes.Clone(body), crc32.Checksum(body, txnIndexCRC)))
		}
	})
}

func checkTxnIndexDecode(t *testing.T, b []byte) {
	t.Helper()
	got, err := decodeTxnIndex(b, 100, 199)
	if err != nil {
		if !errors.Is(err, ErrLogCorrupt) {
			t.Fatalf("error not ErrLogCorrupt: %v", err)
		}
		return
	}
	if cap(got)*txnIndexEntryLen > len(b) {
		t.Fatalf("%d entries allocated from %d bytes", cap(got), len(b))
	}
	for i, a := range got {
		if a.ProducerID < 0 || a.FirstOffset > a.LastOffset || a.LastOffset < 100 || a.FirstOffset > 199 ||
			i > 0 && a.FirstOffset < got[i-1].FirstOffset {
			t.Fatalf("accepted entry %+v", a)
		}
	}
	if again := encodeTxnIndex(100, 199, got); len(got) > 0 && !bytes.Equal(again, b) {
		t.Fatal("round trip changed the bytes")
	}
}

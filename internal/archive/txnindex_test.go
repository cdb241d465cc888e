package archive

import (
	"bytes"
	"errors"
	"testing"
)

// txnIndexData is the test's transaction index of the segment at base.
func txnIndexData(base int64) []byte { return randBytes(uint64(base)+99, 100+int(base%5)*24) }

// testTxnIndex: a segment's transaction index goes up with it, is named
// in its manifest entry (size, CRC-32C) only once both are complete, reads
// back verified, survives Sweep, and goes with its segment on Trim.
func testTxnIndex(t *testing.T, h harness) {
	be := h.open(t)
	ctx := ctxT(t)
	a := newArchive(t, be)
	// 0-9: uploaded before transaction indexes; 10-19: an empty one (no
	// aborted transaction, no object); 20-29 and 30-39: one each.
	for _, s := range []struct {
		base, last int64
		has        bool
		idx        []byte
	}{{0, 9, false, nil}, {10, 19, true, nil}, {20, 29, true, txnIndexData(20)}, {30, 39, true, txnIndexData(30)}} {
		b := segData(s.base)
		err := a.UploadSegment(ctx, tp0, SegmentMeta{BaseOffset: s.base, LastOffset: s.last, Size: int64(len(b)),
			HasTxnIndex: s.has, TxnIndex: s.idx}, bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
	}
	fresh := newArchive(t, be) // reads the stored manifest
	m := mustManifest(t, fresh, tp0)
	for i, want := range []struct {
		has  bool
		size int
	}{{false, 0}, {true, 0}, {true, len(txnIndexData(20))}, {true, len(txnIndexData(30))}} {
		if s := m.Segments[i]; s.TxnIndex != want.has || s.TxnIndexSize != int64(want.size) || (want.size > 0) != (s.TxnIndexCRC32C != 0) {
			t.Fatalf("segment %d: txn index %v, %d bytes, crc %08x; want %v, %d bytes", s.BaseOffset, s.TxnIndex,
				s.TxnIndexSize, s.TxnIndexCRC32C, want.has, want.size)
		}
	}
	if _, _, err := fresh.ReadTxnIndex(ctx, tp0, 0); !errors.Is(err, ErrNoTxnIndex) {
		t.Fatalf("index of a segment uploaded without one: %v", err)
	}
	if b, _, err := fresh.ReadTxnIndex(ctx, tp0, 10); err != nil || len(b) != 0 {
		t.Fatalf("empty index: %d bytes, %v", len(b), err)
	}
	for _, base := range []int64{20, 30} {
		if b, _, err := fresh.ReadTxnIndex(ctx, tp0, base); err != nil || !bytes.Equal(b, txnIndexData(base)) {
			t.Fatalf("index of %d: %d bytes, %v", base, len(b), err)
		}
	}
	if _, _, err := fresh.ReadTxnIndex(ctx, tp0, 11); !errors.Is(err, ErrSegmentNotFound) {
		t.Fatalf("index at a non-base offset: %v", err)
	}
	// Damage is ErrCorrupt: a flipped byte, a truncation, a missing object.
	h.corrupt(t, be, TxnIndexKey(tp0, 20, 29), 7)
	if _, _, err := fresh.ReadTxnIndex(ctx, tp0, 20); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("corrupted index: %v", err)
	}
	put(t, be, TxnIndexKey(tp0, 20, 29), txnIndexData(20)[:50])
	if _, _, err := fresh.ReadTxnIndex(ctx, tp0, 20); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("truncated index: %v", err)
	}
	put(t, be, TxnIndexKey(tp0, 20, 29), append(txnIndexData(20), 0))
	if _, _, err := fresh.ReadTxnIndex(ctx, tp0, 20); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("lengthened index: %v", err)
	}
	if err := be.Delete(ctx, TxnIndexKey(tp0, 20, 29)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := fresh.ReadTxnIndex(ctx, tp0, 20); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("missing index: %v", err)
	}
	put(t, be, TxnIndexKey(tp0, 20, 29), txnIndexData(20))
	// Sweep keeps the named indexes and deletes an orphan one (an upload
	// whose manifest commit was lost).
	put(t, be, TxnIndexKey(tp0, 40, 49), txnIndexData(40))
	deleted, err := a.Sweep(ctx, tp0)
	if err != nil || len(deleted) != 1 || deleted[0] != TxnIndexKey(tp0, 40, 49) {
		t.Fatalf("sweep = %v, %v", deleted, err)
	}
	// Trim deletes the indexes of the segments it drops.
	if err := a.Trim(ctx, tp0, 30); err != nil {
		t.Fatal(err)
	}
	objs, _ := be.List(ctx, "")
	want := SegmentKey(tp0, 30, 39) + " " + TxnIndexKey(tp0, 30, 39) + " " + ManifestKey(tp0)
	if got := keys(objs); got != want {
		t.Fatalf("objects after trim: %s\nwant %s", got, want)
	}
	// An index over the bound is refused on upload, before a byte is sent.
	small, err := New(be, Options{Logger: quiet, MaxTxnIndexBytes: 10})
	if err != nil {
		t.Fatal(err)
	}
	b := segData(40)
	err = small.UploadSegment(ctx, tp0, SegmentMeta{BaseOffset: 40, LastOffset: 49, Size: int64(len(b)),
		HasTxnIndex: true, TxnIndex: txnIndexData(40)}, bytes.NewReader(b))
	if err == nil {
		t.Fatal("an index over MaxTxnIndexBytes was uploaded")
	}
	if _, _, err := small.ReadTxnIndex(ctx, tp0, 30); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("reading an index over MaxTxnIndexBytes: %v", err)
	}
}

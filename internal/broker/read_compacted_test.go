package broker

import (
	"slices"
	"testing"
	"time"

	"github.com/weirhq/weir/internal/batch"
	"github.com/weirhq/weir/internal/vfs"
)

// headers parses data (whole batches) into their headers.
func headers(t *testing.T, data []byte) []batch.Header {
	t.Helper()
	var hs []batch.Header
	for len(data) > 0 {
		one, rest, err := batch.Split(data)
		if err != nil {
			t.Fatal(err)
		}
		h, err := batch.ParseHeader(one)
		if err != nil {
			t.Fatal(err)
		}
		hs = append(hs, h)
		data = rest
	}
	return hs
}

func emptyBatch(t *testing.T, base int64, lastDelta int32, pid int64) []byte {
	t.Helper()
	h := batch.Header{BaseOffset: base, LastOffsetDelta: lastDelta, ProducerID: pid, MaxTimestamp: 1}
	b, err := batch.NewBuilder(batch.BuildOptions{BaseOffset: base, HasProducer: pid >= 0, ProducerID: pid,
		BaseTimestamp: 1, Thinned: &h}).Build()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func dataBatch(t *testing.T, base int64, n int, control bool) []byte {
	t.Helper()
	return mkBatch(t, n, batch.BuildOptions{BaseOffset: base, Control: control, HasProducer: control, ProducerID: 7})
}

// dropEmptyBatches leaves out record-less batches unless one is all there
// is (then the last), and keeps control batches.
func TestDropEmptyBatches(t *testing.T) {
	type shape struct {
		base int64
		n    int32
	}
	for _, tc := range []struct {
		name  string
		in    [][]byte
		want  []shape
		after int64
	}{
		{"empties around data", [][]byte{emptyBatch(t, 0, 9, -1), emptyBatch(t, 10, 0, 3), dataBatch(t, 11, 2, false),
			emptyBatch(t, 13, 4, 3), dataBatch(t, 18, 1, false), emptyBatch(t, 19, 0, -1)}, []shape{{11, 2}, {18, 1}}, -1},
		{"only empties", [][]byte{emptyBatch(t, 0, 9, -1), emptyBatch(t, 10, 0, 3)}, []shape{{10, 0}}, 11},
		{"one empty", [][]byte{emptyBatch(t, 5, 2, 3)}, []shape{{5, 0}}, 8},
		{"control kept", [][]byte{emptyBatch(t, 0, 0, 3), dataBatch(t, 1, 1, true)}, []shape{{1, 1}}, -1},
		{"no empties", [][]byte{dataBatch(t, 0, 3, false), dataBatch(t, 3, 1, false)}, []shape{{0, 3}, {3, 1}}, -1},
	} {
		data := slices.Concat(tc.in...)
		kept, after := dropEmptyBatches(data)
		var got []shape
		for _, h := range headers(t, kept) {
			got = append(got, shape{h.BaseOffset, h.NumRecords})
		}
		if !slices.Equal(got, tc.want) || after != tc.after {
			t.Errorf("%s: kept %v after %d, want %v after %d", tc.name, got, after, tc.want, tc.after)
		}
		if len(kept) > 0 && &kept[0] != &data[0] {
			t.Errorf("%s: not compacted in place (pooled buffers are recycled by their start)", tc.name)
		}
	}
}

// A consumer reading a compacted partition from an offset in an empty
// batch at the end of a segment gets the next segment's records, not the
// empty batch alone (kafkajs fetches the same offset forever then), and
// no record-less batch in front of records (kafka-go panics on it).
func TestReadSkipsEmptiedBatches(t *testing.T) {
	clock := &manualClock{}
	clock.ms.Store(time.Now().UnixMilli())
	b, err := Open(Options{FS: vfs.NewMem(), Dir: "/data", Logger: quiet(), Now: clock.now, RetentionCheckInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	cfg := map[string]string{"cleanup.policy": "compact", "segment.ms": "100", "delete.retention.ms": "0"}
	if _, err := b.CreateTopic("c", 1, cfg, false); err != nil {
		t.Fatal(err)
	}
	p, _ := b.Partition("c", 0)
	// Each batch in a segment of its own: k0-k2 at 0-2, again at 3-5, a
	// tombstone of k9 at 6, k0 at 7 (in the segment the high watermark is
	// in, so not cleaned).
	tomb, err := batch.Build(batch.BuildOptions{BaseTimestamp: clock.now().UnixMilli()}, []batch.Record{{Key: []byte("k9")}})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{3, 3, 0, 1} {
		if n == 0 {
			if _, err := p.Produce(tomb); err != nil {
				t.Fatal(err)
			}
		} else {
			produceAt(t, p, n, clock.now().UnixMilli())
		}
		clock.advance(100)
		b.EnforceRetention()
	}
	tp, _ := b.Topic("c")
	if err := p.Clean(tp.Configs()); err != nil {
		t.Fatal(err)
	}
	// The cleaned segment: 0-2 empty (superseded by 3-5), 3-5, 6 empty
	// (the tombstone past delete.retention.ms); 7 in the segment after.
	raw, err := p.log.Read(6, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if hs := headers(t, raw); len(hs) != 1 || hs[0].NumRecords != 0 || hs[0].BaseOffset != 6 {
		t.Fatalf("log read at 6 = %+v, want the empty batch 6 alone (the test's premise)", hs)
	}
	raw, err = p.log.Read(0, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if hs := headers(t, raw); len(hs) != 3 || hs[0].NumRecords != 0 || hs[1].NumRecords != 3 || hs[2].NumRecords != 0 {
		t.Fatalf("log read at 0 = %+v, want empty 0-2, 3-5, empty 6", hs)
	}

	type rec struct{ off, n int64 }
	for _, from := range []int64{0, 1, 2, 6, 7} {
		var got []rec
		for off := from; off < p.HighWatermark(); {
			data, err := p.Read(off, 1<<20)
			if err != nil {
				t.Fatal(err)
			}
			hs := headers(t, data)
			if len(hs) == 0 {
				t.Fatalf("read from %d: nothing at %d below the high watermark %d", from, off, p.HighWatermark())
			}
			for _, h := range hs {
				if h.NumRecords == 0 {
					t.Fatalf("read from %d at %d: record-less batch %d-%d served", from, off, h.BaseOffset, h.LastOffset())
				}
				got = append(got, rec{h.BaseOffset, int64(h.NumRecords)})
				off = h.LastOffset() + 1
			}
		}
		want := []rec{{3, 3}, {7, 1}}
		if from > 5 {
			want = want[1:]
		}
		if !slices.Equal(got, want) {
			t.Errorf("read from %d: batches %v, want %v", from, got, want)
		}
		r, err := p.ReadCommittedBuf(from, 1<<20, nil)
		if err != nil {
			t.Fatal(err)
		}
		if hs := headers(t, r.Data); len(hs) == 0 || hs[0].BaseOffset != want[0].off {
			t.Errorf("read_committed from %d: %+v, want first batch at %d", from, hs, want[0].off)
		}
	}
}

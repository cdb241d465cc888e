package broker

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"testing"

	"github.com/weirhq/weir/internal/batch"
	"github.com/weirhq/weir/internal/vfs"
)

// recrc recomputes a batch's CRC-32C after a test edited it, so that only
// the edit, not the checksum, can be what the broker objects to.
func recrc(b []byte) {
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli)))
}

// TestAppendChecksCompressedRecords: a compressed batch whose header and
// CRC are intact but whose records are not is refused with
// CORRUPT_MESSAGE and not written; one that decompresses past the bound is
// refused as too large; intact compressed batches of every codec go in.
func TestAppendChecksCompressedRecords(t *testing.T) {
	b := openMem(t, vfs.NewMem())
	defer b.Close()
	if _, err := b.CreateTopic("t", 1, nil, false); err != nil {
		t.Fatal(err)
	}
	p, _ := b.Partition("t", 0)

	for _, c := range []batch.Codec{batch.CodecGzip, batch.CodecSnappy, batch.CodecLZ4, batch.CodecZstd} {
		good := mkBatch(t, 5, batch.BuildOptions{Codec: c})
		if _, err := p.Produce(good); err != nil {
			t.Fatalf("%s: intact batch refused: %v", c, err)
		}
	}
	end := p.log.EndOffset()

	// The header counts six records; the compressed payload holds five.
	miscounted := mkBatch(t, 5, batch.BuildOptions{Codec: batch.CodecZstd})
	binary.BigEndian.PutUint32(miscounted[23:], 5) // last offset delta
	binary.BigEndian.PutUint32(miscounted[57:], 6) // record count
	recrc(miscounted)
	if _, err := batch.Verify(miscounted); err != nil {
		t.Fatalf("the edited header should pass the header checks: %v", err)
	}
	if _, err := p.Produce(miscounted); !errors.Is(err, ErrCorruptMessage) {
		t.Fatalf("record count not matching the compressed records: %v, want ErrCorruptMessage", err)
	}

	// A payload that is not gzip at all.
	garbage := mkBatch(t, 5, batch.BuildOptions{Codec: batch.CodecGzip})
	copy(garbage[batch.HeaderSize:], bytes.Repeat([]byte{0x5a}, len(garbage)-batch.HeaderSize))
	recrc(garbage)
	if _, err := p.Produce(garbage); !errors.Is(err, ErrCorruptMessage) {
		t.Fatalf("undecodable payload: %v, want ErrCorruptMessage", err)
	}

	// A small batch that decompresses past the bound.
	bomb, err := batch.Build(batch.BuildOptions{Codec: batch.CodecZstd, BaseTimestamp: 1},
		[]batch.Record{{Value: make([]byte, maxDecompressedBatch+1)}})
	if err != nil {
		t.Fatal(err)
	}
	if len(bomb) > 1<<20 {
		t.Fatalf("bomb is %d bytes, not small", len(bomb))
	}
	if _, err := p.Produce(bomb); !errors.Is(err, ErrRecordTooLarge) {
		t.Fatalf("compression bomb: %v, want ErrRecordTooLarge", err)
	}

	if got := p.log.EndOffset(); got != end {
		t.Fatalf("refused batches were written: end %d, want %d", got, end)
	}
}

// EachStoredBatch calls fn with every visible batch of p, decoded, from
// offset 0 to the high watermark. (Exported for the broker_test package.)
func EachStoredBatch(t *testing.T, p *Partition, fn func(h batch.Header, recs []batch.Record)) {
	t.Helper()
	for off := int64(0); off < p.HighWatermark(); {
		data, err := p.Read(off, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		for len(data) > 0 {
			one, rest, err := batch.Split(data)
			if err != nil {
				t.Fatal(err)
			}
			h, recs, err := batch.Records(one, 1<<20)
			if err != nil {
				t.Fatalf("stored batch at %d: %v", off, err)
			}
			fn(h, recs)
			off = h.LastOffset() + 1
			data = rest
		}
	}
}

// storedBatches waits until everything written is durable and returns
// the headers of p's batches, checking that record i's value is "v<i>".
func storedBatches(t *testing.T, p *Partition) []batch.Header {
	t.Helper()
	if err := p.WaitDurable(context.Background(), p.log.EndOffset()); err != nil {
		t.Fatal(err)
	}
	var out []batch.Header
	EachStoredBatch(t, p, func(h batch.Header, recs []batch.Record) {
		for i, r := range recs {
			if want := fmt.Sprintf("v%d", i); string(r.Value) != want {
				t.Fatalf("batch at %d record %d: value %q, want %q", h.BaseOffset, i, r.Value, want)
			}
		}
		out = append(out, h)
	})
	return out
}

// TestCompressionType: a topic's compression.type other than "producer"
// stores every batch in that codec, records, timestamps and producer
// fields unchanged, so idempotent retries are still recognised; altering
// it applies to the next batch; "producer" stores batches as produced.
func TestCompressionType(t *testing.T) {
	b := openMem(t, vfs.NewMem())
	defer b.Close()
	if _, err := b.CreateTopic("z", 1, map[string]string{"compression.type": "zstd"}, false); err != nil {
		t.Fatal(err)
	}
	p, _ := b.Partition("z", 0)
	in := []batch.BuildOptions{
		{Codec: batch.CodecNone, BaseTimestamp: 1000},
		{Codec: batch.CodecGzip, BaseTimestamp: 2000},
		{Codec: batch.CodecZstd, BaseTimestamp: 3000},
		{Codec: batch.CodecLZ4, BaseTimestamp: 4000, HasProducer: true, ProducerID: 7, ProducerEpoch: 1, BaseSequence: 0},
	}
	for _, o := range in {
		if _, err := p.Produce(mkBatch(t, 4, o)); err != nil {
			t.Fatalf("append %s: %v", o.Codec, err)
		}
	}
	// The idempotent batch again: a duplicate, recognised after re-encoding.
	retry := mkBatch(t, 4, in[3])
	a, err := p.Produce(retry)
	if err != nil || !a.Duplicate || a.BaseOffset != 12 {
		t.Fatalf("retry of the idempotent batch: %+v, %v; want the duplicate at 12", a, err)
	}
	got := storedBatches(t, p)
	if len(got) != len(in) {
		t.Fatalf("%d batches stored, want %d", len(got), len(in))
	}
	for i, h := range got {
		if h.Codec() != batch.CodecZstd {
			t.Errorf("batch %d stored as %s, want zstd", i, h.Codec())
		}
		if h.BaseTimestamp != in[i].BaseTimestamp || h.NumRecords != 4 {
			t.Errorf("batch %d: timestamp %d, %d records; want %d, 4", i, h.BaseTimestamp, h.NumRecords, in[i].BaseTimestamp)
		}
	}
	if h := got[3]; h.ProducerID != 7 || h.ProducerEpoch != 1 || h.BaseSequence != 0 {
		t.Errorf("producer fields not kept: %+v", h)
	}

	// Records are checked on the way: a batch whose records do not match
	// its header is refused, not re-encoded into a valid-looking one.
	bad := mkBatch(t, 3, batch.BuildOptions{Codec: batch.CodecNone})
	binary.BigEndian.PutUint32(bad[23:], 3)
	binary.BigEndian.PutUint32(bad[57:], 4)
	recrc(bad)
	if _, err := p.Produce(bad); !errors.Is(err, ErrCorruptMessage) {
		t.Fatalf("miscounted batch under compression.type=zstd: %v, want ErrCorruptMessage", err)
	}

	if err := b.AlterConfigs("z", map[string]string{"compression.type": "uncompressed"}, false); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Produce(mkBatch(t, 4, batch.BuildOptions{Codec: batch.CodecSnappy, BaseTimestamp: 5000})); err != nil {
		t.Fatal(err)
	}
	if err := b.AlterConfigs("z", map[string]string{"compression.type": "producer"}, false); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Produce(mkBatch(t, 4, batch.BuildOptions{Codec: batch.CodecGzip, BaseTimestamp: 6000})); err != nil {
		t.Fatal(err)
	}
	got = storedBatches(t, p)
	if c := got[4].Codec(); c != batch.CodecNone {
		t.Errorf("after compression.type=uncompressed: stored as %s", c)
	}
	if c := got[5].Codec(); c != batch.CodecGzip {
		t.Errorf("after compression.type=producer: stored as %s, want gzip as produced", c)
	}
}

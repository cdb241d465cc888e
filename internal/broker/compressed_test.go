package broker

import (
	"bytes"
	"encoding/binary"
	"errors"
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
		if _, err := p.Append(good); err != nil {
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
	if _, err := p.Append(miscounted); !errors.Is(err, ErrCorruptMessage) {
		t.Fatalf("record count not matching the compressed records: %v, want ErrCorruptMessage", err)
	}

	// A payload that is not gzip at all.
	garbage := mkBatch(t, 5, batch.BuildOptions{Codec: batch.CodecGzip})
	copy(garbage[batch.HeaderSize:], bytes.Repeat([]byte{0x5a}, len(garbage)-batch.HeaderSize))
	recrc(garbage)
	if _, err := p.Append(garbage); !errors.Is(err, ErrCorruptMessage) {
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
	if _, err := p.Append(bomb); !errors.Is(err, ErrRecordTooLarge) {
		t.Fatalf("compression bomb: %v, want ErrRecordTooLarge", err)
	}

	if got := p.log.EndOffset(); got != end {
		t.Fatalf("refused batches were written: end %d, want %d", got, end)
	}
}

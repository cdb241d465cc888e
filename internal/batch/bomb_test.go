package batch

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// compressedBatch wraps an arbitrary compressed payload in a batch with a
// valid header and CRC claiming one record.
func compressedBatch(c Codec, payload []byte) []byte {
	return edit(withRecordBytes(payload, 1), func(b []byte) {
		binary.BigEndian.PutUint16(b[offAttributes:], uint16(c))
	})
}

var bombs = sync.OnceValue(func() map[string][]byte {
	size := 100 << 20
	if testing.Short() {
		size = 16 << 20
	}
	zeros := make([]byte, size)
	out := make(map[string][]byte)

	var buf bytes.Buffer
	gz, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	_, _ = gz.Write(zeros)
	_ = gz.Close()
	out["gzip"] = compressedBatch(CodecGzip, bytes.Clone(buf.Bytes()))

	out["snappy"] = compressedBatch(CodecSnappy, s2.EncodeSnappy(nil, zeros))
	out["snappy-xerial"] = compressedBatch(CodecSnappy, xerialSnappy(nil, zeros))

	buf.Reset()
	lz := lz4.NewWriter(&buf)
	_, _ = lz.Write(zeros)
	_ = lz.Close()
	out["lz4"] = compressedBatch(CodecLZ4, bytes.Clone(buf.Bytes()))

	enc, _ := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest))
	out["zstd"] = compressedBatch(CodecZstd, enc.EncodeAll(zeros, nil)) // declares its size
	buf.Reset()
	zw, _ := zstd.NewWriter(&buf, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
	_, _ = zw.Write(zeros)
	_ = zw.Close()
	out["zstd-stream"] = compressedBatch(CodecZstd, bytes.Clone(buf.Bytes())) // does not

	// zstd RLE blocks, 128 KiB from 4 bytes each, in a frame without a
	// declared size, and the same behind compressed blocks.
	rle := []byte{0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x38} // no size, 128 KiB window
	for i := range size / zstdMaxBlock {
		bh := uint32(zstdMaxBlock)<<3 | 1<<1
		if i == size/zstdMaxBlock-1 {
			bh |= 1 // last
		}
		rle = append(rle, byte(bh), byte(bh>>8), byte(bh>>16), 0)
	}
	out["zstd-rle"] = compressedBatch(CodecZstd, rle)
	buf.Reset()
	zw.Reset(&buf)
	_, _ = zw.Write(bytes.Repeat([]byte("compressible "), 70_000))
	_ = zw.Close()
	out["zstd-mixed"] = compressedBatch(CodecZstd, append(bytes.Clone(buf.Bytes()), rle...))

	// Headers that lie: a snappy block claiming 1 GiB, a zstd frame
	// claiming 1 TiB, a gzip trailer claiming 10 bytes.
	out["snappy-claim"] = compressedBatch(CodecSnappy, binary.AppendUvarint(nil, 1<<30))
	out["zstd-claim"] = compressedBatch(CodecZstd, []byte{0x28, 0xb5, 0x2f, 0xfd, 0xc0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 1, 0, 0})
	g := bytes.Clone(out["gzip"])
	binary.LittleEndian.PutUint32(g[len(g)-4:], 10)
	out["gzip-claim"] = edit(g, func([]byte) {})
	return out
})

// TestCompressionBomb checks that payloads decompressing far past the bound
// fail with ErrTooLarge while allocating little more than the bound.
func TestCompressionBomb(t *testing.T) {
	const limit = 1 << 20
	for name, b := range bombs() {
		t.Run(name, func(t *testing.T) {
			if _, err := Verify(b); err != nil {
				t.Fatalf("Verify: %v", err) // the bomb is a well-formed batch
			}
			_, _, _ = Records(b, limit) // warm the decoder pools
			// TotalAlloc is process-wide: take the smallest of a few runs
			// so allocations by unrelated goroutines do not count.
			alloc := uint64(math.MaxUint64)
			for range 3 {
				var before, after runtime.MemStats
				runtime.ReadMemStats(&before)
				_, recs, err := Records(b, limit)
				runtime.ReadMemStats(&after)
				// A header claiming more than its blocks hold is invalid
				// rather than too large; either way nothing is allocated.
				if !errors.Is(err, ErrTooLarge) && !(strings.HasSuffix(name, "-claim") && errors.Is(err, ErrInvalid)) || recs != nil {
					t.Fatalf("Records = %d records, %v; want ErrTooLarge", len(recs), err)
				}
				alloc = min(alloc, after.TotalAlloc-before.TotalAlloc)
			}
			t.Logf("%d bytes compressed, %d bytes allocated", len(b), alloc)
			// Beyond the bound, the decoders may need their working memory:
			// zstd block buffers of 128 KiB and, to count a stream, its
			// window (up to 8 MiB); lz4 a block buffer of the frame's block
			// size (up to 4 MiB). All are pooled, but a GC may empty pools.
			slack := uint64(512 << 10)
			switch {
			case strings.HasPrefix(name, "lz4"):
				slack += 4 << 20
			case strings.HasPrefix(name, "zstd"):
				slack += zstdMaxWindow
			}
			if alloc > limit+slack {
				t.Fatalf("allocated %d bytes for a %d byte bound", alloc, limit)
			}
		})
	}
}

// TestDecompressLimitExact checks the bound is exact for every codec: the
// records' own size passes, one byte less fails.
func TestDecompressLimitExact(t *testing.T) {
	recs := sampleRecords(300, 5)
	for _, v := range referenceVariants {
		if v.codec == CodecNone {
			continue
		}
		b := refBatch(t, v.codec, refOptions, recs, v.compress)
		raw := len(refBatch(t, CodecNone, refOptions, recs, nil)) - HeaderSize
		if _, _, err := Records(b, raw); err != nil {
			t.Fatalf("%s: limit %d: %v", v.name, raw, err)
		}
		if _, _, err := Records(b, raw-1); !errors.Is(err, ErrTooLarge) {
			t.Fatalf("%s: limit %d: %v, want ErrTooLarge", v.name, raw-1, err)
		}
		if _, _, err := Records(b, 0); !errors.Is(err, ErrTooLarge) {
			t.Fatalf("%s: limit 0: %v, want ErrTooLarge", v.name, err)
		}
	}
	// The bound is on decompression: uncompressed batches parse in place.
	if _, _, err := Records(mustBuild(t, BuildOptions{}, recs), 0); err != nil {
		t.Fatalf("uncompressed with limit 0: %v", err)
	}
}

// TestCorruptPayload checks that compressed payloads that are not what they
// claim fail with ErrInvalid.
func TestCorruptPayload(t *testing.T) {
	good := testBatches(t)
	for _, c := range allCodecs[1:] {
		for _, payload := range [][]byte{nil, {0}, bytes.Repeat([]byte{0xa5}, 100), good[c][HeaderSize : len(good[c])-3]} {
			_, _, err := Records(compressedBatch(c, payload), 1<<20)
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("%s: %d byte payload: %v", c, len(payload), err)
			}
		}
	}
}

// TestZstdLooseBound covers streams whose block headers bound them loosely:
// a producer that flushes often writes many small blocks, each of which
// could hold 128 KiB. Such streams are counted before they are decoded.
func TestZstdLooseBound(t *testing.T) {
	recs := sampleRecords(400, 8)
	raw := refBatch(t, CodecNone, refOptions, recs, nil)[HeaderSize:]
	flushed := func(window int) func(testing.TB, []byte) []byte {
		return func(t testing.TB, b []byte) []byte {
			var buf bytes.Buffer
			w, err := zstd.NewWriter(&buf, zstd.WithEncoderConcurrency(1), zstd.WithWindowSize(window))
			check(t, err)
			for len(b) > 0 {
				n := min(len(b), 1000)
				_, err := w.Write(b[:n])
				check(t, err)
				check(t, w.Flush())
				b = b[n:]
			}
			check(t, w.Close())
			return buf.Bytes()
		}
	}
	small := refBatch(t, CodecZstd, refOptions, recs, flushed(1<<20))
	lower, upper, err := zstdBounds(small[HeaderSize:])
	if err != nil || upper < 10*uint64(len(raw)) || lower > uint64(len(raw)) {
		t.Fatalf("bounds %d..%d for %d bytes, %v", lower, upper, len(raw), err)
	}
	for _, limit := range []int{len(raw), 2 * len(raw), int(upper)} {
		if _, got, err := Records(small, limit); err != nil {
			t.Fatalf("limit %d: %v", limit, err)
		} else {
			checkRecords(t, got, recs)
		}
	}
	if _, _, err := Records(small, len(raw)-1); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("limit %d: %v", len(raw)-1, err)
	}

	// A window over zstdMaxWindow decodes when the headers bound the
	// stream within the limit, and is refused when it would need counting.
	huge := refBatch(t, CodecZstd, refOptions, recs, flushed(4*zstdMaxWindow))
	if _, got, err := Records(huge, 1<<30); err != nil {
		t.Fatalf("large window, loose limit: %v", err)
	} else {
		checkRecords(t, got, recs)
	}
	if _, _, err := Records(huge, 2*len(raw)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("large window, counted: %v", err)
	}
}

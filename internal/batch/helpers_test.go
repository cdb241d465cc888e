package batch

import (
	"bytes"
	stdgzip "compress/gzip"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/twmb/franz-go/pkg/kmsg"
)

var allCodecs = []Codec{CodecNone, CodecGzip, CodecSnappy, CodecLZ4, CodecZstd}

// sampleRecords returns n deterministic records covering null and empty
// keys and values, headers with null values and varied sizes. OffsetDelta is
// the index, as Build assigns it.
func sampleRecords(n int, seed uint64) []Record {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	recs := make([]Record, n)
	for i := range recs {
		r := Record{OffsetDelta: int32(i), TimestampDelta: int64(i) * 3}
		switch i % 5 {
		case 0:
			r.Key = nil // null key
			r.Value = []byte(fmt.Sprintf("value-%d", i))
		case 1:
			r.Key = []byte(fmt.Sprintf("key-%d", i))
			r.Value = []byte{} // empty, not null
		case 2:
			r.Key = []byte{}
			r.Value = nil // tombstone
		case 3:
			r.Key = []byte(fmt.Sprintf("k%d", i))
			r.Value = bytes.Repeat([]byte{byte(i)}, rng.IntN(300))
			r.Headers = []RecordHeader{{Key: "trace", Value: []byte("abc")}, {Key: "", Value: nil}}
		default:
			r.Key = []byte("same-key")
			v := make([]byte, rng.IntN(2000))
			for j := range v {
				v[j] = byte(rng.IntN(16)) // compressible, not trivially
			}
			r.Value = v
			r.Headers = []RecordHeader{{Key: "h", Value: []byte{}}}
			r.TimestampDelta = -int64(i) // timestamps need not rise
		}
		recs[i] = r
	}
	return recs
}

// refOptions are the header fields the reference encoder writes.
var refOptions = BuildOptions{
	BaseOffset:           1000,
	PartitionLeaderEpoch: 7,
	BaseTimestamp:        1_700_000_000_000,
	HasProducer:          true,
	ProducerID:           42,
	ProducerEpoch:        3,
	BaseSequence:         100,
}

// refBatch encodes recs with franz-go's kmsg types and the codec libraries
// directly, as a producer would, independently of Builder.
func refBatch(t testing.TB, c Codec, o BuildOptions, recs []Record, compress func(testing.TB, []byte) []byte) []byte {
	t.Helper()
	var raw []byte
	maxTS := o.BaseTimestamp
	for i, r := range recs {
		kr := kmsg.Record{
			Attributes:       r.Attributes,
			TimestampDelta64: r.TimestampDelta,
			OffsetDelta:      r.OffsetDelta,
			Key:              r.Key,
			Value:            r.Value,
		}
		for _, h := range r.Headers {
			kr.Headers = append(kr.Headers, kmsg.Header{Key: h.Key, Value: h.Value})
		}
		kr.Length = int32(len(kr.AppendTo(nil)) - 1) // Length 0 took one byte
		raw = kr.AppendTo(raw)
		if ts := o.BaseTimestamp + r.TimestampDelta; i == 0 || ts > maxTS {
			maxTS = ts
		}
	}
	if compress == nil {
		compress = refCompressor(c)
	}
	attrs := int16(c)
	if o.Transactional {
		attrs |= attrTransactional
	}
	if o.Control {
		attrs |= attrControl
	}
	rb := kmsg.RecordBatch{
		FirstOffset:          o.BaseOffset,
		PartitionLeaderEpoch: o.PartitionLeaderEpoch,
		Magic:                2,
		Attributes:           attrs,
		LastOffsetDelta:      int32(max(len(recs)-1, 0)),
		FirstTimestamp:       o.BaseTimestamp,
		MaxTimestamp:         maxTS,
		ProducerID:           o.ProducerID,
		ProducerEpoch:        o.ProducerEpoch,
		FirstSequence:        o.BaseSequence,
		NumRecords:           int32(len(recs)),
		Records:              compress(t, raw),
	}
	rb.Length = int32(len(rb.AppendTo(nil)) - 12)
	out := rb.AppendTo(nil)
	fixCRC(out)
	return out
}

// refCompressor returns how franz-go and the Java client compress with c.
func refCompressor(c Codec) func(testing.TB, []byte) []byte {
	switch c {
	case CodecGzip:
		return func(t testing.TB, b []byte) []byte { // the standard library, not klauspost
			var buf bytes.Buffer
			w := stdgzip.NewWriter(&buf)
			_, err := w.Write(b)
			check(t, err)
			check(t, w.Close())
			return buf.Bytes()
		}
	case CodecSnappy:
		return func(_ testing.TB, b []byte) []byte { return s2.EncodeSnappy(nil, b) }
	case CodecLZ4:
		return func(t testing.TB, b []byte) []byte { // default options: 4 MiB blocks
			var buf bytes.Buffer
			w := lz4.NewWriter(&buf)
			_, err := w.Write(b)
			check(t, err)
			check(t, w.Close())
			return buf.Bytes()
		}
	case CodecZstd:
		return func(t testing.TB, b []byte) []byte {
			e, err := zstd.NewWriter(nil, zstd.WithWindowSize(64<<10), zstd.WithEncoderConcurrency(1), zstd.WithZeroFrames(true))
			check(t, err)
			return e.EncodeAll(b, nil)
		}
	}
	return func(_ testing.TB, b []byte) []byte { return b }
}

// xerialSnappy frames b as the Java client's xerial SnappyOutputStream does.
func xerialSnappy(_ testing.TB, b []byte) []byte {
	out := append([]byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0}, 0, 0, 0, 1, 0, 0, 0, 1)
	for len(b) > 0 {
		n := min(len(b), 32<<10)
		block := s2.EncodeSnappy(nil, b[:n])
		out = binary.BigEndian.AppendUint32(out, uint32(len(block)))
		out = append(out, block...)
		b = b[n:]
	}
	return out
}

// zstdStreamed compresses as a streaming writer does (like the Java client),
// leaving the content size out of the frame header.
func zstdStreamed(t testing.TB, b []byte) []byte {
	var buf bytes.Buffer
	w, err := zstd.NewWriter(&buf, zstd.WithEncoderConcurrency(1))
	check(t, err)
	_, err = w.Write(b)
	check(t, err)
	check(t, w.Close())
	return buf.Bytes()
}

// refDecompress undoes refCompressor for reading Builder output with
// libraries other than the package's own paths.
func refDecompress(t testing.TB, c Codec, b []byte) []byte {
	t.Helper()
	var r io.Reader
	switch c {
	case CodecNone:
		return b
	case CodecGzip:
		z, err := stdgzip.NewReader(bytes.NewReader(b))
		check(t, err)
		r = z
	case CodecSnappy:
		out, err := s2.Decode(nil, b)
		check(t, err)
		return out
	case CodecLZ4:
		r = lz4.NewReader(bytes.NewReader(b))
	case CodecZstd:
		d, err := zstd.NewReader(nil)
		check(t, err)
		out, err := d.DecodeAll(b, nil)
		check(t, err)
		return out
	}
	out, err := io.ReadAll(r)
	check(t, err)
	return out
}

// fixCRC recomputes the CRC of a batch edited in place.
func fixCRC(b []byte) {
	binary.BigEndian.PutUint32(b[offCRC:], crc32.Checksum(b[offAttributes:], crc32.MakeTable(crc32.Castagnoli)))
}

// edit returns a copy of b changed by f with the CRC recomputed.
func edit(b []byte, f func(b []byte)) []byte {
	b = bytes.Clone(b)
	f(b)
	fixCRC(b)
	return b
}

// withRecordBytes builds an uncompressed batch around a hand-made record
// area claiming n records.
func withRecordBytes(recs []byte, n int32) []byte {
	b := make([]byte, HeaderSize, HeaderSize+len(recs))
	b = append(b, recs...)
	binary.BigEndian.PutUint32(b[offBatchLength:], uint32(len(b)-lengthOverhead))
	b[offMagic] = Magic
	binary.BigEndian.PutUint32(b[offLastOffsetDelta:], uint32(max(n-1, 0)))
	binary.BigEndian.PutUint32(b[offNumRecords:], uint32(n))
	fixCRC(b)
	return b
}

func check(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func mustBuild(t testing.TB, o BuildOptions, recs []Record) []byte {
	t.Helper()
	b, err := Build(o, recs)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	return b
}

// checkRecords compares records field by field, telling null from empty.
func checkRecords(t testing.TB, got, want []Record) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d records, want %d", len(got), len(want))
	}
	for i := range want {
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Fatalf("record %d:\n got %+v\nwant %+v", i, got[i], want[i])
		}
	}
}

package batch

import (
	"bytes"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// referenceVariants are the ways producers in the wild compress records.
var referenceVariants = []struct {
	name     string
	codec    Codec
	compress func(testing.TB, []byte) []byte // nil: refCompressor(codec)
}{
	{"none", CodecNone, nil},
	{"gzip", CodecGzip, nil},
	{"snappy", CodecSnappy, nil},
	{"snappy-xerial", CodecSnappy, xerialSnappy},
	{"lz4", CodecLZ4, nil},
	{"zstd", CodecZstd, nil},
	{"zstd-stream", CodecZstd, zstdStreamed},
	{"zstd-two-frames", CodecZstd, func(t testing.TB, b []byte) []byte {
		half := len(b) / 2
		return append(zstdStreamed(t, b[:half]), refCompressor(CodecZstd)(t, b[half:])...)
	}},
}

// TestReferenceBatches parses batches that franz-go's kmsg encoder and the
// codec libraries produced, independently of Builder.
func TestReferenceBatches(t *testing.T) {
	sets := map[string][]Record{
		"one":   sampleRecords(1, 11),
		"some":  sampleRecords(37, 12),
		"many":  sampleRecords(3000, 13),
		"large": {{Value: bytes.Repeat([]byte("abcdefgh"), 1<<17), OffsetDelta: 0}, {Value: []byte{}, OffsetDelta: 1}},
	}
	for _, v := range referenceVariants {
		for name, recs := range sets {
			t.Run(v.name+"/"+name, func(t *testing.T) {
				o := refOptions
				b := refBatch(t, v.codec, o, recs, v.compress)
				h, err := Verify(b)
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if h.Codec() != v.codec || h.BaseOffset != o.BaseOffset || h.ProducerID != o.ProducerID ||
					h.BaseSequence != o.BaseSequence || h.NumRecords != int32(len(recs)) {
					t.Fatalf("header %+v", h)
				}
				_, got, err := Records(b, 8<<20)
				if err != nil {
					t.Fatalf("Records: %v", err)
				}
				checkRecords(t, got, recs)

				// Builder's uncompressed encoding is byte for byte kmsg's.
				if v.codec == CodecNone {
					if ours := mustBuild(t, o, recs); !bytes.Equal(ours, b) {
						t.Fatalf("Builder differs from the kmsg encoding")
					}
				}
			})
		}
	}
}

// TestBuilderReadByKmsg reads Builder output with kmsg and the reference
// decompressors.
func TestBuilderReadByKmsg(t *testing.T) {
	recs := sampleRecords(200, 21)
	for _, c := range allCodecs {
		o := refOptions
		o.Codec = c
		b := mustBuild(t, o, recs)
		var rb kmsg.RecordBatch
		if err := rb.ReadFrom(b); err != nil {
			t.Fatalf("%s: kmsg: %v", c, err)
		}
		if rb.FirstOffset != o.BaseOffset || rb.Length != int32(len(b)-12) || rb.Magic != 2 ||
			rb.Attributes != int16(c) || rb.NumRecords != int32(len(recs)) || rb.FirstSequence != o.BaseSequence {
			t.Fatalf("%s: kmsg header %+v", c, rb)
		}
		raw := refDecompress(t, c, rb.Records)
		for i, want := range recs {
			var kr kmsg.Record
			if err := kr.ReadFrom(raw); err != nil {
				t.Fatalf("%s: record %d: %v", c, i, err)
			}
			raw = raw[varlongLen(int64(kr.Length))+int64(kr.Length):]
			if kr.OffsetDelta != int32(i) || kr.TimestampDelta64 != want.TimestampDelta ||
				!bytes.Equal(kr.Key, want.Key) || (kr.Key == nil) != (want.Key == nil) ||
				!bytes.Equal(kr.Value, want.Value) || (kr.Value == nil) != (want.Value == nil) ||
				len(kr.Headers) != len(want.Headers) {
				t.Fatalf("%s: record %d: kmsg read %+v, want %+v", c, i, kr, want)
			}
			for j, h := range want.Headers {
				if kr.Headers[j].Key != h.Key || !bytes.Equal(kr.Headers[j].Value, h.Value) ||
					(kr.Headers[j].Value == nil) != (h.Value == nil) {
					t.Fatalf("%s: record %d header %d: %+v", c, i, j, kr.Headers[j])
				}
			}
		}
		if len(raw) != 0 {
			t.Fatalf("%s: %d bytes after the records", c, len(raw))
		}
	}
}

package batch

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// benchRecords returns n records with 1 KiB JSON-like values: repeated
// field names, varied words and numbers, compressible as real events are.
func benchRecords(n int) []Record {
	rng := rand.New(rand.NewPCG(1, 2))
	words := []string{"alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet"}
	recs := make([]Record, n)
	for i := range recs {
		var v []byte
		for len(v) < 1024 {
			v = fmt.Appendf(v, `{"id":%d,"user":"%s-%d","score":%.3f},`,
				rng.IntN(1e6), words[rng.IntN(len(words))], rng.IntN(1000), rng.Float64()*100)
		}
		recs[i] = Record{Key: []byte(fmt.Sprintf("key-%d", i)), Value: v[:1024],
			Headers: []RecordHeader{{Key: "content-type", Value: []byte("application/json")}}}
	}
	return recs
}

func BenchmarkVerify(b *testing.B) {
	batch := mustBuild(b, refOptions, benchRecords(16))
	b.SetBytes(int64(len(batch)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Verify(batch); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRecords(b *testing.B) {
	recs := benchRecords(16)
	for _, c := range allCodecs {
		b.Run(c.String(), func(b *testing.B) {
			o := refOptions
			o.Codec = c
			batch := mustBuild(b, o, recs)
			b.SetBytes(16 << 10) // the values, the bulk of the records
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := Records(batch, 1<<20); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(batch)), "batch-bytes")
		})
	}
}

func BenchmarkBuild(b *testing.B) {
	recs := benchRecords(16)
	for _, c := range allCodecs {
		b.Run(c.String(), func(b *testing.B) {
			o := refOptions
			o.Codec = c
			bld := NewBuilder(o)
			var out []byte
			b.SetBytes(16 << 10)
			b.ReportAllocs()
			for b.Loop() {
				bld.Reset(o)
				for _, r := range recs {
					if err := bld.Append(r); err != nil {
						b.Fatal(err)
					}
				}
				var err error
				if out, err = bld.AppendTo(out[:0]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkSetLogAppendTime(b *testing.B) {
	batch := mustBuild(b, refOptions, benchRecords(16))
	b.SetBytes(int64(len(batch)))
	for b.Loop() {
		SetLogAppendTime(batch, 1)
	}
}

package nexmark

import "testing"

func reportEvents(b *testing.B, n int) {
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkGenerate measures the generator with the default model and
// out-of-orderness.
func BenchmarkGenerate(b *testing.B) {
	g, err := NewGenerator(Config{Seed: 1, Events: 1e12})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, ok := g.Next(); !ok {
			b.Fatal("ran out")
		}
	}
	reportEvents(b, b.N)
}

func benchEvents(b *testing.B) []Event {
	evs, err := Generate(Config{Seed: 1, Events: 10_000})
	if err != nil {
		b.Fatal(err)
	}
	return evs
}

func BenchmarkMarshal(b *testing.B) {
	evs := benchEvents(b)
	var buf []byte
	var size int
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		var err error
		buf, err = AppendJSON(buf[:0], &evs[i%len(evs)])
		if err != nil {
			b.Fatal(err)
		}
		size += len(buf)
		i++
	}
	b.SetBytes(int64(size / max(i, 1)))
	reportEvents(b, i)
}

func BenchmarkUnmarshal(b *testing.B) {
	enc := marshalAll(b, benchEvents(b))
	var e Event
	var size int
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		data := enc[i%len(enc)]
		if err := Unmarshal(data, &e); err != nil {
			b.Fatal(err)
		}
		size += len(data)
		i++
	}
	b.SetBytes(int64(size / max(i, 1)))
	reportEvents(b, i)
}

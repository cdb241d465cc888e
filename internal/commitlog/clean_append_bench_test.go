package commitlog

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/weirhq/weir/internal/batch"
	"github.com/weirhq/weir/internal/vfs"
)

// BenchmarkAppendWhileCleaning measures what a busy cleaner does to the
// append path of its own partition: on a copy of BenchmarkClean's log
// (OS filesystem, durability Always), one goroutine appends a batch of
// benchCleanBatch 1 KiB records every millisecond (16 MB/s) and waits for
// it to be durable, as a produce with acks=all does, while (cleaning) or
// without (idle) another goroutine runs Clean back to back. It reports
// the latency of Append alone (the append lock and the write) and of
// Append plus WaitDurable (the acknowledgement), p50, p99 and max in
// microseconds. One op is one append.
func BenchmarkAppendWhileCleaning(b *testing.B) {
	pristine := filepath.Join(b.TempDir(), "pristine")
	buildCleanBenchLog(b, pristine)
	for _, cleaning := range []bool{false, true} {
		name := "idle"
		if cleaning {
			name = "cleaning"
		}
		b.Run(name, func(b *testing.B) {
			dir := filepath.Join(b.TempDir(), "log")
			copyDir(b, pristine, dir)
			l, err := Open(Options{FS: vfs.OS(), Dir: dir, Durability: Always, Logger: quiet,
				SegmentBytes: benchCleanSegment, RetentionMs: -1, RetentionBytes: -1})
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			stop := make(chan struct{})
			var wg sync.WaitGroup
			cleans := 0
			if cleaning {
				wg.Go(func() {
					for {
						select {
						case <-stop:
							return
						default:
						}
						if _, err := l.Clean(CleanOptions{UpTo: l.HighWatermark(), Now: time.UnixMilli(1 << 40), DeleteRetention: time.Hour}); err != nil {
							b.Error(err)
							return
						}
						cleans++
					}
				})
			}
			rng := rand.New(rand.NewPCG(7, 7))
			appendLat := make([]time.Duration, 0, b.N)
			ackLat := make([]time.Duration, 0, b.N)
			tick := time.NewTicker(time.Millisecond)
			defer tick.Stop()
			b.ResetTimer()
			for i := range b.N {
				<-tick.C
				recs := make([]batch.Record, benchCleanBatch)
				for j := range recs {
					recs[j] = batch.Record{OffsetDelta: int32(j), Key: fmt.Appendf(nil, "key-%05d", rng.IntN(benchCleanKeys)),
						Value: value(i, j, benchRecordSize)}
				}
				raw, err := batch.Build(batch.BuildOptions{BaseTimestamp: int64(i)}, recs)
				if err != nil {
					b.Fatal(err)
				}
				start := time.Now()
				res, err := l.Append(raw)
				if err != nil {
					b.Fatal(err)
				}
				appendLat = append(appendLat, time.Since(start))
				if err := l.WaitDurable(context.Background(), res.LastOffset+1); err != nil {
					b.Fatal(err)
				}
				ackLat = append(ackLat, time.Since(start))
			}
			b.StopTimer()
			close(stop)
			wg.Wait()
			report := func(lat []time.Duration, what string) {
				slices.Sort(lat)
				q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) }
				b.ReportMetric(q(0.5), what+"-p50-µs")
				b.ReportMetric(q(0.99), what+"-p99-µs")
				b.ReportMetric(q(1), what+"-max-µs")
			}
			report(appendLat, "append")
			report(ackLat, "ack")
			b.ReportMetric(float64(cleans), "cleans")
		})
	}
}

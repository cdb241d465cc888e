package commitlog

import (
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/weirhq/weir/internal/batch"
	"github.com/weirhq/weir/internal/vfs"
)

// BenchmarkClean measures Log.Clean on the OS filesystem (b.TempDir, so
// $TMPDIR decides the disk): a log of benchCleanBytes (64 MiB) of 1 KiB
// records, keys drawn at random from benchCleanKeys, in batches of
// benchCleanBatch, sealed in benchCleanSegment segments. Every op cleans
// a fresh copy of that log (the copy is made with the timer stopped, so
// the files are in the page cache, as a broker's recent segments are).
//
// b.SetBytes counts the sealed log's bytes, so MB/s is the log cleaned
// per second. Clean reads each of them twice (the key-map pass and the
// rewrite pass); CleanStats.BytesRead, and so the broker's
// weir_cleaner_bytes_read_total, count the first pass only, as read-MB
// shows. written-MB and removed-recs are what one clean wrote and
// dropped.
func BenchmarkClean(b *testing.B) {
	pristine := filepath.Join(b.TempDir(), "pristine")
	logBytes := buildCleanBenchLog(b, pristine)
	var st CleanStats
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		dir := filepath.Join(b.TempDir(), fmt.Sprint(i))
		copyDir(b, pristine, dir)
		l, err := Open(Options{FS: vfs.OS(), Dir: dir, Durability: Never, Logger: quiet,
			SegmentBytes: benchCleanSegment, RetentionMs: -1, RetentionBytes: -1})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		st, err = l.Clean(CleanOptions{UpTo: l.HighWatermark(), Now: time.UnixMilli(1 << 40), DeleteRetention: time.Hour})
		b.StopTimer()
		if err != nil {
			b.Fatal(err)
		}
		if st.RecordsRemoved == 0 {
			b.Fatalf("clean removed nothing: %+v", st)
		}
		if err := l.Close(); err != nil {
			b.Fatal(err)
		}
		_ = os.RemoveAll(dir)
		b.StartTimer()
	}
	b.SetBytes(logBytes)
	b.ReportMetric(float64(st.BytesRead)/1e6, "read-MB")
	b.ReportMetric(float64(st.BytesWritten)/1e6, "written-MB")
	b.ReportMetric(float64(st.RecordsRemoved), "removed-recs")
}

const (
	benchCleanBytes   = 64 << 20
	benchCleanKeys    = 10000
	benchCleanBatch   = 16
	benchCleanSegment = 8 << 20
)

// buildCleanBenchLog writes the benchmark's log into dir, until its
// sealed segments (what a clean covers) hold about benchCleanBytes, and
// returns their size.
func buildCleanBenchLog(b *testing.B, dir string) int64 {
	b.Helper()
	l, err := Open(Options{FS: vfs.OS(), Dir: dir, Durability: Never, Logger: quiet,
		SegmentBytes: benchCleanSegment, RetentionMs: -1, RetentionBytes: -1})
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(16, 16))
	// A segment rolls a batch short of benchCleanSegment bytes: stop at
	// benchCleanBytes/benchCleanSegment sealed ones.
	for i := 0; l.Dirt(0).Dirty < benchCleanBytes-benchCleanSegment/2; i++ {
		recs := make([]batch.Record, benchCleanBatch)
		for j := range recs {
			recs[j] = batch.Record{OffsetDelta: int32(j), Key: fmt.Appendf(nil, "key-%05d", rng.IntN(benchCleanKeys)),
				Value: value(i, j, benchRecordSize)}
		}
		raw, err := batch.Build(batch.BuildOptions{BaseTimestamp: int64(i)}, recs)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := l.Append(raw); err != nil {
			b.Fatal(err)
		}
	}
	d := l.Dirt(0)
	if err := l.Close(); err != nil {
		b.Fatal(err)
	}
	return d.Dirty
}

// copyDir copies the regular files of src into a new directory dst.
func copyDir(b *testing.B, src, dst string) {
	b.Helper()
	if err := os.MkdirAll(dst, 0o755); err != nil {
		b.Fatal(err)
	}
	ents, err := os.ReadDir(src)
	if err != nil {
		b.Fatal(err)
	}
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		in, err := os.Open(filepath.Join(src, e.Name()))
		if err != nil {
			b.Fatal(err)
		}
		out, err := os.Create(filepath.Join(dst, e.Name()))
		if err == nil {
			_, err = io.Copy(out, in)
			if cerr := out.Close(); err == nil {
				err = cerr
			}
		}
		_ = in.Close()
		if err != nil {
			b.Fatal(err)
		}
	}
}

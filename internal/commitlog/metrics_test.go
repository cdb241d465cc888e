package commitlog

import (
	"sync"
	"testing"
	"time"

	"github.com/weirhq/weir/internal/vfs"
)

// TestMetricsObserveGroupCommits checks the fsync hook: every durable
// record is counted in exactly one group commit, and each data fsync is
// timed.
func TestMetricsObserveGroupCommits(t *testing.T) {
	var (
		mu      sync.Mutex
		fsyncs  int
		records int64
		sizes   []int64
	)
	m := &Metrics{
		FsyncDuration: func(d time.Duration) {
			mu.Lock()
			defer mu.Unlock()
			if d < 0 {
				t.Errorf("negative fsync duration %v", d)
			}
			fsyncs++
		},
		GroupCommitRecords: func(n int64) {
			mu.Lock()
			defer mu.Unlock()
			records += n
			sizes = append(sizes, n)
		},
	}
	l := openLog(t, Options{FS: vfs.NewMem(), Dir: "/p0", Metrics: m})
	var want int64
	for i := range 5 {
		res := appendDurable(t, l, mkBatch(t, i, i+1, 10, 1000))
		want = res.LastOffset + 1
	}
	closeLog(t, l)
	mu.Lock()
	defer mu.Unlock()
	if records != want {
		t.Fatalf("group commits covered %d records (sizes %v), want %d", records, sizes, want)
	}
	if fsyncs != len(sizes) || fsyncs < 5 {
		t.Fatalf("%d fsyncs timed, %d batch sizes; want equal and >= 5 (one per durable append)", fsyncs, len(sizes))
	}
}

// TestMetricsNil checks that a log without metrics, or with nil fields,
// syncs normally.
func TestMetricsNil(t *testing.T) {
	for _, m := range []*Metrics{nil, {}} {
		l := openLog(t, Options{FS: vfs.NewMem(), Dir: "/p0", Metrics: m})
		appendDurable(t, l, mkBatch(t, 1, 3, 10, 1000))
		closeLog(t, l)
	}
}

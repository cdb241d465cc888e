package commitlog

import (
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weirhq/weir/internal/batch"
	"github.com/weirhq/weir/internal/vfs"
)

// TestCleanSwapDoesNotBlockAppends: while a clean swaps its cleaned file
// in (held here at the rename, between the directory fsyncs), appends go
// on; DeleteRecords, which removes segments, waits for the swap, and the
// log reads back as compacted afterwards, also after a reopen.
func TestCleanSwapDoesNotBlockAppends(t *testing.T) {
	mem := vfs.NewMem()
	held := make(chan struct{}, 1)
	release := make(chan struct{})
	var holding atomic.Bool
	inj := vfs.InjectorFunc(func(op vfs.Op, path string) error {
		if op == vfs.OpRename && holding.Load() && strings.HasSuffix(path, cleanTmpSuffix) {
			select {
			case held <- struct{}{}:
			default:
			}
			select {
			case <-release:
			case <-t.Context().Done():
			}
		}
		return nil
	})
	o := Options{FS: vfs.NewErrorFS(mem, inj), Dir: "/p", SegmentBytes: 800, Logger: quiet}
	l := openLog(t, o)
	m := fillCompacted(t, l, rand.New(rand.NewPCG(3, 4)), 300, 10)
	holding.Store(true)

	type result struct {
		st  CleanStats
		err error
	}
	cleaned := make(chan result, 1)
	go func() {
		st, err := l.Clean(CleanOptions{UpTo: l.HighWatermark(), DeleteRetention: time.Hour, Now: time.UnixMilli(1000)})
		cleaned <- result{st, err}
	}()
	select {
	case <-held:
	case r := <-cleaned:
		t.Fatalf("the clean finished without swapping a file in: %+v, %v", r.st, r.err)
	case <-time.After(30 * time.Second):
		t.Fatal("the clean never reached the swap")
	}

	// An append while the swap is held completes.
	appended := make(chan AppendResult, 1)
	key, val := []byte("key-1"), []byte("during the swap")
	go func() {
		b, err := batch.Build(batch.BuildOptions{BaseTimestamp: 5000}, []batch.Record{{Key: key, Value: val}})
		if err != nil {
			t.Error(err)
			return
		}
		res, err := l.Append(b)
		if err != nil {
			t.Error(err)
			return
		}
		appended <- res
	}()
	var res AppendResult
	select {
	case res = <-appended:
	case <-time.After(10 * time.Second):
		t.Fatal("an append waited for the clean's swap")
	}
	m.recs[res.BaseOffset] = cleanRec{key: key, value: val}
	m.end = res.LastOffset + 1

	// DeleteRecords waits for the swap.
	deleted := make(chan error, 1)
	go func() {
		_, err := l.DeleteRecordsBefore(bases(l)[1])
		deleted <- err
	}()
	select {
	case err := <-deleted:
		t.Fatalf("DeleteRecords ran during the swap: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	r := <-cleaned
	must(t, r.err)
	must(t, <-deleted)
	if err := l.WaitDurable(t.Context(), m.end); err != nil {
		t.Fatal(err)
	}
	checkCompacted(t, l, m, r.st.CleanedTo, false)
	closeLog(t, l)
	l = openLog(t, Options{FS: mem, Dir: "/p", SegmentBytes: 800, Logger: quiet})
	checkCompacted(t, l, m, r.st.CleanedTo, false)
}

// TestCleanCloseDuringSwap: a Close while a clean swaps files in waits
// for the swap's file operations, and the clean then changes nothing in
// the closed log; the reopened log reads back as compacted.
func TestCleanCloseDuringSwap(t *testing.T) {
	mem := vfs.NewMem()
	held := make(chan struct{}, 1)
	release := make(chan struct{})
	var holding atomic.Bool
	inj := vfs.InjectorFunc(func(op vfs.Op, path string) error {
		if op == vfs.OpRename && holding.Load() && strings.HasSuffix(path, cleanTmpSuffix) {
			select {
			case held <- struct{}{}:
			default:
			}
			<-release
		}
		return nil
	})
	o := Options{FS: vfs.NewErrorFS(mem, inj), Dir: "/p", SegmentBytes: 800, Logger: quiet}
	l := openLog(t, o)
	m := fillCompacted(t, l, rand.New(rand.NewPCG(5, 6)), 300, 10)
	holding.Store(true)
	cleaned := make(chan error, 1)
	go func() {
		_, err := l.Clean(CleanOptions{UpTo: l.HighWatermark(), DeleteRetention: time.Hour, Now: time.UnixMilli(1000)})
		cleaned <- err
	}()
	<-held
	closed := make(chan error, 1)
	go func() { closed <- l.Close() }()
	select {
	case err := <-closed:
		t.Fatalf("Close returned during the swap: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	must(t, <-closed)
	if err := <-cleaned; err != nil && err != ErrClosed {
		t.Fatalf("clean: %v", err)
	}
	l = openLog(t, Options{FS: mem, Dir: "/p", SegmentBytes: 800, Logger: quiet})
	checkCompacted(t, l, m, -1, false)
}

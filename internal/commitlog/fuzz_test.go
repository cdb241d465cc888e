package commitlog

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"sync"
	"testing"

	"github.com/weirhq/weir/internal/batch"
	"github.com/weirhq/weir/internal/vfs"
)

// fuzzBase is a crashed (no clean marker), fully durable log with a sealed
// segment and an active one holding several batches.
type fuzzBase struct {
	fs           *vfs.MemFS
	opts         Options
	sealed       string // path of the sealed segment's .log
	active       string // path of the active segment's .log
	activeBase   int64
	activeEnds   []int64 // end position of each active batch
	activeBytes  []byte
	activeBatchs [][]byte
}

var (
	fuzzOnce sync.Once
	fuzzB    *fuzzBase
	fuzzErr  error
)

func buildFuzzBase() (*fuzzBase, error) {
	m := vfs.NewMem()
	o := Options{FS: m, Dir: "/fz", SegmentBytes: 300, RetentionMs: -1, IndexIntervalBytes: 64, Logger: quiet}
	l, err := Open(o)
	if err != nil {
		return nil, err
	}
	defer l.Close()
	fb := &fuzzBase{opts: o}
	for i := range 9 {
		if len(*l.segs.Load()) == 2 { // keep the rest in the active segment
			if err := l.SetLimits(Limits{SegmentBytes: 1 << 20}); err != nil {
				return nil, err
			}
		}
		b := mkBatchTs(nopTB{}, i, 30, int64(100-i), int64(200+i))
		res, err := l.Append(b)
		if err != nil {
			return nil, err
		}
		if err := l.WaitDurable(context.Background(), res.LastOffset+1); err != nil {
			return nil, err
		}
		fb.activeBatchs = append(fb.activeBatchs, b)
	}
	segs := *l.segs.Load()
	if len(segs) != 2 {
		return nil, errors.New("want two segments")
	}
	fb.sealed, fb.active, fb.activeBase = segs[0].path(logSuffix), segs[1].path(logSuffix), segs[1].base
	for len(fb.activeBatchs) > 0 && int64(binary.BigEndian.Uint64(fb.activeBatchs[0])) < fb.activeBase {
		fb.activeBatchs = fb.activeBatchs[1:]
	}
	fb.fs = m.CrashStrict()
	fb.activeBytes, err = fb.fs.ReadFile(fb.active)
	var end int64
	for _, b := range fb.activeBatchs {
		end += int64(len(b))
		fb.activeEnds = append(fb.activeEnds, end)
	}
	return fb, err
}

// FuzzRecoverTail damages a valid log with random bytes (appended after
// the active segment, written over it at a random position, or after a
// truncation; or anywhere in the sealed segment) and checks that Open never
// panics, keeps every batch before the damage and recovers a valid prefix
// of the damaged file; damage to a sealed segment is ErrCorrupt.
func FuzzRecoverTail(f *testing.F) {
	f.Add(uint8(0), uint32(0), []byte{})
	f.Add(uint8(0), uint32(0), make([]byte, 100))
	f.Add(uint8(1), uint32(5), []byte{0xff})
	f.Add(uint8(1), uint32(70), []byte{1, 2, 3, 4})
	f.Add(uint8(2), uint32(130), []byte("garbage"))
	f.Add(uint8(3), uint32(20), []byte{0})
	f.Add(uint8(3), uint32(0), []byte{})
	if b, err := batch.Build(batch.BuildOptions{}, []batch.Record{{Value: []byte("v")}}); err == nil {
		f.Add(uint8(0), uint32(0), b)
		f.Add(uint8(2), uint32(0), b)
	}
	f.Fuzz(func(t *testing.T, mode uint8, at uint32, data []byte) {
		fuzzOnce.Do(func() { fuzzB, fuzzErr = buildFuzzBase() })
		if fuzzErr != nil {
			t.Fatal(fuzzErr)
		}
		fb := fuzzB
		m := fb.fs.CrashStrict()
		orig := fb.activeBytes
		target := fb.active
		if mode%4 == 3 {
			target = fb.sealed
		}
		before, err := m.ReadFile(target)
		must(t, err)
		file, err := m.OpenReadWrite(target)
		must(t, err)
		size := int64(len(before))
		switch mode % 4 {
		case 0: // appended
			_, err = file.WriteAt(data, size)
		case 1, 3: // written over (and maybe past the end)
			_, err = file.WriteAt(data, int64(at)%max(size, 1))
		case 2: // torn, then junk
			must(t, file.Truncate(int64(at)%(size+1)))
			_, err = file.WriteAt(data, int64(at)%(size+1))
		}
		must(t, err)
		must(t, file.Sync())
		must(t, file.Close())
		if target == fb.sealed { // make recovery rescan it
			seg := &segment{base: 0, dir: fb.opts.Dir}
			must(t, m.Remove(seg.path(indexSuffix)))
		}
		damaged, err := m.ReadFile(target)
		must(t, err)

		o := fb.opts
		o.FS = m
		l, err := Open(o)
		if target == fb.sealed {
			if err != nil {
				wantErr(t, "Open over a damaged sealed segment", err, ErrCorrupt)
				return
			}
			_ = l.Close()
			// Only PartitionLeaderEpoch, outside the CRC, may differ.
			if len(damaged) != len(before) {
				t.Fatal("Open accepted a sealed segment of another size")
			}
			start := 0
			for _, b := range splitAll(t, before) {
				for i := range b {
					if damaged[start+i] != b[i] && (i < 12 || i >= 16) {
						t.Fatalf("Open accepted a sealed segment changed at %d", start+i)
					}
				}
				start += len(b)
			}
			return
		}
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		defer l.Close()

		// The first byte that differs from the valid segment.
		firstDiff := int64(min(len(orig), len(damaged)))
		for i := range firstDiff {
			if orig[i] != damaged[i] {
				firstDiff = i
				break
			}
		}
		recovered, err := m.ReadFile(target)
		must(t, err)
		if !bytes.HasPrefix(damaged, recovered) {
			t.Fatal("the recovered segment is not a prefix of the damaged one")
		}
		intact := 0
		for intact < len(fb.activeEnds) && fb.activeEnds[intact] <= firstDiff {
			intact++
		}
		if intact > 0 && int64(len(recovered)) < fb.activeEnds[intact-1] {
			t.Fatalf("recovery kept %d bytes, but the first %d were intact", len(recovered), fb.activeEnds[intact-1])
		}
		all := readAll(t, l) // contiguous, each batch verified
		var active [][]byte
		for _, b := range all {
			if header(t, b).BaseOffset >= fb.activeBase {
				active = append(active, b)
			}
		}
		if got := int64(len(bytes.Join(active, nil))); got != int64(len(recovered)) {
			t.Fatalf("readers see %d bytes of the active segment, file has %d", got, len(recovered))
		}
		for i := range intact {
			if !bytes.Equal(active[i], fb.activeBatchs[i]) {
				t.Fatalf("intact batch %d changed", i)
			}
		}
		hw := l.HighWatermark()
		if res, err := l.Append(mkBatch(t, 1, 1, 5, 0)); err != nil || res.BaseOffset != hw {
			t.Fatalf("append after recovery: %+v, %v; want base %d", res, err, hw)
		}
	})
}

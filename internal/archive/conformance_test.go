package archive

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/weirhq/weir/internal/vfs"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// harness opens one kind of backend for the conformance suite.
type harness struct {
	// open returns a fresh, empty backend of its own.
	open func(t *testing.T) Backend
	// corrupt flips a byte of the stored object at off, below the backend.
	corrupt func(t *testing.T, be Backend, key string, off int64)
}

func memHarness() harness {
	var fs *vfs.MemFS
	return harness{
		open: func(t *testing.T) Backend {
			fs = vfs.NewMem()
			be, err := Open(ctxT(t), "file:///archive", nil, Options{FS: fs})
			if err != nil {
				t.Fatal(err)
			}
			return be
		},
		corrupt: func(t *testing.T, be Backend, key string, off int64) {
			p := filepath.Join("/archive", key)
			b, err := fs.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			if err := fs.Corrupt(p, off, []byte{b[off] ^ 0x55}); err != nil {
				t.Fatal(err)
			}
		},
	}
}

func osHarness() harness {
	var dir string
	return harness{
		open: func(t *testing.T) Backend {
			dir = filepath.Join(t.TempDir(), "archive")
			be, err := Open(ctxT(t), "file://"+dir, nil, Options{})
			if err != nil {
				t.Fatal(err)
			}
			return be
		},
		corrupt: func(t *testing.T, be Backend, key string, off int64) {
			f, err := os.OpenFile(filepath.Join(dir, key), os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			var one [1]byte
			if _, err := f.ReadAt(one[:], off); err != nil {
				t.Fatal(err)
			}
			one[0] ^= 0x55
			if _, err := f.WriteAt(one[:], off); err != nil {
				t.Fatal(err)
			}
		},
	}
}

func s3Harness(m *minioServer) harness {
	n := 0
	return harness{
		open: func(t *testing.T) Backend {
			n++
			be, err := Open(ctxT(t), m.url(fmt.Sprintf("t%d/%s", n, strings.ReplaceAll(t.Name(), "/", "_"))),
				m.env(minioUser, minioSecret), Options{})
			if err != nil {
				t.Fatalf("%v\n%s", err, m.log())
			}
			return be
		},
		// Overwrite the object's bytes on the server with one flipped.
		corrupt: func(t *testing.T, be Backend, key string, off int64) {
			b := getAll(t, be, key)
			b[off] ^= 0x55
			if err := be.Put(ctxT(t), key, bytes.NewReader(b), int64(len(b))); err != nil {
				t.Fatal(err)
			}
		},
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func getAll(t *testing.T, be Backend, key string) []byte {
	t.Helper()
	rc, err := be.Get(ctxT(t), key, 0, -1)
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read %s: %v", key, err)
	}
	return b
}

func put(t *testing.T, be Backend, key string, b []byte) {
	t.Helper()
	if err := be.Put(ctxT(t), key, bytes.NewReader(b), int64(len(b))); err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
}

func keys(objs []ObjectInfo) string {
	var ks []string
	for _, o := range objs {
		ks = append(ks, o.Key)
	}
	return strings.Join(ks, " ")
}

func randBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// failingReader yields n bytes of b and then fails, like a crash or a
// broken disk mid-upload.
type failingReader struct {
	r *bytes.Reader
	n int
}

var errReader = errors.New("test: reader failed")

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, errReader
	}
	if len(p) > f.n {
		p = p[:f.n]
	}
	n, err := f.r.Read(p)
	f.n -= n
	return n, err
}

// runConformance runs the backend and archive suite on one kind of backend.
func runConformance(t *testing.T, h harness) {
	t.Run("Objects", func(t *testing.T) { testObjects(t, h) })
	t.Run("PutAtomic", func(t *testing.T) { testPutAtomic(t, h) })
	t.Run("Context", func(t *testing.T) { testContext(t, h) })
	t.Run("Upload", func(t *testing.T) { testUpload(t, h) })
	t.Run("Corrupt", func(t *testing.T) { testCorrupt(t, h) })
	t.Run("CrashMidUpload", func(t *testing.T) { testCrashMidUpload(t, h) })
	t.Run("Trim", func(t *testing.T) { testTrim(t, h) })
	t.Run("TxnIndex", func(t *testing.T) { testTxnIndex(t, h) })
}

func TestConformanceMem(t *testing.T) { runConformance(t, memHarness()) }
func TestConformanceOS(t *testing.T)  { runConformance(t, osHarness()) }
func TestConformanceS3(t *testing.T)  { runConformance(t, s3Harness(startMinio(t))) }

func testObjects(t *testing.T, h harness) {
	be := h.open(t)
	ctx := ctxT(t)
	big := randBytes(1, 1<<20+123) // more than one file-backend chunk
	put(t, be, "a/b/1", []byte("hello, archive"))
	put(t, be, "a/b/2", big)
	put(t, be, "a/bc", []byte("x"))
	put(t, be, "a/c", nil)
	put(t, be, "z", []byte("zz"))

	if got := getAll(t, be, "a/b/2"); !bytes.Equal(got, big) {
		t.Fatalf("get a/b/2: %d bytes, want %d equal", len(got), len(big))
	}
	if got := getAll(t, be, "a/c"); len(got) != 0 {
		t.Fatalf("empty object read back %q", got)
	}
	for _, c := range []struct {
		off, n int64
		want   string
	}{
		{0, 5, "hello"}, {7, 7, "archive"}, {7, -1, "archive"}, {7, 100, "archive"}, {13, 1, "e"}, {3, 0, ""},
	} {
		rc, err := be.Get(ctx, "a/b/1", c.off, c.n)
		if err != nil {
			t.Fatalf("get [%d,+%d): %v", c.off, c.n, err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || string(b) != c.want {
			t.Fatalf("get [%d,+%d) = %q, %v; want %q", c.off, c.n, b, err, c.want)
		}
	}
	rc, err := be.Get(ctx, "a/b/2", 1<<20, 123)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(rc); !bytes.Equal(b, big[1<<20:]) {
		t.Fatal("range across the chunk boundary differs")
	}
	rc.Close()
	for _, off := range []int64{14, 100} {
		if _, err := be.Get(ctx, "a/b/1", off, -1); !errors.Is(err, ErrRange) {
			t.Fatalf("get at %d past the end: %v, want ErrRange", off, err)
		}
	}
	if info, err := be.Stat(ctx, "a/b/2"); err != nil || info.Size != int64(len(big)) || info.Key != "a/b/2" {
		t.Fatalf("stat = %+v, %v", info, err)
	}
	for prefix, want := range map[string]string{
		"":      "a/b/1 a/b/2 a/bc a/c z",
		"a/":    "a/b/1 a/b/2 a/bc a/c",
		"a/b":   "a/b/1 a/b/2 a/bc",
		"a/b/":  "a/b/1 a/b/2",
		"a/b/2": "a/b/2",
		"nope/": "",
	} {
		objs, err := be.List(ctx, prefix)
		if err != nil {
			t.Fatalf("list %q: %v", prefix, err)
		}
		if got := keys(objs); got != want {
			t.Fatalf("list %q = %q, want %q", prefix, got, want)
		}
	}
	objs, _ := be.List(ctx, "a/b/")
	if objs[1].Size != int64(len(big)) {
		t.Fatalf("list size %d, want %d", objs[1].Size, len(big))
	}
	// Replace, then delete.
	put(t, be, "a/b/1", []byte("v2"))
	if got := getAll(t, be, "a/b/1"); string(got) != "v2" {
		t.Fatalf("after replace: %q", got)
	}
	if err := be.Delete(ctx, "a/b/1"); err != nil {
		t.Fatal(err)
	}
	if err := be.Delete(ctx, "a/b/1"); err != nil {
		t.Fatalf("delete of a missing object: %v", err)
	}
	if _, err := be.Get(ctx, "a/b/1", 0, -1); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get after delete: %v, want ErrNotFound", err)
	}
	if _, err := be.Stat(ctx, "a/b/1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("stat after delete: %v, want ErrNotFound", err)
	}
	for _, bad := range []string{"", "/a", "a/", "a//b", "a/../b", "./a", "a/.hidden"} {
		if err := be.Put(ctx, bad, strings.NewReader("x"), 1); err == nil {
			t.Fatalf("put %q accepted", bad)
		}
	}
}

func testPutAtomic(t *testing.T, h harness) {
	be := h.open(t)
	ctx := ctxT(t)
	old := []byte("the old object")
	put(t, be, "k", old)
	body := randBytes(2, 300_000)
	// A reader failing halfway: the old object stays, whole.
	err := be.Put(ctx, "k", &failingReader{r: bytes.NewReader(body), n: 150_000}, int64(len(body)))
	if err == nil {
		t.Fatal("put from a failing reader succeeded")
	}
	if got := getAll(t, be, "k"); !bytes.Equal(got, old) {
		t.Fatalf("after a failed put: %d bytes, want the old %d", len(got), len(old))
	}
	// A body shorter than its size, and one longer: no object.
	if err := be.Put(ctx, "short", bytes.NewReader(body[:10]), 11); err == nil {
		t.Fatal("short body accepted")
	}
	if err := be.Put(ctx, "long", bytes.NewReader(body[:12]), 11); err == nil {
		t.Fatal("long body accepted")
	}
	objs, err := be.List(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if got := keys(objs); got != "k" {
		t.Fatalf("objects after failed puts: %q, want only k", got)
	}
}

func testContext(t *testing.T, h harness) {
	be := h.open(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := be.Put(ctx, "k", strings.NewReader("x"), 1); err == nil {
		t.Fatal("put under a cancelled context succeeded")
	}
	if _, err := be.List(ctx, ""); err == nil {
		t.Fatal("list under a cancelled context succeeded")
	}
	if _, err := be.Stat(ctx, "k"); err == nil {
		t.Fatal("stat under a cancelled context succeeded")
	}
}

var tp0 = TopicPartition{Topic: "orders", Partition: 3}

// segData is the test's segment base-last: size varies with base.
func segData(base int64) []byte { return randBytes(uint64(base)+10, 1000+int(base%7)*3000) }

func upload(ctx context.Context, a *Archive, tp TopicPartition, base, last, logStart int64) error {
	b := segData(base)
	return a.UploadSegment(ctx, tp, SegmentMeta{
		BaseOffset: base, LastOffset: last, FirstTimestamp: 1000 + base, MaxTimestamp: 2000 + last,
		Size: int64(len(b)), LogStartOffset: logStart,
	}, bytes.NewReader(b))
}

func newArchive(t *testing.T, be Backend) *Archive {
	t.Helper()
	a, err := New(be, Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func mustManifest(t *testing.T, a *Archive, tp TopicPartition) *Manifest {
	t.Helper()
	m, err := a.Manifest(ctxT(t), tp)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func ranges(m *Manifest) string {
	var s []string
	for _, g := range m.Segments {
		s = append(s, fmt.Sprintf("%d-%d", g.BaseOffset, g.LastOffset))
	}
	return fmt.Sprintf("start %d: %s", m.StartOffset, strings.Join(s, " "))
}

func checkRead(t *testing.T, a *Archive, tp TopicPartition, base int64) {
	t.Helper()
	b, seg, err := a.ReadSegmentBytes(ctxT(t), tp, base)
	if err != nil {
		t.Fatalf("read segment %d: %v", base, err)
	}
	if want := segData(base); !bytes.Equal(b, want) || seg.Size != int64(len(want)) {
		t.Fatalf("segment %d: %d bytes differ from the %d uploaded", base, len(b), len(want))
	}
}

func testUpload(t *testing.T, h harness) {
	be := h.open(t)
	ctx := ctxT(t)
	a := newArchive(t, be)
	if m := mustManifest(t, a, tp0); m.Generation != 0 || !m.Empty() {
		t.Fatalf("fresh manifest %+v", m)
	}
	for _, s := range [][2]int64{{0, 99}, {100, 149}, {150, 400}} {
		if err := upload(ctx, a, tp0, s[0], s[1], 0); err != nil {
			t.Fatal(err)
		}
	}
	// Another Archive on the same backend sees what the first stored.
	b := newArchive(t, be)
	m := mustManifest(t, b, tp0)
	if got := ranges(m); got != "start 0: 0-99 100-149 150-400" || m.Generation != 3 {
		t.Fatalf("manifest %s gen %d", got, m.Generation)
	}
	s := m.Segments[1]
	if s.FirstTimestamp != 1100 || s.MaxTimestamp != 2149 || s.Size != int64(len(segData(100))) || s.UploadTime == 0 {
		t.Fatalf("segment entry %+v", s)
	}
	for _, base := range []int64{0, 100, 150} {
		checkRead(t, b, tp0, base)
	}
	if _, _, err := b.ReadSegment(ctx, tp0, 101); !errors.Is(err, ErrSegmentNotFound) {
		t.Fatalf("read at a non-base offset: %v", err)
	}
	if g, ok := m.Find(120); !ok || g.BaseOffset != 100 {
		t.Fatalf("find 120 = %+v %v", g, ok)
	}
	// The same segment again is a no-op; overlaps and gaps are refused.
	if err := upload(ctx, a, tp0, 150, 400, 0); err != nil {
		t.Fatalf("re-upload of an archived segment: %v", err)
	}
	if err := upload(ctx, a, tp0, 300, 500, 0); !errors.Is(err, ErrOverlap) {
		t.Fatalf("overlap: %v", err)
	}
	if err := upload(ctx, a, tp0, 402, 500, 0); !errors.Is(err, ErrGap) {
		t.Fatalf("gap: %v", err)
	}
	if got := ranges(mustManifest(t, a, tp0)); got != "start 0: 0-99 100-149 150-400" {
		t.Fatalf("refused uploads changed the manifest: %s", got)
	}
	// The local log start moved past 401-499 (DeleteRecords): the gap is
	// allowed and the archive restarts there.
	if err := upload(ctx, a, tp0, 500, 599, 520); err != nil {
		t.Fatal(err)
	}
	if got := ranges(mustManifest(t, b, tp0)); got != "start 520: 500-599" {
		t.Fatalf("after an allowed gap: %s", got)
	}
	checkRead(t, b, tp0, 500)
	if _, _, err := b.ReadSegment(ctx, tp0, 0); !errors.Is(err, ErrSegmentNotFound) {
		t.Fatalf("read of a segment below the start: %v", err)
	}
	// The segments left behind are orphans for Sweep.
	deleted, err := a.Sweep(ctx, tp0)
	if err != nil {
		t.Fatal(err)
	}
	if len(deleted) != 3 {
		t.Fatalf("sweep deleted %v, want the 3 segments below the start", deleted)
	}
	objs, _ := be.List(ctx, "")
	if got := keys(objs); got != SegmentKey(tp0, 500, 599)+" "+ManifestKey(tp0) {
		t.Fatalf("objects after sweep: %s", got)
	}
}

func testCorrupt(t *testing.T, h harness) {
	be := h.open(t)
	ctx := ctxT(t)
	a := newArchive(t, be)
	for _, s := range [][2]int64{{0, 9}, {10, 19}} {
		if err := upload(ctx, a, tp0, s[0], s[1], 0); err != nil {
			t.Fatal(err)
		}
	}
	h.corrupt(t, be, SegmentKey(tp0, 10, 19), 777)
	rc, _, err := a.ReadSegment(ctx, tp0, 10)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("read of a corrupted segment: %d bytes, err %v; want ErrCorrupt", len(got), err)
	}
	if len(got) >= len(segData(10)) {
		t.Fatal("a corrupted segment was returned whole")
	}
	checkRead(t, a, tp0, 0) // the other segment is fine
	// A truncated object is corrupt too.
	b := getAll(t, be, SegmentKey(tp0, 0, 9))
	put(t, be, SegmentKey(tp0, 0, 9), b[:len(b)-1])
	if _, _, err := a.ReadSegmentBytes(ctx, tp0, 0); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("read of a truncated segment: %v", err)
	}
	// A corrupted manifest is refused, never read as an empty archive.
	h.corrupt(t, be, ManifestKey(tp0), 30)
	if _, err := newArchive(t, be).Manifest(ctx, tp0); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("corrupted manifest: %v", err)
	}
	if err := upload(ctx, newArchive(t, be), tp0, 20, 29, 0); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("upload onto a corrupted manifest: %v", err)
	}
}

func testCrashMidUpload(t *testing.T, h harness) {
	be := h.open(t)
	ctx := ctxT(t)
	a := newArchive(t, be)
	if err := upload(ctx, a, tp0, 0, 9, 0); err != nil {
		t.Fatal(err)
	}
	before := mustManifest(t, a, tp0)
	data := segData(10)
	meta := SegmentMeta{BaseOffset: 10, LastOffset: 19, Size: int64(len(data))}
	err := a.UploadSegment(ctx, tp0, meta, &failingReader{r: bytes.NewReader(data), n: len(data) / 2})
	if !errors.Is(err, errReader) && err == nil {
		t.Fatalf("upload from a failing reader: %v", err)
	}
	after := mustManifest(t, newArchive(t, be), tp0)
	if ranges(after) != ranges(before) || after.Generation != before.Generation {
		t.Fatalf("a failed upload changed the manifest: %s gen %d, was %s gen %d",
			ranges(after), after.Generation, ranges(before), before.Generation)
	}
	if err := upload(ctx, a, tp0, 10, 19, 0); err != nil {
		t.Fatalf("retry: %v", err)
	}
	checkRead(t, a, tp0, 10)
	// An orphan (an object written, its manifest commit lost) is swept.
	put(t, be, SegmentKey(tp0, 20, 29), segData(20))
	deleted, err := a.Sweep(ctx, tp0)
	if err != nil || len(deleted) != 1 || deleted[0] != SegmentKey(tp0, 20, 29) {
		t.Fatalf("sweep = %v, %v", deleted, err)
	}
	if err := upload(ctx, a, tp0, 20, 29, 0); err != nil {
		t.Fatal(err)
	}
	if got := ranges(mustManifest(t, a, tp0)); got != "start 0: 0-9 10-19 20-29" {
		t.Fatalf("final manifest %s", got)
	}
}

func testTrim(t *testing.T, h harness) {
	be := h.open(t)
	ctx := ctxT(t)
	a := newArchive(t, be)
	for _, s := range [][2]int64{{0, 9}, {10, 19}, {20, 29}} {
		if err := upload(ctx, a, tp0, s[0], s[1], 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Trim(ctx, tp0, 15); err != nil {
		t.Fatal(err)
	}
	if got := ranges(mustManifest(t, newArchive(t, be), tp0)); got != "start 15: 10-19 20-29" {
		t.Fatalf("after trim: %s", got)
	}
	if _, err := be.Stat(ctx, SegmentKey(tp0, 0, 9)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("trimmed segment object: %v", err)
	}
	if err := a.Trim(ctx, tp0, 5); err != nil {
		t.Fatal(err) // lowering is a no-op
	}
	if err := a.Trim(ctx, tp0, 1000); err != nil {
		t.Fatal(err)
	}
	m := mustManifest(t, a, tp0)
	if got := ranges(m); got != "start 1000: " {
		t.Fatalf("after trimming everything: %s", got)
	}
	if err := upload(ctx, a, tp0, 30, 39, 0); !errors.Is(err, ErrBelowStart) {
		t.Fatalf("upload below the start: %v", err)
	}
	if err := upload(ctx, a, tp0, 990, 1010, 0); err != nil {
		t.Fatalf("upload straddling the start of an empty archive: %v", err)
	}
}

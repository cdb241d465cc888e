package archive

import (
	"context"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/weirhq/weir/internal/vfs"
)

// localReader reads a whole local file and offers it for linking, as
// commitlog.SegmentReader does.
type localReader struct {
	f  vfs.File
	sr *io.SectionReader
}

func (r *localReader) Read(p []byte) (int, error) { return r.sr.Read(p) }
func (r *localReader) LocalFile() vfs.File        { return r.f }

// localSegment writes segData(base) durably to name in fsys and opens it.
func localSegment(t *testing.T, fsys vfs.FS, name string, base int64) *localReader {
	t.Helper()
	if err := vfs.MkdirAllDurable(fsys, filepath.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
	w, err := fsys.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	b := segData(base)
	if _, err := w.WriteAt(b, 0); err != nil {
		t.Fatal(err)
	}
	if err := w.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := fsys.SyncDir(filepath.Dir(name)); err != nil {
		t.Fatal(err)
	}
	return openLocal(t, fsys, name)
}

func openLocal(t *testing.T, fsys vfs.FS, name string) *localReader {
	t.Helper()
	f, err := fsys.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Close() })
	n, err := f.Size()
	if err != nil {
		t.Fatal(err)
	}
	return &localReader{f: f, sr: io.NewSectionReader(f, 0, n)}
}

func uploadLocal(ctx context.Context, a *Archive, base, last int64, r *localReader) error {
	n, _ := r.f.Size()
	return a.UploadSegment(ctx, tp0, SegmentMeta{BaseOffset: base, LastOffset: last, FirstTimestamp: 1000 + base,
		MaxTimestamp: 2000 + last, Size: n}, r)
}

// archiveWrites counts data writes under /arch: a linked upload writes
// only the manifest.
func archiveWrites(fsys vfs.FS) (vfs.FS, *atomic.Int64) {
	var n atomic.Int64
	return vfs.NewErrorFS(fsys, vfs.InjectorFunc(func(op vfs.Op, path string) error {
		if op == vfs.OpWrite && strings.HasPrefix(path, "/arch/") && strings.HasSuffix(path, ".log.part") {
			n.Add(1)
		}
		return nil
	})), &n
}

// TestLinkUpload: a segment of the archive's own filesystem is linked, not
// copied; the manifest holds its CRC-32C; it reads back verified after the
// local file is gone (local retention).
func TestLinkUpload(t *testing.T) {
	ctx := ctxT(t)
	fsys, writes := archiveWrites(vfs.NewMem())
	be, err := Open(ctx, "file:///arch", nil, Options{FS: fsys})
	if err != nil {
		t.Fatal(err)
	}
	a := newArchive(t, be)
	seg := localSegment(t, fsys, "/data/orders-3/00000000000000000000.log", 0)
	if err := uploadLocal(ctx, a, 0, 9, seg); err != nil {
		t.Fatal(err)
	}
	if n := writes.Load(); n != 0 {
		t.Fatalf("a linked upload wrote the segment object %d times", n)
	}
	m := mustManifest(t, a, tp0)
	if got, want := m.Segments[0].CRC32C, crc32.Checksum(segData(0), castagnoli); got != want {
		t.Fatalf("manifest crc32c %08x, want %08x", got, want)
	}
	checkRead(t, a, tp0, 0)
	if err := fsys.Remove("/data/orders-3/00000000000000000000.log"); err != nil {
		t.Fatal(err)
	}
	checkRead(t, a, tp0, 0)
	// The same segment again is a no-op; a retry of a segment whose object
	// is already a link to the same file (a crash before the manifest)
	// leaves no temporary.
	seg2 := localSegment(t, fsys, "/data/orders-3/00000000000000000010.log", 10)
	if err := vfs.LinkFile(fsys, seg2.f, "/arch/"+SegmentKey(tp0, 10, 19)); err != nil {
		t.Fatal(err)
	}
	if err := uploadLocal(ctx, a, 10, 19, seg2); err != nil {
		t.Fatal(err)
	}
	checkRead(t, a, tp0, 10)
	if names, _ := fsys.List("/arch/orders/3"); strings.Contains(strings.Join(names, " "), ".part") {
		t.Fatalf("temporary left behind: %v", names)
	}
}

// TestLinkFallback: where a link cannot be made the segment is copied:
// file://DIR?link=false, a segment of another filesystem, a failing link.
func TestLinkFallback(t *testing.T) {
	for _, tc := range []struct {
		name, url string
		other     bool // the segment lives in another filesystem
		failLink  bool
	}{
		{name: "link=false", url: "file:///arch?link=false"},
		{name: "other filesystem", url: "file:///arch", other: true},
		{name: "link fails", url: "file:///arch", failLink: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := ctxT(t)
			mem := vfs.NewMem()
			var fsys vfs.FS = mem
			if tc.failLink {
				fsys = vfs.NewErrorFS(mem, vfs.FailOnce(vfs.OpLink, vfs.ErrInjected))
			}
			fsys, writes := archiveWrites(fsys)
			be, err := Open(ctx, tc.url, nil, Options{FS: fsys})
			if err != nil {
				t.Fatal(err)
			}
			a := newArchive(t, be)
			src := fsys
			if tc.other {
				src = vfs.NewMem()
			}
			seg := localSegment(t, src, "/data/seg.log", 0)
			if err := uploadLocal(ctx, a, 0, 9, seg); err != nil {
				t.Fatal(err)
			}
			if writes.Load() == 0 {
				t.Fatal("the segment was not copied")
			}
			if err := src.Remove("/data/seg.log"); err != nil {
				t.Fatal(err)
			}
			checkRead(t, a, tp0, 0)
		})
	}
}

// TestLinkCrashAtEveryPoint is TestFileCrashAtEveryPoint for a linked
// upload: after a power loss at any operation the manifest is the old one
// or the new one, what it lists reads back verified, and a retry links the
// segment and completes.
func TestLinkCrashAtEveryPoint(t *testing.T) {
	ctx := context.Background()
	const segName = "/data/orders-3/00000000000000000020.log"
	for k := 1; ; k++ {
		mem := vfs.NewMem()
		base, err := Open(ctx, "file:///arch", nil, Options{FS: mem})
		if err != nil {
			t.Fatal(err)
		}
		a := newArchive(t, base)
		for _, s := range [][2]int64{{0, 9}, {10, 19}} {
			if err := upload(ctx, a, tp0, s[0], s[1], 0); err != nil {
				t.Fatal(err)
			}
		}
		localSegment(t, mem, segName, 20)
		n := 0
		dead := vfs.InjectorFunc(func(op vfs.Op, path string) error {
			n++
			if n >= k {
				return vfs.ErrInjected
			}
			return nil
		})
		efs := vfs.NewErrorFS(mem, dead)
		be := newFileBackend(efs, "/arch")
		seg := openLocal(t, mem, segName)
		err = uploadLocal(ctx, newArchive(t, be), 20, 29, seg)
		if err == nil {
			if k < 3 {
				t.Fatalf("upload completed with a fault at operation %d", k)
			}
			t.Logf("crash points covered: %d", k-1)
			return
		}
		crashed := mem.CrashStrict()
		rb, err := Open(ctx, "file:///arch", nil, Options{FS: crashed})
		if err != nil {
			t.Fatalf("k=%d: reopen after crash: %v", k, err)
		}
		ra := newArchive(t, rb)
		got := ranges(mustManifest(t, ra, tp0))
		if got != "start 0: 0-9 10-19" && got != "start 0: 0-9 10-19 20-29" {
			t.Fatalf("k=%d: manifest after crash: %s", k, got)
		}
		for _, s := range mustManifest(t, ra, tp0).Segments {
			checkRead(t, ra, tp0, s.BaseOffset)
		}
		if err := uploadLocal(ctx, ra, 20, 29, openLocal(t, crashed, segName)); err != nil {
			t.Fatalf("k=%d: retry after crash: %v", k, err)
		}
		if got := ranges(mustManifest(t, ra, tp0)); got != "start 0: 0-9 10-19 20-29" {
			t.Fatalf("k=%d: after retry: %s", k, got)
		}
		checkRead(t, ra, tp0, 20)
		if _, err := ra.Sweep(ctx, tp0); err != nil {
			t.Fatal(err)
		}
		objs, err := rb.List(ctx, "")
		if err != nil || len(objs) != 4 {
			t.Fatalf("k=%d: objects after retry and sweep: %s %v", k, keys(objs), err)
		}
		if k > 200 {
			t.Fatal("the upload never completed")
		}
	}
}

// TestLinkOS: on the operating system's filesystem the object is the
// segment's file (one inode, two names) and outlives the local name.
func TestLinkOS(t *testing.T) {
	ctx := ctxT(t)
	dir := t.TempDir()
	fsys := vfs.OS()
	be, err := Open(ctx, "file://"+filepath.Join(dir, "archive"), nil, Options{FS: fsys})
	if err != nil {
		t.Fatal(err)
	}
	a := newArchive(t, be)
	segPath := filepath.Join(dir, "data", "seg.log")
	seg := localSegment(t, fsys, segPath, 0)
	if err := uploadLocal(ctx, a, 0, 9, seg); err != nil {
		t.Fatal(err)
	}
	si, err := os.Stat(segPath)
	if err != nil {
		t.Fatal(err)
	}
	oi, err := os.Stat(filepath.Join(dir, "archive", filepath.FromSlash(SegmentKey(tp0, 0, 9))))
	if err != nil {
		t.Fatal(err)
	}
	if !os.SameFile(si, oi) {
		t.Fatal("the archived object is a copy, not a link to the segment")
	}
	if err := os.Remove(segPath); err != nil {
		t.Fatal(err)
	}
	checkRead(t, a, tp0, 0)
}

func TestParseFileURL(t *testing.T) {
	for _, tc := range []struct {
		in, dir string
		link    bool
		bad     bool
	}{
		{in: "/a/b", dir: "/a/b", link: true},
		{in: "/a/b?link=false", dir: "/a/b", link: false},
		{in: "/a/b?link=true", dir: "/a/b", link: true},
		{in: "/a/b?link=maybe", bad: true},
		{in: "/a/b?copy=1", bad: true},
		{in: "/a/b?link=true&link=false", bad: true},
	} {
		dir, link, err := parseFileURL(tc.in)
		if tc.bad {
			if err == nil {
				t.Errorf("parseFileURL(%q) accepted", tc.in)
			}
			continue
		}
		if err != nil || dir != tc.dir || link != tc.link {
			t.Errorf("parseFileURL(%q) = %q, %v, %v; want %q, %v", tc.in, dir, link, err, tc.dir, tc.link)
		}
	}
	if _, err := Open(context.Background(), "file:///arch?nolink", nil, Options{FS: vfs.NewMem()}); err == nil ||
		!strings.Contains(err.Error(), "unknown option") {
		t.Fatalf("Open with a bad option: %v", err)
	}
}

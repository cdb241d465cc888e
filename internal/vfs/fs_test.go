package vfs_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"

	"github.com/weirhq/weir/internal/vfs"
)

// eachFS runs one behaviour test against the OS filesystem (in a temporary
// directory) and against MemFS, so that MemFS cannot drift from the OS.
func eachFS(t *testing.T, test func(t *testing.T, fsys vfs.FS, dir string)) {
	t.Helper()
	t.Run("os", func(t *testing.T) { test(t, vfs.OS(), t.TempDir()) })
	t.Run("mem", func(t *testing.T) {
		m := vfs.NewMem()
		if err := m.MkdirAll("/data", 0o755); err != nil {
			t.Fatal(err)
		}
		test(t, m, "/data")
	})
}

func create(t *testing.T, fsys vfs.FS, name string, data string) {
	t.Helper()
	f, err := fsys.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := f.WriteAt([]byte(data), 0); err != nil || n != len(data) {
		t.Fatalf("WriteAt(%s) = %d, %v", name, n, err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func content(t *testing.T, fsys vfs.FS, name string) string {
	t.Helper()
	f, err := fsys.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return readAll(t, f)
}

func readAll(t *testing.T, f vfs.File) string {
	t.Helper()
	size, err := f.Size()
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, size)
	if n, err := f.ReadAt(buf, 0); n != int(size) || (err != nil && err != io.EOF) {
		t.Fatalf("ReadAt all = %d, %v; size %d", n, err, size)
	}
	return string(buf)
}

func wantContent(t *testing.T, fsys vfs.FS, name, want string) {
	t.Helper()
	if got := content(t, fsys, name); got != want {
		t.Fatalf("%s = %q, want %q", name, got, want)
	}
}

func wantErrIs(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: err = %v, want errors.Is %v", what, err, target)
	}
}

func TestReadWrite(t *testing.T) {
	eachFS(t, func(t *testing.T, fsys vfs.FS, dir string) {
		f, err := fsys.Create(filepath.Join(dir, "f"))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		for _, w := range []struct {
			s   string
			off int64
		}{{"hello", 0}, {" world", 5}, {"W", 6}} {
			if n, err := f.WriteAt([]byte(w.s), w.off); n != len(w.s) || err != nil {
				t.Fatalf("WriteAt(%q, %d) = %d, %v", w.s, w.off, n, err)
			}
		}
		if got := readAll(t, f); got != "hello World" {
			t.Fatalf("content %q", got)
		}
		buf := make([]byte, 4)
		if n, err := f.ReadAt(buf, 3); n != 4 || err != nil || string(buf) != "lo W" {
			t.Fatalf("ReadAt(4@3) = %d, %v, %q", n, err, buf)
		}
		// io.ReaderAt: a short read must say why.
		if n, err := f.ReadAt(buf, 9); n != 2 || err != io.EOF || string(buf[:2]) != "ld" {
			t.Fatalf("ReadAt(4@9) = %d, %v, %q", n, err, buf[:n])
		}
		for _, off := range []int64{11, 100} {
			if n, err := f.ReadAt(buf, off); n != 0 || err != io.EOF {
				t.Fatalf("ReadAt(4@%d) = %d, %v", off, n, err)
			}
		}
		if _, err := f.ReadAt(buf, -1); err == nil {
			t.Fatal("ReadAt at negative offset succeeded")
		}
		if _, err := f.WriteAt(buf, -1); err == nil {
			t.Fatal("WriteAt at negative offset succeeded")
		}
	})
}

func TestWritePastEndZeroFills(t *testing.T) {
	eachFS(t, func(t *testing.T, fsys vfs.FS, dir string) {
		name := filepath.Join(dir, "f")
		f, err := fsys.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		mustWrite(t, f, "abcdefgh", 0)
		if err := f.Truncate(2); err != nil {
			t.Fatal(err)
		}
		// The bytes beyond the truncation must not come back.
		mustWrite(t, f, "Z", 6)
		if got := readAll(t, f); got != "ab\x00\x00\x00\x00Z" {
			t.Fatalf("content %q", got)
		}
		if err := f.Truncate(9); err != nil {
			t.Fatal(err)
		}
		if got := readAll(t, f); got != "ab\x00\x00\x00\x00Z\x00\x00" {
			t.Fatalf("after extending truncate: %q", got)
		}
		if fi, err := fsys.Stat(name); err != nil || fi.Size() != 9 {
			t.Fatalf("Stat = %v, %v", fi, err)
		}
	})
}

func mustWrite(t *testing.T, f vfs.File, s string, off int64) {
	t.Helper()
	if n, err := f.WriteAt([]byte(s), off); n != len(s) || err != nil {
		t.Fatalf("WriteAt(%q, %d) = %d, %v", s, off, n, err)
	}
}

func TestCreateTruncatesOpenReadWriteDoesNot(t *testing.T) {
	eachFS(t, func(t *testing.T, fsys vfs.FS, dir string) {
		name := filepath.Join(dir, "f")
		create(t, fsys, name, "old contents")
		f, err := fsys.OpenReadWrite(name)
		if err != nil {
			t.Fatal(err)
		}
		mustWrite(t, f, "OLD", 0)
		f.Close()
		wantContent(t, fsys, name, "OLD contents")

		create(t, fsys, name, "new")
		wantContent(t, fsys, name, "new")

		// OpenReadWrite creates a missing file.
		other := filepath.Join(dir, "g")
		g, err := fsys.OpenReadWrite(other)
		if err != nil {
			t.Fatal(err)
		}
		if size, err := g.Size(); size != 0 || err != nil {
			t.Fatalf("Size of new file = %d, %v", size, err)
		}
		g.Close()
		if fi, err := fsys.Stat(other); err != nil || fi.IsDir() || fi.Size() != 0 || fi.Name() != "g" {
			t.Fatalf("Stat = %v, %v", fi, err)
		}
	})
}

func TestOpenReadOnly(t *testing.T) {
	eachFS(t, func(t *testing.T, fsys vfs.FS, dir string) {
		name := filepath.Join(dir, "f")
		create(t, fsys, name, "data")
		f, err := fsys.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.WriteAt([]byte("x"), 0); err == nil {
			t.Fatal("WriteAt on a read-only file succeeded")
		}
		if err := f.Truncate(0); err == nil {
			t.Fatal("Truncate on a read-only file succeeded")
		}
		if got := readAll(t, f); got != "data" {
			t.Fatalf("content %q", got)
		}
	})
}

func TestMissing(t *testing.T) {
	eachFS(t, func(t *testing.T, fsys vfs.FS, dir string) {
		missing := filepath.Join(dir, "missing")
		_, err := fsys.Open(missing)
		wantErrIs(t, "Open", err, fs.ErrNotExist)
		_, err = fsys.Create(filepath.Join(missing, "f"))
		wantErrIs(t, "Create in missing dir", err, fs.ErrNotExist)
		_, err = fsys.OpenReadWrite(filepath.Join(missing, "f"))
		wantErrIs(t, "OpenReadWrite in missing dir", err, fs.ErrNotExist)
		wantErrIs(t, "Remove", fsys.Remove(missing), fs.ErrNotExist)
		wantErrIs(t, "Rename", fsys.Rename(missing, filepath.Join(dir, "x")), fs.ErrNotExist)
		_, err = fsys.Stat(missing)
		wantErrIs(t, "Stat", err, fs.ErrNotExist)
		_, err = fsys.List(missing)
		wantErrIs(t, "List", err, fs.ErrNotExist)
		wantErrIs(t, "SyncDir", fsys.SyncDir(missing), fs.ErrNotExist)
		if err := fsys.RemoveAll(missing); err != nil {
			t.Fatalf("RemoveAll of missing path: %v", err)
		}

		create(t, fsys, filepath.Join(dir, "file"), "x")
		_, err = fsys.Create(filepath.Join(dir, "file", "f"))
		wantErrIs(t, "Create below a file", err, syscall.ENOTDIR)
		wantErrIs(t, "MkdirAll over a file", fsys.MkdirAll(filepath.Join(dir, "file", "d"), 0o755), syscall.ENOTDIR)
		_, err = fsys.Create(dir)
		wantErrIs(t, "Create on a directory", err, syscall.EISDIR)
	})
}

func TestRename(t *testing.T) {
	eachFS(t, func(t *testing.T, fsys vfs.FS, dir string) {
		a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
		create(t, fsys, a, "A")
		create(t, fsys, b, "B")
		f, err := fsys.Open(a)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := fsys.Rename(a, b); err != nil {
			t.Fatal(err)
		}
		wantContent(t, fsys, b, "A")
		_, err = fsys.Stat(a)
		wantErrIs(t, "Stat old name", err, fs.ErrNotExist)
		if got := readAll(t, f); got != "A" {
			t.Fatalf("handle opened before rename reads %q", got)
		}
		if err := fsys.Rename(b, b); err != nil {
			t.Fatalf("Rename to itself: %v", err)
		}
		wantContent(t, fsys, b, "A")

		// Across directories; directory rules.
		sub := filepath.Join(dir, "sub")
		if err := fsys.MkdirAll(filepath.Join(sub, "inner"), 0o755); err != nil {
			t.Fatal(err)
		}
		create(t, fsys, filepath.Join(sub, "inner", "x"), "X")
		if err := fsys.Rename(b, filepath.Join(sub, "b")); err != nil {
			t.Fatal(err)
		}
		wantContent(t, fsys, filepath.Join(sub, "b"), "A")
		wantErrIs(t, "Rename file over dir", fsys.Rename(filepath.Join(sub, "b"), filepath.Join(sub, "inner")), fs.ErrExist)
		wantErrIs(t, "Rename dir into itself", fsys.Rename(sub, filepath.Join(sub, "inner", "loop")), syscall.EINVAL)
		empty, full := filepath.Join(dir, "empty"), filepath.Join(dir, "full")
		must(t, fsys.MkdirAll(empty, 0o755))
		must(t, fsys.MkdirAll(filepath.Join(full, "child"), 0o755))
		// os.Rename refuses any existing directory as the target.
		wantErrIs(t, "Rename dir over non-empty dir", fsys.Rename(empty, full), fs.ErrExist)
		wantErrIs(t, "Rename dir over empty dir", fsys.Rename(full, empty), fs.ErrExist)
		wantErrIs(t, "Rename dir over file", fsys.Rename(empty, filepath.Join(sub, "b")), syscall.ENOTDIR)
		moved := filepath.Join(dir, "moved")
		if err := fsys.Rename(sub, moved); err != nil {
			t.Fatal(err)
		}
		wantContent(t, fsys, filepath.Join(moved, "inner", "x"), "X")
	})
}

func TestRemove(t *testing.T) {
	eachFS(t, func(t *testing.T, fsys vfs.FS, dir string) {
		d := filepath.Join(dir, "d")
		if err := fsys.MkdirAll(filepath.Join(d, "e"), 0o755); err != nil {
			t.Fatal(err)
		}
		name := filepath.Join(d, "f")
		create(t, fsys, name, "content")
		f, err := fsys.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		wantErrIs(t, "Remove non-empty dir", fsys.Remove(d), syscall.ENOTEMPTY)
		if err := fsys.Remove(name); err != nil {
			t.Fatal(err)
		}
		_, err = fsys.Stat(name)
		wantErrIs(t, "Stat removed", err, fs.ErrNotExist)
		// POSIX: an open file outlives its name.
		if got := readAll(t, f); got != "content" {
			t.Fatalf("unlinked open file reads %q", got)
		}
		if err := fsys.Remove(filepath.Join(d, "e")); err != nil {
			t.Fatalf("Remove empty dir: %v", err)
		}
		create(t, fsys, filepath.Join(d, "g"), "g")
		if err := fsys.MkdirAll(filepath.Join(d, "h", "i"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := fsys.RemoveAll(d); err != nil {
			t.Fatal(err)
		}
		_, err = fsys.Stat(d)
		wantErrIs(t, "Stat after RemoveAll", err, fs.ErrNotExist)
		if names, err := fsys.List(dir); err != nil || len(names) != 0 {
			t.Fatalf("List = %q, %v", names, err)
		}
	})
}

func TestListStatMkdirAll(t *testing.T) {
	eachFS(t, func(t *testing.T, fsys vfs.FS, dir string) {
		for _, n := range []string{"b", "c", "a", "00000000000000000010.log", "00000000000000000002.log"} {
			create(t, fsys, filepath.Join(dir, n), n)
		}
		d := filepath.Join(dir, "x", "y")
		for range 2 { // idempotent
			if err := fsys.MkdirAll(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		names, err := fsys.List(dir)
		if err != nil {
			t.Fatal(err)
		}
		want := []string{"00000000000000000002.log", "00000000000000000010.log", "a", "b", "c", "x"}
		if !slices.Equal(names, want) {
			t.Fatalf("List = %q, want %q", names, want)
		}
		if names, err := fsys.List(d); err != nil || names == nil || len(names) != 0 {
			t.Fatalf("List empty dir = %#v, %v", names, err)
		}
		fi, err := fsys.Stat(filepath.Join(dir, "x"))
		if err != nil || !fi.IsDir() || fi.Name() != "x" || !fi.Mode().IsDir() {
			t.Fatalf("Stat dir = %v, %v", fi, err)
		}
		fi, err = fsys.Stat(filepath.Join(dir, "a"))
		if err != nil || fi.IsDir() || fi.Name() != "a" || fi.Size() != 1 || !fi.Mode().IsRegular() {
			t.Fatalf("Stat file = %v, %v", fi, err)
		}
		if err := fsys.SyncDir(d); err != nil {
			t.Fatal(err)
		}
	})
}

func TestClosedFile(t *testing.T) {
	eachFS(t, func(t *testing.T, fsys vfs.FS, dir string) {
		f, err := fsys.Create(filepath.Join(dir, "f"))
		if err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 1)
		_, err = f.ReadAt(buf, 0)
		wantErrIs(t, "ReadAt", err, fs.ErrClosed)
		_, err = f.WriteAt(buf, 0)
		wantErrIs(t, "WriteAt", err, fs.ErrClosed)
		wantErrIs(t, "Sync", f.Sync(), fs.ErrClosed)
		wantErrIs(t, "Truncate", f.Truncate(0), fs.ErrClosed)
		_, err = f.Size()
		wantErrIs(t, "Size", err, fs.ErrClosed)
		wantErrIs(t, "Close", f.Close(), fs.ErrClosed)
	})
}

// TestConcurrentAppendAndRead has one appender and several readers share
// a file, the commitlog's pattern; run it with -race.
func TestConcurrentAppendAndRead(t *testing.T) {
	eachFS(t, func(t *testing.T, fsys vfs.FS, dir string) {
		name := filepath.Join(dir, "log")
		w, err := fsys.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		const recs, size = 200, 16
		rec := func(i int) []byte { return fmt.Appendf(nil, "record-%08d\n", i) }
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for range 4 {
			r, err := fsys.Open(name)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			wg.Go(func() {
				buf := make([]byte, size)
				for i := 0; i < recs; {
					n, err := r.ReadAt(buf, int64(i*size))
					if err == io.EOF && n < size {
						continue // not written yet
					}
					if err != nil || !bytes.Equal(buf, rec(i)) {
						errs <- fmt.Errorf("record %d: %q, %v", i, buf, err)
						return
					}
					i++
				}
			})
		}
		for i := range recs {
			if _, err := w.WriteAt(rec(i), int64(i*size)); err != nil {
				t.Fatal(err)
			}
			if i%50 == 0 {
				if err := w.Sync(); err != nil {
					t.Fatal(err)
				}
			}
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	})
}

package vfs_test

import (
	"errors"
	"io/fs"
	"maps"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/weirhq/weir/internal/vfs"
)

func TestFailOnce(t *testing.T) {
	m := vfs.NewMem()
	efs := vfs.NewErrorFS(m, vfs.FailOnce(vfs.OpWrite, syscall.ENOSPC))
	f := mustCreate(t, efs, "/f")
	n, err := f.WriteAt([]byte("lost"), 0)
	if n != 0 {
		t.Fatalf("failed WriteAt reported %d bytes", n)
	}
	wantErrIs(t, "first WriteAt", err, syscall.ENOSPC)
	wantErrIs(t, "first WriteAt", err, vfs.ErrInjected)
	var pe *fs.PathError
	if !errors.As(err, &pe) || pe.Op != "write" || pe.Path != "/f" {
		t.Fatalf("err = %#v, want *fs.PathError for write /f", err)
	}
	if !strings.Contains(err.Error(), "no space left on device") {
		t.Fatalf("message %q", err)
	}
	mustWrite(t, f, "kept", 0)
	mustWrite(t, f, "!", 4)
	wantContent(t, m, "/f", "kept!")
}

func TestFailAfter(t *testing.T) {
	m := vfs.NewMem()
	efs := vfs.NewErrorFS(m, vfs.FailAfter(vfs.OpSync, 2, syscall.EIO))
	f := mustCreate(t, efs, "/f")
	must(t, efs.SyncDir("/")) // other ops do not count
	for i, want := range []error{nil, nil, syscall.EIO, syscall.EIO} {
		mustWrite(t, f, string(rune('a'+i)), int64(i))
		err := f.Sync()
		if want == nil && err != nil {
			t.Fatalf("Sync %d: %v", i+1, err)
		}
		if want != nil {
			wantErrIs(t, "Sync", err, want)
		}
	}
	// A failed Sync must not have reached the inner file.
	wantTree(t, m.CrashStrict(), map[string]string{"/f": "ab"})
	wantContent(t, m, "/f", "abcd")
}

func TestToggle(t *testing.T) {
	m := vfs.NewMem()
	tog := vfs.NewToggle(vfs.OpWrite, vfs.OpTruncate)
	efs := vfs.NewErrorFS(m, tog)
	f := mustCreate(t, efs, "/f")
	mustWrite(t, f, "a", 0)
	tog.Set(syscall.ENOSPC)
	_, err := f.WriteAt([]byte("b"), 1)
	wantErrIs(t, "WriteAt while set", err, syscall.ENOSPC)
	wantErrIs(t, "Truncate while set", f.Truncate(0), syscall.ENOSPC)
	must(t, f.Sync()) // not a toggled op
	tog.Clear()
	mustWrite(t, f, "c", 1)
	tog.Set(vfs.ErrInjected)
	_, err = f.WriteAt([]byte("d"), 2)
	wantErrIs(t, "WriteAt with ErrInjected", err, vfs.ErrInjected)
	tog.Set(nil)
	mustWrite(t, f, "e", 2)
	wantContent(t, m, "/f", "ace")

	// The zero Toggle covers every op; flip it from other goroutines.
	var all vfs.Toggle
	efs = vfs.NewErrorFS(m, &all)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 100 {
				all.Set(syscall.EIO)
				_, _ = efs.Stat("/f")
				all.Clear()
			}
		})
	}
	wg.Wait()
	all.Set(syscall.EIO)
	_, err = efs.List("/")
	wantErrIs(t, "List under the zero Toggle", err, syscall.EIO)
}

func TestPartialWrite(t *testing.T) {
	m := vfs.NewMem()
	inj := vfs.WithPartialWrite(vfs.FailOnce(vfs.OpWrite, syscall.ENOSPC), func(n int) int { return n / 2 })
	efs := vfs.NewErrorFS(m, inj)
	f := mustCreate(t, efs, "/f")
	n, err := f.WriteAt([]byte("abcdefgh"), 2)
	if n != 4 {
		t.Fatalf("partial WriteAt reported %d bytes, want 4", n)
	}
	wantErrIs(t, "partial WriteAt", err, syscall.ENOSPC)
	wantContent(t, m, "/f", "\x00\x00abcd")

	// A keep function out of range is clamped.
	efs = vfs.NewErrorFS(m, vfs.WithPartialWrite(vfs.FailOnce(vfs.OpWrite, nil), func(int) int { return 99 }))
	f, err = efs.OpenReadWrite("/f")
	must(t, err)
	n, err = f.WriteAt([]byte("XY"), 0)
	if n != 2 || !errors.Is(err, vfs.ErrInjected) {
		t.Fatalf("clamped partial WriteAt = %d, %v", n, err)
	}
	wantContent(t, m, "/f", "XYabcd")
}

// TestErrorFSOps checks that every method consults the injector with the
// right Op and path, and that nothing else fails.
func TestErrorFSOps(t *testing.T) {
	m := vfs.NewMem()
	must(t, m.MkdirAll("/d", 0o755))
	must(t, m.WriteFile("/d/f", []byte("data")))
	type call struct {
		op   vfs.Op
		path string
		do   func(fsys vfs.FS) error
	}
	// file runs fn on /d/f opened through fsys (an OpOpen of its own).
	file := func(fn func(f vfs.File) error) func(vfs.FS) error {
		return func(fsys vfs.FS) error {
			f, err := fsys.OpenReadWrite("/d/f")
			if err != nil {
				return err
			}
			defer f.Close()
			return fn(f)
		}
	}
	calls := []call{
		{vfs.OpCreate, "/d/new", func(fsys vfs.FS) error { _, err := fsys.Create("/d/new"); return err }},
		{vfs.OpOpen, "/d/f", func(fsys vfs.FS) error { _, err := fsys.Open("/d/f"); return err }},
		{vfs.OpOpen, "/d/g", func(fsys vfs.FS) error { _, err := fsys.OpenReadWrite("/d/g"); return err }},
		{vfs.OpWrite, "/d/f", file(func(f vfs.File) error { _, err := f.WriteAt([]byte("x"), 9); return err })},
		{vfs.OpRead, "/d/f", file(func(f vfs.File) error { _, err := f.ReadAt(make([]byte, 1), 0); return err })},
		{vfs.OpSync, "/d/f", file(vfs.File.Sync)},
		{vfs.OpTruncate, "/d/f", file(func(f vfs.File) error { return f.Truncate(20) })},
		{vfs.OpStat, "/d/f", file(func(f vfs.File) error { _, err := f.Size(); return err })},
		{vfs.OpStat, "/d", func(fsys vfs.FS) error { _, err := fsys.Stat("/d"); return err }},
		{vfs.OpSyncDir, "/d", func(fsys vfs.FS) error { return fsys.SyncDir("/d") }},
		{vfs.OpList, "/d", func(fsys vfs.FS) error { _, err := fsys.List("/d"); return err }},
		{vfs.OpMkdir, "/e/f", func(fsys vfs.FS) error { return fsys.MkdirAll("/e/f", 0o755) }},
		{vfs.OpRename, "/d/r1", func(fsys vfs.FS) error { return fsys.Rename("/d/r1", "/d/r2") }},
		{vfs.OpRemove, "/d/r2", func(fsys vfs.FS) error { return fsys.Remove("/d/r2") }},
		{vfs.OpRemove, "/e", func(fsys vfs.FS) error { return fsys.RemoveAll("/e") }},
	}
	for _, c := range calls {
		t.Run(c.op.String()+c.path, func(t *testing.T) {
			must(t, m.WriteFile("/d/r1", []byte("r")))
			var seen []vfs.Op
			inj := vfs.InjectorFunc(func(op vfs.Op, path string) error {
				seen = append(seen, op)
				if op == c.op && path == c.path {
					return syscall.EIO
				}
				return nil
			})
			before := dump(t, m)
			err := c.do(vfs.NewErrorFS(m, inj))
			wantErrIs(t, c.op.String(), err, syscall.EIO)
			wantErrIs(t, c.op.String(), err, vfs.ErrInjected)
			if last := seen[len(seen)-1]; last != c.op {
				t.Fatalf("last op consulted %v, want %v", last, c.op)
			}
			if after := dump(t, m); !maps.Equal(before, after) {
				t.Fatalf("failed %v changed the filesystem:\n%q\n%q", c.op, before, after)
			}
			// Without the fault the same call succeeds.
			must(t, c.do(vfs.NewErrorFS(m, nil)))
		})
	}
	var le *os.LinkError
	err := vfs.NewErrorFS(m, vfs.FailOnce(vfs.OpRename, nil)).Rename("/d/f", "/d/x")
	if !errors.As(err, &le) || le.Old != "/d/f" || le.New != "/d/x" || err.Error() != "rename /d/f /d/x: vfs: injected fault" {
		t.Fatalf("injected rename error %#v: %v", err, err)
	}
	if got := vfs.Op(99).String(); got != "Op(99)" {
		t.Fatalf("Op(99).String() = %q", got)
	}
}

// TestErrorFSOverOS checks that the wrapper passes the OS errors through.
func TestErrorFSOverOS(t *testing.T) {
	dir := t.TempDir()
	efs := vfs.NewErrorFS(vfs.OS(), vfs.FailOnce(vfs.OpSyncDir, syscall.EIO))
	_, err := efs.Open(dir + "/missing")
	wantErrIs(t, "Open missing", err, fs.ErrNotExist)
	if errors.Is(err, vfs.ErrInjected) {
		t.Fatalf("a real error claims to be injected: %v", err)
	}
	create(t, efs, dir+"/f", "os")
	wantErrIs(t, "SyncDir", efs.SyncDir(dir), syscall.EIO)
	must(t, efs.SyncDir(dir))
	wantContent(t, vfs.Default, dir+"/f", "os")
}

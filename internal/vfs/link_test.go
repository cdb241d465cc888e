package vfs_test

import (
	"errors"
	"io/fs"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/weirhq/weir/internal/vfs"
)

// TestLinkFile: the link names the descriptor's file, not whatever its
// old name holds now; it survives the other names' removal; an existing
// new name and a file without a name left are refused.
func TestLinkFile(t *testing.T) {
	eachFS(t, func(t *testing.T, fsys vfs.FS, dir string) {
		seg, moved := filepath.Join(dir, "seg"), filepath.Join(dir, "moved")
		create(t, fsys, seg, "sealed bytes")
		f, err := fsys.Open(seg)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		// The file moves away and another takes its old name.
		if err := fsys.Rename(seg, moved); err != nil {
			t.Fatal(err)
		}
		create(t, fsys, seg, "replacement")
		link := filepath.Join(dir, "link")
		if err := vfs.LinkFile(fsys, f, link); err != nil {
			t.Fatalf("LinkFile: %v", err)
		}
		if got := content(t, fsys, link); got != "sealed bytes" {
			t.Fatalf("link reads %q, want the descriptor's file", got)
		}
		if err := vfs.LinkFile(fsys, f, link); !errors.Is(err, fs.ErrExist) {
			t.Fatalf("LinkFile over an existing name: %v, want EEXIST", err)
		}
		if err := fsys.Remove(moved); err != nil {
			t.Fatal(err)
		}
		if got := content(t, fsys, link); got != "sealed bytes" {
			t.Fatalf("link reads %q after the other name went", got)
		}
		if err := fsys.Remove(link); err != nil {
			t.Fatal(err)
		}
		if err := vfs.LinkFile(fsys, f, filepath.Join(dir, "gone")); !errors.Is(err, syscall.ENOENT) {
			t.Fatalf("LinkFile of a file without a name: %v, want ENOENT", err)
		}
		if got := readAll(t, f); got != "sealed bytes" {
			t.Fatalf("open file reads %q after its names went", got)
		}
	})
}

// TestLinkFileForeign: a file of another filesystem is never linked.
func TestLinkFileForeign(t *testing.T) {
	a, b := vfs.NewMem(), vfs.NewMem()
	create(t, a, "/f", "x")
	f, err := a.Open("/f")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := vfs.LinkFile(b, f, "/g"); !errors.Is(err, errors.ErrUnsupported) {
		t.Fatalf("LinkFile across MemFS instances: %v, want ErrUnsupported", err)
	}
	if err := vfs.LinkFile(vfs.OS(), f, filepath.Join(t.TempDir(), "g")); !errors.Is(err, errors.ErrUnsupported) {
		t.Fatalf("LinkFile of a MemFS file on the OS: %v, want ErrUnsupported", err)
	}
}

// TestLinkFileCrash: a link is an entry like any other: durable after
// SyncDir, and then one file with two names.
func TestLinkFileCrash(t *testing.T) {
	m := vfs.NewMem()
	create(t, m, "/seg", "data")
	if err := m.SyncDir("/"); err != nil {
		t.Fatal(err)
	}
	f, err := m.Open("/seg")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := m.MkdirAll("/archive", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := m.SyncDir("/"); err != nil {
		t.Fatal(err)
	}
	if err := vfs.LinkFile(m, f, "/archive/obj"); err != nil {
		t.Fatal(err)
	}
	if _, err := m.CrashStrict().Stat("/archive/obj"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("unsynced link survived a crash: %v", err)
	}
	if err := m.SyncDir("/archive"); err != nil {
		t.Fatal(err)
	}
	c := m.CrashStrict()
	if got := content(t, c, "/archive/obj"); got != "data" {
		t.Fatalf("synced link after a crash reads %q", got)
	}
	if err := c.Remove("/seg"); err != nil {
		t.Fatal(err)
	}
	if got := content(t, c, "/archive/obj"); got != "data" {
		t.Fatalf("link after removing the other name reads %q", got)
	}
}

// TestErrorFSLinkFile: LinkFile is injectable (OpLink) and unwraps the
// error filesystem's own files.
func TestErrorFSLinkFile(t *testing.T) {
	tg := vfs.NewToggle(vfs.OpLink)
	e := vfs.NewErrorFS(vfs.NewMem(), tg)
	create(t, e, "/f", "x")
	f, err := e.Open("/f")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tg.Set(syscall.EIO)
	if err := vfs.LinkFile(e, f, "/g"); !errors.Is(err, syscall.EIO) || !errors.Is(err, vfs.ErrInjected) {
		t.Fatalf("injected LinkFile: %v", err)
	}
	tg.Clear()
	if err := vfs.LinkFile(e, f, "/g"); err != nil {
		t.Fatalf("LinkFile: %v", err)
	}
	if got := content(t, e, "/g"); got != "x" {
		t.Fatalf("link reads %q", got)
	}
}

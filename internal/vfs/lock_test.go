package vfs_test

import (
	"errors"
	"io/fs"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/weirhq/weir/internal/vfs"
)

// TestLock: a lock is exclusive (a second Lock of the file fails at once
// with ErrLocked, also in this process), creates the file, leaves its
// content alone, and Close releases it.
func TestLock(t *testing.T) {
	eachFS(t, func(t *testing.T, fsys vfs.FS, dir string) {
		name := filepath.Join(dir, "lock")
		l, err := vfs.Lock(fsys, name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := fsys.Stat(name); err != nil {
			t.Fatalf("Lock did not create the file: %v", err)
		}
		for range 2 {
			_, err := vfs.Lock(fsys, name)
			wantErrIs(t, "second Lock", err, vfs.ErrLocked)
			var pe *fs.PathError
			if !errors.As(err, &pe) || pe.Path != name {
				t.Fatalf("second Lock: %#v, want a *fs.PathError naming %s", err, name)
			}
		}
		// The content is the holder's to write, through other handles,
		// which do not disturb the lock.
		create(t, fsys, name, "1234\n")
		_, err = vfs.Lock(fsys, name)
		wantErrIs(t, "Lock after writing the file", err, vfs.ErrLocked)
		// Another file is another lock.
		other, err := vfs.Lock(fsys, filepath.Join(dir, "other"))
		if err != nil {
			t.Fatal(err)
		}
		must(t, other.Close())

		must(t, l.Close())
		l2, err := vfs.Lock(fsys, name)
		if err != nil {
			t.Fatalf("Lock after Close: %v", err)
		}
		wantContent(t, fsys, name, "1234\n")
		must(t, l2.Close())

		_, err = vfs.Lock(fsys, filepath.Join(dir, "missing", "lock"))
		wantErrIs(t, "Lock in a missing directory", err, fs.ErrNotExist)
	})
}

// TestMemLockCrash: a crash image carries no locks (a power loss releases
// them all), while the original filesystem keeps its own.
func TestMemLockCrash(t *testing.T) {
	m := vfs.NewMem()
	l, err := m.Lock("/lock")
	if err != nil {
		t.Fatal(err)
	}
	must(t, m.SyncDir("/"))
	img := m.CrashStrict()
	l2, err := img.Lock("/lock")
	if err != nil {
		t.Fatalf("Lock on the crash image: %v", err)
	}
	_, err = m.Lock("/lock")
	wantErrIs(t, "Lock on the original after a crash image", err, vfs.ErrLocked)
	must(t, l2.Close())
	must(t, l.Close())
	wantErrIs(t, "second Close", l.Close(), fs.ErrClosed)
}

// TestMemLockFollowsFile: like flock(2), a lock belongs to the file, not
// its name: a renamed locked file stays locked, a new file under the old
// name is not; a directory cannot be locked.
func TestMemLockFollowsFile(t *testing.T) {
	m := vfs.NewMem()
	l, err := m.Lock("/a")
	if err != nil {
		t.Fatal(err)
	}
	must(t, m.Rename("/a", "/b"))
	_, err = m.Lock("/b")
	wantErrIs(t, "Lock of the renamed file", err, vfs.ErrLocked)
	l2, err := m.Lock("/a")
	if err != nil {
		t.Fatalf("Lock of a new file under the old name: %v", err)
	}
	must(t, l2.Close())
	must(t, l.Close())
	must(t, m.MkdirAll("/d", 0o755))
	_, err = m.Lock("/d")
	wantErrIs(t, "Lock of a directory", err, syscall.EISDIR)
}

// TestErrorFSLock: ErrorFS locks through the wrapped filesystem and never
// injects a fault into Lock; a filesystem without locking reports
// errors.ErrUnsupported.
func TestErrorFSLock(t *testing.T) {
	m := vfs.NewMem()
	efs := vfs.NewErrorFS(m, vfs.NewToggle())
	tog := vfs.NewToggle()
	tog.Set(syscall.EIO)
	failing := vfs.NewErrorFS(m, tog)
	l, err := vfs.Lock(failing, "/lock")
	if err != nil {
		t.Fatalf("Lock through an ErrorFS failing everything: %v", err)
	}
	_, err = vfs.Lock(efs, "/lock")
	wantErrIs(t, "Lock through another ErrorFS on the same MemFS", err, vfs.ErrLocked)
	must(t, l.Close())

	_, err = vfs.Lock(vfs.NewErrorFS(noLockFS{m}, nil), "/lock")
	wantErrIs(t, "Lock through an ErrorFS over an FS without locking", err, errors.ErrUnsupported)
	_, err = vfs.Lock(noLockFS{m}, "/lock")
	wantErrIs(t, "Lock on an FS without locking", err, errors.ErrUnsupported)
}

// noLockFS hides its FS's Lock method.
type noLockFS struct{ vfs.FS }

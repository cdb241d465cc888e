package vfs

import (
	"errors"
	"io"
	"os"
	"syscall"
)

// fdatasync flushes f's data and the metadata needed to read it back
// (size), skipping mtime-only updates that fsync would also write.
func fdatasync(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	// Control rather than Fd: Fd would switch the descriptor to blocking
	// mode and does not keep it alive against a concurrent Close.
	cerr := rc.Control(func(fd uintptr) {
		for {
			serr = syscall.Fdatasync(int(fd))
			if !errors.Is(serr, syscall.EINTR) {
				return
			}
		}
	})
	if cerr != nil {
		// Control fails only once the file is closing, and reports it
		// with an internal error; report it as *os.File methods do.
		return &os.PathError{Op: "fdatasync", Path: f.Name(), Err: os.ErrClosed}
	}
	if serr != nil {
		return &os.PathError{Op: "fdatasync", Path: f.Name(), Err: serr}
	}
	return nil
}

// Preallocate reserves [off, off+n) with fallocate(FALLOC_FL_KEEP_SIZE):
// the blocks are allocated, the file's size is unchanged, so readers and
// recovery see exactly the bytes written. Filesystems without fallocate
// report errors.ErrUnsupported.
func (o osFile) Preallocate(off, n int64) error {
	rc, err := o.f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	cerr := rc.Control(func(fd uintptr) {
		for {
			serr = syscall.Fallocate(int(fd), fallocKeepSize, off, n)
			if !errors.Is(serr, syscall.EINTR) {
				return
			}
		}
	})
	if cerr != nil {
		return &os.PathError{Op: "fallocate", Path: o.f.Name(), Err: os.ErrClosed}
	}
	if errors.Is(serr, syscall.EOPNOTSUPP) || errors.Is(serr, syscall.ENOSYS) {
		serr = errors.ErrUnsupported
	}
	if serr != nil {
		return &os.PathError{Op: "fallocate", Path: o.f.Name(), Err: serr}
	}
	return nil
}

// fallocKeepSize is FALLOC_FL_KEEP_SIZE from linux/falloc.h.
const fallocKeepSize = 0x1

// lockOS takes flock(LOCK_EX|LOCK_NB) on name, created if missing. flock
// locks belong to the open file description, so a second lockOS of the
// same file fails in this process as well as in another, and the kernel
// releases the lock when the descriptor is closed or the process dies.
// (The descriptor is close-on-exec: children do not inherit the lock.)
func lockOS(name string) (io.Closer, error) {
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	rc, err := f.SyscallConn()
	if err != nil {
		_ = f.Close()
		return nil, err
	}
	var serr error
	cerr := rc.Control(func(fd uintptr) {
		for {
			serr = syscall.Flock(int(fd), syscall.LOCK_EX|syscall.LOCK_NB)
			if !errors.Is(serr, syscall.EINTR) {
				return
			}
		}
	})
	if cerr == nil && serr == nil {
		return osLock{f}, nil
	}
	_ = f.Close()
	if cerr != nil {
		return nil, &os.PathError{Op: "flock", Path: name, Err: cerr}
	}
	if errors.Is(serr, syscall.EWOULDBLOCK) {
		serr = ErrLocked
	}
	return nil, &os.PathError{Op: "flock", Path: name, Err: serr}
}

// osLock holds a flock(2) lock through its open descriptor.
type osLock struct{ f *os.File }

// Close releases the lock by closing the descriptor.
func (l osLock) Close() error { return l.f.Close() }

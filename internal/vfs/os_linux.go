package vfs

import (
	"errors"
	"io"
	"os"
	"strconv"
	"syscall"
	"unsafe"
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

// atSymlinkFollow is AT_SYMLINK_FOLLOW and atFDCWD AT_FDCWD from
// linux/fcntl.h.
const (
	atSymlinkFollow = 0x400
	atFDCWD         = -100
)

// linkOpen links the file f's descriptor reads as newname:
// linkat(AT_FDCWD, "/proc/self/fd/N", AT_FDCWD, newname, AT_SYMLINK_FOLLOW)
// follows the descriptor's magic link to its inode, so a file renamed
// over f's old name is never the one linked. An unlinked file gives
// ENOENT; another filesystem EXDEV.
func linkOpen(f *os.File, newname string) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	newp, err := syscall.BytePtrFromString(newname)
	if err != nil {
		return &os.LinkError{Op: "link", Old: f.Name(), New: newname, Err: err}
	}
	var lerr error
	cerr := rc.Control(func(fd uintptr) {
		oldp, err := syscall.BytePtrFromString("/proc/self/fd/" + strconv.Itoa(int(fd)))
		if err != nil {
			lerr = err
			return
		}
		for {
			fdcwd := atFDCWD
			_, _, e := syscall.Syscall6(syscall.SYS_LINKAT, uintptr(fdcwd), uintptr(unsafe.Pointer(oldp)),
				uintptr(fdcwd), uintptr(unsafe.Pointer(newp)), atSymlinkFollow, 0)
			if e == syscall.EINTR {
				continue
			}
			if e != 0 {
				lerr = e
			}
			return
		}
	})
	if cerr != nil {
		return &os.LinkError{Op: "link", Old: f.Name(), New: newname, Err: os.ErrClosed}
	}
	if lerr != nil {
		return &os.LinkError{Op: "link", Old: f.Name(), New: newname, Err: lerr}
	}
	return nil
}

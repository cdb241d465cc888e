package vfs

import (
	"errors"
	"io"
	"io/fs"
	"syscall"
)

// ErrLocked is returned (wrapped in an *fs.PathError) by Lock when another
// holder has the lock.
var ErrLocked = errors.New("vfs: file is locked by another holder")

// Locker is implemented by filesystems that can hold an exclusive lock on a
// file, so that two processes (or two owners in one process) never use one
// directory at once.
type Locker interface {
	// Lock creates name if it does not exist and takes an exclusive lock
	// on it without waiting: if another holder has it, Lock fails at once
	// with an error matching ErrLocked. Closing the result releases the
	// lock. The lock guards nothing by itself; it is advisory, like
	// flock(2), and the file's content is the caller's.
	Lock(name string) (io.Closer, error)
}

// Lock takes an exclusive lock on name through fsys (see Locker), and
// returns errors.ErrUnsupported if fsys cannot lock.
func Lock(fsys FS, name string) (io.Closer, error) {
	l, ok := fsys.(Locker)
	if !ok {
		return nil, errors.ErrUnsupported
	}
	return l.Lock(name)
}

var _ Locker = (*MemFS)(nil)

// Lock takes an exclusive lock on the file name, creating it (an entry,
// durable only after SyncDir, like any other) if it does not exist. Locks
// belong to the file, not its name, as flock(2) locks do: a file removed
// or renamed while locked stays locked, and a new file created under the
// old name is not. Each Lock is its own holder, so a second Lock of a
// locked file fails even from the same goroutine. Crash and CrashStrict
// carry no locks over: a power loss releases every lock, as the kernel
// releases a dead process's.
func (m *MemFS) Lock(name string) (io.Closer, error) {
	parts := split(name)
	m.mu.Lock()
	defer m.mu.Unlock()
	dir, base, err := m.parent(parts)
	if err != nil {
		return nil, pathErr("flock", name, err)
	}
	n := dir.children[base]
	if n == nil {
		n = newMemFile()
		dir.children[base] = n
		dir.modTime = n.modTime
	}
	if n.isDir {
		return nil, pathErr("flock", name, syscall.EISDIR)
	}
	if m.locks[n] {
		return nil, pathErr("flock", name, ErrLocked)
	}
	if m.locks == nil {
		m.locks = make(map[*memNode]bool)
	}
	m.locks[n] = true
	return &memLock{fs: m, n: n, name: name}, nil
}

// memLock is one holder of a MemFS lock.
type memLock struct {
	fs   *MemFS
	n    *memNode // nil once closed
	name string
}

// Close releases the lock; a second Close reports fs.ErrClosed.
func (l *memLock) Close() error {
	l.fs.mu.Lock()
	defer l.fs.mu.Unlock()
	if l.n == nil {
		return pathErr("close", l.name, fs.ErrClosed)
	}
	delete(l.fs.locks, l.n)
	l.n = nil
	return nil
}

// Lock takes the lock through the wrapped filesystem, which must support
// it (errors.ErrUnsupported otherwise). It is never injected: a data
// directory's lock is taken once, at open, and tests that count or pick
// operations should not see it.
func (e *errorFS) Lock(name string) (io.Closer, error) {
	return Lock(e.inner, name)
}

// Lock takes an exclusive lock on name, created if missing; see lockOS for
// what the operating system provides.
func (osFS) Lock(name string) (io.Closer, error) {
	return lockOS(name)
}

//go:build !linux

package vfs

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"sync"
)

// fdatasync falls back to a full fsync (F_FULLFSYNC on darwin) where
// fdatasync is unavailable.
func fdatasync(f *os.File) error { return f.Sync() }

// Preallocate is not supported here: appends allocate as they go.
func (o osFile) Preallocate(off, n int64) error { return errors.ErrUnsupported }

// osLocks is the best effort outside Linux: locks held in this process,
// by absolute path. Another process is not kept out.
var osLocks struct {
	sync.Mutex
	held map[string]bool
}

// lockOS creates name if missing and locks it within this process only.
func lockOS(name string) (io.Closer, error) {
	abs, err := filepath.Abs(name)
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	osLocks.Lock()
	defer osLocks.Unlock()
	if osLocks.held[abs] {
		_ = f.Close()
		return nil, &os.PathError{Op: "flock", Path: name, Err: ErrLocked}
	}
	if osLocks.held == nil {
		osLocks.held = map[string]bool{}
	}
	osLocks.held[abs] = true
	return &processLock{f: f, abs: abs}, nil
}

// processLock is a lock lockOS holds for this process.
type processLock struct {
	once sync.Once
	f    *os.File
	abs  string
}

// Close releases the lock and closes the file.
func (l *processLock) Close() error {
	err := os.ErrClosed
	l.once.Do(func() {
		osLocks.Lock()
		delete(osLocks.held, l.abs)
		osLocks.Unlock()
		err = l.f.Close()
	})
	return err
}

// linkOpen is unsupported here: without /proc/self/fd a link by the old
// name could name another file than the descriptor's.
func linkOpen(f *os.File, newname string) error {
	return &os.LinkError{Op: "link", Old: f.Name(), New: newname, Err: errors.ErrUnsupported}
}

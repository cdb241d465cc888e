package vfs

import (
	"errors"
	"io"
	"io/fs"
	"maps"
	"syscall"
	"time"
)

// errNegativeOffset matches what *os.File reports for a negative offset.
var errNegativeOffset = errors.New("negative offset")

// memFile is an open MemFS file (or directory, opened read-only). It keeps
// its node, not its name, so it still works after the name is removed or
// renamed, as a POSIX descriptor does.
type memFile struct {
	fs    *MemFS
	n     *memNode
	name  string
	write bool
	// closed is guarded by fs.mu.
	closed bool
}

var _ File = (*memFile)(nil)

func (f *memFile) ReadAt(p []byte, off int64) (int, error) {
	f.fs.mu.RLock()
	defer f.fs.mu.RUnlock()
	if f.closed {
		return 0, pathErr("read", f.name, fs.ErrClosed)
	}
	if f.n.isDir {
		return 0, pathErr("read", f.name, syscall.EISDIR)
	}
	if off < 0 {
		return 0, pathErr("readat", f.name, errNegativeOffset)
	}
	if len(p) == 0 {
		return 0, nil
	}
	if off >= int64(len(f.n.data)) {
		return 0, io.EOF
	}
	n := copy(p, f.n.data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (f *memFile) WriteAt(p []byte, off int64) (int, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if f.closed {
		return 0, pathErr("write", f.name, fs.ErrClosed)
	}
	if !f.write {
		return 0, pathErr("write", f.name, syscall.EBADF)
	}
	if off < 0 {
		return 0, pathErr("writeat", f.name, errNegativeOffset)
	}
	if off > maxMemFileSize || int64(len(p)) > maxMemFileSize-off {
		return 0, pathErr("write", f.name, syscall.EFBIG)
	}
	f.n.writeAt(p, int(off))
	return len(p), nil
}

// Sync makes the file's content durable; on a directory handle it makes
// the directory's entries durable, as fsync on a directory does.
func (f *memFile) Sync() error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if f.closed {
		return pathErr("sync", f.name, fs.ErrClosed)
	}
	if f.n.isDir {
		f.n.durable = maps.Clone(f.n.children)
		return nil
	}
	f.n.sync()
	return nil
}

func (f *memFile) Truncate(size int64) error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if f.closed {
		return pathErr("truncate", f.name, fs.ErrClosed)
	}
	if !f.write || size < 0 {
		// Linux ftruncate reports EINVAL for a read-only descriptor too.
		return pathErr("truncate", f.name, syscall.EINVAL)
	}
	if size > maxMemFileSize {
		return pathErr("truncate", f.name, syscall.EFBIG)
	}
	if int(size) != len(f.n.data) {
		f.n.resize(int(size))
		f.n.modTime = time.Now()
	}
	return nil
}

// Preallocate reserves nothing: the in-memory filesystem has no blocks to
// allocate. It exists so that callers' preallocation paths run in tests.
func (f *memFile) Preallocate(off, n int64) error {
	f.fs.mu.RLock()
	defer f.fs.mu.RUnlock()
	if f.closed {
		return pathErr("fallocate", f.name, fs.ErrClosed)
	}
	if !f.write || off < 0 || n <= 0 {
		return pathErr("fallocate", f.name, syscall.EINVAL)
	}
	return nil
}

func (f *memFile) Size() (int64, error) {
	f.fs.mu.RLock()
	defer f.fs.mu.RUnlock()
	if f.closed {
		return 0, pathErr("stat", f.name, fs.ErrClosed)
	}
	return int64(len(f.n.data)), nil
}

func (f *memFile) Close() error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if f.closed {
		return pathErr("close", f.name, fs.ErrClosed)
	}
	f.closed = true
	return nil
}

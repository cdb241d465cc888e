package vfs

import (
	"errors"
	"io"
	"os"
)

// FS is the filesystem seam every durable byte in Weir goes through.
//
// Paths are slash- or OS-separated paths as produced by path/filepath.
// Implementations must be safe for concurrent use by multiple goroutines.
//
// Durability contract (mirrors POSIX): data written to a File is durable
// only after File.Sync returns nil; the existence of a directory entry
// (after Create, Rename or Remove) is durable only after SyncDir on the
// parent directory returns nil.
type FS interface {
	// Create creates or truncates the named file for reading and writing.
	Create(name string) (File, error)
	// Open opens the named file read-only.
	Open(name string) (File, error)
	// OpenReadWrite opens the named file for reading and writing, creating
	// it if it does not exist, without truncating it.
	OpenReadWrite(name string) (File, error)
	// Remove removes the named file or empty directory.
	Remove(name string) error
	// RemoveAll removes the path and any children it contains.
	RemoveAll(name string) error
	// Rename atomically renames oldname to newname, replacing newname.
	Rename(oldname, newname string) error
	// MkdirAll creates the directory and any missing parents.
	MkdirAll(dir string, perm os.FileMode) error
	// List returns the names (not paths) of the entries in dir, sorted.
	List(dir string) ([]string, error)
	// Stat describes the named file.
	Stat(name string) (os.FileInfo, error)
	// SyncDir makes the directory's entries (creations, renames and
	// removals of its children) durable.
	SyncDir(dir string) error
}

// File is an open file. All reads and writes are positional so that one
// appender and many readers can share a file without a shared cursor.
type File interface {
	io.ReaderAt
	io.WriterAt
	io.Closer
	// Sync makes the file's data durable (fdatasync).
	Sync() error
	// Truncate changes the size of the file.
	Truncate(size int64) error
	// Size reports the current size of the file.
	Size() (int64, error)
}

// Preallocator is implemented by files that can reserve disk space ahead
// of writes without changing the file's size (fallocate with
// FALLOC_FL_KEEP_SIZE on Linux). Appends into reserved space allocate no
// blocks, so their fdatasync has less metadata to commit; truncating the
// file to its size releases what was reserved and not written.
type Preallocator interface {
	Preallocate(off, n int64) error
}

// Preallocate reserves n bytes of f from off if f supports it, and
// returns errors.ErrUnsupported if it does not.
func Preallocate(f File, off, n int64) error {
	p, ok := f.(Preallocator)
	if !ok {
		return errors.ErrUnsupported
	}
	return p.Preallocate(off, n)
}

// Errors the in-memory filesystem and error injection produce. The OS
// implementation returns the operating system's errors, which satisfy
// errors.Is against the os/io/fs sentinels.
var (
	// ErrInjected is the default error returned by an injected fault.
	ErrInjected = errors.New("vfs: injected fault")
)

package vfs

import (
	"errors"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// MemFS is an in-memory FS that models POSIX durability so that crash
// tests are meaningful: every file has current contents and durable
// contents (as of its last successful File.Sync), and every directory has
// current entries and durable entries (as of its last SyncDir). Crash and
// CrashStrict build the filesystem a power loss would leave behind.
//
// Paths are rooted at "/": "a/b", "/a/b" and "/a/./b" name the same file.
// MemFS is safe for concurrent use; one lock serialises writers, readers
// share it. The zero value is not usable; call NewMem.
type MemFS struct {
	mu   sync.RWMutex
	root *memNode
	// locks holds the files Lock has locked (lock.go); nil until the
	// first Lock.
	locks map[*memNode]bool
}

var _ FS = (*MemFS)(nil)

// NewMem returns an empty in-memory filesystem holding only the root
// directory, which is always durable.
func NewMem() *MemFS {
	return &MemFS{root: newMemDir(0o755)}
}

// memNode is an inode: a file or a directory. A node can outlive its
// directory entries (open handles, durable entries of a removed file).
type memNode struct {
	isDir   bool
	mode    fs.FileMode
	modTime time.Time

	// Files. synced is the durable content and never aliases data.
	// dirtyFrom is the lowest offset changed since the last Sync, so that
	// Sync copies only what changed (appends are the common case).
	data      []byte
	synced    []byte
	dirtyFrom int

	// Directories. durable is the set of entries as of the last SyncDir.
	children map[string]*memNode
	durable  map[string]*memNode
}

func newMemDir(perm fs.FileMode) *memNode {
	return &memNode{
		isDir:    true,
		mode:     fs.ModeDir | perm&fs.ModePerm,
		modTime:  time.Now(),
		children: make(map[string]*memNode),
		durable:  make(map[string]*memNode),
	}
}

func newMemFile() *memNode {
	return &memNode{mode: 0o644, modTime: time.Now()}
}

// maxMemFileSize bounds a MemFS file so that a wild offset fails with
// EFBIG instead of exhausting memory.
const maxMemFileSize = 1 << 36

// resize sets the current length, zero-filling growth: the backing array
// past len may hold bytes from before an earlier shrink.
func (n *memNode) resize(size int) {
	old := len(n.data)
	if size <= old {
		n.data = n.data[:size]
		n.dirtyFrom = min(n.dirtyFrom, size)
		return
	}
	n.data = slices.Grow(n.data, size-old)[:size]
	clear(n.data[old:])
	n.dirtyFrom = min(n.dirtyFrom, old)
}

func (n *memNode) writeAt(p []byte, off int) {
	if end := off + len(p); end > len(n.data) {
		n.resize(end)
	}
	copy(n.data[off:], p)
	n.dirtyFrom = min(n.dirtyFrom, off)
	n.modTime = time.Now()
}

// sync makes the current content durable, copying only the changed part.
func (n *memNode) sync() {
	k := min(n.dirtyFrom, len(n.synced), len(n.data))
	n.synced = append(n.synced[:k], n.data[k:]...)
	n.dirtyFrom = len(n.data)
}

// split cleans name into components below the root; the root is nil.
func split(name string) []string {
	p := path.Clean("/" + filepath.ToSlash(name))
	if p == "/" {
		return nil
	}
	return strings.Split(p[1:], "/")
}

// walk resolves path components. Callers hold m.mu.
func (m *MemFS) walk(parts []string) (*memNode, error) {
	n := m.root
	for _, p := range parts {
		if !n.isDir {
			return nil, syscall.ENOTDIR
		}
		c, ok := n.children[p]
		if !ok {
			return nil, fs.ErrNotExist
		}
		n = c
	}
	return n, nil
}

// parent resolves the directory holding the last component. The root has
// no parent. Callers hold m.mu.
func (m *MemFS) parent(parts []string) (*memNode, string, error) {
	if len(parts) == 0 {
		return nil, "", syscall.EBUSY
	}
	dir, err := m.walk(parts[:len(parts)-1])
	if err != nil {
		return nil, "", err
	}
	if !dir.isDir {
		return nil, "", syscall.ENOTDIR
	}
	return dir, parts[len(parts)-1], nil
}

func pathErr(op, name string, err error) error {
	return &fs.PathError{Op: op, Path: name, Err: err}
}

// Create creates or truncates the named file. Truncating an existing file
// is a data change: like a write it is durable only after File.Sync.
func (m *MemFS) Create(name string) (File, error) {
	return m.open(name, true, true, true)
}

// Open opens the named file, or directory, read-only.
func (m *MemFS) Open(name string) (File, error) {
	return m.open(name, false, false, false)
}

// OpenReadWrite opens the named file for reading and writing, creating it
// if it does not exist.
func (m *MemFS) OpenReadWrite(name string) (File, error) {
	return m.open(name, true, false, true)
}

func (m *MemFS) open(name string, create, trunc, write bool) (File, error) {
	parts := split(name)
	m.mu.Lock()
	defer m.mu.Unlock()
	n := m.root
	if len(parts) > 0 {
		dir, base, err := m.parent(parts)
		if err != nil {
			return nil, pathErr("open", name, err)
		}
		n = dir.children[base]
		if n == nil {
			if !create {
				return nil, pathErr("open", name, fs.ErrNotExist)
			}
			n = newMemFile()
			dir.children[base] = n
			dir.modTime = time.Now()
		}
	}
	if n.isDir && write {
		return nil, pathErr("open", name, syscall.EISDIR)
	}
	if trunc && len(n.data) > 0 {
		n.resize(0)
		n.modTime = time.Now()
	}
	return &memFile{fs: m, n: n, name: name, write: write}, nil
}

// Remove removes the named file or empty directory.
func (m *MemFS) Remove(name string) error {
	parts := split(name)
	m.mu.Lock()
	defer m.mu.Unlock()
	dir, base, err := m.parent(parts)
	if err != nil {
		return pathErr("remove", name, err)
	}
	n := dir.children[base]
	if n == nil {
		return pathErr("remove", name, fs.ErrNotExist)
	}
	if n.isDir && len(n.children) > 0 {
		return pathErr("remove", name, syscall.ENOTEMPTY)
	}
	delete(dir.children, base)
	dir.modTime = time.Now()
	return nil
}

// RemoveAll removes name and everything below it. A missing name is not
// an error. Only the entry in name's parent changes, so one SyncDir of the
// parent makes the whole removal durable.
func (m *MemFS) RemoveAll(name string) error {
	parts := split(name)
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(parts) == 0 {
		return pathErr("removeall", name, syscall.EINVAL)
	}
	dir, base, err := m.parent(parts)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return pathErr("removeall", name, err)
	}
	if _, ok := dir.children[base]; ok {
		delete(dir.children, base)
		dir.modTime = time.Now()
	}
	return nil
}

// Rename renames oldname to newname, replacing a file at newname, with
// the rules of os.Rename on Unix: an existing directory at newname is an
// error (EEXIST), so is a directory over a file (ENOTDIR) or into its own
// subtree (EINVAL). The change to each parent directory is durable after
// SyncDir of that directory.
func (m *MemFS) Rename(oldname, newname string) error {
	fail := func(err error) error {
		return &os.LinkError{Op: "rename", Old: oldname, New: newname, Err: err}
	}
	op, np := split(oldname), split(newname)
	m.mu.Lock()
	defer m.mu.Unlock()
	odir, obase, err := m.parent(op)
	if err != nil {
		return fail(err)
	}
	n := odir.children[obase]
	if n == nil {
		return fail(fs.ErrNotExist)
	}
	ndir, nbase, err := m.parent(np)
	if err != nil {
		return fail(err)
	}
	if n.isDir && len(np) > len(op) && slices.Equal(np[:len(op)], op) {
		return fail(syscall.EINVAL) // into its own subtree
	}
	if old := ndir.children[nbase]; old != nil {
		switch {
		case old == n:
			return nil // same name, or two links to one file
		case old.isDir:
			return fail(syscall.EEXIST) // os.Rename refuses any directory target
		case n.isDir:
			return fail(syscall.ENOTDIR)
		}
	}
	delete(odir.children, obase)
	ndir.children[nbase] = n
	now := time.Now()
	odir.modTime, ndir.modTime = now, now
	return nil
}

// MkdirAll creates dir and any missing parents with mode perm. It is
// idempotent. Each new directory is an entry in its parent and survives a
// crash only after SyncDir of that parent.
func (m *MemFS) MkdirAll(dir string, perm os.FileMode) error {
	parts := split(dir)
	m.mu.Lock()
	defer m.mu.Unlock()
	n := m.root
	for _, p := range parts {
		c := n.children[p]
		if c == nil {
			c = newMemDir(perm)
			n.children[p] = c
			n.modTime = time.Now()
		} else if !c.isDir {
			return pathErr("mkdir", dir, syscall.ENOTDIR)
		}
		n = c
	}
	return nil
}

// List returns the sorted names of dir's current entries.
func (m *MemFS) List(dir string) ([]string, error) {
	parts := split(dir)
	m.mu.RLock()
	defer m.mu.RUnlock()
	n, err := m.walk(parts)
	if err != nil {
		return nil, pathErr("open", dir, err)
	}
	if !n.isDir {
		return nil, pathErr("readdirent", dir, syscall.ENOTDIR)
	}
	names := slices.Sorted(maps.Keys(n.children))
	if names == nil {
		names = []string{} // like the OS implementation
	}
	return names, nil
}

// Stat describes the named file or directory.
func (m *MemFS) Stat(name string) (os.FileInfo, error) {
	parts := split(name)
	m.mu.RLock()
	defer m.mu.RUnlock()
	n, err := m.walk(parts)
	if err != nil {
		return nil, pathErr("stat", name, err)
	}
	base := "/"
	if len(parts) > 0 {
		base = parts[len(parts)-1]
	}
	return memInfo{name: base, size: int64(len(n.data)), mode: n.mode, modTime: n.modTime}, nil
}

// SyncDir makes dir's current entries durable. It does not make dir's own
// entry in its parent durable, nor any file's data.
func (m *MemFS) SyncDir(dir string) error {
	parts := split(dir)
	m.mu.Lock()
	defer m.mu.Unlock()
	n, err := m.walk(parts)
	if err != nil {
		return pathErr("open", dir, err)
	}
	if !n.isDir {
		return pathErr("sync", dir, syscall.ENOTDIR)
	}
	n.durable = maps.Clone(n.children)
	return nil
}

var _ fs.FileInfo = memInfo{}

// memInfo is the os.FileInfo MemFS returns.
type memInfo struct {
	name    string
	size    int64
	mode    fs.FileMode
	modTime time.Time
}

func (i memInfo) Name() string       { return i.name }
func (i memInfo) Size() int64        { return i.size }
func (i memInfo) Mode() fs.FileMode  { return i.mode }
func (i memInfo) ModTime() time.Time { return i.modTime }
func (i memInfo) IsDir() bool        { return i.mode.IsDir() }
func (i memInfo) Sys() any           { return nil }

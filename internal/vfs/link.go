package vfs

import (
	"errors"
	"os"
	"syscall"
	"time"
)

// FileLinker is implemented by filesystems that can give an open file of
// theirs a second name: a hard link to the very file the descriptor reads,
// not to whatever its old name points at now (a file renamed over it, say).
// The tiered-storage archive uses it to store a sealed log segment without
// copying its bytes when the archive is a directory of the same
// filesystem.
type FileLinker interface {
	// LinkFile creates newname as another name of the open file f. It
	// fails if newname exists (EEXIST), if f is not a file of this
	// filesystem or was opened from another one (errors.ErrUnsupported,
	// or EXDEV across devices), or if f has no name left (ENOENT: it was
	// removed). Like any new entry, newname is durable only after
	// SyncDir of its directory; f's data only after f.Sync.
	LinkFile(f File, newname string) error
}

// LinkFile links the open file f as newname through fsys (see
// FileLinker), and returns errors.ErrUnsupported if fsys cannot link.
func LinkFile(fsys FS, f File, newname string) error {
	l, ok := fsys.(FileLinker)
	if !ok {
		return errors.ErrUnsupported
	}
	return l.LinkFile(f, newname)
}

// LinkFile links f, a file this filesystem opened, as newname: linkat(2)
// of /proc/self/fd/N with AT_SYMLINK_FOLLOW on Linux, so the link names
// the descriptor's file. Elsewhere it is unsupported.
func (osFS) LinkFile(f File, newname string) error {
	of, ok := f.(osFile)
	if !ok {
		return &os.LinkError{Op: "link", Old: "?", New: newname, Err: errors.ErrUnsupported}
	}
	return linkOpen(of.f, newname)
}

var _ FileLinker = (*MemFS)(nil)

// LinkFile makes newname another entry of f's file, which must be an open
// file of m that still has a name. The new entry is durable after SyncDir
// of its parent; Crash keeps a file reachable through two durable entries
// as one file with two names.
func (m *MemFS) LinkFile(f File, newname string) error {
	fail := func(err error) error { return &os.LinkError{Op: "link", Old: "?", New: newname, Err: err} }
	mf, ok := f.(*memFile)
	if !ok || mf.fs != m {
		return fail(errors.ErrUnsupported)
	}
	parts := split(newname)
	m.mu.Lock()
	defer m.mu.Unlock()
	if mf.closed {
		return fail(os.ErrClosed)
	}
	if mf.n.isDir {
		return fail(syscall.EPERM)
	}
	if !m.reachable(m.root, mf.n) {
		return fail(syscall.ENOENT) // as linkat of an unlinked file
	}
	dir, base, err := m.parent(parts)
	if err != nil {
		return fail(err)
	}
	if dir.children[base] != nil {
		return fail(syscall.EEXIST)
	}
	dir.children[base] = mf.n
	dir.modTime = time.Now()
	return nil
}

// reachable reports whether n is an entry somewhere below dir. Callers
// hold m.mu.
func (m *MemFS) reachable(dir, n *memNode) bool {
	for _, c := range dir.children {
		if c == n || c.isDir && m.reachable(c, n) {
			return true
		}
	}
	return false
}

// LinkFile links through the wrapped filesystem (errors.ErrUnsupported if
// it cannot) after consulting the injector with OpLink and newname.
func (e *errorFS) LinkFile(f File, newname string) error {
	if err := e.inj.MaybeError(OpLink, newname); err != nil {
		return &os.LinkError{Op: "link", Old: "?", New: newname, Err: injectedError{err}}
	}
	if ef, ok := f.(*errorFile); ok && ef.fs == e {
		f = ef.inner
	}
	return LinkFile(e.inner, f, newname)
}

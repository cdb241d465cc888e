package vfs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync/atomic"
)

// Op names a kind of filesystem operation an Injector can fail.
type Op int

// The operations ErrorFS consults its Injector about. File.Close is never
// injected: a failed close leaves nothing useful for callers to test.
const (
	OpCreate      Op = iota + 1 // FS.Create
	OpOpen                      // FS.Open and FS.OpenReadWrite
	OpWrite                     // File.WriteAt
	OpSync                      // File.Sync
	OpSyncDir                   // FS.SyncDir
	OpRename                    // FS.Rename; the path is the old name
	OpRemove                    // FS.Remove and FS.RemoveAll
	OpTruncate                  // File.Truncate
	OpRead                      // File.ReadAt
	OpMkdir                     // FS.MkdirAll
	OpList                      // FS.List
	OpStat                      // FS.Stat and File.Size
	OpPreallocate               // Preallocate (where the inner file supports it)
	OpLink                      // LinkFile; the path is the new name
)

var opNames = [...]string{
	OpCreate: "create", OpOpen: "open", OpWrite: "write", OpSync: "sync",
	OpSyncDir: "syncdir", OpRename: "rename", OpRemove: "remove",
	OpTruncate: "truncate", OpRead: "read", OpMkdir: "mkdir", OpList: "list",
	OpStat: "stat", OpPreallocate: "fallocate", OpLink: "link",
}

// String returns the operation's lowercase name, as used in error messages.
func (op Op) String() string {
	if op > 0 && int(op) < len(opNames) {
		return opNames[op]
	}
	return fmt.Sprintf("Op(%d)", int(op))
}

// Injector decides whether an operation fails. MaybeError is called before
// the operation reaches the wrapped FS, possibly from many goroutines at
// once; a non-nil result is returned to the caller, wrapped so that
// errors.Is matches both it and ErrInjected, and the operation is not
// performed (but see PartialWriter).
type Injector interface {
	MaybeError(op Op, path string) error
}

// InjectorFunc adapts a function to an Injector.
type InjectorFunc func(op Op, path string) error

// MaybeError calls f(op, path).
func (f InjectorFunc) MaybeError(op Op, path string) error { return f(op, path) }

// PartialWriter is an optional interface for an Injector: when it fails a
// WriteAt of n bytes, ErrorFS first writes the first PartialWrite(path, n)
// bytes (clamped to [0, n]) through to the wrapped file, as a disk filling
// up mid-write does, and reports that count with the error. Without it a
// failed WriteAt writes nothing and reports 0.
type PartialWriter interface {
	PartialWrite(path string, n int) int
}

// WithPartialWrite returns an Injector that fails what inj fails and, on
// a failed WriteAt of n bytes, writes the first keep(n) bytes first.
func WithPartialWrite(inj Injector, keep func(n int) int) Injector {
	return partialInjector{Injector: inj, keep: keep}
}

type partialInjector struct {
	Injector
	keep func(n int) int
}

func (p partialInjector) PartialWrite(_ string, n int) int { return p.keep(n) }

// FailOnce returns an Injector that fails the first operation of kind op
// with err (ErrInjected if err is nil) and lets everything else through.
func FailOnce(op Op, err error) Injector {
	return &failOnce{op: op, err: orInjected(err)}
}

type failOnce struct {
	op   Op
	err  error
	done atomic.Bool
}

func (f *failOnce) MaybeError(op Op, _ string) error {
	if op == f.op && f.done.CompareAndSwap(false, true) {
		return f.err
	}
	return nil
}

// FailAfter returns an Injector that lets the first n operations of kind
// op succeed and fails the (n+1)th and every later one with err
// (ErrInjected if err is nil). Other kinds always succeed.
func FailAfter(op Op, n int, err error) Injector {
	return &failAfter{op: op, n: int64(max(n, 0)), err: orInjected(err)}
}

type failAfter struct {
	op    Op
	n     int64
	err   error
	count atomic.Int64
}

func (f *failAfter) MaybeError(op Op, _ string) error {
	if op == f.op && f.count.Add(1) > f.n {
		return f.err
	}
	return nil
}

func orInjected(err error) error {
	if err == nil {
		return ErrInjected
	}
	return err
}

// Toggle is an Injector whose error is switched on and off at run time,
// from any goroutine: for example ENOSPC on every write until the test
// frees space. The zero value applies to every Op and starts cleared.
type Toggle struct {
	ops uint64 // bit per Op; 0 means all
	err atomic.Pointer[error]
}

// NewToggle returns a cleared Toggle that applies to the given operations,
// or to all operations if none are given.
func NewToggle(ops ...Op) *Toggle {
	t := &Toggle{}
	for _, op := range ops {
		t.ops |= 1 << uint(op)
	}
	return t
}

// Set makes every matching operation fail with err from now on. Set(nil)
// is Clear.
func (t *Toggle) Set(err error) {
	if err == nil {
		t.Clear()
		return
	}
	t.err.Store(&err)
}

// Clear lets every operation succeed from now on.
func (t *Toggle) Clear() { t.err.Store(nil) }

// MaybeError returns the error last Set, if any and if op is one of t's.
func (t *Toggle) MaybeError(op Op, _ string) error {
	if t.ops != 0 && t.ops&(1<<uint(op)) == 0 {
		return nil
	}
	if p := t.err.Load(); p != nil {
		return *p
	}
	return nil
}

// injectedError marks a fault as injected while keeping the chosen error
// (say syscall.ENOSPC) visible to errors.Is.
type injectedError struct{ err error }

func (e injectedError) Error() string {
	if e.err == ErrInjected {
		return e.err.Error()
	}
	return e.err.Error() + " (injected)"
}

func (e injectedError) Unwrap() []error { return []error{e.err, ErrInjected} }

// NewErrorFS wraps inner so that inj is consulted before every operation
// (see Op for which methods map to which kind). A failed operation does
// not reach inner, except for the prefix a PartialWriter asks for, so a
// failed Sync leaves data exactly as undurable as it was. Injected errors
// are *fs.PathError (*os.LinkError for Rename) values wrapping the
// injector's error and ErrInjected. A nil inj injects nothing.
func NewErrorFS(inner FS, inj Injector) FS {
	if inj == nil {
		inj = InjectorFunc(func(Op, string) error { return nil })
	}
	return &errorFS{inner: inner, inj: inj}
}

type errorFS struct {
	inner FS
	inj   Injector
}

func (e *errorFS) fail(op Op, path string) error {
	if err := e.inj.MaybeError(op, path); err != nil {
		return &fs.PathError{Op: op.String(), Path: path, Err: injectedError{err}}
	}
	return nil
}

func (e *errorFS) wrap(f File, err error, name string) (File, error) {
	if err != nil {
		return nil, err
	}
	return &errorFile{fs: e, inner: f, name: name}, nil
}

func (e *errorFS) Create(name string) (File, error) {
	if err := e.fail(OpCreate, name); err != nil {
		return nil, err
	}
	f, err := e.inner.Create(name)
	return e.wrap(f, err, name)
}

func (e *errorFS) Open(name string) (File, error) {
	if err := e.fail(OpOpen, name); err != nil {
		return nil, err
	}
	f, err := e.inner.Open(name)
	return e.wrap(f, err, name)
}

func (e *errorFS) OpenReadWrite(name string) (File, error) {
	if err := e.fail(OpOpen, name); err != nil {
		return nil, err
	}
	f, err := e.inner.OpenReadWrite(name)
	return e.wrap(f, err, name)
}

func (e *errorFS) Remove(name string) error {
	if err := e.fail(OpRemove, name); err != nil {
		return err
	}
	return e.inner.Remove(name)
}

func (e *errorFS) RemoveAll(name string) error {
	if err := e.fail(OpRemove, name); err != nil {
		return err
	}
	return e.inner.RemoveAll(name)
}

func (e *errorFS) Rename(oldname, newname string) error {
	if err := e.inj.MaybeError(OpRename, oldname); err != nil {
		return &os.LinkError{Op: "rename", Old: oldname, New: newname, Err: injectedError{err}}
	}
	return e.inner.Rename(oldname, newname)
}

func (e *errorFS) MkdirAll(dir string, perm os.FileMode) error {
	if err := e.fail(OpMkdir, dir); err != nil {
		return err
	}
	return e.inner.MkdirAll(dir, perm)
}

func (e *errorFS) List(dir string) ([]string, error) {
	if err := e.fail(OpList, dir); err != nil {
		return nil, err
	}
	return e.inner.List(dir)
}

func (e *errorFS) Stat(name string) (os.FileInfo, error) {
	if err := e.fail(OpStat, name); err != nil {
		return nil, err
	}
	return e.inner.Stat(name)
}

func (e *errorFS) SyncDir(dir string) error {
	if err := e.fail(OpSyncDir, dir); err != nil {
		return err
	}
	return e.inner.SyncDir(dir)
}

// errorFile consults the injector before each File operation but Close.
type errorFile struct {
	fs    *errorFS
	inner File
	name  string
}

func (f *errorFile) ReadAt(p []byte, off int64) (int, error) {
	if err := f.fs.fail(OpRead, f.name); err != nil {
		return 0, err
	}
	return f.inner.ReadAt(p, off)
}

func (f *errorFile) WriteAt(p []byte, off int64) (int, error) {
	err := f.fs.fail(OpWrite, f.name)
	if err == nil {
		return f.inner.WriteAt(p, off)
	}
	pw, ok := f.fs.inj.(PartialWriter)
	if !ok {
		return 0, err
	}
	k := min(max(pw.PartialWrite(f.name, len(p)), 0), len(p))
	if k == 0 {
		return 0, err
	}
	n, werr := f.inner.WriteAt(p[:k], off)
	if werr != nil {
		return n, errors.Join(err, werr)
	}
	return n, err
}

func (f *errorFile) Sync() error {
	if err := f.fs.fail(OpSync, f.name); err != nil {
		return err
	}
	return f.inner.Sync()
}

func (f *errorFile) Truncate(size int64) error {
	if err := f.fs.fail(OpTruncate, f.name); err != nil {
		return err
	}
	return f.inner.Truncate(size)
}

func (f *errorFile) Size() (int64, error) {
	if err := f.fs.fail(OpStat, f.name); err != nil {
		return 0, err
	}
	return f.inner.Size()
}

// Preallocate reserves space through the inner file, which must support
// it (errors.ErrUnsupported otherwise), unless the injector fails it.
func (f *errorFile) Preallocate(off, n int64) error {
	if err := f.fs.fail(OpPreallocate, f.name); err != nil {
		return err
	}
	return Preallocate(f.inner, off, n)
}

func (f *errorFile) Close() error { return f.inner.Close() }

package broker

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/weirhq/weir/internal/vfs"
)

// ErrDirLocked is returned by Open when another broker holds the data
// directory: another Weir process, or another Open in this one.
var ErrDirLocked = errors.New("broker: data directory is in use")

// lockName is the file under Options.Dir that the broker holding the
// directory keeps locked (vfs.Lock: flock(2) on Linux) and writes its pid
// into. The lock is the guard; the pid only names the holder in the error
// a second Open gets.
const lockName = "lock"

// dirLockedError is ErrDirLocked naming the directory and its holder.
type dirLockedError struct {
	dir string
	pid int // 0 if unknown
}

func (e *dirLockedError) Error() string {
	switch {
	case e.pid == os.Getpid():
		return fmt.Sprintf("broker: data directory %s is already open in this process (pid %d)", e.dir, e.pid)
	case e.pid > 0:
		return fmt.Sprintf("broker: data directory %s is in use by another Weir process (pid %d)", e.dir, e.pid)
	}
	return fmt.Sprintf("broker: data directory %s is in use by another Weir process", e.dir)
}

func (e *dirLockedError) Unwrap() error { return ErrDirLocked }

// lockDir takes the data directory's lock and writes this process's pid
// into the lock file. The lock is held until the returned Closer is
// closed, or the process ends. A filesystem that cannot lock (no
// vfs.Locker) leaves the directory unguarded: nil, nil.
func lockDir(opts Options) (io.Closer, error) {
	path := filepath.Join(opts.Dir, lockName)
	l, err := vfs.Lock(opts.FS, path)
	switch {
	case errors.Is(err, errors.ErrUnsupported):
		opts.Logger.Debug("broker: the filesystem cannot lock; the data directory is not guarded against a second broker", "dir", opts.Dir)
		return nil, nil
	case errors.Is(err, vfs.ErrLocked):
		return nil, &dirLockedError{dir: opts.Dir, pid: lockHolder(opts.FS, path)}
	case err != nil:
		return nil, fmt.Errorf("broker: lock data directory %s: %w", opts.Dir, err)
	}
	// The pid is a courtesy to the next Open's error message, not data: no
	// fsync, and a failure to write it does not stop the broker.
	if err := writePID(opts.FS, path); err != nil {
		opts.Logger.Warn("broker: could not write the pid into the lock file", "path", path, "err", err)
	}
	return l, nil
}

func writePID(fsys vfs.FS, path string) error {
	f, err := fsys.Create(path)
	if err != nil {
		return err
	}
	_, err = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return errors.Join(err, f.Close())
}

// lockHolder reads the pid the holder wrote into the lock file, 0 if there
// is none (yet: the holder writes it just after locking).
func lockHolder(fsys vfs.FS, path string) int {
	raw, err := readAll(fsys, path)
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil || pid <= 0 {
		return 0
	}
	return pid
}

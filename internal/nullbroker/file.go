package nullbroker

import (
	"errors"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
)

// logFile is an append-only file with a group-committing syncer.
type logFile struct {
	f       *os.File
	stop    <-chan struct{}
	mu      sync.Mutex // serialises writes
	written atomic.Int64
	durable atomic.Int64
	kick    chan struct{}
	syncMu  sync.Mutex
	syncCh  chan struct{} // closed and replaced after each fdatasync
	syncErr atomic.Pointer[error]
}

func newLogFile(f *os.File, stop <-chan struct{}) *logFile {
	return &logFile{f: f, stop: stop, kick: make(chan struct{}, 1), syncCh: make(chan struct{})}
}

// write appends b and returns the file position after it.
func (l *logFile) write(b []byte) (int64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n, err := l.f.Write(b)
	return l.written.Add(int64(n)), err
}

// kickSync asks the syncer for an fdatasync.
func (l *logFile) kickSync() {
	select {
	case l.kick <- struct{}{}:
	default:
	}
}

// syncLoop group-commits: each fdatasync covers everything written before
// it began. Writes during an fdatasync leave a kick for the next round.
func (l *logFile) syncLoop() {
	for {
		select {
		case <-l.kick:
		case <-l.stop:
			return
		}
		target := l.written.Load()
		if target <= l.durable.Load() {
			continue
		}
		if err := fdatasync(l.f); err != nil {
			l.syncErr.CompareAndSwap(nil, &err)
		}
		l.durable.Store(target)
		l.syncMu.Lock()
		close(l.syncCh)
		l.syncCh = make(chan struct{})
		l.syncMu.Unlock()
	}
}

// waitDurable blocks until the file is synced up to pos; false on a
// failed fdatasync or shutdown.
func (l *logFile) waitDurable(pos int64) bool {
	for {
		l.syncMu.Lock()
		ch := l.syncCh
		l.syncMu.Unlock()
		if l.syncErr.Load() != nil {
			return false
		}
		if l.durable.Load() >= pos {
			return true
		}
		select {
		case <-ch:
		case <-l.stop:
			return l.durable.Load() >= pos
		}
	}
}

func fdatasync(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if cerr := rc.Control(func(fd uintptr) {
		for {
			if serr = syscall.Fdatasync(int(fd)); !errors.Is(serr, syscall.EINTR) {
				return
			}
		}
	}); cerr != nil {
		return cerr
	}
	return serr
}

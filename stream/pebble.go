package stream

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// The on-disk store: one pebble database per task store, for state larger
// than memory. Layout of a database's keys:
//
//	0x00 "checkpoint"  → 8-byte big-endian changelog offset (exclusive)
//	0x01 <key>         → <value>            (the store's entries)
//
// Changes go to an indexed pebble batch (reads see them); Commit applies
// the batch together with the new checkpoint in one atomic write, so what
// is on disk is always the state of some committed changelog offset. A
// batch grown past pebbleSpillBytes is applied early together with a
// deletion of the checkpoint: after a crash or an abort before the next
// Commit the store has no checkpoint, and is wiped and restored from the
// start of its changelog. Writes are not synced: a power loss takes the
// database back to an earlier checkpoint (pebble's WAL replays whole
// batches or none), and the changelog supplies the rest.

// pebbleSpillBytes bounds the changes a pebble store holds in memory
// between two commits.
var pebbleSpillBytes = 64 << 20

var (
	pebbleCheckpointKey = []byte("\x00checkpoint")
	pebbleDataLower     = []byte{1}
	pebbleDataUpper     = []byte{2}
)

// PebbleStore returns a Config.NewStore function that keeps each task's
// store in its own pebble database, in dir/<app>/<task>/<store>: state
// larger than memory that survives restarts, so a task that comes back to
// an instance restores only the changelog written since its last commit
// there. Give each instance its own dir. The stores are CheckpointStores.
func PebbleStore(dir string) func(StoreSpec) (Store, error) {
	return pebbleStoreFS(dir, vfs.Default)
}

func pebbleStoreFS(dir string, fs vfs.FS) func(StoreSpec) (Store, error) {
	return func(spec StoreSpec) (Store, error) {
		name, app := url.PathEscape(spec.Name), url.PathEscape(spec.App)
		if name == "" || name == "." || name == ".." || app == "." || app == ".." {
			return nil, fmt.Errorf("stream: store name %q of app %q cannot name a directory", spec.Name, spec.App)
		}
		return openPebble(fs, filepath.Join(dir, app, spec.Task.String(), name))
	}
}

type pebbleStore struct {
	fs   vfs.FS
	dir  string
	db   *pebble.DB
	b    *pebble.Batch // changes since the last Commit; indexed
	kbuf []byte
}

func openPebble(fs vfs.FS, dir string) (*pebbleStore, error) {
	s := &pebbleStore{fs: fs, dir: dir}
	if err := s.open(); err != nil {
		return nil, err
	}
	_, ok, err := s.Checkpoint()
	if err == nil && !ok {
		// Entries without a checkpoint: a spilled batch, then a crash.
		var empty bool
		if empty, err = s.empty(); err == nil && !empty {
			err = s.Wipe()
		}
	}
	if err != nil {
		_ = s.Close()
		return nil, err
	}
	return s, nil
}

func (s *pebbleStore) open() error {
	if err := s.fs.MkdirAll(s.dir, 0o755); err != nil {
		return fmt.Errorf("stream: pebble store %s: %w", s.dir, err)
	}
	db, err := pebble.Open(s.dir, &pebble.Options{FS: s.fs, Logger: quietPebble{}})
	if err != nil {
		return fmt.Errorf("stream: pebble store %s: %w", s.dir, err)
	}
	s.db, s.b = db, db.NewIndexedBatch()
	return nil
}

func (s *pebbleStore) key(k []byte) []byte {
	s.kbuf = append(append(s.kbuf[:0], pebbleDataLower...), k...)
	return s.kbuf
}

func (s *pebbleStore) Get(k []byte) ([]byte, bool, error) {
	v, closer, err := s.b.Get(s.key(k))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	v = append([]byte{}, v...) // an empty value is present, not nil (a tombstone)
	return v, true, closer.Close()
}

func (s *pebbleStore) Set(k, v []byte) error {
	if err := s.b.Set(s.key(k), v, nil); err != nil {
		return err
	}
	return s.maybeSpill()
}

func (s *pebbleStore) Delete(k []byte) error {
	if err := s.b.Delete(s.key(k), nil); err != nil {
		return err
	}
	return s.maybeSpill()
}

// maybeSpill applies a batch grown too large without a checkpoint.
func (s *pebbleStore) maybeSpill() error {
	if s.b.Len() < pebbleSpillBytes {
		return nil
	}
	if err := s.b.Delete(pebbleCheckpointKey, nil); err != nil {
		return err
	}
	return s.apply()
}

func (s *pebbleStore) apply() error {
	err := s.db.Apply(s.b, pebble.NoSync)
	_ = s.b.Close()
	s.b = s.db.NewIndexedBatch()
	return err
}

func (s *pebbleStore) Range(fn func(k, v []byte) error) error {
	it, err := s.b.NewIter(&pebble.IterOptions{LowerBound: pebbleDataLower, UpperBound: pebbleDataUpper})
	if err != nil {
		return err
	}
	for it.First(); it.Valid(); it.Next() {
		v, err := it.ValueAndErr()
		if err == nil {
			err = fn(it.Key()[1:], v)
		}
		if err != nil {
			return errors.Join(err, it.Close())
		}
	}
	return errors.Join(it.Error(), it.Close())
}

func (s *pebbleStore) empty() (bool, error) {
	err := s.Range(func(_, _ []byte) error { return errStop })
	if errors.Is(err, errStop) {
		return false, nil
	}
	return err == nil, err
}

var errStop = errors.New("stop")

func (s *pebbleStore) Checkpoint() (int64, bool, error) {
	v, closer, err := s.db.Get(pebbleCheckpointKey)
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	defer closer.Close()
	if len(v) != 8 {
		return 0, false, fmt.Errorf("stream: pebble store %s: bad checkpoint", s.dir)
	}
	return int64(binary.BigEndian.Uint64(v)), true, nil
}

func (s *pebbleStore) Commit(offset int64) error {
	if err := s.b.Set(pebbleCheckpointKey, binary.BigEndian.AppendUint64(nil, uint64(offset)), nil); err != nil {
		return err
	}
	return s.apply()
}

// Wipe removes the database's directory and starts an empty one.
func (s *pebbleStore) Wipe() error {
	_ = s.b.Close()
	if err := s.db.Close(); err != nil {
		return err
	}
	s.db, s.b = nil, nil
	if err := s.fs.RemoveAll(s.dir); err != nil {
		return fmt.Errorf("stream: wipe pebble store %s: %w", s.dir, err)
	}
	return s.open()
}

// Size reports the bytes the database takes on disk and the changes held
// in memory; the number of entries is unknown (-1): pebble does not count
// keys.
func (s *pebbleStore) Size() (int64, int64) {
	return -1, int64(s.db.Metrics().DiskSpaceUsage()) + int64(s.b.Len())
}

// Close discards the changes since the last Commit and closes the
// database.
func (s *pebbleStore) Close() error {
	if s.db == nil {
		return nil
	}
	_ = s.b.Close()
	err := s.db.Close()
	s.db, s.b = nil, nil
	return err
}

// quietPebble drops pebble's informational logs and keeps its errors.
type quietPebble struct{}

func (quietPebble) Infof(string, ...any) {}
func (quietPebble) Errorf(format string, args ...any) {
	pebble.DefaultLogger.Errorf(format, args...)
}
func (quietPebble) Fatalf(format string, args ...any) {
	pebble.DefaultLogger.Fatalf(format, args...)
}

package stream

import (
	"maps"
	"slices"
)

// Store is one task's key-value state for one stateful operator. The
// engine owns it (one goroutine at a time) and backs it with a compacted
// changelog topic, so a Store needs no durability of its own: the in-memory
// store is the default, and PebbleStore (on disk, a CheckpointStore) plugs
// in through Config.NewStore for state larger than memory. Keys and values
// passed in must not be retained after the call returns unless copied;
// values returned may be read until the next call.
type Store interface {
	Get(key []byte) (value []byte, ok bool, err error)
	Set(key, value []byte) error
	Delete(key []byte) error
	// Range calls fn for every entry, in no particular order, stopping at
	// the first error.
	Range(fn func(key, value []byte) error) error
	Close() error
}

// StoreSpec names the store a NewStore function is asked for.
type StoreSpec struct {
	App  string // the ApplicationID
	Name string // the operator's store name
	Task TaskID
}

// CheckpointStore is a Store that keeps its state across restarts (an
// on-disk store such as PebbleStore's), so a task restores only the
// changelog written after the state it holds (Kafka Streams' .checkpoint
// file). The changelog stays the truth: the runtime calls Commit only once
// the changelog records of the changes are durable (under exactly-once,
// once their transaction has committed), and a store with no checkpoint is
// wiped and restored from the start.
type CheckpointStore interface {
	Store
	// Checkpoint returns the changelog offset the persisted state was
	// built up to (exclusive); ok false when there is none, and then the
	// store is empty.
	Checkpoint() (offset int64, ok bool, err error)
	// Commit persists every change since the last Commit atomically with
	// the checkpoint offset. Changes not committed are not persisted:
	// after a crash or Close they are gone (or, if they were spilled to
	// disk, so is the checkpoint).
	Commit(offset int64) error
	// Wipe empties the store and forgets its checkpoint.
	Wipe() error
}

// StoreSize is implemented by stores that know their size; the runtime
// publishes it as weir_stream_state_entries and weir_stream_state_bytes.
// A negative count means unknown.
type StoreSize interface {
	Size() (entries, bytes int64)
}

// NewMemoryStore returns an empty in-memory Store.
func NewMemoryStore(StoreSpec) (Store, error) { return &memStore{m: map[string][]byte{}}, nil }

type memStore struct {
	m     map[string][]byte
	bytes int64
}

func (s *memStore) Get(k []byte) ([]byte, bool, error) {
	v, ok := s.m[string(k)]
	return v, ok, nil
}

func (s *memStore) Set(k, v []byte) error {
	if old, ok := s.m[string(k)]; ok {
		s.bytes -= int64(len(old))
	} else {
		s.bytes += int64(len(k))
	}
	s.bytes += int64(len(v))
	s.m[string(k)] = slices.Clone(v)
	return nil
}

func (s *memStore) Delete(k []byte) error {
	if old, ok := s.m[string(k)]; ok {
		s.bytes -= int64(len(k) + len(old))
		delete(s.m, string(k))
	}
	return nil
}

// Size: entries, and bytes of keys and values.
func (s *memStore) Size() (int64, int64) { return int64(len(s.m)), s.bytes }

func (s *memStore) Range(fn func(k, v []byte) error) error {
	for k, v := range s.m {
		if err := fn([]byte(k), v); err != nil {
			return err
		}
	}
	return nil
}

func (s *memStore) Close() error { return nil }

// loggedStore records which keys changed since the last commit, so the
// engine writes each changed key once per commit to the changelog (the
// latest value, or a tombstone), not once per update.
type loggedStore struct {
	Store
	changelog string
	dirty     map[string]struct{}
}

func (s *loggedStore) Set(k, v []byte) error {
	s.dirty[string(k)] = struct{}{}
	return s.Store.Set(k, v)
}

func (s *loggedStore) Delete(k []byte) error {
	s.dirty[string(k)] = struct{}{}
	return s.Store.Delete(k)
}

// changes returns the changed keys in order with their values (nil for a
// deleted key) and forgets them.
func (s *loggedStore) changes(fn func(k, v []byte)) error {
	keys := slices.Sorted(maps.Keys(s.dirty))
	clear(s.dirty)
	for _, k := range keys {
		v, ok, err := s.Store.Get([]byte(k))
		if err != nil {
			return err
		}
		if !ok {
			v = nil
		}
		fn([]byte(k), v)
	}
	return nil
}

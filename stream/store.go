package stream

import (
	"maps"
	"slices"
)

// Store is one task's key-value state for one stateful operator. The
// engine owns it (one goroutine at a time) and backs it with a compacted
// changelog topic, so a Store needs no durability of its own: the in-memory
// store is the default, and an on-disk one (pebble) can be plugged in
// through Config.NewStore for state larger than memory. Keys and values
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
	Name string // the operator's store name
	Task TaskID
}

// NewMemoryStore returns an empty in-memory Store.
func NewMemoryStore(StoreSpec) (Store, error) { return &memStore{m: map[string][]byte{}}, nil }

type memStore struct{ m map[string][]byte }

func (s *memStore) Get(k []byte) ([]byte, bool, error) {
	v, ok := s.m[string(k)]
	return v, ok, nil
}

func (s *memStore) Set(k, v []byte) error {
	s.m[string(k)] = slices.Clone(v)
	return nil
}

func (s *memStore) Delete(k []byte) error {
	delete(s.m, string(k))
	return nil
}

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

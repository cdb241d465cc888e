package stream_test

import (
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/weirhq/weir/stream"
)

var spec = stream.StoreSpec{App: "app", Name: "counts", Task: stream.TaskID{Subtopology: 1, Partition: 2}}

// storeKinds are the stores every conformance test runs on.
func storeKinds(t *testing.T) map[string]func(stream.StoreSpec) (stream.Store, error) {
	return map[string]func(stream.StoreSpec) (stream.Store, error){
		"memory":       stream.NewMemoryStore,
		"pebble":       stream.PebbleStore(t.TempDir()),
		"pebble-memfs": stream.PebbleStoreFS("state", vfs.NewMem()),
	}
}

func open(t *testing.T, newStore func(stream.StoreSpec) (stream.Store, error)) stream.Store {
	t.Helper()
	s, err := newStore(spec)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// contents reads a whole store through Range, checking Get agrees.
func contents(t *testing.T, s stream.Store) map[string]string {
	t.Helper()
	m := map[string]string{}
	if err := s.Range(func(k, v []byte) error {
		if _, dup := m[string(k)]; dup {
			return fmt.Errorf("key %q twice", k)
		}
		m[string(k)] = string(v)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for k, want := range m {
		v, ok, err := s.Get([]byte(k))
		if err != nil || !ok || string(v) != want {
			t.Fatalf("Get(%q) = %q, %v, %v; Range says %q", k, v, ok, err, want)
		}
	}
	return m
}

func TestStoreConformance(t *testing.T) {
	for name, newStore := range storeKinds(t) {
		t.Run(name, func(t *testing.T) {
			s := open(t, newStore)
			defer s.Close()
			if _, ok, err := s.Get([]byte("a")); ok || err != nil {
				t.Fatalf("Get on empty store: %v %v", ok, err)
			}
			key := []byte("a")
			must(t, s.Set(key, []byte("1")))
			key[0] = 'z' // the store copied the key
			must(t, s.Set([]byte("b"), []byte("2")))
			must(t, s.Set([]byte("a"), []byte("3")))    // overwrite
			must(t, s.Set([]byte{0, 0xff}, []byte{}))   // binary key, empty value
			must(t, s.Set([]byte("gone"), []byte("x"))) //
			must(t, s.Delete([]byte("gone")))           //
			must(t, s.Delete([]byte("never-there")))    //
			v, ok, err := s.Get([]byte{0, 0xff})
			if err != nil || !ok || v == nil || len(v) != 0 {
				t.Fatalf("empty value: %v %v %v (must be present and non-nil)", v, ok, err)
			}
			want := map[string]string{"a": "3", "b": "2", "\x00\xff": ""}
			if got := contents(t, s); !maps.Equal(got, want) {
				t.Fatalf("contents %q, want %q", got, want)
			}
			stop := errors.New("stop")
			calls := 0
			if err := s.Range(func(_, _ []byte) error { calls++; return stop }); !errors.Is(err, stop) || calls != 1 {
				t.Fatalf("Range with a failing fn: %v after %d calls", err, calls)
			}
			if sz, ok := s.(stream.StoreSize); ok {
				if entries, bytes := sz.Size(); entries != -1 && entries != 3 || bytes <= 0 {
					t.Fatalf("Size = %d entries, %d bytes", entries, bytes)
				}
			}
		})
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func checkpoint(t *testing.T, s stream.Store) (int64, bool) {
	t.Helper()
	off, ok, err := s.(stream.CheckpointStore).Checkpoint()
	must(t, err)
	return off, ok
}

// TestPebbleStoreCheckpoint: committed state and its checkpoint survive a
// reopen; changes not committed do not; Wipe empties.
func TestPebbleStoreCheckpoint(t *testing.T) {
	newStore := stream.PebbleStore(t.TempDir())
	s := open(t, newStore)
	if _, ok := checkpoint(t, s); ok {
		t.Fatal("a new store has a checkpoint")
	}
	must(t, s.Set([]byte("a"), []byte("1")))
	must(t, s.(stream.CheckpointStore).Commit(7))
	must(t, s.Set([]byte("a"), []byte("2"))) // not committed
	must(t, s.Set([]byte("b"), []byte("2")))
	if got := contents(t, s); !maps.Equal(got, map[string]string{"a": "2", "b": "2"}) {
		t.Fatalf("before close: %q", got)
	}
	must(t, s.Close())

	s = open(t, newStore)
	if off, ok := checkpoint(t, s); !ok || off != 7 {
		t.Fatalf("checkpoint %d %v, want 7", off, ok)
	}
	if got := contents(t, s); !maps.Equal(got, map[string]string{"a": "1"}) {
		t.Fatalf("after reopen: %q, want the committed state", got)
	}
	must(t, s.(stream.CheckpointStore).Wipe())
	if _, ok := checkpoint(t, s); ok || len(contents(t, s)) != 0 {
		t.Fatal("Wipe left state")
	}
	must(t, s.Close())
	// Another task's store is another database.
	other := spec
	other.Task.Partition++
	s2, err := newStore(other)
	must(t, err)
	defer s2.Close()
	if _, ok := checkpoint(t, s2); ok {
		t.Fatal("stores share a database")
	}
}

// TestPebbleStoreSpill: changes past the spill size go to disk without a
// checkpoint; closed before the next Commit, the store opens wiped.
func TestPebbleStoreSpill(t *testing.T) {
	defer stream.SetPebbleSpill(1 << 10)()
	newStore := stream.PebbleStore(t.TempDir())
	s := open(t, newStore)
	must(t, s.Set([]byte("committed"), []byte("1")))
	must(t, s.(stream.CheckpointStore).Commit(1))
	for i := range 100 {
		must(t, s.Set(fmt.Appendf(nil, "k%03d", i), make([]byte, 100)))
	}
	if n := len(contents(t, s)); n != 101 {
		t.Fatalf("%d entries before commit", n)
	}
	must(t, s.Close()) // an abort or a crash: no Commit
	s = open(t, newStore)
	if _, ok := checkpoint(t, s); ok || len(contents(t, s)) != 0 {
		t.Fatalf("spilled, uncommitted: want a wiped store, got checkpoint %v and %d entries", ok, len(contents(t, s)))
	}
	for i := range 100 {
		must(t, s.Set(fmt.Appendf(nil, "k%03d", i), make([]byte, 100)))
	}
	must(t, s.(stream.CheckpointStore).Commit(100))
	must(t, s.Close())
	s = open(t, newStore)
	defer s.Close()
	if off, _ := checkpoint(t, s); off != 100 || len(contents(t, s)) != 100 {
		t.Fatalf("spilled then committed: checkpoint %d, %d entries", off, len(contents(t, s)))
	}
}

// TestPebbleStoreCrash: commits of random changes, a crash (unsynced data
// partly lost, no Close) at random points: the reopened store holds
// exactly the state of the checkpoint it reports, or is empty without one.
func TestPebbleStoreCrash(t *testing.T) {
	for _, spill := range []int{64 << 20, 2 << 10} {
		t.Run(fmt.Sprint("spill=", spill), func(t *testing.T) {
			defer stream.SetPebbleSpill(spill)()
			rng := rand.New(rand.NewPCG(uint64(spill), 1))
			fs := vfs.NewCrashableMem()
			s := open(t, stream.PebbleStoreFS("state", fs))
			model := map[string]string{}
			states := map[int64]map[string]string{}
			for commit := int64(1); commit <= 40; commit++ {
				for range rng.IntN(50) {
					k := fmt.Sprintf("k%d", rng.IntN(80))
					if rng.IntN(4) == 0 {
						delete(model, k)
						must(t, s.Delete([]byte(k)))
					} else {
						v := fmt.Sprintf("%d-%0*d", commit, rng.IntN(200), 0)
						model[k] = v
						must(t, s.Set([]byte(k), []byte(v)))
					}
				}
				if rng.IntN(3) > 0 {
					must(t, s.(stream.CheckpointStore).Commit(commit))
					states[commit] = maps.Clone(model)
				}
				if rng.IntN(5) == 0 {
					crashed := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: rng.IntN(101), RNG: rng})
					r := open(t, stream.PebbleStoreFS("state", crashed))
					got := contents(t, r)
					if off, ok := checkpoint(t, r); ok {
						if !maps.Equal(got, states[off]) {
							t.Fatalf("after a crash at commit %d: checkpoint %d with %d entries, want that commit's %d", commit, off, len(got), len(states[off]))
						}
					} else if len(got) != 0 {
						t.Fatalf("after a crash at commit %d: no checkpoint but %d entries", commit, len(got))
					}
					must(t, r.Close())
				}
			}
			must(t, s.Close())
		})
	}
}

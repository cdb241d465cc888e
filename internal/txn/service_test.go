package txn

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// memStore is a Store in memory: Load replays what was appended. hold,
// when set, keeps appended records from becoming durable until closed;
// failNext makes the next appends fail (nothing stored).
type memStore struct {
	mu       sync.Mutex
	recs     []Record
	hold     chan struct{}
	failNext int
	appends  chan []Record // every successful Append, in order
}

func newMemStore() *memStore { return &memStore{appends: make(chan []Record, 1000)} }

func (s *memStore) Append(recs []Record) (func(context.Context) error, error) {
	s.mu.Lock()
	if s.failNext > 0 {
		s.failNext--
		s.mu.Unlock()
		return nil, errors.New("disk full")
	}
	s.recs = append(s.recs, recs...)
	hold := s.hold
	s.mu.Unlock()
	s.appends <- slices.Clone(recs)
	return func(ctx context.Context) error {
		if hold == nil {
			return nil
		}
		select {
		case <-hold:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}, nil
}

func (s *memStore) Load(fn func(Record)) error {
	s.mu.Lock()
	recs := slices.Clone(s.recs)
	s.mu.Unlock()
	for _, r := range recs {
		fn(r)
	}
	return nil
}

func (s *memStore) set(f func(s *memStore)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s)
}

// waitState reads appended batches until one holds id in state.
func (s *memStore) waitState(t *testing.T, id string, state State) Metadata {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case recs := <-s.appends:
			for _, r := range recs {
				if r.TxnID == id && r.Meta != nil && r.Meta.State == state {
					return *r.Meta
				}
			}
		case <-timeout:
			t.Fatalf("%s never persisted in %s", id, state)
		}
	}
}

type counterIDs struct{ n atomic.Int64 }

func (c *counterIDs) InitProducerID() (int64, int16, error) { return 1000 + c.n.Add(1) - 1, 0, nil }

// fakeMarkers reports every call on calls; the first fail calls fail,
// and while block is set a call waits until it is closed.
type fakeMarkers struct {
	mu    sync.Mutex
	fail  int
	block chan struct{}
	calls chan []MarkerWrite
}

func newFakeMarkers() *fakeMarkers { return &fakeMarkers{calls: make(chan []MarkerWrite, 100)} }

func (f *fakeMarkers) WriteMarkers(ctx context.Context, ms []MarkerWrite) []error {
	f.calls <- slices.Clone(ms)
	f.mu.Lock()
	block := f.block
	fail := f.fail > 0
	if fail {
		f.fail--
	}
	f.mu.Unlock()
	if block != nil {
		select {
		case <-block:
		case <-ctx.Done():
		}
	}
	var errs []error
	for _, m := range ms {
		for range m.Partitions {
			if fail {
				errs = append(errs, errors.New("not leader"))
			} else {
				errs = append(errs, ctx.Err())
			}
		}
	}
	return errs
}

func (f *fakeMarkers) next(t *testing.T) []MarkerWrite {
	t.Helper()
	select {
	case ms := <-f.calls:
		return ms
	case <-time.After(10 * time.Second):
		t.Fatal("no markers written")
		return nil
	}
}

// fakeOffsets records the outcomes it is asked to apply.
type fakeOffsets struct{ calls chan []OffsetOutcome }

func (f *fakeOffsets) ResolveOffsets(_ context.Context, os []OffsetOutcome) []error {
	f.calls <- slices.Clone(os)
	return make([]error, len(os))
}

type fakeClock struct{ ns atomic.Int64 }

func newFakeClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	return c
}
func (c *fakeClock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) advance(d time.Duration) { c.ns.Add(int64(d)) }

type svcFixture struct {
	store   *memStore
	markers *fakeMarkers
	offsets *fakeOffsets
	clock   *fakeClock
	ids     *counterIDs
}

func newSvcFixture() *svcFixture {
	return &svcFixture{store: newMemStore(), markers: newFakeMarkers(),
		offsets: &fakeOffsets{calls: make(chan []OffsetOutcome, 100)}, clock: newFakeClock(), ids: &counterIDs{}}
}

func (f *svcFixture) start(t *testing.T) *Service {
	t.Helper()
	s, err := NewService(ServiceOptions{Store: f.store, ProducerIDs: f.ids, Markers: f.markers, Offsets: f.offsets,
		Now: f.clock.now, Tick: time.Millisecond, RetryBackoff: time.Millisecond,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

var bg = context.Background()

// begin gives id a producer and starts a transaction on parts.
func begin(t *testing.T, s *Service, id string, parts ...TopicPartition) (int64, int16) {
	t.Helper()
	pid, epoch, err := s.InitProducerID(bg, InitProducerIDRequest{TxnID: id, Timeout: 10 * time.Second,
		ProducerID: -1, Epoch: -1, Version: 4})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.AddPartitions(bg, AddPartitionsRequest{TxnID: id, ProducerID: pid, Epoch: epoch, Partitions: parts,
		Version: 4}); err != nil {
		t.Fatal(err)
	}
	return pid, epoch
}

func TestServiceCommitAndAbort(t *testing.T) {
	f := newSvcFixture()
	s := f.start(t)
	for _, commit := range []bool{true, false} {
		id := endName(commit)
		pid, epoch := begin(t, s, id, TopicPartition{"a", 0}, TopicPartition{"a", 1})
		if err := s.AddOffsets(bg, AddOffsetsRequest{TxnID: id, ProducerID: pid, Epoch: epoch, Group: "g", Version: 4}); err != nil {
			t.Fatal(err)
		}
		if err := s.EndTxn(bg, EndTxnRequest{TxnID: id, ProducerID: pid, Epoch: epoch, Commit: commit, Version: 4}); err != nil {
			t.Fatal(err)
		}
		ms := f.markers.next(t)
		if len(ms) != 1 || ms[0].Commit != commit || ms[0].ProducerID != pid || len(ms[0].Partitions) != 2 {
			t.Fatalf("markers %+v", ms)
		}
		if os := <-f.offsets.calls; len(os) != 1 || os[0].Group != "g" || os[0].Commit != commit {
			t.Fatalf("offsets %+v", os)
		}
		want := CompleteAbort
		if commit {
			want = CompleteCommit
		}
		f.store.waitState(t, id, want)
		d, err := s.Describe(bg, id)
		if err != nil || d.State != want {
			t.Fatalf("Describe = %+v, %v", d, err)
		}
	}
}

func TestServiceAnswersAfterDurability(t *testing.T) {
	f := newSvcFixture()
	s := f.start(t)
	hold := make(chan struct{})
	f.store.set(func(m *memStore) { m.hold = hold })
	type answer struct {
		pid int64
		err error
	}
	done := make(chan answer, 1)
	go func() {
		pid, _, err := s.InitProducerID(bg, InitProducerIDRequest{TxnID: "t", Timeout: time.Minute, ProducerID: -1, Epoch: -1})
		done <- answer{pid, err}
	}()
	<-f.store.appends // appended, not durable
	select {
	case a := <-done:
		t.Fatalf("answered before durable: %+v", a)
	default:
	}
	close(hold)
	if a := <-done; a.err != nil || a.pid != 1000 {
		t.Fatalf("answer %+v", a)
	}
}

func TestServiceConcurrentWhileMarkersPending(t *testing.T) {
	f := newSvcFixture()
	block := make(chan struct{})
	f.markers.block = block
	s := f.start(t)
	pid, epoch := begin(t, s, "t", TopicPartition{"a", 0})
	if err := s.EndTxn(bg, EndTxnRequest{TxnID: "t", ProducerID: pid, Epoch: epoch, Commit: true, Version: 4}); err != nil {
		t.Fatal(err)
	}
	f.markers.next(t) // under way, blocked
	err := s.AddPartitions(bg, AddPartitionsRequest{TxnID: "t", ProducerID: pid, Epoch: epoch,
		Partitions: []TopicPartition{{"a", 1}}, Version: 4})
	if !errors.Is(err, ErrConcurrentTransactions) {
		t.Fatalf("AddPartitions while markers pending: %v", err)
	}
	close(block)
	f.store.waitState(t, "t", CompleteCommit)
	if err := s.AddPartitions(bg, AddPartitionsRequest{TxnID: "t", ProducerID: pid, Epoch: epoch,
		Partitions: []TopicPartition{{"a", 1}}, Version: 4}); err != nil {
		t.Fatal(err)
	}
}

func TestServiceAppendFailureReloads(t *testing.T) {
	f := newSvcFixture()
	s := f.start(t)
	pid, epoch, err := s.InitProducerID(bg, InitProducerIDRequest{TxnID: "t", Timeout: time.Minute, ProducerID: -1, Epoch: -1})
	if err != nil {
		t.Fatal(err)
	}
	f.store.set(func(m *memStore) { m.failNext = 1 })
	add := AddPartitionsRequest{TxnID: "t", ProducerID: pid, Epoch: epoch, Partitions: []TopicPartition{{"a", 0}}, Version: 4}
	if err := s.AddPartitions(bg, add); !errors.Is(err, ErrCoordinatorNotAvailable) {
		t.Fatalf("AddPartitions with a failing store: %v", err)
	}
	// The reloaded machine lost the change the log lost.
	if d, err := s.Describe(bg, "t"); err != nil || d.State != Empty {
		t.Fatalf("after reload: %+v, %v", d, err)
	}
	if err := s.AddPartitions(bg, add); err != nil {
		t.Fatal(err)
	}
	if d, _ := s.Describe(bg, "t"); d.State != Ongoing || len(d.Partitions) != 1 {
		t.Fatalf("after retry: %+v", d)
	}
}

func TestServiceCloseAnswersWaiting(t *testing.T) {
	f := newSvcFixture()
	s := f.start(t)
	pid, epoch, err := s.InitProducerID(bg, InitProducerIDRequest{TxnID: "t", Timeout: time.Minute, ProducerID: -1, Epoch: -1})
	if err != nil {
		t.Fatal(err)
	}
	<-f.store.appends
	hold := make(chan struct{})
	f.store.set(func(m *memStore) { m.hold = hold })
	errc := make(chan error, 1)
	go func() {
		errc <- s.AddPartitions(bg, AddPartitionsRequest{TxnID: "t", ProducerID: pid, Epoch: epoch,
			Partitions: []TopicPartition{{"a", 0}}, Version: 4})
	}()
	<-f.store.appends // appended, never durable: Close answers
	s.Close()
	if err := <-errc; !errors.Is(err, ErrStopped) {
		t.Fatalf("waiting caller at Close: %v", err)
	}
	if _, _, err := s.InitProducerID(bg, InitProducerIDRequest{TxnID: "u", Timeout: time.Minute, ProducerID: -1, Epoch: -1}); !errors.Is(err, ErrStopped) {
		t.Fatalf("after Close: %v", err)
	}
}

func TestServiceMarkerRetry(t *testing.T) {
	f := newSvcFixture()
	f.markers.fail = 2
	s := f.start(t)
	pid, epoch := begin(t, s, "t", TopicPartition{"a", 0})
	if err := s.EndTxn(bg, EndTxnRequest{TxnID: "t", ProducerID: pid, Epoch: epoch, Commit: true, Version: 4}); err != nil {
		t.Fatal(err)
	}
	f.store.waitState(t, "t", CompleteCommit)
	if n := len(f.markers.calls); n != 3 {
		t.Fatalf("%d marker writes, want 3", n)
	}
}

func TestServiceRestartRedrivesMarkers(t *testing.T) {
	f := newSvcFixture()
	// A coordinator that crashed after persisting PrepareCommit.
	m := NewMachine(Config{}, f.ids)
	now := f.clock.now()
	var recs []Record
	r := m.InitProducerID(now, InitProducerIDRequest{TxnID: "t", Timeout: time.Minute, ProducerID: -1, Epoch: -1})
	recs = append(recs, r.Persist...)
	recs = append(recs, m.AddPartitions(now, AddPartitionsRequest{TxnID: "t", ProducerID: r.ProducerID, Epoch: r.Epoch,
		Partitions: []TopicPartition{{"a", 0}}}).Persist...)
	recs = append(recs, m.EndTxn(now, EndTxnRequest{TxnID: "t", ProducerID: r.ProducerID, Epoch: r.Epoch, Commit: true}).Persist...)
	f.store.recs = recs

	s := f.start(t)
	ms := f.markers.next(t)
	if len(ms) != 1 || !ms[0].Commit || ms[0].ProducerID != r.ProducerID {
		t.Fatalf("re-driven markers %+v", ms)
	}
	f.store.waitState(t, "t", CompleteCommit)
	if d, err := s.Describe(bg, "t"); err != nil || d.State != CompleteCommit {
		t.Fatalf("after restart: %+v, %v", d, err)
	}
}

func TestServiceTimeoutAborts(t *testing.T) {
	f := newSvcFixture()
	s := f.start(t)
	pid, epoch := begin(t, s, "t", TopicPartition{"a", 0})
	f.clock.advance(11 * time.Second) // past the 10s timeout; the next tick aborts
	ms := f.markers.next(t)
	if len(ms) != 1 || ms[0].Commit || ms[0].ProducerID != pid || ms[0].Epoch != epoch+1 {
		t.Fatalf("timeout markers %+v", ms)
	}
	md := f.store.waitState(t, "t", CompleteAbort)
	if md.Epoch != epoch+1 {
		t.Fatalf("completed abort %+v", md)
	}
	// The old producer is fenced.
	err := s.AddPartitions(bg, AddPartitionsRequest{TxnID: "t", ProducerID: pid, Epoch: epoch,
		Partitions: []TopicPartition{{"a", 0}}, Version: 4})
	if !errors.Is(err, ErrProducerFenced) {
		t.Fatalf("fenced producer: %v", err)
	}
}

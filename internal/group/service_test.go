package group

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// memStore is a Store in memory. Each Append is handed to the test as a
// batch whose wait blocks until the test releases it (unless the store is
// auto-durable), so tests decide when records become durable.
type memStore struct {
	stored      []Record // what Load replays
	loadErr     error
	autoDurable atomic.Bool

	batches chan *batch // every Append, in order

	mu       sync.Mutex
	appended []Record
}

type batch struct {
	recs    []Record
	durable chan struct{} // closed by the test
}

func newMemStore(stored ...Record) *memStore {
	return &memStore{stored: stored, batches: make(chan *batch, 1000)}
}

func (s *memStore) Append(recs []Record) (func(context.Context) error, error) {
	b := &batch{recs: slices.Clone(recs), durable: make(chan struct{})}
	if s.autoDurable.Load() {
		close(b.durable)
	}
	s.mu.Lock()
	s.appended = append(s.appended, recs...)
	s.mu.Unlock()
	s.batches <- b
	return func(ctx context.Context) error {
		select {
		case <-b.durable:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}, nil
}

func (s *memStore) Load(fn func(Record)) error {
	if s.loadErr != nil {
		return s.loadErr
	}
	for _, r := range s.stored {
		fn(r)
	}
	return nil
}

func (s *memStore) records() []Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.appended)
}

// next returns the next appended batch; call it once the service is idle
// (after synctest.Wait).
func (s *memStore) next(t *testing.T) *batch {
	t.Helper()
	select {
	case b := <-s.batches:
		return b
	default:
		t.Fatal("nothing appended")
		return nil
	}
}

func (s *memStore) none(t *testing.T) {
	t.Helper()
	select {
	case b := <-s.batches:
		t.Fatalf("unexpected append of %d records: %+v", len(b.recs), b.recs)
	default:
	}
}

func newTestService(t *testing.T, store Store) *Service {
	t.Helper()
	n := 0
	svc, err := NewService(ServiceOptions{
		Config: Config{},
		Store:  store,
		NewMemberID: func(clientID string) string {
			n++ // only the loop goroutine calls it
			return clientID + "-" + strconv.Itoa(n)
		},
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

func joinReq(group, client string) JoinRequest {
	return JoinRequest{Group: group, ClientID: client, ProtocolType: "consumer",
		Protocols:      []Protocol{{Name: "range", Metadata: []byte(client)}},
		SessionTimeout: 10 * time.Second, RebalanceTimeout: 30 * time.Second}
}

// stableGroup makes group a Stable group whose only member is the returned
// id at generation 1.
func stableGroup(t *testing.T, svc *Service, group, client string) string {
	t.Helper()
	j := <-svc.Join(joinReq(group, client))
	if j.Err != nil || j.Generation != 1 {
		t.Fatalf("join: %+v", j)
	}
	s := <-svc.Sync(SyncRequest{Group: group, Generation: 1, MemberID: j.MemberID,
		Assignments: map[string][]byte{j.MemberID: []byte("all")}})
	if s.Err != nil {
		t.Fatalf("sync: %+v", s)
	}
	return j.MemberID
}

type commitResult struct {
	errs []error
	err  error
}

func commitAsync(ctx context.Context, svc *Service, req CommitRequest) <-chan commitResult {
	ch := make(chan commitResult, 1)
	go func() {
		errs, err := svc.Commit(ctx, req)
		ch <- commitResult{errs, err}
	}()
	return ch
}

func simpleCommit(group string, offset int64) CommitRequest {
	return CommitRequest{Group: group, Generation: -1,
		Offsets: []OffsetCommit{{TopicPartition: TopicPartition{Topic: "t", Partition: 0}, Offset: Offset{Offset: offset}}}}
}

func TestServiceCommitWaitsForDurability(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := newMemStore()
		svc := newTestService(t, store)
		defer svc.Close()

		res := commitAsync(t.Context(), svc, simpleCommit("g", 5))
		synctest.Wait()
		b := store.next(t)
		if len(b.recs) != 1 || !b.recs[0].IsOffset || b.recs[0].Offset.Offset != 5 {
			t.Fatalf("appended %+v, want the offset t/0=5", b.recs)
		}
		select {
		case r := <-res:
			t.Fatalf("Commit returned %+v before its records were durable", r)
		default:
		}

		close(b.durable)
		r := <-res
		if r.err != nil || len(r.errs) != 1 || r.errs[0] != nil {
			t.Fatalf("commit: %+v", r)
		}
		offs, err := svc.Committed(t.Context(), "g", nil)
		if err != nil || offs[TopicPartition{"t", 0}].Offset != 5 {
			t.Fatalf("committed: %v %v", offs, err)
		}
	})
}

func TestServiceCommitRefusedWritesNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := newMemStore()
		svc := newTestService(t, store)
		defer svc.Close()

		_, err := svc.Commit(t.Context(), CommitRequest{Group: "g", Generation: 3, MemberID: "m",
			Offsets: []OffsetCommit{{TopicPartition: TopicPartition{"t", 0}}}})
		if !errors.Is(err, ErrIllegalGeneration) {
			t.Fatalf("commit to an unknown group with a generation: %v, want ErrIllegalGeneration", err)
		}
		synctest.Wait()
		store.none(t)
	})
}

func TestServiceDeleteWaitsForDurability(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := newMemStore()
		store.autoDurable.Store(true)
		svc := newTestService(t, store)
		defer svc.Close()
		if r := <-commitAsync(t.Context(), svc, simpleCommit("g", 5)); r.err != nil {
			t.Fatal(r.err)
		}
		store.next(t)
		store.autoDurable.Store(false)

		res := make(chan error, 1)
		go func() {
			errs, err := svc.Delete(t.Context(), []string{"g", "unknown"})
			if err == nil && (errs[0] != nil || !errors.Is(errs[1], ErrGroupNotFound)) {
				err = errors.Join(errs...)
			}
			res <- err
		}()
		synctest.Wait()
		b := store.next(t)
		if len(b.recs) != 2 || b.recs[0].Offset != nil || b.recs[1].Meta != nil || b.recs[1].IsOffset {
			t.Fatalf("appended %+v, want an offset and a group tombstone", b.recs)
		}
		select {
		case err := <-res:
			t.Fatalf("Delete returned (%v) before its tombstones were durable", err)
		default:
		}
		close(b.durable)
		if err := <-res; err != nil {
			t.Fatal(err)
		}
	})
}

func TestServiceCommitContextCanceled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := newMemStore()
		svc := newTestService(t, store)
		defer svc.Close()

		ctx, cancel := context.WithCancel(t.Context())
		res := commitAsync(ctx, svc, simpleCommit("g", 5))
		synctest.Wait()
		store.next(t)
		cancel()
		if r := <-res; !errors.Is(r.err, context.Canceled) {
			t.Fatalf("commit: %+v, want context.Canceled", r)
		}
		// The service goes on.
		if _, err := svc.List(t.Context(), nil); err != nil {
			t.Fatal(err)
		}
	})
}

func TestServiceRestoresFromStore(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := newMemStore()
		store.autoDurable.Store(true)
		svc := newTestService(t, store)
		member := stableGroup(t, svc, "g", "c1")
		commit := CommitRequest{Group: "g", Generation: 1, MemberID: member,
			Offsets: []OffsetCommit{{TopicPartition: TopicPartition{"t", 0}, Offset: Offset{Offset: 42, Metadata: "m"}}}}
		if _, err := svc.Commit(t.Context(), commit); err != nil {
			t.Fatal(err)
		}
		if r := <-commitAsync(t.Context(), svc, simpleCommit("simple", 7)); r.err != nil {
			t.Fatal(r.err)
		}
		svc.Close()

		// A new coordinator loads what the first one stored.
		svc = newTestService(t, newMemStore(store.records()...))
		defer svc.Close()
		descs, err := svc.Describe(t.Context(), []string{"g", "simple", "unknown"})
		if err != nil {
			t.Fatal(err)
		}
		if d := descs[0]; d.State != Stable || d.Generation != 1 || d.Protocol != "range" || len(d.Members) != 1 ||
			d.Members[0].MemberID != member || string(d.Members[0].Assignment) != "all" {
			t.Fatalf("restored group: %+v", d)
		}
		if descs[1].State != Empty || descs[2].State != Dead {
			t.Fatalf("restored states: %v %v, want Empty Dead", descs[1].State, descs[2].State)
		}
		if err := svc.Heartbeat(t.Context(), HeartbeatRequest{Group: "g", Generation: 1, MemberID: member}); err != nil {
			t.Fatalf("heartbeat of a restored member: %v", err)
		}
		offs, err := svc.Committed(t.Context(), "g", nil)
		if o := offs[TopicPartition{"t", 0}]; err != nil || len(offs) != 1 || o.Offset != 42 || o.Metadata != "m" {
			t.Fatalf("restored offsets: %v %v", offs, err)
		}
		if offs, _ := svc.Committed(t.Context(), "simple", nil); offs[TopicPartition{"t", 0}].Offset != 7 {
			t.Fatalf("restored simple offsets: %v", offs)
		}
	})
}

func TestServiceLoadError(t *testing.T) {
	store := newMemStore()
	store.loadErr = errors.New("disk on fire")
	if _, err := NewService(ServiceOptions{Store: store}); !errors.Is(err, store.loadErr) {
		t.Fatalf("NewService: %v, want the load error", err)
	}
}

func TestServiceExpiresSessions(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := newMemStore()
		store.autoDurable.Store(true)
		svc := newTestService(t, store)
		defer svc.Close()
		member := stableGroup(t, svc, "g", "c1")

		// The loop's timer expires sessions on the bubble's fake clock;
		// heartbeats keep the member.
		for range 3 {
			time.Sleep(8 * time.Second)
			if err := svc.Heartbeat(t.Context(), HeartbeatRequest{Group: "g", Generation: 1, MemberID: member}); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(11 * time.Second)
		synctest.Wait()
		descs, err := svc.Describe(t.Context(), []string{"g"})
		if err != nil || descs[0].State != Empty || descs[0].Generation != 2 {
			t.Fatalf("after the session timeout: %+v %v, want Empty at generation 2", descs, err)
		}
		recs := store.records()
		if last := recs[len(recs)-1]; last.Meta == nil || len(last.Meta.Members) != 0 || last.Meta.Generation != 2 {
			t.Fatalf("last record %+v, want the Empty group's metadata", last)
		}
	})
}

func TestServiceCloseUnblocksWaiters(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := newMemStore()
		store.autoDurable.Store(true)
		svc := newTestService(t, store)

		// A JoinGroup waiting for the rebalance: c1 does not rejoin.
		stableGroup(t, svc, "g", "c1")
		join := svc.Join(joinReq("g", "c2"))

		// A SyncGroup waiting for the leader's assignment.
		leader := stableGroup(t, svc, "h", "c3")
		follower := svc.Join(joinReq("h", "c4"))
		lj := <-svc.Join(JoinRequest{Group: "h", MemberID: leader, ClientID: "c3", ProtocolType: "consumer",
			Protocols: []Protocol{{Name: "range", Metadata: []byte("c3")}}, SessionTimeout: 10 * time.Second})
		fj := <-follower
		if lj.Err != nil || fj.Err != nil || fj.Generation != 2 {
			t.Fatalf("joins: %+v %+v", lj, fj)
		}
		sync := svc.Sync(SyncRequest{Group: "h", Generation: 2, MemberID: fj.MemberID})

		// A commit waiting for durability.
		synctest.Wait()
		for len(store.batches) > 0 {
			<-store.batches
		}
		store.autoDurable.Store(false)
		commit := commitAsync(t.Context(), svc, simpleCommit("s", 1))

		synctest.Wait()
		store.next(t) // appended, never made durable
		select {
		case r := <-join:
			t.Fatalf("join answered early: %+v", r)
		case r := <-sync:
			t.Fatalf("sync answered early: %+v", r)
		case r := <-commit:
			t.Fatalf("commit answered early: %+v", r)
		default:
		}

		svc.Close()
		if r := <-join; !errors.Is(r.Err, ErrStopped) {
			t.Errorf("waiting join after Close: %+v, want ErrStopped", r)
		}
		if r := <-sync; !errors.Is(r.Err, ErrStopped) {
			t.Errorf("waiting sync after Close: %+v, want ErrStopped", r)
		}
		if r := <-commit; !errors.Is(r.err, ErrStopped) {
			t.Errorf("commit waiting for durability after Close: %+v, want ErrStopped", r)
		}

		// Requests after Close fail at once.
		if r := <-svc.Join(joinReq("g", "c5")); !errors.Is(r.Err, ErrStopped) {
			t.Errorf("join after Close: %+v", r)
		}
		if r := <-svc.Sync(SyncRequest{Group: "g", MemberID: "x"}); !errors.Is(r.Err, ErrStopped) {
			t.Errorf("sync after Close: %+v", r)
		}
		if err := svc.Heartbeat(t.Context(), HeartbeatRequest{Group: "g"}); !errors.Is(err, ErrStopped) {
			t.Errorf("heartbeat after Close: %v", err)
		}
		if _, err := svc.Commit(t.Context(), simpleCommit("s", 2)); !errors.Is(err, ErrStopped) {
			t.Errorf("commit after Close: %v", err)
		}
		if _, err := svc.List(t.Context(), nil); !errors.Is(err, ErrStopped) {
			t.Errorf("list after Close: %v", err)
		}
		svc.Close() // idempotent
	})
}

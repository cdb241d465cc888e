package group

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"sync"
	"time"
)

// Store persists coordinator records durably. It is declared here and
// implemented on the broker's __consumer_offsets topic by the adapter.
type Store interface {
	// Append writes records in order and returns a function that blocks
	// until they are durable (or ctx ends).
	Append(recs []Record) (wait func(ctx context.Context) error, err error)
	// Load replays every stored record in order.
	Load(fn func(Record)) error
}

// ServiceOptions configure a Service.
type ServiceOptions struct {
	Config Config
	Store  Store
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Tick is how often timers are checked; default 100ms.
	Tick time.Duration
	// NewMemberID makes member ids; default clientID + "-" + random hex.
	NewMemberID func(clientID string) string
	Logger      *slog.Logger
}

// Service runs a Machine on one goroutine.
type Service struct {
	opts    ServiceOptions
	m       *Machine
	events  chan func(now time.Time)
	stop    chan struct{}
	stopped chan struct{}
	// ctx ends at Close; it cuts short waits for durability.
	ctx    context.Context
	cancel context.CancelFunc

	// mu guards waiting: the replies of JoinGroup and SyncGroup calls not
	// answered yet, which Close answers with ErrStopped.
	mu      sync.Mutex
	closed  bool
	waiting map[any]func()
}

// ErrStopped is returned for requests after Close.
var ErrStopped = errors.New("group: coordinator stopped")

// NewService loads the stored records and starts the coordinator loop.
func NewService(opts ServiceOptions) (*Service, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Tick <= 0 {
		opts.Tick = 100 * time.Millisecond
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.NewMemberID == nil {
		opts.NewMemberID = func(clientID string) string {
			var b [16]byte
			_, _ = rand.Read(b[:])
			if clientID == "" {
				clientID = "member"
			}
			return clientID + "-" + hex.EncodeToString(b[:])
		}
	}
	s := &Service{opts: opts, events: make(chan func(time.Time), 1024), stop: make(chan struct{}), stopped: make(chan struct{}),
		waiting: map[any]func(){}}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.m = NewMachine(opts.Config, opts.NewMemberID, s.persistAsync)
	if opts.Store != nil {
		now := opts.Now()
		n := 0
		if err := opts.Store.Load(func(r Record) { s.m.Restore(now, r); n++ }); err != nil {
			s.cancel()
			return nil, err
		}
		opts.Logger.Info("group: coordinator loaded", "records", n, "groups", len(s.m.groups))
	}
	go s.loop()
	return s, nil
}

// persistAsync writes group metadata; its durability gates no reply.
func (s *Service) persistAsync(recs []Record) {
	if s.opts.Store == nil {
		return
	}
	if _, err := s.opts.Store.Append(recs); err != nil {
		s.opts.Logger.Warn("group: persisting group metadata", "err", err)
	}
}

func (s *Service) loop() {
	defer close(s.stopped)
	t := time.NewTicker(s.opts.Tick)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case f := <-s.events:
			f(s.opts.Now())
		case <-t.C:
			s.m.Tick(s.opts.Now())
		}
	}
}

// Close stops the loop. Callers still waiting for a JoinGroup or
// SyncGroup reply, a result or durability get ErrStopped. Close is not
// safe to call concurrently with itself.
func (s *Service) Close() {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	<-s.stopped
	s.cancel()
	s.mu.Lock()
	s.closed = true
	waiting := s.waiting
	s.waiting = nil
	s.mu.Unlock()
	for _, stopped := range waiting {
		stopped()
	}
}

// await registers the ErrStopped reply for a Join or Sync caller keyed by
// its channel; false if the service is closed.
func (s *Service) await(key any, stopped func()) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.waiting[key] = stopped
	return true
}

// answered deregisters key; false if Close has answered it already. It
// makes sure each caller gets exactly one reply.
func (s *Service) answered(key any) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.waiting[key]; !ok {
		return false
	}
	delete(s.waiting, key)
	return true
}

// post runs f on the loop; false if the service is stopped.
func (s *Service) post(f func(now time.Time)) bool {
	select {
	case s.events <- f:
		return true
	case <-s.stop:
		return false
	}
}

// Join posts a JoinGroup; the channel yields once the rebalance allows,
// or ErrStopped at Close.
func (s *Service) Join(req JoinRequest) <-chan JoinResponse {
	ch := make(chan JoinResponse, 1)
	stopped := func() { ch <- JoinResponse{Err: ErrStopped, MemberID: req.MemberID, Generation: -1} }
	if !s.await(ch, stopped) {
		stopped()
		return ch
	}
	reply := func(r JoinResponse) {
		if s.answered(ch) {
			ch <- r
		}
	}
	if !s.post(func(now time.Time) { s.m.Join(now, req, reply) }) && s.answered(ch) {
		stopped()
	}
	return ch
}

// Sync posts a SyncGroup; the channel yields once the leader assigned, or
// ErrStopped at Close.
func (s *Service) Sync(req SyncRequest) <-chan SyncResponse {
	ch := make(chan SyncResponse, 1)
	stopped := func() { ch <- SyncResponse{Err: ErrStopped} }
	if !s.await(ch, stopped) {
		stopped()
		return ch
	}
	reply := func(r SyncResponse) {
		if s.answered(ch) {
			ch <- r
		}
	}
	if !s.post(func(now time.Time) { s.m.Sync(now, req, reply) }) && s.answered(ch) {
		stopped()
	}
	return ch
}

// durable waits for appended records to be durable; Close cuts the wait
// short with ErrStopped.
func (s *Service) durable(ctx context.Context, wait func(context.Context) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	defer context.AfterFunc(s.ctx, func() { cancel(ErrStopped) })()
	err := wait(ctx)
	if err != nil && errors.Is(context.Cause(ctx), ErrStopped) {
		return ErrStopped
	}
	return err
}

// call runs f on the loop and waits for it.
func call[T any](s *Service, ctx context.Context, f func(now time.Time) T) (T, error) {
	ch := make(chan T, 1)
	var zero T
	if !s.post(func(now time.Time) { ch <- f(now) }) {
		return zero, ErrStopped
	}
	select {
	case v := <-ch:
		return v, nil
	case <-ctx.Done():
		return zero, ctx.Err()
	case <-s.stopped:
		return zero, ErrStopped
	}
}

// Heartbeat handles a Heartbeat.
func (s *Service) Heartbeat(ctx context.Context, req HeartbeatRequest) error {
	err, cerr := call(s, ctx, func(now time.Time) error { return s.m.Heartbeat(now, req) })
	if cerr != nil {
		return cerr
	}
	return err
}

// Leave handles a LeaveGroup; one error per member.
func (s *Service) Leave(ctx context.Context, groupID string, members []LeaveMember) ([]error, error) {
	type res struct {
		errs []error
		err  error
	}
	r, err := call(s, ctx, func(now time.Time) res {
		e, err := s.m.Leave(now, groupID, members)
		return res{e, err}
	})
	if err != nil {
		return nil, err
	}
	return r.errs, r.err
}

// Commit applies an OffsetCommit and returns once it is durable. errs
// holds one entry per offset.
func (s *Service) Commit(ctx context.Context, req CommitRequest) ([]error, error) {
	return s.StartCommit(ctx, req)(ctx)
}

// Committed returns committed offsets (all of the group's when tps is nil).
func (s *Service) Committed(ctx context.Context, groupID string, tps []TopicPartition) (map[TopicPartition]Offset, error) {
	return call(s, ctx, func(time.Time) map[TopicPartition]Offset { return s.m.Committed(groupID, tps) })
}

// Describe describes groups; unknown ones come back with State Dead.
func (s *Service) Describe(ctx context.Context, groupIDs []string) ([]Description, error) {
	return call(s, ctx, func(time.Time) []Description {
		out := make([]Description, len(groupIDs))
		for i, id := range groupIDs {
			out[i], _ = s.m.Describe(id)
		}
		return out
	})
}

// List lists groups, optionally filtered by state.
func (s *Service) List(ctx context.Context, states []State) ([]Listing, error) {
	return call(s, ctx, func(time.Time) []Listing { return s.m.List(states) })
}

// Delete deletes empty groups; one error per group.
func (s *Service) Delete(ctx context.Context, groupIDs []string) ([]error, error) {
	type res struct {
		errs []error
		wait func(context.Context) error
	}
	r, err := call(s, ctx, func(time.Time) res {
		errs := make([]error, len(groupIDs))
		var all []Record
		for i, id := range groupIDs {
			recs, err := s.m.Delete(id)
			errs[i] = err
			all = append(all, recs...)
		}
		if len(all) == 0 || s.opts.Store == nil {
			return res{errs: errs}
		}
		wait, err := s.opts.Store.Append(all)
		if err != nil {
			for i := range errs {
				if errs[i] == nil {
					errs[i] = err
				}
			}
		}
		return res{errs: errs, wait: wait}
	})
	if err != nil {
		return nil, err
	}
	if r.wait != nil {
		if err := s.durable(ctx, r.wait); err != nil {
			return nil, err
		}
	}
	return r.errs, nil
}

// DeleteOffsets deletes committed offsets (OffsetDelete).
func (s *Service) DeleteOffsets(ctx context.Context, groupID string, tps []TopicPartition, subscribed func(topic string) bool) ([]error, error) {
	return s.persistThen(ctx, func(time.Time) ([]error, []Record, error) {
		return s.m.DeleteOffsets(groupID, tps, subscribed)
	})(ctx)
}

package txn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/weirhq/weir/internal/metrics"
)

// Markers writes transaction markers to the partitions' leaders. It is
// declared here and implemented over the broker's WriteTxnMarkers by the
// Kafka adapter (kafka.TxnMarkers).
type Markers interface {
	// WriteMarkers writes every marker to every partition it names and
	// returns once they are durable (or ctx ends), with one error per
	// marker and partition, in order: nil once that marker is durable.
	WriteMarkers(ctx context.Context, markers []MarkerWrite) []error
}

// Offsets makes consumer groups' pending transactional offsets visible
// (commit) or drops them (abort). It is declared here and implemented
// over the group coordinator by the Kafka adapter (kafka.TxnOffsets).
type Offsets interface {
	// ResolveOffsets applies the outcomes and returns once they are
	// durable, with one error per outcome, in order.
	ResolveOffsets(ctx context.Context, outcomes []OffsetOutcome) []error
}

// Errors of the Service.
var (
	// ErrStopped is returned for requests after Close, and to callers
	// Close found waiting.
	ErrStopped = errors.New("txn: coordinator stopped")
	// ErrCoordinatorNotAvailable: COORDINATOR_NOT_AVAILABLE, retriable.
	// The coordinator's log failed; it is reloading its state from the
	// Store.
	ErrCoordinatorNotAvailable = errors.New("txn: coordinator not available")
)

// Service defaults.
const (
	DefaultTick            = 100 * time.Millisecond
	DefaultRetryBackoff    = 50 * time.Millisecond
	DefaultMaxRetryBackoff = 5 * time.Second
)

// ServiceOptions configure a Service. Store, ProducerIDs and Markers are
// required.
type ServiceOptions struct {
	Config      Config
	Store       Store
	ProducerIDs ProducerIDs
	Markers     Markers
	// Offsets resolves the transactions' consumer-group offsets; nil
	// drops the outcomes with a warning.
	Offsets Offsets
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Tick is how often deadlines are checked; default DefaultTick.
	Tick time.Duration
	// RetryBackoff is the first wait before writing failed markers (or
	// offsets) again, doubling up to MaxRetryBackoff. Retries go on until
	// they succeed, the coordinator reloads or Close.
	RetryBackoff    time.Duration
	MaxRetryBackoff time.Duration
	// SettleWait bounds EndTxn's wait for its markers; default
	// DefaultSettleWait.
	SettleWait time.Duration
	Logger     *slog.Logger
	// Metrics receives the transaction outcomes and open transactions
	// (metrics.go); nil records into unregistered metrics.
	Metrics *metrics.Registry
}

// Service runs a Machine on one goroutine: requests are posted to it as
// closures with the current time, a ticker applies deadlines, and helper
// goroutines wait for durability, answer callers and write markers. See
// the package doc for its contract.
type Service struct {
	opts    ServiceOptions
	metrics *serviceMetrics

	// Owned by the loop goroutine (and NewService before it starts).
	m      *Machine
	gen    uint64 // bumped by every reload; stale completions are dropped
	genCtx context.Context
	genEnd context.CancelFunc
	broken bool // the last reload failed: refuse requests, retry on tick

	// failed is gen+1 of a generation whose records could not be made
	// durable: the loop reloads before its next input.
	failed atomic.Uint64

	events    chan func(now time.Time)
	stop      chan struct{}
	stopped   chan struct{}
	closeOnce sync.Once
	// ctx ends at Close; it cuts short durability waits and retries.
	ctx    context.Context
	cancel context.CancelFunc
	// helpers counts the goroutines that wait for durability and write
	// markers; Close waits for them.
	helpers sync.WaitGroup
	// settled releases EndTxn callers when their markers are written.
	settled settled
}

// NewService loads the Store into a Machine, starts re-driving the
// markers of transactions that were prepared but not completed, and
// starts the coordinator loop.
func NewService(opts ServiceOptions) (*Service, error) {
	switch {
	case opts.Store == nil:
		return nil, errors.New("txn: ServiceOptions.Store is nil")
	case opts.ProducerIDs == nil:
		return nil, errors.New("txn: ServiceOptions.ProducerIDs is nil")
	case opts.Markers == nil:
		return nil, errors.New("txn: ServiceOptions.Markers is nil")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Tick <= 0 {
		opts.Tick = DefaultTick
	}
	if opts.RetryBackoff <= 0 {
		opts.RetryBackoff = DefaultRetryBackoff
	}
	if opts.MaxRetryBackoff < opts.RetryBackoff {
		opts.MaxRetryBackoff = max(DefaultMaxRetryBackoff, opts.RetryBackoff)
	}
	if opts.SettleWait <= 0 {
		opts.SettleWait = DefaultSettleWait
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	s := &Service{opts: opts, metrics: newServiceMetrics(opts.Metrics), events: make(chan func(time.Time), 1024),
		stop: make(chan struct{}), stopped: make(chan struct{})}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.genCtx, s.genEnd = context.WithCancel(s.ctx)
	if err := s.load(); err != nil {
		s.cancel()
		s.helpers.Wait()
		return nil, err
	}
	go s.loop()
	return s, nil
}

// load replaces the machine with one loaded from the Store and re-drives
// the completion of its prepared transactions.
func (s *Service) load() error {
	var recs []Record
	if err := s.opts.Store.Load(func(r Record) { recs = append(recs, r) }); err != nil {
		return fmt.Errorf("txn: loading the coordinator's state: %w", err)
	}
	m := NewMachine(s.opts.Config, s.opts.ProducerIDs)
	a := m.Load(recs)
	s.m = m
	s.opts.Logger.Info("txn: coordinator loaded", "records", len(recs), "redriven", len(a.Markers)+len(a.Offsets))
	s.complete(a)
	return nil
}

// reload drops the machine (crash-only): the completions of the old one
// stop, and a new one is loaded from the Store.
func (s *Service) reload() {
	s.genEnd()
	s.gen++
	s.genCtx, s.genEnd = context.WithCancel(s.ctx)
	if err := s.load(); err != nil {
		s.broken = true
		s.opts.Logger.Error("txn: coordinator reload failed; retrying", "err", err)
		return
	}
	s.broken = false
}

// ready reloads the machine if its log failed; false while no machine
// could be loaded.
func (s *Service) ready() bool {
	if s.broken || s.failed.Load() == s.gen+1 {
		s.reload()
	}
	return !s.broken
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
			if s.ready() {
				now := s.opts.Now()
				a := s.m.Tick(now)
				s.metrics.observe(now, s.m)
				s.carry(a, s.counted(a.Persist, outcomeTimedOut, s.logFailure("tick")))
			}
		}
	}
}

// Close stops the loop and the helpers; callers still waiting get
// ErrStopped. Completions under way stop and are re-driven by the next
// Service loaded from the Store.
func (s *Service) Close() {
	s.closeOnce.Do(func() { close(s.stop) })
	<-s.stopped
	s.cancel()
	s.helpers.Wait()
}

// post runs f on the loop; false once the service is stopped.
func (s *Service) post(f func(now time.Time)) bool {
	select {
	case <-s.stop:
		return false
	default:
	}
	select {
	case s.events <- f:
		return true
	case <-s.stop:
		return false
	}
}

func (s *Service) logFailure(what string) func(error) {
	return func(err error) {
		if err != nil && !errors.Is(err, ErrStopped) {
			s.opts.Logger.Warn("txn: persisting", "input", what, "err", err)
		}
	}
}

// counted wraps answer to count the transactions recs decide (abort names
// why an abort happened) once they are durable.
func (s *Service) counted(recs []Record, abort string, answer func(error)) func(error) {
	return func(err error) {
		if err == nil {
			s.metrics.decided(recs, abort)
		}
		answer(err)
	}
}

// carry persists a's records and, once they are durable, calls answer and
// completes the transactions a prepared. It runs on the loop; the append
// happens here, so records reach the Store in the machine's order. If the
// append fails the machine is dropped and reloaded at once.
func (s *Service) carry(a Actions, answer func(error)) {
	if len(a.Persist) == 0 {
		answer(nil)
		s.complete(a)
		return
	}
	wait, err := s.opts.Store.Append(a.Persist)
	if err != nil {
		answer(fmt.Errorf("%w: %w", ErrCoordinatorNotAvailable, err))
		s.reload()
		return
	}
	gen, gctx := s.gen, s.genCtx
	s.helpers.Add(1)
	go func() {
		defer s.helpers.Done()
		if err := s.durable(wait); err != nil {
			if errors.Is(err, ErrStopped) {
				answer(ErrStopped)
				return
			}
			answer(fmt.Errorf("%w: %w", ErrCoordinatorNotAvailable, err))
			s.failed.Store(gen + 1)
			s.post(func(time.Time) { s.ready() })
			return
		}
		answer(nil)
		s.completeIn(gctx, gen, a)
	}()
}

// durable waits for appended records; Close cuts the wait short with
// ErrStopped.
func (s *Service) durable(wait func(context.Context) error) error {
	err := wait(s.ctx)
	if err != nil && s.ctx.Err() != nil {
		return ErrStopped
	}
	return err
}

// complete starts the completion of every transaction in a's markers and
// offsets for the current generation; it runs on the loop.
func (s *Service) complete(a Actions) { s.completeIn(s.genCtx, s.gen, a) }

// ending is one prepared transaction to complete.
type ending struct {
	txnID   string
	pid     int64
	epoch   int16
	markers []MarkerWrite
	offsets []OffsetOutcome
}

// completeIn starts one goroutine per transaction in a: it writes the
// markers and offsets (retrying), then reports MarkersWritten to the
// loop, which persists the completion. A reload ends ctx and makes gen
// stale; the new machine re-drives what was not completed.
func (s *Service) completeIn(ctx context.Context, gen uint64, a Actions) {
	var ends []*ending
	byID := map[string]*ending{}
	get := func(id string, pid int64, epoch int16) *ending {
		e := byID[id]
		if e == nil {
			e = &ending{txnID: id, pid: pid, epoch: epoch}
			byID[id] = e
			ends = append(ends, e)
		}
		return e
	}
	for _, m := range a.Markers {
		e := get(m.TxnID, m.ProducerID, m.Epoch)
		e.markers = append(e.markers, m)
	}
	for _, o := range a.Offsets {
		e := get(o.TxnID, o.ProducerID, o.Epoch)
		e.offsets = append(e.offsets, o)
	}
	for _, e := range ends {
		s.helpers.Add(1)
		go func() {
			defer s.helpers.Done()
			if err := s.writeMarkers(ctx, e.markers); err != nil {
				return
			}
			if err := s.resolveOffsets(ctx, e.offsets); err != nil {
				return
			}
			s.post(func(now time.Time) {
				if s.gen != gen || !s.ready() || s.gen != gen {
					return // the reloaded machine re-drives it
				}
				r := s.m.MarkersWritten(now, e.txnID, e.pid, e.epoch)
				if r.Err != nil {
					s.opts.Logger.Warn("txn: stale completion", "txn", e.txnID, "err", r.Err)
					return
				}
				// The markers and offsets are durable: EndTxn may answer.
				// The completion record need not be durable first (a
				// restart before it writes the markers again, which is
				// harmless), and the producer's next record lands
				// after it in the log.
				s.settled.done(e.txnID)
				s.carry(r.Actions, s.logFailure("markers written"))
			})
		}()
	}
}

// retry calls attempt until it reports nothing failed, waiting with a
// doubling, capped backoff between attempts; it returns ctx's error if
// ctx ends first.
func (s *Service) retry(ctx context.Context, what string, attempt func() (failed int, err error)) error {
	backoff := s.opts.RetryBackoff
	for {
		n, err := attempt()
		if n == 0 {
			return nil
		}
		s.opts.Logger.Warn("txn: retrying", "what", what, "failed", n, "err", err, "backoff", backoff)
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
		backoff = min(2*backoff, s.opts.MaxRetryBackoff)
	}
}

// writeMarkers writes the markers, again for the partitions that failed,
// until all are durable.
func (s *Service) writeMarkers(ctx context.Context, markers []MarkerWrite) error {
	pending := markers
	return s.retry(ctx, "markers", func() (int, error) {
		errs := s.opts.Markers.WriteMarkers(ctx, pending)
		var again []MarkerWrite
		var last error
		n, i := 0, 0
		for _, m := range pending {
			var failed []TopicPartition
			for _, tp := range m.Partitions {
				if i >= len(errs) || errs[i] != nil {
					failed = append(failed, tp)
					if i < len(errs) {
						last = errs[i]
					}
				}
				i++
			}
			if len(failed) > 0 {
				m.Partitions = failed
				again = append(again, m)
				n += len(failed)
			}
		}
		pending = again
		return n, last
	})
}

// resolveOffsets applies the offset outcomes, again for those that
// failed, until all are durable.
func (s *Service) resolveOffsets(ctx context.Context, outcomes []OffsetOutcome) error {
	if len(outcomes) == 0 {
		return nil
	}
	if s.opts.Offsets == nil {
		s.opts.Logger.Warn("txn: no group coordinator resolves transactional offsets; dropped", "txn", outcomes[0].TxnID,
			"groups", len(outcomes))
		return nil
	}
	pending := outcomes
	return s.retry(ctx, "offsets", func() (int, error) {
		errs := s.opts.Offsets.ResolveOffsets(ctx, pending)
		var again []OffsetOutcome
		var last error
		for i, o := range pending {
			if i >= len(errs) || errs[i] != nil {
				again = append(again, o)
				if i < len(errs) {
					last = errs[i]
				}
			}
		}
		pending = again
		return len(again), last
	})
}

// do applies a request on the loop and waits for its answer, which comes
// once its records are durable. abort is the outcome an abort this
// request decides counts as ("" for requests that decide none).
func (s *Service) do(ctx context.Context, abort string, apply func(now time.Time) Result) (Result, error) {
	ch := make(chan Result, 1)
	posted := s.post(func(now time.Time) {
		if !s.ready() {
			ch <- Result{Err: ErrCoordinatorNotAvailable}
			return
		}
		r := apply(now)
		a := r.Actions
		r.Actions = Actions{}
		s.carry(a, s.counted(a.Persist, abort, func(err error) {
			if err != nil {
				r.Err = err
			}
			ch <- r
		}))
	})
	if !posted {
		return Result{}, ErrStopped
	}
	select {
	case r := <-ch:
		return r, nil
	case <-ctx.Done():
		return Result{}, ctx.Err()
	case <-s.stop:
		select {
		case r := <-ch:
			return r, nil
		default:
			return Result{}, ErrStopped
		}
	}
}

// InitProducerID handles InitProducerId for a transactional id and
// returns the producer id and epoch once they are durable.
func (s *Service) InitProducerID(ctx context.Context, req InitProducerIDRequest) (int64, int16, error) {
	r, err := s.do(ctx, outcomeFenced, func(now time.Time) Result { return s.m.InitProducerID(now, req) })
	if err == nil {
		err = r.Err
	}
	if err != nil {
		return noProducerID, noEpoch, err
	}
	return r.ProducerID, r.Epoch, nil
}

// AddPartitions handles AddPartitionsToTxn.
func (s *Service) AddPartitions(ctx context.Context, req AddPartitionsRequest) error {
	return s.errOf(s.do(ctx, "", func(now time.Time) Result { return s.m.AddPartitions(now, req) }))
}

// AddOffsets handles AddOffsetsToTxn.
func (s *Service) AddOffsets(ctx context.Context, req AddOffsetsRequest) error {
	return s.errOf(s.do(ctx, "", func(now time.Time) Result { return s.m.AddOffsets(now, req) }))
}

// EndTxn handles EndTxn. Once the PrepareCommit or PrepareAbort record is
// durable the outcome is decided, as in Kafka; EndTxn then waits (at most
// SettleWait) for the markers and offsets, so the producer's next
// transaction does not meet ErrConcurrentTransactions (settle.go).
func (s *Service) EndTxn(ctx context.Context, req EndTxnRequest) error {
	if err := s.errOf(s.do(ctx, outcomeAborted, func(now time.Time) Result { return s.m.EndTxn(now, req) })); err != nil {
		return err
	}
	s.awaitCompletion(ctx, req.TxnID)
	return nil
}

func (s *Service) errOf(r Result, err error) error {
	if err != nil {
		return err
	}
	return r.Err
}

// query runs f on the loop and waits for it.
func query[T any](s *Service, ctx context.Context, f func() (T, error)) (T, error) {
	type res struct {
		v   T
		err error
	}
	ch := make(chan res, 1)
	var zero T
	if !s.post(func(time.Time) {
		if !s.ready() {
			ch <- res{err: ErrCoordinatorNotAvailable}
			return
		}
		v, err := f()
		ch <- res{v, err}
	}) {
		return zero, ErrStopped
	}
	select {
	case r := <-ch:
		return r.v, r.err
	case <-ctx.Done():
		return zero, ctx.Err()
	case <-s.stopped:
		return zero, ErrStopped
	}
}

// Describe returns a transactional id's metadata (DescribeTransactions).
func (s *Service) Describe(ctx context.Context, txnID string) (Description, error) {
	return query(s, ctx, func() (Description, error) { return s.m.Describe(txnID) })
}

// List returns the transactional ids that match f (ListTransactions).
func (s *Service) List(ctx context.Context, f ListFilter) ([]Description, error) {
	return query(s, ctx, func() ([]Description, error) { return s.m.List(f), nil })
}

// CheckProduce asks the machine whether a transactional Produce may write
// each partition (Machine.CheckProduce): one error per partition, nil for
// those that may. The second result is the service's own failure.
func (s *Service) CheckProduce(ctx context.Context, txnID string, parts []ProducePartition) ([]error, error) {
	return query(s, ctx, func() ([]error, error) { return s.m.CheckProduce(txnID, parts), nil })
}

// CheckOffsets asks the machine whether a TxnOffsetCommit may stage the
// group's offsets (Machine.CheckOffsets).
func (s *Service) CheckOffsets(ctx context.Context, txnID string, producerID int64, epoch int16, group string) error {
	_, err := query(s, ctx, func() (struct{}, error) { return struct{}{}, s.m.CheckOffsets(txnID, producerID, epoch, group) })
	return err
}

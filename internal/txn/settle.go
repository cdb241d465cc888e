package txn

import (
	"context"
	"sync"
	"time"
)

// DefaultSettleWait bounds how long EndTxn waits for its transaction's
// markers after the decision is durable.
const DefaultSettleWait = 2 * time.Second

// settled tracks the callers waiting for a transactional id's prepared
// transaction to complete (its markers and offsets durable; the
// completion record is appended, durable with the id's next record). Kafka answers
// EndTxn once PrepareCommit is durable and answers the producer's next
// AddPartitionsToTxn with CONCURRENT_TRANSACTIONS until the markers are
// written; clients then back off (franz-go 20 ms, the Java producer
// retry.backoff.ms), which costs a producer that commits back to back far
// more than writing the markers does. Weir's EndTxn waits for the
// markers too (bounded by SettleWait, after which it answers as Kafka
// does): the next transaction starts at once, and a read_committed reader
// sees a transaction as soon as its producer's commit returns.
type settled struct {
	mu      sync.Mutex
	waiters map[string][]chan struct{}
}

// add registers a waiter for id; the loop calls it while id is prepared.
func (w *settled) add(id string) <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.waiters == nil {
		w.waiters = map[string][]chan struct{}{}
	}
	ch := make(chan struct{})
	w.waiters[id] = append(w.waiters[id], ch)
	return ch
}

// done releases the waiters of id.
func (w *settled) done(id string) {
	w.mu.Lock()
	chs := w.waiters[id]
	delete(w.waiters, id)
	w.mu.Unlock()
	for _, ch := range chs {
		close(ch)
	}
}

// awaitCompletion waits until id's transaction is no longer prepared, at
// most SettleWait (or until ctx ends). Its outcome is decided already, so
// a wait cut short changes nothing but the next request's answer.
func (s *Service) awaitCompletion(ctx context.Context, id string) {
	var ch <-chan struct{}
	got := make(chan struct{})
	if !s.post(func(time.Time) {
		defer close(got)
		if s.broken {
			return
		}
		if t := s.m.txns[id]; t != nil && (t.State == PrepareCommit || t.State == PrepareAbort) {
			ch = s.settled.add(id)
		}
	}) {
		return
	}
	select {
	case <-got:
	case <-ctx.Done():
		return
	}
	if ch == nil {
		return
	}
	t := time.NewTimer(s.opts.SettleWait)
	defer t.Stop()
	select {
	case <-ch:
	case <-t.C:
	case <-ctx.Done():
	case <-s.stop:
	}
}

package stream

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// The exactly-once cycle (Kafka Streams' EOS v2): one transactional
// producer per instance, transactional id <app>-<instance>, and one
// transaction per commit interval:
//
//	poll (read_committed) ─▶ Begin ─▶ Process ─▶ produce outputs, repartition records
//	  ▲                                                        │
//	  └── AllowRebalance ◀── End: flush, TxnOffsetCommit ◀── produce Commit() (changelogs, markers)
//	                              (group generation and member id), EndTxn
//
// kgo's GroupTransactSession commits, in the transaction, the offsets of
// every record polled, with the group's generation and member id, so a
// member the group has moved on from (a zombie) cannot commit; the broker
// answers the new owner's offset fetch only once no transaction holds
// offsets of its partitions (KIP-447).
//
// Rebalances: polling with BlockRebalanceOnPoll holds a rebalance off
// while records are being processed; the loop releases it only with no
// transaction open. When the client signals a waiting rebalance
// (OnPartitionsCallbackBlocked), the loop ends the transaction at once,
// committing, then lets the rebalance run: partitions are given up with
// everything they produced committed, as Kafka Streams does on
// revocation. A revocation or loss met with a transaction open (possible
// only for work started by the clock, with no record polled) makes the
// session abort it.
//
// Aborts (a revocation or loss, a fence-abortable commit error): the
// session rewinds the consumer to the committed offsets, and every open
// task is closed and restored from its changelog (read_committed, so the
// aborted changelog records are skipped): state and positions are both
// back at the last commit, and processing repeats only what no
// read_committed reader saw.

// loopEOS is loop under exactly-once.
func (r *runner) loopEOS(ctx context.Context) error {
	interval := r.app.cfg.CommitInterval
	bounded := r.app.cfg.Bounded
	last := time.Now()
	endedAtCommit := 0
	for {
		pctx, cancel := context.WithTimeout(ctx, max(interval-time.Since(last), time.Millisecond))
		r.setPollCancel(cancel)
		fs := r.cl.PollRecords(pctx, maxPollRecords)
		r.setPollCancel(nil)
		cancel()
		err := fetchErrors(fs)
		r.mu.Lock()
		err = errors.Join(err, r.fatal)
		revoked := r.revoked
		r.mu.Unlock()
		if err != nil {
			return err
		}
		if revoked {
			// Partitions went since the last End: the session would abort
			// the next transaction. End now (aborting); that rewinds to the
			// committed offsets, so the records just polled come again.
			actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.app.cfg.TransactionTimeout)
			_, err := r.endTxn(actx, false)
			cancel()
			if err != nil {
				return err
			}
			r.cl.AllowRebalance()
			continue
		}

		r.mu.Lock()
		if fs.NumRecords() > 0 && !r.begin() {
			err = r.fatal
		} else {
			err = r.process(fs)
		}
		ended := r.endedTasks()
		done := err == nil && bounded && r.done()
		r.mu.Unlock()
		if err != nil {
			return err
		}
		r.pauseAtEnd()

		stopping := ctx.Err() != nil
		if !(stopping || done || r.blocked.Load() || time.Since(last) >= interval || bounded && ended > endedAtCommit) {
			if !r.inTxn {
				r.cl.AllowRebalance()
			}
			continue
		}
		// A commit under way is not cut short by a stop (ctx may end at
		// any moment, also after the check above): it runs to its end,
		// within the transaction timeout, and a stop then returns.
		ectx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.app.cfg.TransactionTimeout)
		committed, err := r.endTxn(ectx, true)
		cancel()
		stopping = stopping || ctx.Err() != nil
		if err != nil {
			return err
		}
		r.mu.Lock()
		last, endedAtCommit = time.Now(), r.endedTasks()
		r.mu.Unlock()
		r.blocked.Store(false)
		r.cl.AllowRebalance()
		if stopping || done && committed {
			return nil
		}
	}
}

func fetchErrors(fs kgo.Fetches) error {
	var err error
	fs.EachError(func(t string, p int32, ferr error) {
		if !errors.Is(ferr, context.DeadlineExceeded) && !errors.Is(ferr, context.Canceled) {
			err = errors.Join(err, fmt.Errorf("stream: fetch %s/%d: %w", t, p, ferr))
		}
	})
	return err
}

// begin opens the transaction if none is; false (with r.fatal set) if
// that fails. Called with mu held.
func (r *runner) begin() bool {
	if r.inTxn {
		return true
	}
	if err := r.sess.Begin(); err != nil {
		r.fatal = errors.Join(r.fatal, fmt.Errorf("stream: begin transaction: %w", err))
		return false
	}
	r.inTxn = true
	return true
}

// endTxn ends the open transaction: with commit, after producing the
// engine's changelogs and markers; it reports whether it committed. A
// transaction that aborts instead (a rebalance, a fence-abortable error,
// or commit false) rolls every open task back to its last committed state.
// Errors are final: the producer is fenced or failed.
func (r *runner) endTxn(ctx context.Context, commit bool) (bool, error) {
	start := time.Now()
	r.mu.Lock()
	revoked := r.revoked
	r.revoked = false
	if commit && r.fatal == nil {
		if outs, err := r.e.Commit(); err != nil {
			r.fatal = err
		} else {
			r.produce(outs)
		}
	}
	err := r.fatal
	r.mu.Unlock()
	if err != nil {
		return false, err
	}
	if !r.inTxn && !revoked {
		return commit, nil // nothing processed or produced since the last commit
	}
	if commit && r.inTxn {
		if err := r.cl.Flush(ctx); err != nil {
			return false, fmt.Errorf("stream: flush: %w", err)
		}
		r.prodMu.Lock()
		err, r.prodErr = r.prodErr, nil
		r.prodMu.Unlock()
		if err != nil {
			// A record the transaction lost: it must not commit (Run
			// aborts it), and would be lost again if retried.
			return false, fmt.Errorf("stream: produce: %w", err)
		}
		if r.app.abortTxn != nil && r.app.abortTxn() {
			commit = false
		}
	}
	work := r.inTxn
	committed, err := r.sess.End(ctx, kgo.TransactionEndTry(commit))
	r.inTxn = false
	if err != nil {
		return false, fmt.Errorf("stream: end transaction: %w", err)
	}
	if committed {
		r.e.m.commit(time.Since(start).Seconds())
		r.mu.Lock()
		err := r.checkpoint(true)
		r.mu.Unlock()
		return true, err
	}
	_ = r.checkpoint(false)
	if !work {
		return false, nil
	}
	r.app.log.Info("stream: transaction aborted; restoring the tasks to their last commit")
	r.e.m.abort()
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.reset(ctx); err != nil {
		r.fatal = errors.Join(r.fatal, err)
		return false, err
	}
	return false, nil
}

// reset rolls every open task back to its last commit: closed, reopened
// and restored from its changelog. The session has rewound the consumer
// to the committed offsets; partitions a bounded run paused at their end
// are fetched again from there. Called with mu held.
func (r *runner) reset(ctx context.Context) error {
	ids := r.e.Tasks()
	for _, id := range ids {
		if err := r.e.CloseTask(id); err != nil {
			return err
		}
	}
	for _, id := range ids {
		if err := r.e.OpenTask(id); err != nil {
			return err
		}
		if err := r.restore(ctx, id); err != nil {
			return fmt.Errorf("stream: restore task %s: %w", id, err)
		}
	}
	if len(r.paused) > 0 {
		r.cl.ResumeFetchPartitions(r.paused)
		r.paused = nil
	}
	if r.app.cfg.Bounded {
		assigned := map[string][]int32{}
		for id, topics := range r.assigned {
			for t := range topics {
				assigned[t] = append(assigned[t], id.Partition)
			}
		}
		return r.endReadPartitions(ctx, assigned)
	}
	return nil
}

// rewindToEnd notes a bounded partition polled past its end: the session
// commits the offsets of every record polled, so its position goes back to
// the end (see pauseAtEnd). Called with mu held, from process.
func (r *runner) rewindToEnd(topic string, p int32, end int64) {
	if r.pastEnd == nil {
		r.pastEnd = map[string]map[int32]int64{}
	}
	if r.pastEnd[topic] == nil {
		r.pastEnd[topic] = map[int32]int64{}
	}
	r.pastEnd[topic][p] = end
}

// pauseAtEnd sets the partitions polled past their end back to it and
// stops fetching them. The loop calls it with the rebalance held off, as
// kgo asks of SetOffsets.
func (r *runner) pauseAtEnd() {
	if len(r.pastEnd) == 0 {
		return
	}
	set := map[string]map[int32]kgo.EpochOffset{}
	pause := map[string][]int32{}
	for t, ps := range r.pastEnd {
		set[t] = map[int32]kgo.EpochOffset{}
		for p, end := range ps {
			set[t][p] = kgo.EpochOffset{Epoch: -1, Offset: end}
			pause[t] = append(pause[t], p)
		}
	}
	r.pastEnd = nil
	r.cl.SetOffsets(set)
	r.cl.PauseFetchPartitions(pause)
	if r.paused == nil {
		r.paused = map[string][]int32{}
	}
	for t, ps := range pause {
		r.paused[t] = append(r.paused[t], ps...)
	}
}

// onBlocked: a rebalance waits for the loop to end its transaction; cut
// the poll short so it does so now.
func (r *runner) onBlocked(context.Context, *kgo.Client) {
	r.blocked.Store(true)
	r.pollMu.Lock()
	defer r.pollMu.Unlock()
	if r.pollCancel != nil {
		r.pollCancel()
	}
}

func (r *runner) setPollCancel(c context.CancelFunc) {
	r.pollMu.Lock()
	defer r.pollMu.Unlock()
	r.pollCancel = c
}

package stream

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The at-least-once cycle, every CommitInterval:
//
//	poll ─▶ Process each record ─▶ produce Drain()ed outputs (async)
//	  ▲                                   │
//	  └── commit offsets ◀── Flush ◀── produce Commit() (changelogs, markers)
//
// Offsets are committed only after everything the records they cover
// produced is acknowledged, so a crash repeats but never loses. The
// exactly-once slice replaces commit with one transaction (kgo's
// GroupTransactSession): begin before processing, end with the offsets.

// maxPollRecords bounds the records processed between two looks at the
// commit interval (Kafka's max.poll.records default), so a large backlog
// does not stretch one commit interval over all of it.
const maxPollRecords = 1000

func (r *runner) loop(ctx context.Context) error {
	interval := r.app.cfg.CommitInterval
	last := time.Now()
	endedAtCommit := 0
	for {
		pctx, cancel := context.WithTimeout(ctx, max(interval-time.Since(last), time.Millisecond))
		fs := r.cl.PollRecords(pctx, maxPollRecords)
		cancel()
		if ctx.Err() != nil {
			return nil
		}
		var err error
		fs.EachError(func(t string, p int32, ferr error) {
			if !errors.Is(ferr, context.DeadlineExceeded) && !errors.Is(ferr, context.Canceled) {
				err = errors.Join(err, fmt.Errorf("stream: fetch %s/%d: %w", t, p, ferr))
			}
		})
		r.mu.Lock()
		err = errors.Join(err, r.fatal)
		if err == nil {
			err = r.process(fs)
		}
		bounded := r.app.cfg.Bounded
		// A commit under way is not cut short by a stop (ctx may end at
		// any moment): it runs to its end within TransactionTimeout.
		cctx, ccancel := context.WithTimeout(context.WithoutCancel(ctx), r.app.cfg.TransactionTimeout)
		if ended := r.endedTasks(); err == nil && (time.Since(last) >= interval || bounded && ended > endedAtCommit) {
			err = r.commit(cctx)
			last, endedAtCommit = time.Now(), ended
		}
		done := err == nil && bounded && r.done()
		if done {
			err = r.commit(cctx)
		}
		ccancel()
		if err != nil && r.fatal == nil {
			r.fatal = err // no commit may follow a failed step
		}
		r.mu.Unlock()
		r.cl.AllowRebalance()
		if err != nil || done {
			return err
		}
	}
}

func (r *runner) process(fs kgo.Fetches) error {
	start := time.Now()
	if err := r.e.Tick(start); err != nil {
		return err
	}
	if fs.NumRecords() > 0 {
		defer func() { r.e.m.batch(time.Since(start).Seconds()) }()
	}
	var err error
	fs.EachRecord(func(rec *kgo.Record) {
		if err != nil {
			return
		}
		end, bounded := r.end[rec.Topic][rec.Partition]
		if bounded && rec.Offset >= end {
			// Past the end seen at start: not ours to process or commit.
			if r.sess != nil {
				r.rewindToEnd(rec.Topic, rec.Partition, end)
			}
			return
		}
		// Control records (transaction markers) only move the offsets.
		if !rec.Attrs.IsControl() {
			if err = r.e.Process(rec); err != nil {
				return
			}
		}
		if r.offsets[rec.Topic] == nil {
			r.offsets[rec.Topic] = map[int32]kgo.EpochOffset{}
		}
		r.offsets[rec.Topic][rec.Partition] = kgo.EpochOffset{Epoch: rec.LeaderEpoch, Offset: rec.Offset + 1}
		if bounded && rec.Offset+1 >= end {
			err = r.e.EndPartition(rec.Topic, rec.Partition)
		}
	})
	r.produce(r.e.Drain())
	return err
}

func (r *runner) produce(recs []*kgo.Record) {
	if len(recs) > 0 && r.sess != nil && !r.begin() {
		return
	}
	for _, rec := range recs {
		r.cl.Produce(context.Background(), rec, r.produced)
	}
}

// produced notes a produce error, or the offset after a changelog record
// (for the stores' checkpoints).
func (r *runner) produced(rec *kgo.Record, err error) {
	_, changelog := r.e.plan.changelogs[rec.Topic]
	if err == nil && !changelog {
		return
	}
	r.prodMu.Lock()
	defer r.prodMu.Unlock()
	if err != nil {
		r.prodErr = errors.Join(r.prodErr, err)
		return
	}
	if r.written == nil {
		r.written = map[string]map[int32]int64{}
	}
	if r.written[rec.Topic] == nil {
		r.written[rec.Topic] = map[int32]int64{}
	}
	r.written[rec.Topic][rec.Partition] = max(r.written[rec.Topic][rec.Partition], rec.Offset+1)
}

// checkpoint tells the engine the changelog records produced since the
// last checkpoint are durable (or, durable false, forgets them: their
// transaction aborted). Called with mu held, after a flush.
func (r *runner) checkpoint(durable bool) error {
	r.prodMu.Lock()
	written := r.written
	r.written = nil
	r.prodMu.Unlock()
	if !durable {
		return nil
	}
	return r.e.Committed(written)
}

// commit writes the engine's changelogs and markers, waits for every
// produced record, then commits the processed offsets. A failure is
// final: no later commit (on revocation, at close) may cover records
// whose outputs were lost.
func (r *runner) commit(ctx context.Context) error {
	if r.fatal != nil {
		return r.fatal
	}
	err := r.commitOnce(ctx)
	if err != nil {
		r.fatal = err
	}
	return err
}

func (r *runner) commitOnce(ctx context.Context) error {
	start := time.Now()
	outs, err := r.e.Commit()
	if err != nil {
		return err
	}
	r.produce(outs)
	if err := r.cl.Flush(ctx); err != nil {
		return fmt.Errorf("stream: flush: %w", err)
	}
	r.prodMu.Lock()
	err, r.prodErr = r.prodErr, nil
	r.prodMu.Unlock()
	if err != nil {
		return fmt.Errorf("stream: produce: %w", err)
	}
	if len(r.offsets) > 0 {
		r.cl.CommitOffsetsSync(ctx, r.offsets, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, cerr error) {
			err = cerr
			if cerr == nil {
				for _, t := range resp.Topics {
					for _, p := range t.Partitions {
						if e := kerr.ErrorForCode(p.ErrorCode); e != nil {
							err = errors.Join(err, fmt.Errorf("%s/%d: %w", t.Topic, p.Partition, e))
						}
					}
				}
			}
		})
		if err != nil {
			return fmt.Errorf("stream: commit offsets: %w", err)
		}
		clear(r.offsets)
	}
	r.e.m.commit(time.Since(start).Seconds())
	return r.checkpoint(true)
}

func (r *runner) endedTasks() int {
	n := 0
	for _, id := range r.e.Tasks() {
		if r.e.Ended(id) {
			n++
		}
	}
	return n
}

// done: a bounded run has tasks and all of them have ended.
func (r *runner) done() bool {
	ids := r.e.Tasks()
	return len(ids) > 0 && r.endedTasks() == len(ids)
}

// onAssigned opens the tasks of newly assigned partitions and restores
// their stores from the changelogs before any of their records is
// processed. In a bounded run, a partition already read to its end is
// ended at once.
func (r *runner) onAssigned(ctx context.Context, _ *kgo.Client, assigned map[string][]int32) {
	r.app.log.Debug("stream: assigned", "partitions", assigned)
	var fenceErr error
	if r.sess != nil {
		// Under exactly-once, load the producer id first: initializing it
		// fences an earlier incarnation with the same transactional id and
		// aborts its open transaction, which restore would wait for.
		_, _, fenceErr = r.cl.ProducerID(ctx)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if fenceErr != nil {
		r.fatal = errors.Join(r.fatal, fmt.Errorf("stream: init producer id: %w", fenceErr))
		return
	}
	var opened []TaskID
	for topic, ps := range assigned {
		for _, p := range ps {
			id, ok := r.e.TaskFor(topic, p)
			if !ok {
				continue
			}
			if r.assigned[id] == nil {
				r.assigned[id] = map[string]bool{}
				opened = append(opened, id)
			}
			r.assigned[id][topic] = true
		}
	}
	for _, id := range opened {
		if err := r.e.OpenTask(id); err != nil {
			r.fatal = errors.Join(r.fatal, err)
			return
		}
		if err := r.restore(ctx, id); err != nil {
			r.fatal = errors.Join(r.fatal, fmt.Errorf("stream: restore task %s: %w", id, err))
			return
		}
	}
	if r.app.cfg.Bounded {
		r.fatal = errors.Join(r.fatal, r.endReadPartitions(ctx, assigned))
	}
}

// onRevoked commits, then closes the tasks left with no partition. Under
// exactly-once the loop has already ended its transaction before allowing
// the rebalance (see loopEOS); a revocation met with one open aborts it.
func (r *runner) onRevoked(ctx context.Context, _ *kgo.Client, revoked map[string][]int32) {
	r.app.log.Debug("stream: revoked", "partitions", revoked)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.sess != nil {
		r.revoked = r.revoked || len(revoked) > 0
		r.drop(revoked)
		return
	}
	if err := r.commit(ctx); err != nil {
		r.app.log.Warn("stream: commit before revocation failed", "err", err)
	}
	r.drop(revoked)
}

// onLost closes the tasks of partitions lost without a chance to commit:
// another member may already own them.
func (r *runner) onLost(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.revoked = r.revoked || r.sess != nil
	r.drop(lost)
}

func (r *runner) drop(parts map[string][]int32) {
	for topic, ps := range parts {
		for _, p := range ps {
			delete(r.offsets[topic], p)
			id, ok := r.e.TaskFor(topic, p)
			if !ok || r.assigned[id] == nil {
				continue
			}
			delete(r.assigned[id], topic)
			if len(r.assigned[id]) == 0 {
				delete(r.assigned, id)
				if err := r.e.CloseTask(id); err != nil {
					r.app.log.Warn("stream: close task", "task", id.String(), "err", err)
				}
			}
		}
	}
}

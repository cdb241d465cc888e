package stream

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// restore reads a task's changelog partitions into its stores, from
// their start to their last stable offset, read_committed: records of
// aborted transactions are skipped. A transaction still open on a
// changelog partition (its last writer's, ended by a commit before a
// rebalance, or a crashed instance's until fenced or timed out) is waited
// for first, so the state restored matches the input offsets the group
// hands out once that transaction is decided.
func (r *runner) restore(ctx context.Context, id TaskID) error {
	for _, topic := range r.e.Changelogs(id) {
		end, err := r.stableEnd(ctx, topic, id.Partition)
		if err != nil {
			return err
		}
		if r.e.SourceChangelog(topic) {
			if end, err = r.committedEnd(ctx, topic, id.Partition, end); err != nil {
				return err
			}
		}
		starts, err := r.adm.ListStartOffsets(ctx, topic)
		if err != nil {
			return err
		}
		start, _ := starts.Lookup(topic, id.Partition)
		if start.Err != nil {
			return fmt.Errorf("%s/%d: start offset: %w", topic, id.Partition, start.Err)
		}
		from, err := r.e.RestoreFrom(topic, id.Partition, start.Offset, end)
		if err != nil {
			return err
		}
		store := r.e.storeName(topic)
		r.e.m.restore(id, store, 0, end-from)
		if end <= from {
			continue
		}
		began := time.Now()
		r.app.log.Info("stream: restoring", "task", id.String(), "store", store, "changelog", topic,
			"from", from, "to", end, "checkpointed", from > start.Offset)
		n, err := r.readChangelog(ctx, id, topic, from, end)
		if err != nil {
			return err
		}
		r.app.log.Info("stream: restored", "task", id.String(), "store", store, "records", n,
			"took", time.Since(began).Round(time.Millisecond))
	}
	return nil
}

// stableEnd waits until no transaction is open on a partition (its last
// stable offset has reached its high watermark) and returns that offset;
// an error after twice the transaction timeout.
func (r *runner) stableEnd(ctx context.Context, topic string, p int32) (int64, error) {
	deadline := time.Now().Add(2 * r.app.cfg.TransactionTimeout)
	for {
		stable, err := r.adm.ListCommittedOffsets(ctx, topic)
		if err != nil {
			return 0, err
		}
		ends, err := r.adm.ListEndOffsets(ctx, topic)
		if err != nil {
			return 0, err
		}
		lso, _ := stable.Lookup(topic, p)
		hwm, _ := ends.Lookup(topic, p)
		if lso.Err != nil || hwm.Err != nil {
			return 0, fmt.Errorf("%s/%d: end offsets: %v %v", topic, p, lso.Err, hwm.Err)
		}
		if lso.Offset >= hwm.Offset {
			return lso.Offset, nil
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("%s/%d: a transaction stays open (last stable offset %d, high watermark %d)", topic, p, lso.Offset, hwm.Offset)
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// committedEnd bounds the restore of a table's source topic (TableSource)
// by the group's committed offset for the partition (0 if none): the
// table's state as of the last commit, the records after it being input
// that the task processes next.
func (r *runner) committedEnd(ctx context.Context, topic string, p int32, end int64) (int64, error) {
	committed, err := r.adm.FetchOffsets(kadm.RequireStable(ctx), r.app.cfg.ApplicationID)
	if err != nil {
		return 0, fmt.Errorf("%s/%d: committed offset: %w", topic, p, err)
	}
	at := int64(0)
	if c, ok := committed.Lookup(topic, p); ok && c.Err == nil && c.At > 0 {
		at = c.At
	}
	return min(end, at), nil
}

// readChangelog restores a task's changelog partition from offset from to
// end, checkpointing (RestoredTo) after each fetch; it returns the number
// of records applied.
func (r *runner) readChangelog(ctx context.Context, id TaskID, topic string, from, end int64) (int, error) {
	p := id.Partition
	cl, err := kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(r.app.cfg.Brokers...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {p: kgo.NewOffset().At(from)}}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords(), // a trailing transaction marker reaches end
	}, r.app.cfg.ClientOptions...)...)
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	store := r.e.storeName(topic)
	next, total := from, 0
	for {
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			return total, fmt.Errorf("%s/%d: read to %d of %d: %w", topic, p, next, end, err)
		}
		var rerr error
		reached, n := false, 0
		fs.EachRecord(func(rec *kgo.Record) {
			if rerr != nil || rec.Offset >= end {
				return
			}
			if !rec.Attrs.IsControl() {
				rerr = r.e.Restore(rec)
				n++
			}
			next = rec.Offset + 1
			reached = reached || rec.Offset+1 >= end
		})
		if rerr == nil && (n > 0 || reached) {
			rerr = r.e.RestoredTo(topic, p, next)
		}
		if rerr != nil {
			return total, rerr
		}
		total += n
		r.e.m.restore(id, store, n, end-next)
		if reached {
			return total, nil
		}
	}
}

// boundedOffsets records, for a bounded run, the end of the source topics
// at start: their last stable offsets, so input written in transactions
// ends before any transaction still open and a trailing commit marker
// (delivered as a control record) reaches the end.
func (r *runner) boundedOffsets(ctx context.Context, sources []string) error {
	ends, err := r.adm.ListCommittedOffsets(ctx, sources...)
	if err != nil {
		return err
	}
	if err := ends.Error(); err != nil {
		return err
	}
	r.end = map[string]map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if r.end[o.Topic] == nil {
			r.end[o.Topic] = map[int32]int64{}
		}
		r.end[o.Topic][o.Partition] = o.Offset
	})
	return nil
}

// endReadPartitions ends the assigned source partitions of a bounded run
// that have nothing left before their end offset: the group's committed
// offset (or the log start) is already there.
func (r *runner) endReadPartitions(ctx context.Context, assigned map[string][]int32) error {
	committed, err := r.adm.FetchOffsets(kadm.RequireStable(ctx), r.app.cfg.ApplicationID)
	if err != nil {
		return err
	}
	var topics []string
	for t := range assigned {
		if r.end[t] != nil {
			topics = append(topics, t)
		}
	}
	if len(topics) == 0 {
		return nil
	}
	starts, err := r.adm.ListStartOffsets(ctx, topics...)
	if err != nil {
		return err
	}
	for _, t := range topics {
		for _, p := range assigned[t] {
			from := int64(0)
			if s, ok := starts.Lookup(t, p); ok {
				from = s.Offset
			}
			if c, ok := committed.Lookup(t, p); ok && c.Err == nil && c.At >= 0 {
				from = max(from, c.At)
			}
			if from >= r.end[t][p] {
				if err := r.e.EndPartition(t, p); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

package stream

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// restore reads a task's changelog partitions from their start to the end
// offsets listed now into its stores.
func (r *runner) restore(ctx context.Context, id TaskID) error {
	for _, topic := range r.e.Changelogs(id) {
		ends, err := r.adm.ListEndOffsets(ctx, topic)
		if err != nil {
			return err
		}
		starts, err := r.adm.ListStartOffsets(ctx, topic)
		if err != nil {
			return err
		}
		end, _ := ends.Lookup(topic, id.Partition)
		start, _ := starts.Lookup(topic, id.Partition)
		if end.Err != nil || start.Err != nil {
			return fmt.Errorf("%s/%d: offsets: %v %v", topic, id.Partition, end.Err, start.Err)
		}
		if end.Offset <= start.Offset {
			continue
		}
		if err := r.readChangelog(ctx, topic, id.Partition, end.Offset); err != nil {
			return err
		}
		r.app.log.Info("stream: restored", "task", id.String(), "changelog", topic, "records_to", end.Offset)
	}
	return nil
}

func (r *runner) readChangelog(ctx context.Context, topic string, p int32, end int64) error {
	cl, err := kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(r.app.cfg.Brokers...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {p: kgo.NewOffset().AtStart()}}),
	}, r.app.cfg.ClientOptions...)...)
	if err != nil {
		return err
	}
	defer cl.Close()
	for {
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			return fmt.Errorf("%s/%d: %w", topic, p, err)
		}
		var rerr error
		reached := false
		fs.EachRecord(func(rec *kgo.Record) {
			if rerr != nil || rec.Offset >= end {
				return
			}
			rerr = r.e.Restore(rec)
			reached = reached || rec.Offset+1 >= end
		})
		if rerr != nil {
			return rerr
		}
		if reached {
			return nil
		}
	}
}

// boundedOffsets records, for a bounded run, the end offsets of the source
// topics seen at start.
func (r *runner) boundedOffsets(ctx context.Context, sources []string) error {
	ends, err := r.adm.ListEndOffsets(ctx, sources...)
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
	committed, err := r.adm.FetchOffsets(ctx, r.app.cfg.ApplicationID)
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

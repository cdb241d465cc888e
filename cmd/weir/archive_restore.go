package main

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// newArchiveRestoreCmd is `weir archive restore`: a time range of a topic
// (served from the archive where it is no longer local: Fetch below the
// local log start reads archived segments) copied into a new topic, record
// for record: same partition, key, value, headers and timestamp, in order.
// It reads read_committed and writes plain (non-transactional) records:
// the records of aborted transactions, whose ranges the broker knows for
// archived segments from the transaction indexes uploaded with them, are
// not copied, and the new topic holds no transactions at all.
func newArchiveRestoreCmd(a *app) *cobra.Command {
	var to, fromTime, toTime string
	cmd := &cobra.Command{
		Use:   "restore TOPIC --to NEWTOPIC",
		Short: "Replay a topic's records (archived ones included) into a new topic",
		Long: `Copy TOPIC's committed records into NEWTOPIC, partition for partition, with their keys,
values, headers and timestamps, in order: the compliance and incident-replay case for an archived
topic, whose old records are read back from the archive. NEWTOPIC is created with TOPIC's partition
count and retention.ms=-1 (the records keep their original timestamps, which time-based retention would
otherwise delete at once; change it with weir topic alter-config) and must not exist. --from-time and --to-time bound the copy by record timestamp (the first
record at or after --from-time, up to the first at or after --to-time); times take the forms of
weir consume --from (RFC 3339, a date, @<Unix ms>, or a duration ago such as -24h).`,
		Example: `  weir archive restore orders --to orders-incident-42 --from-time 2026-12-01T10:00:00Z --to-time 2026-12-01T11:00:00Z`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if to == "" {
				return errors.New("--to NEWTOPIC is required")
			}
			if to == args[0] {
				return errors.New("--to must name a new topic, not the source")
			}
			now := time.Now()
			from, err := restoreBound("--from-time", fromTime, now)
			if err != nil {
				return err
			}
			until, err := restoreBound("--to-time", toTime, now)
			if err != nil {
				return err
			}
			res, err := a.restore(cmd.Context(), args[0], to, from, until)
			if err != nil {
				return err
			}
			return a.writeRestore(cmd, args[0], to, res)
		},
	}
	cmd.Flags().StringVar(&to, "to", "", "new topic to write (required)")
	cmd.Flags().StringVar(&fromTime, "from-time", "", "copy records from this time (default: the beginning)")
	cmd.Flags().StringVar(&toTime, "to-time", "", "copy records before this time (default: up to the end)")
	return cmd
}

// restoreBound parses a --from-time/--to-time value: -1 when empty.
func restoreBound(flag, s string, now time.Time) (int64, error) {
	if s == "" {
		return -1, nil
	}
	p, err := parsePosition(s, now, false)
	if err != nil || p.kind != posTime {
		return 0, fmt.Errorf("%s %q: want a time (RFC 3339, a date, @<Unix ms>, or a duration ago such as -24h)", flag, s)
	}
	return p.millis, nil
}

// restored is one partition's copy.
type restored struct {
	Partition int32 `json:"partition"`
	From      int64 `json:"from_offset"`
	To        int64 `json:"to_offset"`
	Records   int64 `json:"records"`
}

// restore copies src's records with timestamps in [from, until) (-1: open)
// into dst, which it creates.
func (a *app) restore(ctx context.Context, src, dst string, from, until int64) ([]restored, error) {
	actx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	adm, cl, err := a.admin(actx)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	td, err := adm.ListTopics(actx, src)
	if err != nil {
		return nil, a.explain("list topics", err)
	}
	t, ok := td[src]
	if !ok || errors.Is(t.Err, kerr.UnknownTopicOrPartition) {
		return nil, fmt.Errorf("topic %q does not exist", src)
	}
	if t.Err != nil {
		return nil, fmt.Errorf("topic %q: %v", src, t.Err)
	}
	parts := len(t.Partitions)
	starts, err := restoreOffsets(actx, adm, src, from, true)
	if err != nil {
		return nil, a.explain("list offsets", err)
	}
	ends, err := restoreOffsets(actx, adm, src, until, false)
	if err != nil {
		return nil, a.explain("list offsets", err)
	}
	// Restored records keep their timestamps: with the default
	// retention.ms, records older than a week would be deleted by the
	// next retention pass.
	keep := "-1"
	resp, err := adm.CreateTopic(actx, int32(parts), -1, map[string]*string{"retention.ms": &keep}, dst)
	if err == nil {
		err = resp.Err
	}
	if errors.Is(err, kerr.TopicAlreadyExists) {
		return nil, fmt.Errorf("topic %q already exists: restore writes a new topic", dst)
	}
	if err != nil {
		return nil, a.explain("create topic "+dst, err)
	}

	wr, err := a.client(ctx, kgo.DefaultProduceTopic(dst), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.RequiredAcks(kgo.AllISRAcks()))
	if err != nil {
		return nil, err
	}
	defer wr.Close()
	var (
		perrMu sync.Mutex
		perr   error
	)
	out := make([]restored, 0, parts)
	for p := range int32(parts) {
		r := restored{Partition: p, From: starts[p], To: max(ends[p], starts[p])}
		n, err := copyPartition(ctx, cl, src, p, r.From, r.To, func(rec *kgo.Record) {
			cp := &kgo.Record{Key: rec.Key, Value: rec.Value, Headers: rec.Headers, Timestamp: rec.Timestamp, Partition: p}
			wr.Produce(ctx, cp, func(_ *kgo.Record, err error) {
				perrMu.Lock()
				defer perrMu.Unlock()
				if err != nil && perr == nil {
					perr = err
				}
			})
		})
		if err != nil {
			return nil, err
		}
		r.Records = n
		out = append(out, r)
	}
	if err := wr.Flush(ctx); err != nil {
		return nil, err
	}
	if perr != nil {
		return nil, fmt.Errorf("write %s: %v", dst, perr)
	}
	return out, nil
}

// copyPartition reads src/p's committed records in [from, to) with Fetch
// requests and calls emit for each, in order. Each answer says where the
// next read starts (past transaction markers, aborted records and
// compaction's gaps too), so the copy ends exactly at to.
func copyPartition(ctx context.Context, cl *kgo.Client, src string, p int32, from, to int64, emit func(*kgo.Record)) (int64, error) {
	var n int64
	stuck := 0
	for off := from; off < to; {
		req := kmsg.NewPtrFetchRequest()
		req.MaxWaitMillis, req.MinBytes, req.MaxBytes = 500, 1, 16<<20
		req.IsolationLevel = 1 // read_committed
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic = src
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes, rp.CurrentLeaderEpoch, rp.LogStartOffset = p, off, 8<<20, -1, -1
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			return n, fmt.Errorf("read %s/%d at %d: %w", src, p, off, err)
		}
		if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
			return n, fmt.Errorf("read %s/%d at %d: unexpected answer", src, p, off)
		}
		part := &resp.Topics[0].Partitions[0]
		if err := kerr.ErrorForCode(part.ErrorCode); err != nil {
			return n, fmt.Errorf("read %s/%d at %d: %w", src, p, off, err)
		}
		fp, next := kgo.ProcessFetchPartition(kgo.ProcessFetchPartitionOpts{Offset: off, IsolationLevel: kgo.ReadCommitted(),
			Topic: src, Partition: p}, part, kgo.DefaultDecompressor(), nil)
		if fp.Err != nil {
			return n, fmt.Errorf("read %s/%d at %d: %w", src, p, off, fp.Err)
		}
		for _, rec := range fp.Records {
			if rec.Offset >= off && rec.Offset < to {
				emit(rec)
				n++
			}
		}
		if next <= off {
			if stuck++; stuck == 20 {
				return n, fmt.Errorf("read %s/%d: no progress at offset %d (high watermark %d)", src, p, off, part.HighWatermark)
			}
			continue
		}
		stuck, off = 0, next
	}
	return n, nil
}

// restoreOffsets returns, per partition, the first offset with a timestamp
// at or after ms, or the start (start true) or end of the log for -1.
func restoreOffsets(ctx context.Context, adm *kadm.Client, topic string, ms int64, start bool) (map[int32]int64, error) {
	var (
		lo  kadm.ListedOffsets
		err error
	)
	switch {
	case ms >= 0:
		lo, err = adm.ListOffsetsAfterMilli(ctx, ms, topic)
	case start:
		lo, err = adm.ListStartOffsets(ctx, topic)
	default:
		lo, err = adm.ListCommittedOffsets(ctx, topic)
	}
	if err != nil {
		return nil, err
	}
	if err := lo.Error(); err != nil {
		return nil, err
	}
	out := map[int32]int64{}
	lo.Each(func(o kadm.ListedOffset) { out[o.Partition] = o.Offset })
	return out, nil
}

func (a *app) writeRestore(cmd *cobra.Command, src, dst string, res []restored) error {
	sort.Slice(res, func(i, j int) bool { return res[i].Partition < res[j].Partition })
	w := cmd.OutOrStdout()
	if a.json() {
		return writeJSON(w, map[string]any{"topic": src, "to": dst, "partitions": res})
	}
	var total int64
	t := newTable(w, "PARTITION", "FROM-OFFSET", "TO-OFFSET", "RECORDS")
	for _, r := range res {
		t.row(r.Partition, r.From, r.To, r.Records)
		total += r.Records
	}
	if err := t.flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "Restored %d records of %s into %s.\n", total, src, dst)
	return err
}

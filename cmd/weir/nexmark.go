package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weirhq/weir/stream/nexmark"
)

func newNexmarkCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "nexmark",
		Short: "NEXMark, the stream-processing benchmark: generate its input, run its queries",
		Long: `NEXMark is the standard stream-processing benchmark (Flink's nexmark,
RisingWave): an online auction's persons, auctions and bids as one stream of
JSON events. weir nexmark generate writes a deterministic run of events to a
topic in Flink nexmark's Kafka JSON format; weir nexmark run runs a query
written with Weir's stream library over it. See docs/nexmark.md.`,
	}
	cmd.AddCommand(newNexmarkGenerateCmd(a), newNexmarkRunCmd(a))
	return cmd
}

type nexmarkGenOpts struct {
	topic      string
	events     int64
	partitions int32
	seed       uint64
	rate       int64
	maxDelay   time.Duration
	inOrder    bool
	baseTime   string
}

// nexmarkSummary is the result of weir nexmark generate.
type nexmarkSummary struct {
	Topic        string  `json:"topic"`
	Partitions   int32   `json:"partitions"`
	Created      bool    `json:"created"`
	Events       int64   `json:"events"`
	Persons      int64   `json:"persons"`
	Auctions     int64   `json:"auctions"`
	Bids         int64   `json:"bids"`
	Bytes        int64   `json:"bytes"`
	Seconds      float64 `json:"seconds"`
	EventsPerSec float64 `json:"events_per_sec"`
	Seed         uint64  `json:"seed"`
	FirstTime    string  `json:"first_event_time"`
	LastTime     string  `json:"last_event_time"`
}

func newNexmarkGenerateCmd(a *app) *cobra.Command {
	var o nexmarkGenOpts
	cmd := &cobra.Command{
		Use:   "generate",
		Short: "Write a deterministic NEXMark event stream to a topic",
		Long: `Write --events NEXMark events to --topic, generated as Flink's nexmark does
(1 person : 3 auctions : 46 bids, hot sellers, bidders and auctions), one
JSON event per record value, without keys, round robin over the topic's
partitions (the i-th event to partition i mod P). The same --seed and
settings write the same events to the same partitions.

Event n's time is --base-time + n / --rate: --rate is events per second of
event time, not of production, which runs as fast as the broker
acknowledges (acks=all, batched). A tenth of the events are emitted up to
--max-delay after their time (out of order within that bound; below the 4s
a standard watermark holds back, so it drops nothing); --in-order turns
that off.

The topic is created with --partitions and retention.ms=-1 if it does not
exist (record timestamps are event times, 2025 by default, which time
retention would delete at once); an existing topic keeps its partitions
(an explicit --partitions must then match) and its retention.`,
		Example: `  weir nexmark generate --topic nexmark --events 1000000 --partitions 8
  weir nexmark generate --events 10000 --seed 7 --rate 1000 --format json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runNexmarkGenerate(cmd, a, o)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.topic, "topic", "t", "nexmark", "topic to write (created if missing)")
	f.Int64VarP(&o.events, "events", "n", 0, "events to generate (required)")
	f.Int32VarP(&o.partitions, "partitions", "p", 4, "partitions of the topic when it is created")
	f.Uint64Var(&o.seed, "seed", 0, "random seed: the same seed writes the same events")
	f.Int64VarP(&o.rate, "rate", "r", 10_000, "events per second of event time (sets the timestamps)")
	f.DurationVar(&o.maxDelay, "max-delay", 3*time.Second, "out-of-orderness bound: how late an event may be emitted")
	f.BoolVar(&o.inOrder, "in-order", false, "emit events in event-time order")
	f.StringVar(&o.baseTime, "base-time", nexmark.FormatTime(nexmark.DefaultBaseTime), "event time of the first event, UTC")
	_ = cmd.MarkFlagRequired("events")
	return cmd
}

func (o nexmarkGenOpts) config(cmd *cobra.Command) (nexmark.Config, error) {
	base, err := nexmark.ParseTime(o.baseTime)
	if err != nil {
		return nexmark.Config{}, fmt.Errorf("--base-time %q: want yyyy-MM-dd HH:mm:ss.SSS (UTC)", o.baseTime)
	}
	switch {
	case o.events <= 0:
		return nexmark.Config{}, fmt.Errorf("--events %d: want at least 1", o.events)
	case o.partitions <= 0:
		return nexmark.Config{}, fmt.Errorf("--partitions %d: want at least 1", o.partitions)
	case o.rate <= 0:
		return nexmark.Config{}, fmt.Errorf("--rate %d: want at least 1 event/s", o.rate)
	case o.maxDelay < 0 || (o.maxDelay == 0 && !o.inOrder && cmd.Flags().Changed("max-delay")):
		if o.maxDelay == 0 {
			return nexmark.Config{}, errors.New("--max-delay 0: use --in-order for no delays")
		}
		return nexmark.Config{}, fmt.Errorf("--max-delay %v: want a positive duration", o.maxDelay)
	}
	if base == 0 {
		return nexmark.Config{}, fmt.Errorf("--base-time %q: the epoch itself is not supported (it means the default); pick another time", o.baseTime)
	}
	c := nexmark.Config{Seed: o.seed, Events: o.events, Rate: o.rate, BaseTime: base, MaxDelay: o.maxDelay, InOrder: o.inOrder}
	return c, c.Validate()
}

func runNexmarkGenerate(cmd *cobra.Command, a *app, o nexmarkGenOpts) error {
	cfg, err := o.config(cmd)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	parts, created, err := nexmarkTopic(ctx, a, o, cmd.Flags().Changed("partitions"))
	if err != nil {
		return err
	}
	cfg.Partitions = parts
	g, err := nexmark.NewGenerator(cfg)
	if err != nil {
		return err
	}
	cl, err := a.client(ctx,
		kgo.DefaultProduceTopic(o.topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerLinger(2*time.Millisecond),
		kgo.ProducerBatchMaxBytes(1<<20),
		kgo.MaxBufferedRecords(50_000),
		kgo.RecordDeliveryTimeout(2*time.Minute),
	)
	if err != nil {
		return err
	}
	defer cl.Close()

	s := nexmarkSummary{Topic: o.topic, Partitions: parts, Created: created, Seed: o.seed}
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		once     sync.Once
		firstErr error
	)
	promise := func(_ *kgo.Record, err error) {
		if err != nil {
			once.Do(func() { firstErr = err; cancel() })
		}
	}
	first, last := int64(0), int64(0)
	start := time.Now()
	for pctx.Err() == nil {
		ev, p, ok := g.Next()
		if !ok {
			break
		}
		v, err := nexmark.Marshal(&ev)
		if err != nil {
			return err
		}
		t := ev.Time()
		if s.Events == 0 || t < first {
			first = t
		}
		last = max(last, t)
		s.Events++
		s.Bytes += int64(len(v))
		switch ev.Type {
		case nexmark.PersonEvent:
			s.Persons++
		case nexmark.AuctionEvent:
			s.Auctions++
		default:
			s.Bids++
		}
		cl.Produce(pctx, &kgo.Record{Partition: p, Value: v}, promise)
	}
	if err := cl.Flush(context.WithoutCancel(ctx)); err != nil && firstErr == nil {
		firstErr = err
	}
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("interrupted after sending %d of %d events to %q", s.Events, o.events, o.topic)
	case firstErr != nil:
		return fmt.Errorf("produce to %q failed after sending %d of %d events: %s", o.topic, s.Events, o.events, kafkaMessage(firstErr, ""))
	}
	el := time.Since(start)
	s.Seconds = el.Seconds()
	s.EventsPerSec = float64(s.Events) / max(el.Seconds(), 1e-9)
	s.FirstTime, s.LastTime = nexmark.FormatTime(first), nexmark.FormatTime(last)
	if a.json() {
		return writeJSON(cmd.OutOrStdout(), s)
	}
	what := "existing topic"
	if created {
		what = "new topic"
	}
	_, err = fmt.Fprintf(cmd.OutOrStdout(),
		"produced %d NEXMark events (%d persons, %d auctions, %d bids; %s) to %s %q (%d partitions) in %.2fs, %.0f events/s; seed %d, event time %s to %s\n",
		s.Events, s.Persons, s.Auctions, s.Bids, humanBytes(s.Bytes), what, o.topic, parts, s.Seconds, s.EventsPerSec, o.seed, s.FirstTime, s.LastTime)
	return err
}

// nexmarkTopic returns the partitions of the topic, creating it with
// --partitions if it does not exist; an explicit --partitions must match an
// existing topic.
func nexmarkTopic(ctx context.Context, a *app, o nexmarkGenOpts, explicit bool) (int32, bool, error) {
	octx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	adm, cl, err := a.admin(octx)
	if err != nil {
		return 0, false, err
	}
	defer cl.Close()
	existing := func() (int32, bool, error) {
		td, err := adm.ListTopics(octx, o.topic)
		if err != nil {
			return 0, false, a.explain("list topics", err)
		}
		d, ok := td[o.topic]
		if !ok || errors.Is(d.Err, kerr.UnknownTopicOrPartition) {
			return 0, false, nil
		}
		if d.Err != nil {
			return 0, false, topicError(o.topic, d.Err, "")
		}
		return int32(len(d.Partitions)), len(d.Partitions) > 0, nil
	}
	n, ok, err := existing()
	if err != nil {
		return 0, false, err
	}
	if ok {
		if explicit && n != o.partitions {
			return 0, false, fmt.Errorf("topic %q exists with %d partitions, not the %d of --partitions; use another --topic or delete it", o.topic, n, o.partitions)
		}
		return n, false, nil
	}
	// The events' timestamps are their event times (2025 by default):
	// the broker's time retention (7 days) would delete them at its next
	// check, so the topic keeps its records until deleted.
	forever := "-1"
	resp, err := adm.CreateTopic(octx, o.partitions, -1, map[string]*string{"retention.ms": &forever}, o.topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return 0, false, topicError(o.topic, err, resp.ErrMessage)
	}
	for {
		if n, ok, err := existing(); err == nil && ok && n > 0 {
			return n, true, nil
		}
		select {
		case <-octx.Done():
			return 0, false, fmt.Errorf("topic %q was created but is not visible in metadata", o.topic)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

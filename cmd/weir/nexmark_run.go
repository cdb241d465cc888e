package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"
	"unicode"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weirhq/weir/stream"
	"github.com/weirhq/weir/stream/nexmark/queries"
)

type nexmarkRunOpts struct {
	query, input, output, appID string
	guarantee, instanceID       string
	bounded                     bool
}

// nexmarkGuarantees maps --guarantee to the library's guarantees.
var nexmarkGuarantees = map[string]stream.Guarantee{
	"exactly_once":  stream.ExactlyOnce,
	"at_least_once": stream.AtLeastOnce,
}

// nexmarkRunSummary is the result of a bounded weir nexmark run.
type nexmarkRunSummary struct {
	Query         string  `json:"query"`
	Input         string  `json:"input"`
	Output        string  `json:"output"`
	ApplicationID string  `json:"application_id"`
	Guarantee     string  `json:"guarantee"`
	Records       int64   `json:"output_records"`
	Seconds       float64 `json:"seconds"`
}

func newNexmarkRunCmd(a *app) *cobra.Command {
	var o nexmarkRunOpts
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run a NEXMark query written with Weir's stream library",
		Long: `Run NEXMark query --query (q0, q1, q2, q3, q4, q5, q7 or q8) over the events of
--input, writing its output to --output (created with the input's partition
count if missing). The queries are package stream/nexmark/queries; their
outputs are those of docs/nexmark.md.

The run is a stream application (consumer group --application-id, default
weir-nexmark-<query>): without --bounded it runs until interrupted; with
--bounded it reads every input partition up to the end offset seen at
start, closes every window, flushes, commits, prints a summary and exits 0.
A second bounded run with the same application ID resumes from the
committed offsets (so has nothing left to do); use a new ID to run again.

--guarantee exactly_once (the default) writes each commit interval's
outputs, state changes and input offsets in one Kafka transaction: read the
output with isolation.level=read_committed (weir consume does) and a run
killed at any point and restarted gives the output of an uninterrupted
run. at_least_once loses nothing either but may repeat outputs after a
crash. The transactional id is <application-id>-<instance-id>, and
--instance-id is also the static group member id: restart a killed run
with the same --instance-id (the default, 0, is stable) and it fences the
dead one, aborting its open transaction at once; give each instance
running at the same time its own.`,
		Example: `  weir nexmark run --query q5 --input nexmark --output q5 --bounded
  weir nexmark run --query q4 --output q4 --application-id q4-run-2
  weir nexmark run --query q1 --guarantee at_least_once --instance-id host-2`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runNexmarkRun(cmd, a, o) },
	}
	f := cmd.Flags()
	f.StringVarP(&o.query, "query", "q", "", "query to run: "+strings.Join(queries.Names(), ", ")+" (required)")
	f.StringVarP(&o.input, "input", "i", "nexmark", "topic of NEXMark events to read")
	f.StringVarP(&o.output, "output", "o", "", "topic to write the query's output to (default nexmark-<query>)")
	f.StringVar(&o.appID, "application-id", "", "application ID: consumer group and internal topics' prefix (default weir-nexmark-<query>)")
	f.BoolVar(&o.bounded, "bounded", false, "stop at the input's end offsets seen at start, after closing every window")
	f.StringVar(&o.guarantee, "guarantee", "exactly_once", "processing guarantee: exactly_once (outputs in transactions, read them read_committed) or at_least_once")
	f.StringVar(&o.instanceID, "instance-id", "0", "this instance's name, stable across its restarts: transactional id <application-id>-<instance-id> and static group member id")
	_ = cmd.MarkFlagRequired("query")
	return cmd
}

func runNexmarkRun(cmd *cobra.Command, a *app, o nexmarkRunOpts) error {
	if !slices.Contains(queries.Names(), o.query) {
		return fmt.Errorf("--query %q: want one of %s", o.query, strings.Join(queries.Names(), ", "))
	}
	if o.output == "" {
		o.output = "nexmark-" + o.query
	}
	if o.appID == "" {
		o.appID = "weir-nexmark-" + o.query
	}
	if o.output == o.input {
		return fmt.Errorf("--output %q is the input topic", o.output)
	}
	guarantee, ok := nexmarkGuarantees[o.guarantee]
	if !ok {
		return fmt.Errorf("--guarantee %q: want exactly_once or at_least_once", o.guarantee)
	}
	if o.instanceID == "" || strings.ContainsFunc(o.instanceID, unicode.IsSpace) {
		return fmt.Errorf("--instance-id %q: want a non-empty name without spaces", o.instanceID)
	}
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := nexmarkRunTopics(ctx, a, o); err != nil {
		return err
	}
	topo := stream.NewTopology()
	if err := queries.Build(topo, o.query, o.input, o.output); err != nil {
		return err
	}
	// Static membership with the instance ID: a restarted instance takes
	// its partitions back at once instead of after its predecessor's
	// session timeout.
	app, err := stream.New(topo, stream.Config{Brokers: a.seeds(), ApplicationID: o.appID, Bounded: o.bounded,
		Guarantee: guarantee, InstanceID: o.instanceID, ClientOptions: []kgo.Opt{kgo.InstanceID(o.instanceID)}})
	if err != nil {
		return err
	}
	start := time.Now()
	if err := app.Run(ctx); err != nil {
		return fmt.Errorf("%s: %s", o.query, strings.ReplaceAll(strings.TrimSpace(err.Error()), "\n", "; "))
	}
	if !o.bounded || ctx.Err() != nil {
		return nil
	}
	s := nexmarkRunSummary{Query: o.query, Input: o.input, Output: o.output, ApplicationID: o.appID, Guarantee: o.guarantee,
		Seconds: time.Since(start).Seconds()}
	s.Records, err = nexmarkTopicRecords(ctx, a, o.output, guarantee == stream.ExactlyOnce)
	if err != nil {
		return err
	}
	if a.json() {
		return writeJSON(cmd.OutOrStdout(), s)
	}
	_, err = fmt.Fprintf(cmd.OutOrStdout(), "ran %s over %q to its end in %.2fs (application %q, %s); output topic %q holds %d records\n",
		s.Query, s.Input, s.Seconds, s.ApplicationID, s.Guarantee, s.Output, s.Records)
	return err
}

// nexmarkRunTopics checks that the input exists and creates the output
// topic, with the input's partition count and no time retention, if it is
// missing.
func nexmarkRunTopics(ctx context.Context, a *app, o nexmarkRunOpts) error {
	octx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	adm, cl, err := a.admin(octx)
	if err != nil {
		return err
	}
	defer cl.Close()
	td, err := adm.ListTopics(octx, o.input, o.output)
	if err != nil {
		return a.explain("list topics", err)
	}
	in, ok := td[o.input]
	if !ok || in.Err != nil || len(in.Partitions) == 0 {
		return fmt.Errorf("input topic %q does not exist; write one with weir nexmark generate --topic %s", o.input, o.input)
	}
	if out, ok := td[o.output]; ok && out.Err == nil && len(out.Partitions) > 0 {
		return nil
	}
	// The outputs carry event times as timestamps: time retention would
	// delete those of a replayed or backfilled input (NEXMark's default
	// base time is 2025-01-01) soon after they are written.
	forever := "-1"
	resp, err := adm.CreateTopic(octx, int32(len(in.Partitions)), -1, map[string]*string{"retention.ms": &forever}, o.output)
	if err == nil {
		err = resp.Err
	}
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return topicError(o.output, err, resp.ErrMessage)
	}
	return nil
}

// nexmarkTopicRecords counts the records of a topic. Without
// transactions it sums the end minus start offsets; with them (committed)
// it reads the topic read_committed up to its last stable offsets, since
// transaction markers and aborted records take offsets too.
func nexmarkTopicRecords(ctx context.Context, a *app, topic string, committed bool) (int64, error) {
	octx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	adm, cl, err := a.admin(octx)
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	list := adm.ListEndOffsets
	if committed {
		list = adm.ListCommittedOffsets
	}
	ends, err := list(octx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return 0, a.explain("list offsets of "+topic, err)
	}
	starts, err := adm.ListStartOffsets(octx, topic)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return 0, a.explain("list offsets of "+topic, err)
	}
	var n int64
	left := map[int32]int64{}
	from := map[int32]kgo.Offset{}
	ends.Each(func(e kadm.ListedOffset) {
		s, _ := starts.Lookup(topic, e.Partition)
		if e.Offset > s.Offset {
			n += e.Offset - s.Offset
			left[e.Partition] = e.Offset
			from[e.Partition] = kgo.NewOffset().At(s.Offset)
		}
	})
	if !committed || len(left) == 0 {
		return n, nil
	}
	rd, err := a.client(octx, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: from}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords())
	if err != nil {
		return 0, err
	}
	defer rd.Close()
	n = 0
	for len(left) > 0 {
		fs := rd.PollFetches(octx)
		if err := octx.Err(); err != nil {
			return 0, fmt.Errorf("count the records of %q: %w", topic, err)
		}
		if err := fs.Err0(); err != nil {
			return 0, a.explain("read "+topic, err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			end, ok := left[r.Partition]
			if !ok || r.Offset >= end {
				return
			}
			if !r.Attrs.IsControl() {
				n++
			}
			if r.Offset+1 >= end {
				delete(left, r.Partition)
			}
		})
	}
	return n, nil
}

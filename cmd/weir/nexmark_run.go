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

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/weirhq/weir/stream"
	"github.com/weirhq/weir/stream/nexmark/queries"
)

type nexmarkRunOpts struct {
	query, input, output, appID string
	bounded                     bool
}

// nexmarkRunSummary is the result of a bounded weir nexmark run.
type nexmarkRunSummary struct {
	Query         string  `json:"query"`
	Input         string  `json:"input"`
	Output        string  `json:"output"`
	ApplicationID string  `json:"application_id"`
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
weir-nexmark-<query>, at-least-once): without --bounded it runs until
interrupted; with --bounded it reads every input partition up to the end
offset seen at start, closes every window, flushes, commits, prints a
summary and exits 0. A second bounded run with the same application ID
resumes from the committed offsets (so has nothing left to do); use a new
ID to run again.`,
		Example: `  weir nexmark run --query q5 --input nexmark --output q5 --bounded
  weir nexmark run --query q4 --output q4 --application-id q4-run-2`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runNexmarkRun(cmd, a, o) },
	}
	f := cmd.Flags()
	f.StringVarP(&o.query, "query", "q", "", "query to run: "+strings.Join(queries.Names(), ", ")+" (required)")
	f.StringVarP(&o.input, "input", "i", "nexmark", "topic of NEXMark events to read")
	f.StringVarP(&o.output, "output", "o", "", "topic to write the query's output to (default nexmark-<query>)")
	f.StringVar(&o.appID, "application-id", "", "application ID: consumer group and internal topics' prefix (default weir-nexmark-<query>)")
	f.BoolVar(&o.bounded, "bounded", false, "stop at the input's end offsets seen at start, after closing every window")
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
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := nexmarkRunTopics(ctx, a, o); err != nil {
		return err
	}
	topo := stream.NewTopology()
	if err := queries.Build(topo, o.query, o.input, o.output); err != nil {
		return err
	}
	app, err := stream.New(topo, stream.Config{Brokers: a.seeds(), ApplicationID: o.appID, Bounded: o.bounded})
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
	s := nexmarkRunSummary{Query: o.query, Input: o.input, Output: o.output, ApplicationID: o.appID, Seconds: time.Since(start).Seconds()}
	s.Records, err = nexmarkTopicRecords(ctx, a, o.output)
	if err != nil {
		return err
	}
	if a.json() {
		return writeJSON(cmd.OutOrStdout(), s)
	}
	_, err = fmt.Fprintf(cmd.OutOrStdout(), "ran %s over %q to its end in %.2fs (application %q); output topic %q holds %d records\n",
		s.Query, s.Input, s.Seconds, s.ApplicationID, s.Output, s.Records)
	return err
}

// nexmarkRunTopics checks that the input exists and creates the output
// topic with the input's partition count if it is missing.
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
	resp, err := adm.CreateTopic(octx, int32(len(in.Partitions)), -1, nil, o.output)
	if err == nil {
		err = resp.Err
	}
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return topicError(o.output, err, resp.ErrMessage)
	}
	return nil
}

// nexmarkTopicRecords sums the end minus start offsets of a topic.
func nexmarkTopicRecords(ctx context.Context, a *app, topic string) (int64, error) {
	octx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	adm, cl, err := a.admin(octx)
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	ends, err := adm.ListEndOffsets(octx, topic)
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
	ends.Each(func(e kadm.ListedOffset) {
		s, _ := starts.Lookup(topic, e.Partition)
		n += e.Offset - s.Offset
	})
	return n, nil
}

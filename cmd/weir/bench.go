package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
)

// addObservabilityCmds registers weir bench and weir generate.
func addObservabilityCmds(root *cobra.Command, a *app) {
	bench := newBenchCmd(a)
	bench.GroupID = "client"
	root.AddCommand(bench, newGenerateCmd())
}

// benchOpts are the flags of weir bench.
type benchOpts struct {
	topic         string
	partitions    int32
	recordSize    int
	records       int64
	duration      time.Duration
	durationSet   bool
	rate          float64
	producers     int
	consumers     int
	acks          string
	compression   string
	keys          int
	maxInFlight   int
	linger        time.Duration
	batchMaxBytes int32
	group         string
	from          string
	drainTimeout  time.Duration
	noProgress    bool
	progress      bool // resolved: a terminal and not --no-progress
	allowLoss     bool
	txnRecords    int    // produce: records per transaction; 0 for none
	txnID         string // produce: transactional ID prefix, with txnRecords

	// beforeConsume, a test hook, runs in e2e mode after the producers
	// start and before the consumers do; acked reports the records
	// acknowledged so far.
	beforeConsume func(ctx context.Context, acked func() int64) error
}

const benchLong = `Measure a Kafka-protocol broker (Weir or any Kafka) with franz-go clients.

  produce  write records as fast as possible or at --rate; report throughput
           and produce-to-acknowledgement latency.
  consume  read a topic (by default from the start to the end offsets seen
           when the run begins: a catch-up read); report throughput.
  e2e      produce and consume at once; report both, the produce-to-consume
           latency of every record and the delivery ledger: acknowledged
           records never consumed (lost), consumed twice (duplicated) or out
           of order, per partition. Exits with status 3 if any.

Every record's value starts with a 28-byte stamp (run id, producer id,
sequence number, send time) followed by random bytes, so --record-size is at
least 28. At a fixed --rate the send time is the record's slot in the
schedule, so a stalled producer shows as latency instead of hiding it
(coordinated omission). Latencies come from an HDR histogram (1µs to 1h, 3
significant digits). MB/s counts 10^6 bytes of keys and values.

With --txn-records N, produce writes in transactions of N records: each
producer begins a transaction, produces N records, flushes, and commits
(EndTxn), one transaction after another, with the transactional ID
--transactional-id-<producer>. Throughput then counts committed records
only, and the summary adds the commit latency (EndTxn round trip). A
transaction still open when --duration ends is aborted.

The topic is created with --partitions if it does not exist. The run lasts
--records records (in total) or --duration, whichever is given; a progress
bar shows on an interactive terminal. Ctrl-C ends the run early and still
prints the summary.`

const benchExample = `  weir bench produce --partitions 16 --record-size 1024 --duration 30s
  weir bench produce --rate 5000 --records 100000 --acks all
  weir bench produce --max-in-flight 1 --records 2000      # one record at a time: ack latency
  weir bench produce --txn-records 1000 --duration 30s     # 1,000-record transactions: commit latency
  weir bench consume --topic weir-bench --consumers 2      # catch-up read of what is there
  weir bench e2e --rate 10000 --duration 1m --format json`

func newBenchCmd(a *app) *cobra.Command {
	o := &benchOpts{}
	cmd := &cobra.Command{
		Use:     "bench",
		Short:   "Benchmark a broker: throughput, latency percentiles, lost and duplicated records",
		Long:    benchLong,
		Example: benchExample,
		Args:    cobra.NoArgs,
	}
	pf := cmd.PersistentFlags()
	pf.StringVarP(&o.topic, "topic", "t", "weir-bench", "topic to use (created if missing)")
	pf.Int32VarP(&o.partitions, "partitions", "p", 16, "partitions of the topic when it is created")
	pf.IntVarP(&o.recordSize, "record-size", "s", 1024, "record value size in bytes (at least 28)")
	pf.Int64VarP(&o.records, "records", "n", 0, "records in total (0: run for --duration)")
	pf.DurationVarP(&o.duration, "duration", "d", 10*time.Second, "how long to run when --records is 0")
	pf.Float64VarP(&o.rate, "rate", "r", 0, "target records/s over all producers (0: as fast as possible)")
	pf.IntVar(&o.producers, "producers", 1, "producer clients, each with its own connection")
	pf.IntVar(&o.consumers, "consumers", 1, "consumer clients; partitions are split between them")
	pf.StringVar(&o.acks, "acks", "all", "acknowledgement: all (durable), leader, or none")
	pf.StringVarP(&o.compression, "compression", "z", "none", "batch compression: none, gzip, snappy, lz4 or zstd")
	pf.IntVar(&o.keys, "keys", 0, "distinct record keys, hashed to partitions (0: no keys, records spread)")
	pf.IntVar(&o.maxInFlight, "max-in-flight", 0, "unacknowledged records per producer (0: unlimited; 1: one at a time)")
	pf.DurationVar(&o.linger, "linger", 0, "producer linger before sending a batch")
	pf.Int32Var(&o.batchMaxBytes, "batch-max-bytes", 1000012, "largest record batch a producer builds")
	pf.StringVarP(&o.group, "group", "g", "", "consume as this consumer group (default: assign partitions directly)")
	pf.StringVar(&o.from, "from", "start", "consume: where to begin without committed offsets, start or end")
	pf.DurationVar(&o.drainTimeout, "drain-timeout", 30*time.Second, "e2e: how long consumers may take to catch up after the last acknowledgement")
	pf.BoolVar(&o.noProgress, "no-progress", false, "no progress bar (shown only when stderr is a terminal)")
	pf.BoolVar(&o.allowLoss, "allow-loss", false, "e2e: exit 0 even if records were lost, duplicated or reordered")
	pf.IntVar(&o.txnRecords, "txn-records", 0, "produce: records per transaction (0: no transactions)")
	pf.StringVar(&o.txnID, "transactional-id", "weir-bench", "produce: transactional ID prefix with --txn-records; producer i uses PREFIX-i")
	_ = cmd.RegisterFlagCompletionFunc("compression", cobra.FixedCompletions([]string{"none", "gzip", "snappy", "lz4", "zstd"}, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("acks", cobra.FixedCompletions([]string{"all", "leader", "none"}, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("from", cobra.FixedCompletions([]string{"start", "end"}, cobra.ShellCompDirectiveNoFileComp))

	for _, mode := range []struct{ name, short string }{
		{"produce", "Produce records; report throughput and acknowledgement latency"},
		{"consume", "Consume records; report throughput"},
		{"e2e", "Produce and consume at once; report latency end to end and lost, duplicated or reordered records"},
	} {
		cmd.AddCommand(&cobra.Command{
			Use:   mode.name,
			Short: mode.short,
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				o.durationSet = cmd.Flags().Changed("duration")
				o.progress = !o.noProgress && isTerminal(cmd.ErrOrStderr())
				return runBench(cmd, a, mode.name, *o)
			},
		})
	}
	return cmd
}

// check validates the options.
func (o *benchOpts) check() error {
	var errs []string
	if o.topic == "" {
		errs = append(errs, "--topic is empty")
	}
	if o.partitions < 1 {
		errs = append(errs, fmt.Sprintf("--partitions %d: want at least 1", o.partitions))
	}
	if o.recordSize < stampSize {
		errs = append(errs, fmt.Sprintf("--record-size %d: want at least %d (the stamp)", o.recordSize, stampSize))
	}
	if o.records < 0 {
		errs = append(errs, fmt.Sprintf("--records %d: want 0 or more", o.records))
	}
	if o.records == 0 && o.duration <= 0 {
		errs = append(errs, "give --records or a positive --duration")
	}
	if o.rate < 0 {
		errs = append(errs, fmt.Sprintf("--rate %g: want 0 (max) or more", o.rate))
	}
	if o.producers < 1 || o.consumers < 1 {
		errs = append(errs, "--producers and --consumers want at least 1")
	}
	if o.keys < 0 || o.maxInFlight < 0 {
		errs = append(errs, "--keys and --max-in-flight want 0 or more")
	}
	if o.txnRecords < 0 {
		errs = append(errs, fmt.Sprintf("--txn-records %d: want 0 (none) or more", o.txnRecords))
	}
	if o.txnRecords > 0 {
		if o.txnID == "" {
			errs = append(errs, "--transactional-id is empty")
		}
		if a := strings.ToLower(o.acks); a != "all" && a != "-1" {
			errs = append(errs, fmt.Sprintf("--txn-records with --acks %s: transactions want --acks all", o.acks))
		}
	}
	switch o.from {
	case "start", "end":
	default:
		errs = append(errs, fmt.Sprintf("--from %q: want start or end", o.from))
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "; "))
	}
	return nil
}

func runBench(cmd *cobra.Command, a *app, mode string, o benchOpts) error {
	if err := o.check(); err != nil {
		return err
	}
	if mode != "produce" && o.txnRecords > 0 {
		return fmt.Errorf("--txn-records: only with weir bench produce")
	}
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		stop() // the first Ctrl-C ends the run; a second one kills at once
	}()
	r, err := newBenchRun(ctx, a, mode, o, cmd.ErrOrStderr())
	if err != nil {
		return err
	}
	defer r.close()
	var rep *benchReport
	switch mode {
	case "produce":
		rep, err = r.produceOnly(ctx)
	case "consume":
		rep, err = r.consumeOnly(ctx)
	case "e2e":
		rep, err = r.endToEnd(ctx)
	}
	if err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	if a.json() {
		err = writeJSON(out, rep)
	} else {
		err = rep.writeText(out)
	}
	if err != nil {
		return err
	}
	if rep.Delivery != nil && !rep.Delivery.ok() && !o.allowLoss {
		return exitError{code: 3}
	}
	return nil
}

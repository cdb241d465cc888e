package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// The weir txn commands are shaped like KIP-664's kafka-transactions.sh:
// list and describe ask the transaction coordinator (ListTransactions,
// DescribeTransactions); producers and abort ask a partition's leader
// (DescribeProducers, WriteTxnMarkers), which is how a hanging
// transaction — one holding a partition's last stable offset with no
// producer left to end it — is found and aborted.

func newTxnCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "txn",
		Aliases: []string{"transactions"},
		Short:   "List and describe transactions; find and abort hanging ones",
		Long: `Inspect transactions and end hanging ones, as Kafka's kafka-transactions.sh
(KIP-664) does.

A hanging transaction holds a partition's last stable offset: read_committed
consumers stop before its first record until it ends. Normally its producer
commits or aborts it, or the coordinator aborts it after its timeout; when
neither can happen, find it with 'weir txn producers' (its first offset is in
CURRENT-TXN-START) and end it with 'weir txn abort'.`,
	}
	cmd.AddCommand(newTxnListCmd(a), newTxnDescribeCmd(a), newTxnProducersCmd(a), newTxnAbortCmd(a))
	return cmd
}

// timeLayout prints timestamps at a fixed width, so tables stay aligned.
const timeLayout = "2006-01-02T15:04:05.000Z07:00"

// txnStates are Kafka's transaction state names, for --state.
var txnStates = []string{"Empty", "Ongoing", "PrepareCommit", "PrepareAbort", "CompleteCommit", "CompleteAbort",
	"Dead", "PrepareEpochFence"}

type txnListed struct {
	TransactionalID string `json:"transactional_id"`
	ProducerID      int64  `json:"producer_id"`
	State           string `json:"state"`
	Coordinator     int32  `json:"coordinator"`
}

func newTxnListCmd(a *app) *cobra.Command {
	var (
		states    []string
		producers []int64
	)
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List transactional ids with their producer id and state",
		Example: `  weir txn list
  weir txn list --state Ongoing
  weir txn list --producer-id 1000`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			for _, s := range states {
				if !slices.Contains(txnStates, s) {
					return fmt.Errorf("--state %q: want one of %s", s, strings.Join(txnStates, ", "))
				}
			}
			ctx, adm, _, release, err := a.adminFor(cmd)
			if err != nil {
				return err
			}
			defer release()
			listed, err := adm.ListTransactions(ctx, producers, states)
			if err != nil {
				return a.explain("list transactions", err)
			}
			out := []txnListed{}
			for _, l := range listed.Sorted() {
				out = append(out, txnListed{l.TxnID, l.ProducerID, l.State, l.Coordinator})
			}
			if a.json() {
				return writeJSON(cmd.OutOrStdout(), out)
			}
			t := newTable(cmd.OutOrStdout(), "TRANSACTIONAL-ID", "PRODUCER-ID", "STATE", "COORDINATOR")
			for _, l := range out {
				t.row(l.TransactionalID, l.ProducerID, l.State, l.Coordinator)
			}
			return t.flush()
		},
	}
	f := cmd.Flags()
	f.StringSliceVar(&states, "state", nil, "only transactions in these states ("+strings.Join(txnStates, ", ")+")")
	f.Int64SliceVar(&producers, "producer-id", nil, "only transactions of these producer ids")
	_ = cmd.RegisterFlagCompletionFunc("state", cobra.FixedCompletions(txnStates, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

type txnDescribed struct {
	TransactionalID string `json:"transactional_id"`
	Coordinator     int32  `json:"coordinator"`
	State           string `json:"state"`
	ProducerID      int64  `json:"producer_id"`
	ProducerEpoch   int16  `json:"producer_epoch"`
	TimeoutMs       int32  `json:"timeout_ms"`
	// StartTimeMs is -1 when no transaction was begun; DurationMs is
	// null unless one is open (Ongoing or Prepare*).
	StartTimeMs int64             `json:"start_time_ms"`
	DurationMs  *int64            `json:"duration_ms"`
	Partitions  []txnPartitionRef `json:"partitions"`
}

type txnPartitionRef struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
}

func newTxnDescribeCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "describe TRANSACTIONAL-ID...",
		Short: "Show a transactional id's state, producer, timeout, start and partitions",
		Args:  wantArgs(1, -1, "TRANSACTIONAL-ID names"),
		RunE: func(cmd *cobra.Command, ids []string) error {
			ctx, adm, _, release, err := a.adminFor(cmd)
			if err != nil {
				return err
			}
			defer release()
			described, err := adm.DescribeTransactions(ctx, ids...)
			if err != nil {
				return a.explain("describe transactions", err)
			}
			now := time.Now()
			var out []txnDescribed
			for _, id := range ids {
				d, ok := described[id]
				if !ok {
					return fmt.Errorf("transactional id %q: missing from the broker's answer", id)
				}
				if d.Err != nil {
					return txnIDError(id, d.Err)
				}
				td := txnDescribed{TransactionalID: id, Coordinator: d.Coordinator, State: d.State, ProducerID: d.ProducerID,
					ProducerEpoch: d.ProducerEpoch, TimeoutMs: d.TimeoutMillis, StartTimeMs: d.StartTimestamp,
					Partitions: []txnPartitionRef{}}
				if d.StartTimestamp >= 0 && (d.State == "Ongoing" || strings.HasPrefix(d.State, "Prepare")) {
					ms := max(now.UnixMilli()-d.StartTimestamp, 0)
					td.DurationMs = &ms
				}
				for _, tp := range d.Topics.Sorted() {
					for _, p := range tp.Partitions {
						td.Partitions = append(td.Partitions, txnPartitionRef{tp.Topic, p})
					}
				}
				out = append(out, td)
			}
			if a.json() {
				return writeJSON(cmd.OutOrStdout(), out)
			}
			w := cmd.OutOrStdout()
			for i, d := range out {
				if i > 0 {
					fmt.Fprintln(w)
				}
				t := newTable(w)
				t.row("TRANSACTIONAL-ID", d.TransactionalID)
				t.row("STATE", d.State)
				t.row("PRODUCER-ID", d.ProducerID)
				t.row("PRODUCER-EPOCH", d.ProducerEpoch)
				t.row("TIMEOUT", (time.Duration(d.TimeoutMs) * time.Millisecond).String())
				if d.StartTimeMs >= 0 {
					t.row("START-TIME", time.UnixMilli(d.StartTimeMs).UTC().Format(timeLayout))
				} else {
					t.row("START-TIME", "")
				}
				if d.DurationMs != nil {
					t.row("DURATION", (time.Duration(*d.DurationMs) * time.Millisecond).String())
				}
				t.row("COORDINATOR", d.Coordinator)
				parts := make([]string, len(d.Partitions))
				for i, p := range d.Partitions {
					parts[i] = fmt.Sprintf("%s/%d", p.Topic, p.Partition)
				}
				t.row("PARTITIONS", strings.Join(parts, " "))
				if err := t.flush(); err != nil {
					return err
				}
			}
			return nil
		},
	}
}

// txnIDError explains a per-transactional-id error.
func txnIDError(id string, err error) error {
	if errors.Is(err, kerr.TransactionalIDNotFound) {
		return fmt.Errorf("transactional id %q does not exist", id)
	}
	return fmt.Errorf("transactional id %q: %s", id, kafkaMessage(err, ""))
}

type producerDescribed struct {
	Topic            string `json:"topic"`
	Partition        int32  `json:"partition"`
	ProducerID       int64  `json:"producer_id"`
	ProducerEpoch    int16  `json:"producer_epoch"`
	LastSequence     int32  `json:"last_sequence"`
	LastTimestamp    int64  `json:"last_timestamp"`
	CoordinatorEpoch int32  `json:"coordinator_epoch"`
	// TxnStartOffset is the first offset of the producer's open
	// transaction on the partition, -1 when none is open.
	TxnStartOffset int64 `json:"current_txn_start_offset"`
}

func newTxnProducersCmd(a *app) *cobra.Command {
	var partitions []int32
	cmd := &cobra.Command{
		Use:   "producers TOPIC",
		Short: "Show the producers of a topic's partitions and where their open transactions start",
		Long: `Show, per partition, the producers its leader knows: producer id and epoch,
last sequence and timestamp, the coordinator epoch of its last transaction
marker, and CURRENT-TXN-START, the first offset of its open transaction ("-"
when none). A transaction whose start stays put while the partition's last
stable offset does too is hanging: abort it with 'weir txn abort'.`,
		Example: `  weir txn producers orders
  weir txn producers orders -p 0`,
		Args: wantArgs(1, 1, "one TOPIC"),
		RunE: func(cmd *cobra.Command, args []string) error {
			topic := args[0]
			ctx, adm, _, release, err := a.adminFor(cmd)
			if err != nil {
				return err
			}
			defer release()
			td, err := existingTopics(ctx, a, adm, topic)
			if err != nil {
				return err
			}
			if len(partitions) == 0 {
				partitions = td[topic].Partitions.Numbers()
			}
			for _, p := range partitions {
				if _, ok := td[topic].Partitions[p]; !ok {
					return fmt.Errorf("topic %q has no partition %d", topic, p)
				}
			}
			set := kadm.TopicsSet{}
			set.Add(topic, partitions...)
			described, err := adm.DescribeProducers(ctx, set)
			if err != nil {
				return a.explain("describe producers", err)
			}
			out := []producerDescribed{}
			for _, dp := range described.SortedPartitions() {
				if dp.Err != nil {
					return fmt.Errorf("%s/%d: %s", dp.Topic, dp.Partition, kafkaMessage(dp.Err, dp.ErrMessage))
				}
				for _, pr := range dp.ActiveProducers.Sorted() {
					out = append(out, producerDescribed{pr.Topic, pr.Partition, pr.ProducerID, pr.ProducerEpoch,
						pr.LastSequence, pr.LastTimestamp, pr.CoordinatorEpoch, pr.CurrentTxnStartOffset})
				}
			}
			if a.json() {
				return writeJSON(cmd.OutOrStdout(), out)
			}
			t := newTable(cmd.OutOrStdout(), "PARTITION", "PRODUCER-ID", "EPOCH", "LAST-SEQUENCE", "LAST-TIMESTAMP",
				"COORDINATOR-EPOCH", "CURRENT-TXN-START")
			for _, p := range out {
				start := "-"
				if p.TxnStartOffset >= 0 {
					start = fmt.Sprint(p.TxnStartOffset)
				}
				ts := "-"
				if p.LastTimestamp >= 0 {
					ts = time.UnixMilli(p.LastTimestamp).UTC().Format(timeLayout)
				}
				t.row(p.Partition, p.ProducerID, p.ProducerEpoch, p.LastSequence, ts, p.CoordinatorEpoch, start)
			}
			return t.flush()
		},
		ValidArgsFunction: completeTopics(a),
	}
	cmd.Flags().Int32SliceVarP(&partitions, "partition", "p", nil, "only these partitions")
	return cmd
}

type txnAborted struct {
	Topic            string `json:"topic"`
	Partition        int32  `json:"partition"`
	ProducerID       int64  `json:"producer_id"`
	ProducerEpoch    int16  `json:"producer_epoch"`
	CoordinatorEpoch int32  `json:"coordinator_epoch"`
	// StartOffset is the transaction's first offset when found with
	// --start-offset, else null.
	StartOffset *int64 `json:"start_offset"`
}

func newTxnAbortCmd(a *app) *cobra.Command {
	var (
		topic            string
		partition        int32
		startOffset      int64
		producerID       int64
		producerEpoch    int16
		coordinatorEpoch int32
	)
	cmd := &cobra.Command{
		Use:   "abort --topic TOPIC --partition N (--start-offset OFFSET | --producer-id ID --producer-epoch E --coordinator-epoch C)",
		Short: "Abort a hanging transaction on one partition",
		Long: `Abort one producer's open transaction on one partition by writing an abort
marker there (WriteTxnMarkers), as kafka-transactions.sh abort does: its
records are then never read by read_committed consumers, and they read on.

Name the transaction by the offset it starts at (CURRENT-TXN-START in
'weir txn producers'): the producer, its epoch and coordinator epoch are
looked up. Or name the producer directly, with its epoch and the coordinator
epoch of its last marker (0 when it has none).

Only the partition's own copy of the transaction ends; its coordinator is not
told. Use this for transactions nothing else can end: a live producer's
transaction would lose its records on this partition.`,
		Example: `  weir txn abort --topic orders --partition 0 --start-offset 1042
  weir txn abort --topic orders --partition 0 --producer-id 1000 --producer-epoch 3 --coordinator-epoch 0`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f := cmd.Flags()
			hasStart, hasProducer, hasPE := f.Changed("start-offset"), f.Changed("producer-id"), f.Changed("producer-epoch")
			switch {
			case topic == "" || !f.Changed("partition"):
				return errors.New("--topic and --partition are required")
			case hasStart == (hasProducer || hasPE || f.Changed("coordinator-epoch")):
				return errors.New("name the transaction either by --start-offset or by --producer-id, --producer-epoch and --coordinator-epoch")
			case hasProducer && (!hasPE || !f.Changed("coordinator-epoch")):
				return errors.New("--producer-id needs --producer-epoch and --coordinator-epoch")
			case hasStart && startOffset < 0:
				return fmt.Errorf("--start-offset %d: want an offset ≥ 0", startOffset)
			case hasProducer && (producerID < 0 || producerEpoch < 0 || coordinatorEpoch < 0):
				return errors.New("--producer-id, --producer-epoch and --coordinator-epoch must be ≥ 0")
			}
			ctx, adm, _, release, err := a.adminFor(cmd)
			if err != nil {
				return err
			}
			defer release()
			td, err := existingTopics(ctx, a, adm, topic)
			if err != nil {
				return err
			}
			if _, ok := td[topic].Partitions[partition]; !ok {
				return fmt.Errorf("topic %q has no partition %d", topic, partition)
			}
			res := txnAborted{Topic: topic, Partition: partition, ProducerID: producerID, ProducerEpoch: producerEpoch,
				CoordinatorEpoch: coordinatorEpoch}
			if hasStart {
				pr, err := producerAt(ctx, a, adm, topic, partition, startOffset)
				if err != nil {
					return err
				}
				// As kafka-transactions.sh: a producer without a marker
				// yet reports -1; markers carry 0 at least.
				res.ProducerID, res.ProducerEpoch, res.CoordinatorEpoch = pr.ProducerID, pr.ProducerEpoch, max(pr.CoordinatorEpoch, 0)
				res.StartOffset = &startOffset
			}
			set := kadm.TopicsSet{}
			set.Add(topic, partition)
			written, err := adm.WriteTxnMarkers(ctx, kadm.TxnMarkers{ProducerID: res.ProducerID, ProducerEpoch: res.ProducerEpoch,
				CoordinatorEpoch: res.CoordinatorEpoch, Topics: set})
			if err != nil {
				return a.explain("write the abort marker", err)
			}
			wp, ok := written[res.ProducerID].Topics[topic].Partitions[partition]
			if !ok {
				return fmt.Errorf("write the abort marker: %s/%d missing from the broker's answer", topic, partition)
			}
			if wp.Err != nil {
				return abortError(topic, partition, wp.Err)
			}
			if a.json() {
				return writeJSON(cmd.OutOrStdout(), res)
			}
			from := ""
			if res.StartOffset != nil {
				from = fmt.Sprintf(", which started at offset %d", *res.StartOffset)
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "Aborted the transaction of producer %d (epoch %d, coordinator epoch %d) on %s/%d%s.\n",
				res.ProducerID, res.ProducerEpoch, res.CoordinatorEpoch, topic, partition, from)
			return err
		},
	}
	f := cmd.Flags()
	f.StringVarP(&topic, "topic", "t", "", "the partition's topic")
	f.Int32VarP(&partition, "partition", "p", 0, "the partition")
	f.Int64Var(&startOffset, "start-offset", -1, "the first offset of the transaction to abort (CURRENT-TXN-START in 'weir txn producers')")
	f.Int64Var(&producerID, "producer-id", -1, "the producer whose transaction to abort")
	f.Int16Var(&producerEpoch, "producer-epoch", -1, "the producer's epoch (with --producer-id)")
	f.Int32Var(&coordinatorEpoch, "coordinator-epoch", -1, "the coordinator epoch of the producer's last marker, 0 if none (with --producer-id)")
	_ = cmd.RegisterFlagCompletionFunc("topic", completeTopics(a))
	return cmd
}

// producerAt finds the producer whose open transaction on the partition
// starts at offset.
func producerAt(ctx context.Context, a *app, adm *kadm.Client, topic string, partition int32, offset int64) (kadm.DescribedProducer, error) {
	set := kadm.TopicsSet{}
	set.Add(topic, partition)
	described, err := adm.DescribeProducers(ctx, set)
	if err != nil {
		return kadm.DescribedProducer{}, a.explain("describe producers", err)
	}
	dp, ok := described[topic].Partitions[partition]
	if !ok {
		return kadm.DescribedProducer{}, fmt.Errorf("describe producers: %s/%d missing from the broker's answer", topic, partition)
	}
	if dp.Err != nil {
		return kadm.DescribedProducer{}, fmt.Errorf("%s/%d: %s", topic, partition, kafkaMessage(dp.Err, dp.ErrMessage))
	}
	var open []string
	for _, pr := range dp.ActiveProducers.Sorted() {
		if pr.CurrentTxnStartOffset == offset {
			return pr, nil
		}
		if pr.CurrentTxnStartOffset >= 0 {
			open = append(open, fmt.Sprint(pr.CurrentTxnStartOffset))
		}
	}
	if len(open) == 0 {
		return kadm.DescribedProducer{}, fmt.Errorf("no transaction is open on %s/%d", topic, partition)
	}
	return kadm.DescribedProducer{}, fmt.Errorf("no open transaction starts at offset %d on %s/%d (open ones start at %s)",
		offset, topic, partition, strings.Join(open, ", "))
}

// abortError explains a refused abort marker.
func abortError(topic string, partition int32, err error) error {
	switch {
	case errors.Is(err, kerr.InvalidProducerEpoch), errors.Is(err, kerr.ProducerFenced):
		return fmt.Errorf("%s/%d: the producer's epoch there is newer than --producer-epoch (see 'weir txn producers %s')", topic, partition, topic)
	case errors.Is(err, kerr.TransactionCoordinatorFenced):
		return fmt.Errorf("%s/%d: a newer coordinator epoch wrote there than --coordinator-epoch (see 'weir txn producers %s')", topic, partition, topic)
	}
	return fmt.Errorf("%s/%d: %s", topic, partition, kafkaMessage(err, ""))
}

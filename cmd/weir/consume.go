package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

type consumeOpts struct {
	from       string
	count      int
	group      string
	exitAtEnd  bool
	template   string
	partitions []int32
	isolation  string
}

// Isolation levels of --isolation.
const (
	readCommitted   = "read_committed"
	readUncommitted = "read_uncommitted"
)

// committed reports whether the consumer reads committed data only; an
// error names the values --isolation takes.
func (o consumeOpts) committed() (bool, error) {
	switch o.isolation {
	case readCommitted:
		return true, nil
	case readUncommitted:
		return false, nil
	}
	return false, fmt.Errorf("--isolation %q: want %s or %s", o.isolation, readCommitted, readUncommitted)
}

// isolationOpts are the client options of the isolation level: Kafka's
// read_committed or read_uncommitted fetches, with control records kept so
// that positions (and -e's end) move past transaction markers; they are
// never printed.
func isolationOpts(committed bool) []kgo.Opt {
	opts := []kgo.Opt{kgo.KeepControlRecords()}
	if committed {
		opts = append(opts, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	}
	return opts
}

func newConsumeCmd(a *app) *cobra.Command {
	var o consumeOpts
	cmd := &cobra.Command{
		Use:   "consume TOPIC",
		Short: "Read records from a topic, following new ones until interrupted",
		Long: `Read records from a topic and print them: values, one per line, by default;
JSON lines with --format json; or any layout with --template (like kcat -f).

By default it follows the topic until Ctrl-C; -e exits once it has read up
to the end as it was at start, and -n exits after COUNT records.

--from picks the start: ` + positionHelp + `.
With --group, consumption is shared with the group's other members and
progress is committed to the group, so the next run resumes where this one
stopped; --from then applies only to partitions without a committed offset.

Template verbs: ` + templateVerbs + `.

It reads committed data only, as a read_committed Kafka consumer: records of
open transactions wait for their commit and those of aborted ones are never
printed; -e ends at the last stable offset. --isolation read_uncommitted
reads everything written, transactions open and aborted alike.

In JSON lines, key and value are strings (null when absent; bytes that are
not UTF-8 become U+FFFD) and timestamp is in Unix milliseconds.`,
		Example: `  weir consume demo -e                      # everything so far, then exit
  weir consume demo --from end              # only new records
  weir consume demo --from -15m -n 10       # ten records from 15 minutes ago
  weir consume demo -g workers -n 1         # one record, as group "workers"
  weir consume demo -f '%p/%o %k=%v %h'     # partition/offset key=value headers`,
		Args: wantArgs(1, 1, "one TOPIC"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runConsume(cmd, a, args[0], o)
		},
		ValidArgsFunction: completeTopics(a),
	}
	f := cmd.Flags()
	f.StringVarP(&o.from, "from", "o", "beginning", "where to start: beginning, end, an offset, or a time (see above)")
	f.IntVarP(&o.count, "num", "n", 0, "exit after COUNT records (0: no limit)")
	f.StringVarP(&o.group, "group", "g", "", "consume as a member of this consumer group, committing progress")
	f.BoolVarP(&o.exitAtEnd, "exit-at-end", "e", false, "exit after the last record present at start instead of following")
	f.StringVarP(&o.template, "template", "f", "", "print each record with this format string, e.g. '%k %v' (verbs above)")
	f.Int32SliceVarP(&o.partitions, "partition", "p", nil, "only these partitions (not with --group)")
	f.StringVar(&o.isolation, "isolation", readCommitted, "read_committed (transactions' committed records only) or read_uncommitted")
	_ = cmd.RegisterFlagCompletionFunc("isolation", cobra.FixedCompletions([]string{readCommitted, readUncommitted}, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("from", cobra.FixedCompletions([]string{"beginning", "end"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

// consumeState tracks how far each partition has been read, to know when -e
// has reached the end.
type consumeState struct {
	mu       sync.Mutex
	next     map[int32]int64 // the next offset to read
	end      map[int32]int64 // high watermarks at start
	assigned map[int32]bool  // partitions we read; in a group, those assigned
	joined   bool            // group mode: assigned at least once
}

// atEnd reports whether every partition read is at its start-time end.
func (s *consumeState) atEnd() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.joined {
		return false
	}
	for p := range s.assigned {
		if s.next[p] < s.end[p] {
			return false
		}
	}
	return true
}

func runConsume(cmd *cobra.Command, a *app, topic string, o consumeOpts) error {
	committed, err := o.committed()
	if err != nil {
		return err
	}
	pos, err := parsePosition(o.from, time.Now(), false)
	if err != nil {
		return fmt.Errorf("--from: %w", err)
	}
	var tmpl recordTemplate
	if o.template != "" {
		if a.json() {
			return errors.New("use --template or --format json, not both")
		}
		if tmpl, err = parseTemplate(o.template); err != nil {
			return fmt.Errorf("--template: %w", err)
		}
	}
	if o.count < 0 {
		return fmt.Errorf("--num %d: want 0 (no limit) or more", o.count)
	}
	if o.group != "" && len(o.partitions) > 0 {
		return errors.New("--partition cannot be used with --group (the group assigns partitions)")
	}
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	// Resolve where each partition starts, and where it ends now.
	setupCtx, cancelSetup := context.WithTimeout(ctx, opTimeout)
	defer cancelSetup()
	adm, acl, err := a.admin(setupCtx)
	if err != nil {
		return err
	}
	defer acl.Close()
	td, err := existingTopics(setupCtx, a, adm, topic)
	if err != nil {
		return err
	}
	all := td[topic].Partitions.Numbers()
	for _, p := range o.partitions {
		if !slices.Contains(all, p) {
			return fmt.Errorf("topic %q has no partition %d (it has %d)", topic, p, len(all))
		}
	}
	bounds, err := listBoundsAt(setupCtx, a, adm, committed, topic)
	if err != nil {
		return err
	}
	starts, err := pos.resolve(setupCtx, a, adm, topic, bounds[topic], nil)
	if err != nil {
		return err
	}
	st := &consumeState{next: map[int32]int64{}, end: map[int32]int64{}, assigned: map[int32]bool{}}
	for p, b := range bounds[topic] {
		st.end[p] = b.end
		st.next[p] = starts[p]
	}

	opts := append([]kgo.Opt{kgo.FetchMaxWait(time.Second)}, isolationOpts(committed)...)
	pollCtx, stopPoll := context.WithCancel(ctx)
	defer stopPoll()
	if o.group != "" {
		committed, err := adm.FetchOffsets(setupCtx, o.group)
		if err != nil {
			return a.explain("fetch offsets of group "+o.group, err)
		}
		committed.Each(func(c kadm.OffsetResponse) {
			if c.Topic == topic && c.Err == nil && c.At >= 0 {
				st.next[c.Partition] = c.At
			}
		})
		reset := map[posKind]kgo.Offset{
			posStart: kgo.NewOffset().AtStart(), posEnd: kgo.NewOffset().AtEnd(),
			posOffset: kgo.NewOffset().At(pos.offset), posTime: kgo.NewOffset().AfterMilli(pos.millis),
		}[pos.kind]
		onAssigned := func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			st.mu.Lock()
			for _, p := range m[topic] {
				st.assigned[p] = true
			}
			st.joined = true
			st.mu.Unlock()
			if o.exitAtEnd && st.atEnd() {
				stopPoll() // nothing to read: wake the poll
			}
		}
		onRevoked := func(ctx context.Context, cl *kgo.Client, m map[string][]int32) {
			st.mu.Lock()
			for _, p := range m[topic] {
				delete(st.assigned, p)
			}
			st.mu.Unlock()
			_ = cl.CommitMarkedOffsets(ctx)
		}
		opts = append(opts,
			kgo.ConsumerGroup(o.group),
			kgo.ConsumeTopics(topic),
			kgo.ConsumeResetOffset(reset),
			kgo.AutoCommitMarks(),
			kgo.OnPartitionsAssigned(onAssigned),
			kgo.OnPartitionsRevoked(onRevoked),
			kgo.OnPartitionsLost(onRevoked),
		)
	} else {
		read := o.partitions
		if len(read) == 0 {
			read = all
		}
		offsets := map[int32]kgo.Offset{}
		for _, p := range read {
			offsets[p] = kgo.NewOffset().At(starts[p])
			st.assigned[p] = true
		}
		st.joined = true
		opts = append(opts, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: offsets}))
	}
	acl.Close()
	cancelSetup()

	cl, err := a.client(ctx, opts...)
	if err != nil {
		return err
	}
	defer cl.Close()
	if o.group != "" {
		defer func() {
			// Commit what was printed, even after Ctrl-C, then leave.
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			_ = cl.CommitMarkedOffsets(cctx)
		}()
	}
	stderr := cmd.ErrOrStderr()
	if isTerminal(stderr) && !o.exitAtEnd && o.count == 0 {
		fmt.Fprintf(stderr, "Consuming %s from %s; Ctrl-C to stop.\n", topic, o.from)
	}

	out := bufio.NewWriter(cmd.OutOrStdout())
	defer out.Flush()
	var (
		buf  bytes.Buffer
		seen int
	)
	for {
		if o.exitAtEnd && st.atEnd() {
			return nil
		}
		max := 0
		if o.count > 0 {
			max = o.count - seen
		}
		fetches := cl.PollRecords(pollCtx, max)
		if fetches.IsClientClosed() {
			return nil
		}
		var fatal error
		fetches.EachError(func(t string, p int32, err error) {
			var loss *kgo.ErrDataLoss
			switch {
			case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
			case errors.As(err, &loss):
				fmt.Fprintf(stderr, "weir: warning: %v\n", err)
			case fatal == nil:
				fatal = topicError(t, err, "")
			}
		})
		for _, r := range fetches.Records() {
			if r.Attrs.IsControl() {
				// A transaction marker: not printed, but read past.
				if o.group != "" {
					cl.MarkCommitRecords(r)
				}
				st.mu.Lock()
				st.next[r.Partition] = r.Offset + 1
				st.mu.Unlock()
				continue
			}
			buf.Reset()
			switch {
			case tmpl != nil:
				tmpl.write(&buf, r)
			case a.json():
				_ = writeJSONCompact(&buf, newRecordJSON(r))
			default:
				buf.Write(r.Value)
				buf.WriteByte('\n')
			}
			if _, err := out.Write(buf.Bytes()); err != nil {
				return err
			}
			if o.group != "" {
				cl.MarkCommitRecords(r)
			}
			st.mu.Lock()
			st.next[r.Partition] = r.Offset + 1
			st.mu.Unlock()
			seen++
			if o.count > 0 && seen >= o.count {
				return nil
			}
		}
		if err := out.Flush(); err != nil {
			return err
		}
		if fatal != nil {
			return fatal
		}
		if pollCtx.Err() != nil {
			return nil // interrupted, or -e with nothing to read
		}
	}
}

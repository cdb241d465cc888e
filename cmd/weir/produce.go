package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

type produceOpts struct {
	value       string
	valueSet    bool
	key         string
	keySet      bool
	keySep      string
	headers     []string
	partition   int32
	compression string
	acks        string
	verbose     bool
}

// produced is one acknowledged record in -v output.
type produced struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
	Timestamp int64  `json:"timestamp"`
}

func newProduceCmd(a *app) *cobra.Command {
	var o produceOpts
	cmd := &cobra.Command{
		Use:   "produce TOPIC",
		Short: "Write records to a topic: one per line of stdin, or --value",
		Long: `Write records to a topic: one record per line of standard input (without its
line ending), or the single record given by --value. Records are acknowledged
according to --acks (all: written and fsynced on Weir). Topics that do not
exist are created if the broker allows auto-creation.`,
		Example: `  echo hello | weir produce demo
  weir produce demo --value '{"id":1}' --key user-1 -H source=cli
  printf 'k1:v1\nk2:v2\n' | weir produce demo -K : -v`,
		Args: wantArgs(1, 1, "one TOPIC"),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.valueSet = cmd.Flags().Changed("value")
			o.keySet = cmd.Flags().Changed("key")
			return runProduce(cmd, a, args[0], o)
		},
		ValidArgsFunction: completeTopics(a),
	}
	f := cmd.Flags()
	f.StringVar(&o.value, "value", "", "produce one record with this value instead of reading stdin")
	f.StringVarP(&o.key, "key", "k", "", "key of every record")
	f.StringVarP(&o.keySep, "key-separator", "K", "", "split each line at the first SEP into key and value (like kcat -K)")
	f.StringArrayVarP(&o.headers, "header", "H", nil, "record header key=value (repeatable)")
	f.Int32VarP(&o.partition, "partition", "p", -1, "partition to write to (-1: by key hash, or spread when keyless)")
	f.StringVarP(&o.compression, "compression", "z", "none", "batch compression: none, gzip, snappy, lz4 or zstd")
	f.StringVar(&o.acks, "acks", "all", "acknowledgement: all (durable), leader, or none (fire and forget)")
	f.BoolVarP(&o.verbose, "verbose", "v", false, "print each record's partition and offset")
	_ = cmd.RegisterFlagCompletionFunc("compression", cobra.FixedCompletions([]string{"none", "gzip", "snappy", "lz4", "zstd"}, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("acks", cobra.FixedCompletions([]string{"all", "leader", "none"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

func (o produceOpts) clientOpts(topic string) ([]kgo.Opt, error) {
	opts := []kgo.Opt{
		kgo.DefaultProduceTopic(topic),
		kgo.AllowAutoTopicCreation(),
		kgo.RecordDeliveryTimeout(opTimeout),
		kgo.UnknownTopicRetries(3),
	}
	codecs := map[string]kgo.CompressionCodec{
		"none": kgo.NoCompression(), "gzip": kgo.GzipCompression(), "snappy": kgo.SnappyCompression(),
		"lz4": kgo.Lz4Compression(), "zstd": kgo.ZstdCompression(),
	}
	codec, ok := codecs[strings.ToLower(o.compression)]
	if !ok {
		return nil, fmt.Errorf("--compression %q: want none, gzip, snappy, lz4 or zstd", o.compression)
	}
	opts = append(opts, kgo.ProducerBatchCompression(codec))
	switch strings.ToLower(o.acks) {
	case "all", "-1":
	case "leader", "1":
		opts = append(opts, kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite())
	case "none", "0":
		opts = append(opts, kgo.RequiredAcks(kgo.NoAck()), kgo.DisableIdempotentWrite())
	default:
		return nil, fmt.Errorf("--acks %q: want all, leader or none", o.acks)
	}
	if o.partition >= 0 {
		opts = append(opts, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	} else if o.partition != -1 {
		return nil, fmt.Errorf("--partition %d: want a partition number or -1", o.partition)
	}
	if o.keySet && o.keySep != "" {
		return nil, errors.New("use --key or --key-separator, not both")
	}
	return opts, nil
}

func runProduce(cmd *cobra.Command, a *app, topic string, o produceOpts) error {
	opts, err := o.clientOpts(topic)
	if err != nil {
		return err
	}
	var headers []kgo.RecordHeader
	for _, h := range o.headers {
		k, v, err := parseKV("--header", h)
		if err != nil {
			return err
		}
		headers = append(headers, kgo.RecordHeader{Key: k, Value: []byte(v)})
	}
	// Ctrl-C stops reading input; records already read are still delivered
	// (under ctx, which the signal does not cancel). A second Ctrl-C kills.
	ctx := cmd.Context()
	interrupted, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	tap := newReasonTap()
	cl, err := a.client(ctx, append(opts, kgo.Dialer(tap.dial))...)
	if err != nil {
		return err
	}
	defer cl.Close()

	stdout, stderr := cmd.OutOrStdout(), cmd.ErrOrStderr()
	in := cmd.InOrStdin()
	if !o.valueSet && isTerminal(in) {
		fmt.Fprintln(stderr, "Type records, one per line; Ctrl-D to finish.")
	}

	noAck := strings.EqualFold(o.acks, "none") || o.acks == "0"
	var (
		mu         sync.Mutex
		results    = map[int]produced{}
		next       int // the next result to print, for input-order output
		firstErr   error
		failedPart int32 // the partition firstErr came from
		acked      int
		wg         sync.WaitGroup
	)
	bar := newProgress(stderr, "produced")
	flushResults := func() {
		for {
			r, ok := results[next]
			if !ok {
				return
			}
			delete(results, next)
			next++
			if !o.verbose {
				continue
			}
			if a.json() {
				_ = writeJSONCompact(stdout, r)
			} else {
				off := fmt.Sprint(r.Offset)
				if r.Offset < 0 {
					off = "unknown (acks=none)"
				}
				fmt.Fprintf(stdout, "%s: partition %d, offset %s\n", r.Topic, r.Partition, off)
			}
		}
	}
	produceOne := func(seq int, line []byte) {
		r := &kgo.Record{Value: line, Headers: headers, Partition: o.partition}
		switch {
		case o.keySet:
			r.Key = []byte(o.key)
		case o.keySep != "":
			if k, v, ok := bytes.Cut(line, []byte(o.keySep)); ok {
				r.Key, r.Value = k, v
			}
		}
		wg.Add(1)
		cl.Produce(ctx, r, func(r *kgo.Record, err error) {
			defer wg.Done()
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if firstErr == nil {
					firstErr, failedPart = err, r.Partition
				}
				return
			}
			acked++
			bar.update(acked)
			off := r.Offset
			if noAck {
				off = -1 // acks=none: the broker does not say
			}
			results[seq] = produced{r.Topic, r.Partition, off, r.Timestamp.UnixMilli()}
			flushResults()
		})
	}

	failed := func() bool {
		mu.Lock()
		defer mu.Unlock()
		return firstErr != nil
	}
	var readErr error
	seq := 0
	if o.valueSet {
		produceOne(0, []byte(o.value))
		seq = 1
	} else {
		lines, errc, quit := readLines(in)
	read:
		for !failed() {
			select {
			case line, ok := <-lines:
				if !ok {
					readErr = <-errc
					break read
				}
				produceOne(seq, line)
				seq++
			case <-interrupted.Done():
				stop()
				break read
			}
		}
		close(quit)
	}
	wg.Wait()
	bar.done()
	if firstErr != nil {
		return produceError(a, topic, o.partition, firstErr, tap.reason(topic, failedPart))
	}
	if readErr != nil {
		return fmt.Errorf("read stdin after %d records: %w", seq, readErr)
	}
	if !a.json() && !o.verbose {
		plural := "s"
		if acked == 1 {
			plural = ""
		}
		fmt.Fprintf(stderr, "Produced %d record%s to %s.\n", acked, plural, topic)
	}
	return nil
}

// produceError explains why a record was not written, with the broker's
// reason when it gave one.
func produceError(a *app, topic string, partition int32, err error, reason string) error {
	if ke := (*kerr.Error)(nil); reason != "" && errors.As(err, &ke) {
		return fmt.Errorf("produce to %s: %s: %s", topic, ke.Message, strings.TrimPrefix(reason, "broker: "))
	}
	switch {
	case errors.Is(err, kerr.UnknownTopicOrPartition):
		if partition >= 0 {
			return fmt.Errorf("topic %q or its partition %d does not exist", topic, partition)
		}
		return fmt.Errorf("topic %q does not exist (and the broker does not auto-create topics)", topic)
	case strings.Contains(err.Error(), "invalid record partitioning choice"):
		return fmt.Errorf("topic %q has no partition %d", topic, partition)
	case errors.Is(err, context.Canceled):
		return errors.New("interrupted")
	case errors.Is(err, kgo.ErrRecordTimeout):
		return fmt.Errorf("produce to %s: broker at %s did not acknowledge within %s", topic, a.addr(), opTimeout)
	}
	return a.explain("produce to "+topic, err)
}

// readLines sends each line of r, without its line ending, until EOF or
// until quit is closed; then it closes lines and sends the read error (nil
// at EOF) on errc. Reading runs apart so that Ctrl-C need not wait for a
// line on an interactive stdin.
func readLines(r io.Reader) (lines <-chan []byte, errc <-chan error, quit chan struct{}) {
	out, ec, q := make(chan []byte, 256), make(chan error, 1), make(chan struct{})
	go func() {
		defer close(out)
		br := bufio.NewReaderSize(r, 64<<10)
		for {
			line, err := br.ReadBytes('\n') // a fresh slice each call
			if len(line) > 0 {
				line = bytes.TrimSuffix(bytes.TrimSuffix(line, []byte("\n")), []byte("\r"))
				select {
				case out <- line:
				case <-q:
					ec <- nil
					return
				}
			}
			if err != nil {
				if err == io.EOF {
					err = nil
				}
				ec <- err
				return
			}
		}
	}()
	return out, ec, q
}

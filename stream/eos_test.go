package stream_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weirhq/weir/stream"
)

// TestMain lets the test binary double as a stream instance process:
// with eosChildEnv set it runs one exactly-once instance (runEOSChild)
// instead of the tests, so a test can SIGKILL a real instance.
func TestMain(m *testing.M) {
	if spec := os.Getenv(eosChildEnv); spec != "" {
		os.Exit(runEOSChild(spec))
	}
	os.Exit(m.Run())
}

const eosChildEnv = "WEIRTEST_STREAM_EOS_CHILD"

// eosCounts counts clicks per user and 10-second window through a
// repartition topic (KeyBy), writing "<user>@<window start ms>" → count
// to out. delay slows each record down, so a killed instance dies
// mid-stream, inside a transaction.
func eosCounts(out string, delay time.Duration) *stream.Topology {
	topo := stream.NewTopology()
	clicks := stream.Source(topo, "clicks", stream.String(), stream.String(), stream.OutOfOrderness(time.Second))
	slow := stream.MapValues(clicks, func(_, v string) string {
		if delay > 0 {
			time.Sleep(delay)
		}
		return v
	})
	byUser := stream.KeyBy(slow, func(k, _ string) string { return k })
	g := stream.GroupByKey(byUser, stream.String(), stream.String(), stream.Named("by-user"))
	counts := stream.CountWindows(stream.WindowBy(g, stream.Tumbling(10*time.Second)), stream.Named("per-window"))
	named := stream.Map(counts, func(k stream.Windowed[string], n int64) (string, int64) {
		return fmt.Sprintf("%s@%d", k.Key, k.Start.UnixMilli()), n
	})
	stream.To(named, out, stream.String(), stream.Int64())
	return topo
}

func eosConfig(addr, app string) stream.Config {
	return stream.Config{Brokers: []string{addr}, ApplicationID: app, Guarantee: stream.ExactlyOnce,
		CommitInterval: 50 * time.Millisecond, TransactionTimeout: 5 * time.Second}
}

// runEOSChild runs an unbounded exactly-once instance until killed. spec
// is "<broker addr> <application id> <instance id> [<pebble state dir>]";
// the instance is a
// static group member, so a successor with the same instance id takes
// its partitions at once instead of after a session timeout.
func runEOSChild(spec string) int {
	f := strings.Fields(spec)
	cfg := eosConfig(f[0], f[1])
	cfg.InstanceID = f[2]
	// Small fetches: each poll takes a little of every partition, so the
	// watermarks move together and windows close all along the run.
	cfg.ClientOptions = []kgo.Opt{kgo.InstanceID(f[2]), kgo.FetchMaxPartitionBytes(1000)}
	if len(f) > 3 {
		cfg.NewStore = stream.PebbleStore(f[3])
	}
	app, err := stream.New(eosCounts("counts", 300*time.Microsecond), cfg)
	if err == nil {
		err = app.Run(context.Background())
	}
	fmt.Fprintln(os.Stderr, "instance:", err)
	return 1
}

type child struct {
	cmd  *exec.Cmd
	done chan struct{}
	mu   sync.Mutex
	log  []string
}

func startChild(t *testing.T, spec string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), eosChildEnv+"="+spec)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, done: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			c.mu.Lock()
			c.log = append(c.log, sc.Text())
			c.mu.Unlock()
		}
		_ = cmd.Wait()
		close(c.done)
	}()
	t.Cleanup(c.kill)
	return c
}

func (c *child) kill() {
	_ = c.cmd.Process.Kill()
	<-c.done
}

func (c *child) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

func (c *child) tail() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return strings.Join(c.log, "\n")
}

// readTopic reads a whole topic: read_committed up to the last stable
// offsets, or read_uncommitted (records of aborted transactions
// included) up to the high watermarks. Transaction markers are not
// returned.
func (c *cluster) readTopic(topic string, committed bool) []*kgo.Record {
	c.t.Helper()
	list, iso := c.adm.ListEndOffsets, kgo.ReadUncommitted()
	if committed {
		list, iso = c.adm.ListCommittedOffsets, kgo.ReadCommitted()
	}
	ends, err := list(c.ctx, topic)
	if err != nil {
		c.t.Fatal(err)
	}
	want := map[int32]kadm.Offset{}
	parts := map[int32]kgo.Offset{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			want[o.Partition] = kadm.Offset{At: o.Offset}
			parts[o.Partition] = kgo.NewOffset().AtStart()
		}
	})
	if len(want) == 0 {
		return nil
	}
	rd, err := kgo.NewClient(kgo.SeedBrokers(c.b.Addr()), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: parts}),
		kgo.FetchIsolationLevel(iso), kgo.KeepControlRecords())
	if err != nil {
		c.t.Fatal(err)
	}
	defer rd.Close()
	var out []*kgo.Record
	for len(want) > 0 {
		fs := rd.PollFetches(c.ctx)
		if err := fs.Err0(); err != nil {
			c.t.Fatalf("read %s: %v", topic, err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			end, ok := want[r.Partition]
			if !ok || r.Offset >= end.At {
				return
			}
			if !r.Attrs.IsControl() {
				out = append(out, r)
			}
			if r.Offset+1 >= end.At {
				delete(want, r.Partition)
			}
		})
	}
	return out
}

// countLines renders count records as sorted "key=n" lines: the whole
// output, duplicates included.
func countLines(t *testing.T, recs []*kgo.Record) []string {
	var lines []string
	for _, r := range recs {
		n, err := stream.Int64().Decode(r.Value)
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, fmt.Sprintf("%s=%d", r.Key, n))
	}
	slices.Sort(lines)
	return lines
}

func expectedLines(recs []*kgo.Record) []string {
	var lines []string
	for k, n := range expectedCounts(recs) {
		lines = append(lines, fmt.Sprintf("%s=%d", k, n))
	}
	slices.Sort(lines)
	return lines
}

// sameLines fails the test with the first difference of two outputs.
func sameLines(t *testing.T, what string, got, want []string) {
	t.Helper()
	if slices.Equal(got, want) {
		return
	}
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			t.Fatalf("%s: %d records, want %d; first difference at %d: %q, want %q", what, len(got), len(want), i, got[i], want[i])
		}
	}
	t.Fatalf("%s: %d records, want %d", what, len(got), len(want))
}

// openTransactionOn: some partition of topic holds records of a
// transaction not yet decided (its last stable offset is below its high
// watermark).
func (c *cluster) openTransactionOn(topic string) bool {
	stable, err := c.adm.ListCommittedOffsets(c.ctx, topic)
	if err != nil {
		return false
	}
	ends, err := c.adm.ListEndOffsets(c.ctx, topic)
	if err != nil {
		return false
	}
	open := false
	ends.Each(func(o kadm.ListedOffset) {
		if s, ok := stable.Lookup(topic, o.Partition); ok && s.Offset < o.Offset {
			open = true
		}
	})
	return open
}

// committedIn sums a group's committed offsets on one topic.
func (c *cluster) committedIn(group, topic string) int64 {
	offs, err := c.adm.FetchOffsets(c.ctx, group)
	if err != nil {
		return -1
	}
	var n int64
	offs.Each(func(o kadm.OffsetResponse) {
		if o.Topic == topic {
			n += max(o.At, 0)
		}
	})
	return n
}

// TestEOSSurvivesKill9: an exactly-once instance, a separate process, is
// killed with SIGKILL twice mid-stream (inside a transaction: every record
// is slowed down and commits come every 50 ms); a successor with the same
// instance id fences the dead one's transaction, restores the state of the
// last commit and goes on; a bounded instance finishes. The read_committed
// output must be identical to an uninterrupted run's (run concurrently under
// another application id): every window exactly once, with its exact count.
func TestEOSSurvivesKill9(t *testing.T) { eosKill9(t, "") }

// TestEOSSurvivesKill9Pebble is TestEOSSurvivesKill9 with the state in
// pebble stores, in one directory across the killed instances and the
// last: each restarts from what the previous left on disk (the checkpoint
// of its last commit, or nothing after a spill), never from state of an
// aborted transaction.
func TestEOSSurvivesKill9Pebble(t *testing.T) { eosKill9(t, t.TempDir()) }

func eosKill9(t *testing.T, stateDir string) {
	c := newCluster(t)
	c.create("clicks", 4)
	recs := events("clicks", 0, 2400, recent)
	for i := 0; i < len(recs); i += 40 {
		c.produce(recs[i : i+40]...) // small batches, for small fetches
	}

	refDone := make(chan error, 1)
	go func() {
		cfg := eosConfig(c.b.Addr(), "clicks-ref")
		cfg.Bounded = true
		app, err := stream.New(eosCounts("counts-ref", 0), cfg)
		if err == nil {
			err = app.Run(c.ctx)
		}
		refDone <- err
	}()

	spec := c.b.Addr() + " clicks-eos instance-0 " + stateDir
	for _, frac := range []int64{3, 2} { // kill at a third, then at half, of the input
		ch := startChild(t, spec)
		for c.committedIn("clicks-eos", "clicks") < int64(len(recs))/frac {
			if ch.exited() {
				t.Fatalf("instance exited:\n%s", ch.tail())
			}
			if c.ctx.Err() != nil {
				t.Fatalf("no progress:\n%s", ch.tail())
			}
		}
		// Kill inside a transaction that has written output records.
		for !c.openTransactionOn("counts") {
			if ch.exited() || c.ctx.Err() != nil {
				t.Fatalf("no open transaction on the output:\n%s", ch.tail())
			}
		}
		ch.kill()
	}
	if n := c.committedIn("clicks-eos", "clicks"); n >= int64(len(recs)) {
		t.Fatalf("the instances committed all %d records before the last kill: slow them down", n)
	}

	cfg := eosConfig(c.b.Addr(), "clicks-eos")
	cfg.InstanceID, cfg.ClientOptions, cfg.Bounded = "instance-0", []kgo.Opt{kgo.InstanceID("instance-0")}, true
	if stateDir != "" {
		cfg.NewStore = stream.PebbleStore(stateDir)
	}
	app, err := stream.New(eosCounts("counts", 0), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := app.Run(c.ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-refDone; err != nil {
		t.Fatalf("reference run: %v", err)
	}

	want := expectedLines(recs)
	ref := countLines(t, c.readTopic("counts-ref", true))
	sameLines(t, "uninterrupted run", ref, want)
	got := countLines(t, c.readTopic("counts", true))
	sameLines(t, "killed run, read_committed", got, ref)
	all := countLines(t, c.readTopic("counts", false))
	if len(all) <= len(got) {
		t.Fatalf("no output record of an aborted transaction (%d written, %d committed): the kills missed the transactions", len(all), len(got))
	}
	t.Logf("%d output records committed; %d written in all (the rest in aborted transactions)", len(got), len(all))
}

func (c *cluster) produceChunks(recs []*kgo.Record, n int) {
	c.t.Helper()
	for i := 0; i < len(recs); i += n {
		c.produce(recs[i:min(i+n, len(recs))]...)
	}
}

func counter(t *testing.T, reg *prometheus.Registry, name string) float64 {
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	return 0
}

// TestEOSRebalance: a second exactly-once instance joins a running one;
// the first commits its transaction before giving tasks up, the second
// restores them from the changelogs (read_committed). After both stop, a
// bounded instance closes the open windows. The read_committed output is
// the single-instance answer: every window once, with its exact count.
func TestEOSRebalance(t *testing.T) {
	c := newCluster(t)
	c.create("clicks", 4)
	all := events("clicks", 0, 800, recent)
	c.produceChunks(all[:300], 40)
	start := func(reg *prometheus.Registry) (stop func()) {
		cfg := eosConfig(c.b.Addr(), "clicks-eos")
		cfg.Registerer = reg
		cfg.ClientOptions = []kgo.Opt{kgo.FetchMaxPartitionBytes(1000)}
		app, err := stream.New(eosCounts("counts", 0), cfg)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(c.ctx)
		errc := make(chan error, 1)
		go func() { errc <- app.Run(ctx) }()
		return func() {
			cancel()
			if err := <-errc; err != nil {
				t.Errorf("instance: %v", err)
			}
		}
	}
	regA, regB := prometheus.NewRegistry(), prometheus.NewRegistry()
	stopA := start(regA)
	for c.committedIn("clicks-eos", "clicks") < 300 && c.ctx.Err() == nil {
	}
	stopB := start(regB)
	for !c.bothAssigned("clicks-eos") {
		if c.ctx.Err() != nil {
			t.Fatal("the second instance never got a task")
		}
	}
	c.produceChunks(all[300:], 40)
	for c.committedIn("clicks-eos", "clicks") < 800 && c.ctx.Err() == nil {
	}
	stopA()
	stopB()
	if recordsIn(t, regB) == 0 {
		t.Fatal("the second instance processed nothing")
	}
	t.Logf("aborted transactions: %v and %v", counter(t, regA, "weir_stream_transaction_aborts_total"),
		counter(t, regB, "weir_stream_transaction_aborts_total"))

	cfg := eosConfig(c.b.Addr(), "clicks-eos")
	cfg.Bounded = true
	app, err := stream.New(eosCounts("counts", 0), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := app.Run(c.ctx); err != nil {
		t.Fatal(err)
	}
	sameLines(t, "read_committed output", countLines(t, c.readTopic("counts", true)), expectedLines(all))
}

// TestEOSAbortedTransactionsInvisible: the first three transactions of a
// bounded exactly-once run that wrote outputs abort instead of committing.
// Each abort rolls the tasks back to their changelogs and the input back to the committed
// offsets; the aborted outputs stay in the log, invisible to read_committed
// readers, whose output is exact.
func TestEOSAbortedTransactionsInvisible(t *testing.T) {
	c := newCluster(t)
	c.create("clicks", 3)
	c.create("counts", 1) // the hook below looks at it from the start
	recs := events("clicks", 0, 600, recent)
	c.produceChunks(recs, 30)
	reg := prometheus.NewRegistry()
	cfg := eosConfig(c.b.Addr(), "clicks-eos")
	cfg.Bounded, cfg.Registerer = true, reg
	cfg.ClientOptions = []kgo.Opt{kgo.FetchMaxPartitionBytes(4000)}
	app, err := stream.New(eosCounts("counts", 0), cfg)
	if err != nil {
		t.Fatal(err)
	}
	// Abort the first three transactions that wrote outputs (called after
	// the flush, so they are in the log). Not more: each abort re-reads
	// the changelogs.
	n := 0
	stream.AbortTransactions(app, func() bool {
		if n < 3 && c.openTransactionOn("counts") {
			n++
			return true
		}
		return false
	})
	if err := app.Run(c.ctx); err != nil {
		t.Fatal(err)
	}
	committed := countLines(t, c.readTopic("counts", true))
	sameLines(t, "read_committed output", committed, expectedLines(recs))
	aborts := counter(t, reg, "weir_stream_transaction_aborts_total")
	written := len(c.readTopic("counts", false))
	if aborts != 3 || written <= len(committed) {
		t.Fatalf("%v transactions aborted, %d output records written for %d committed: the aborts had no output", aborts, written, len(committed))
	}
	t.Logf("%v transactions aborted; %d output records written, %d committed", aborts, written, len(committed))
}

// TestBoundedTransactionalInput: a bounded run over input written in
// transactions (one aborted, the last still open) ends, although the
// last record of each partition is a transaction marker, and counts
// exactly the committed records before the open transaction.
func TestBoundedTransactionalInput(t *testing.T) {
	c := newCluster(t)
	c.create("clicks", 3)
	p, err := kgo.NewClient(kgo.SeedBrokers(c.b.Addr()), kgo.TransactionalID("input-writer"), kgo.TransactionTimeout(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	txn := func(recs []*kgo.Record, end kgo.TransactionEndTry) {
		if err := p.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		if err := p.ProduceSync(c.ctx, recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
		if end == kgo.TryCommit || end == kgo.TryAbort {
			if err := p.EndTransaction(c.ctx, end); err != nil {
				t.Fatal(err)
			}
		}
	}
	first, aborted, second, open := events("clicks", 0, 300, recent), events("clicks", 300, 100, recent),
		events("clicks", 400, 300, recent), events("clicks", 700, 50, recent)
	txn(first, kgo.TryCommit)
	txn(aborted, kgo.TryAbort)
	txn(second, kgo.TryCommit)
	if err := p.BeginTransaction(); err != nil { // left open during the run
		t.Fatal(err)
	}
	if err := p.ProduceSync(c.ctx, open...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	cfg := eosConfig(c.b.Addr(), "clicks-eos")
	cfg.Bounded = true
	app, err := stream.New(eosCounts("counts", 0), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := app.Run(c.ctx); err != nil {
		t.Fatal(err)
	}
	sameLines(t, "read_committed output", countLines(t, c.readTopic("counts", true)), expectedLines(append(first, second...)))
}

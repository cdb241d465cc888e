package e2e

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// killLoopCycles is how many SIGKILL/restart cycles TestKillLoop runs: 20
// in CI, WEIRTEST_SOAK_CYCLES (make soak) for more. (Not WEIR_…: the weir
// binary, which inherits the environment, reads those as settings.)
func killLoopCycles(t *testing.T) int {
	n := 20
	if s := os.Getenv("WEIRTEST_SOAK_CYCLES"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 1 {
			t.Fatalf("WEIRTEST_SOAK_CYCLES=%q: want a positive integer", s)
		}
		n = v
	}
	if testing.Short() {
		n = min(n, 5)
	}
	return n
}

// ackedRecord is what the producer callback learned about one record.
type ackedRecord struct {
	seq    int64
	offset int64
}

// killLoopLedger is the producer's and the live consumer's view of the
// log, to be checked against what the broker serves at the end.
type killLoopLedger struct {
	mu       sync.Mutex
	acked    map[int32][]ackedRecord // per partition, in callback order
	failed   int
	lastErr  error
	ackCount int
	// seen is every record the live consumer got: per partition, the seq
	// at each offset (-1 where none was seen).
	seen    map[int32][]int64
	rewinds int // fetches that went back below what was already consumed
}

func (l *killLoopLedger) acks() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ackCount
}

// TestKillLoop is the kill -9 test on the real binary: an idempotent
// acks=all producer writes keyed, sequenced records to several partitions
// while the broker is SIGKILLed at random moments and restarted. At the end
// every acknowledged record is there exactly once, at the offset it was
// acknowledged with, in order, and everything a live consumer saw during
// the loop is still there at the same offset (the high watermark never
// went back). Restart-to-listening times are reported.
func TestKillLoop(t *testing.T) {
	killLoop(t, killLoopCycles(t))
}

// TestKillLoopWeakDurability runs a few cycles with --durability never: a
// process crash (unlike a power loss) loses nothing acknowledged in any
// mode, because written data is in the kernel's page cache and recovery
// fsyncs it before serving.
func TestKillLoopWeakDurability(t *testing.T) {
	killLoop(t, 5, "--durability", "never")
}

// killLoopSpec varies the kill loop.
type killLoopSpec struct {
	cycles int
	extra  []string // weir serve flags
	// configs are the topic's configs (none: the broker's defaults).
	configs map[string]string
	// maxKillDelay bounds the random wait after an acknowledgement before
	// the kill (250 ms when zero).
	maxKillDelay time.Duration
	// beforeRead runs once the producer has stopped and flushed, before
	// the log is read back and checked.
	beforeRead func(t *testing.T, w *Weir, topic string, partitions int32)
	// check runs on the broker once the log is read back and checked.
	check func(t *testing.T, w *Weir, topic string, partitions int32)
}

func killLoop(t *testing.T, cycles int, extra ...string) {
	killLoopWith(t, killLoopSpec{cycles: cycles, extra: extra})
}

func killLoopWith(t *testing.T, spec killLoopSpec) {
	const (
		topic      = "killloop"
		partitions = 4
	)
	cycles, extra := spec.cycles, spec.extra
	maxDelay := spec.maxKillDelay
	if maxDelay == 0 {
		maxDelay = 250 * time.Millisecond
	}
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("WEIRTEST_SOAK_SEED"); s != "" {
		seed, _ = strconv.ParseUint(s, 10, 64)
	}
	t.Logf("seed %d (rerun with WEIRTEST_SOAK_SEED), %d cycles", seed, cycles)
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))

	// Small segments so that kills also land around rolls.
	w := StartWeir(t, "", append([]string{"--segment-bytes", "262144"}, extra...)...)
	addr := w.Addr

	admin, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	var configs map[string]*string
	for k, v := range spec.configs {
		if configs == nil {
			configs = map[string]*string{}
		}
		configs[k] = &v
	}
	if resp, err := kadm.NewClient(admin).CreateTopic(ctx(t), partitions, 1, configs, topic); err != nil || resp.Err != nil {
		t.Fatal(err, resp.Err)
	}
	admin.Close()

	ledger := &killLoopLedger{acked: map[int32][]ackedRecord{}, seen: map[int32][]int64{}}
	producer, err := kgo.NewClient(
		kgo.SeedBrokers(addr),
		kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(2*time.Millisecond),
		kgo.MaxBufferedRecords(2000),
		kgo.RecordRetries(1<<30),
		kgo.RetryBackoffFn(func(int) time.Duration { return 50 * time.Millisecond }),
		kgo.MetadataMinAge(50*time.Millisecond), // find the restarted broker at once
	)
	if err != nil {
		t.Fatal(err)
	}
	defer producer.Close()

	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // the producer: partition p gets "p-seq" = seq, seq = 0, 1, 2, ...
		defer wg.Done()
		var next [partitions]int64
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if i%20 == 19 { // pace it: soak runs must not pile up millions of records
				time.Sleep(time.Millisecond)
			}
			p := int32(i % partitions)
			seq := next[p]
			next[p]++
			r := &kgo.Record{Partition: p, Key: fmt.Appendf(nil, "%d-%d", p, seq), Value: strconv.AppendInt(nil, seq, 10)}
			producer.Produce(context.Background(), r, func(r *kgo.Record, err error) {
				ledger.mu.Lock()
				defer ledger.mu.Unlock()
				if err != nil {
					ledger.failed++
					ledger.lastErr = err
					return
				}
				ledger.ackCount++
				ledger.acked[r.Partition] = append(ledger.acked[r.Partition], ackedRecord{seq: seqOf(r), offset: r.Offset})
			})
		}
	}()

	consumer, err := kgo.NewClient(
		kgo.SeedBrokers(addr),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(200*time.Millisecond),
		kgo.RetryBackoffFn(func(int) time.Duration { return 50 * time.Millisecond }),
		kgo.MetadataMinAge(50*time.Millisecond),
	)
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	cctx, cancelConsumer := context.WithCancel(context.Background())
	defer cancelConsumer()
	consumed := make(chan struct{})
	go func() { // the live consumer
		defer close(consumed)
		next := map[int32]int64{}
		for cctx.Err() == nil {
			fs := consumer.PollFetches(cctx)
			fs.EachRecord(func(r *kgo.Record) {
				ledger.mu.Lock()
				defer ledger.mu.Unlock()
				if r.Offset < next[r.Partition] {
					ledger.rewinds++
				}
				next[r.Partition] = r.Offset + 1
				s := ledger.seen[r.Partition]
				for int64(len(s)) <= r.Offset {
					s = append(s, -1)
				}
				s[r.Offset] = seqOf(r)
				ledger.seen[r.Partition] = s
			})
		}
	}()

	var recovery []time.Duration
	for cycle := 0; cycle < cycles; cycle++ {
		// Let the producer make progress on the running broker, then kill
		// it at a random moment in the middle of the traffic.
		before := ledger.acks()
		deadline := time.Now().Add(60 * time.Second)
		for ledger.acks() <= before {
			if time.Now().After(deadline) {
				ledger.mu.Lock()
				err := ledger.lastErr
				ledger.mu.Unlock()
				t.Fatalf("cycle %d: no acknowledgement within 60s (last error %v)\n%s", cycle, err, w.Logs())
			}
			time.Sleep(5 * time.Millisecond)
		}
		time.Sleep(time.Duration(rng.Int64N(int64(maxDelay))))
		w.Kill()
		start := time.Now()
		w.start(addr)
		recovery = append(recovery, time.Since(start))
	}

	close(stop)
	wg.Wait()
	fctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := producer.Flush(fctx); err != nil {
		t.Fatalf("flush: %v", err)
	}
	ledger.mu.Lock()
	acked := ledger.acked
	failed, lastErr := ledger.failed, ledger.lastErr
	ledger.mu.Unlock()

	if spec.beforeRead != nil {
		spec.beforeRead(t, w, topic, partitions)
	}
	// Read everything back with a fresh client.
	hw := highWatermarks(t, addr, topic)
	log := readAll(t, addr, topic, hw)
	cancelConsumer()
	<-consumed

	var total, ackedTotal, lost, dups, misplaced, disorder int
	for p := int32(0); p < partitions; p++ {
		recs := log[p]
		total += len(recs)
		at := map[int64]int64{} // seq -> offset
		for i, r := range recs {
			if r.offset != int64(i) {
				t.Errorf("partition %d: record %d has offset %d (gap or reuse)", p, i, r.offset)
			}
			if _, dup := at[r.seq]; dup {
				dups++
				t.Errorf("partition %d: seq %d at offsets %d and %d", p, r.seq, at[r.seq], r.offset)
			}
			at[r.seq] = r.offset
			if i > 0 && r.seq <= recs[i-1].seq {
				disorder++
				t.Errorf("partition %d: seq %d at offset %d after seq %d", p, r.seq, r.offset, recs[i-1].seq)
			}
		}
		for _, a := range acked[p] {
			ackedTotal++
			off, ok := at[a.seq]
			switch {
			case !ok:
				lost++
				t.Errorf("partition %d: acknowledged seq %d (offset %d) lost", p, a.seq, a.offset)
			case off != a.offset:
				misplaced++
				t.Errorf("partition %d: seq %d acknowledged at offset %d, found at %d", p, a.seq, a.offset, off)
			}
		}
		ledger.mu.Lock()
		for off, seq := range ledger.seen[p] {
			if seq < 0 {
				continue
			}
			if off >= len(recs) || recs[off].seq != seq {
				misplaced++
				t.Errorf("partition %d: the live consumer saw seq %d at offset %d; it is gone now", p, seq, off)
			}
		}
		ledger.mu.Unlock()
	}
	ledger.mu.Lock()
	if ledger.rewinds > 0 {
		t.Errorf("the live consumer was sent back %d times (high watermark went backwards?)", ledger.rewinds)
	}
	ledger.mu.Unlock()
	if failed > 0 {
		t.Errorf("%d records failed for good (last: %v)", failed, lastErr)
	}

	slices.Sort(recovery)
	t.Logf("%d kill -9 cycles: %d records in the log, %d acknowledged, lost %d, duplicates %d, misplaced %d, out of order %d",
		cycles, total, ackedTotal, lost, dups, misplaced, disorder)
	t.Logf("recovery (start to listening) over %d restarts: p50 %v, p90 %v, max %v",
		len(recovery), recovery[len(recovery)/2].Round(time.Millisecond),
		recovery[len(recovery)*9/10].Round(time.Millisecond), recovery[len(recovery)-1].Round(time.Millisecond))
	if ackedTotal == 0 {
		t.Fatal("nothing was acknowledged")
	}
	if spec.check != nil && !t.Failed() {
		spec.check(t, w, topic, partitions)
	}
}

// seqOf parses a record's sequence number from its value.
func seqOf(r *kgo.Record) int64 {
	v, err := strconv.ParseInt(string(r.Value), 10, 64)
	if err != nil {
		return -1
	}
	return v
}

// highWatermarks lists the end offsets of every partition of topic.
func highWatermarks(t *testing.T, addr, topic string) map[int32]int64 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx(t), topic)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			t.Fatalf("end offset of %s-%d: %v", o.Topic, o.Partition, o.Err)
		}
		out[o.Partition] = o.Offset
	})
	return out
}

// readAll consumes every partition of topic from the start up to hw.
func readAll(t *testing.T, addr, topic string, hw map[int32]int64) map[int32][]ackedRecord {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	out := map[int32][]ackedRecord{}
	want := 0
	for _, n := range hw {
		want += int(n)
	}
	c := ctx(t)
	for got := 0; got < want; {
		fs := cl.PollFetches(c)
		if err := c.Err(); err != nil {
			t.Fatalf("read back %d of %d records: %v", got, want, err)
		}
		fs.EachError(func(topic string, p int32, err error) {
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("fetch %s-%d: %v", topic, p, err)
			}
		})
		fs.EachRecord(func(r *kgo.Record) {
			out[r.Partition] = append(out[r.Partition], ackedRecord{seq: seqOf(r), offset: r.Offset})
			got++
		})
	}
	return out
}

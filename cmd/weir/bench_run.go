package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// benchRun is one weir bench run: its clients, counters, histograms and,
// for e2e, the delivery ledger.
type benchRun struct {
	a      *app
	o      benchOpts
	mode   string
	stderr io.Writer
	adm    *kadm.Client
	admCl  *kgo.Client
	runID  uint32
	parts  int32
	// payload is random bytes record values are cut from, so that
	// compression sees realistic (incompressible) data.
	payload []byte

	mu         sync.Mutex // guards led, ackHist, e2eHist, commitHist
	led        *ledger    // e2e only
	ackHist    *latencyHist
	e2eHist    *latencyHist
	commitHist *latencyHist // EndTxn commits, with --txn-records

	// With --txn-records: transactions committed and aborted, and the
	// records and bytes of the committed ones.
	txnCommitted, txnAborted      atomic.Int64
	committedRecs, committedBytes atomic.Int64
	lastCommit                    atomic.Int64 // Unix ns

	acked, ackedBytes, produceErrs atomic.Int64
	consumed, consumedBytes        atomic.Int64
	fetchErrs                      atomic.Int64
	firstProduceErr, firstFetchErr atomic.Pointer[string]
	lastAck, lastConsume           atomic.Int64 // Unix ns
	firstConsume                   atomic.Int64 // Unix ns
	next                           []atomic.Int64
}

const payloadPool = 1 << 20

func newBenchRun(ctx context.Context, a *app, mode string, o benchOpts, stderr io.Writer) (*benchRun, error) {
	adm, cl, err := a.admin(ctx)
	if err != nil {
		return nil, err
	}
	r := &benchRun{a: a, o: o, mode: mode, stderr: stderr, adm: adm, admCl: cl,
		runID: rand.Uint32(), ackHist: newLatencyHist(), e2eHist: newLatencyHist(), commitHist: newLatencyHist()}
	r.payload = make([]byte, payloadPool+o.recordSize)
	for i := range r.payload {
		r.payload[i] = byte(rand.Uint32())
	}
	if r.parts, err = r.ensureTopic(ctx); err != nil {
		cl.Close()
		return nil, err
	}
	r.next = make([]atomic.Int64, r.parts)
	return r, nil
}

func (r *benchRun) close() { r.admCl.Close() }

// ensureTopic creates the topic unless consuming, and returns its
// partition count.
func (r *benchRun) ensureTopic(ctx context.Context) (int32, error) {
	td, err := r.adm.ListTopics(ctx, r.o.topic)
	if err != nil {
		return 0, r.a.explain("list topics", err)
	}
	if d, ok := td[r.o.topic]; ok && d.Err == nil {
		return int32(len(d.Partitions)), nil
	}
	if r.mode == "consume" {
		return 0, fmt.Errorf("topic %q does not exist; produce to it first (weir bench produce -t %s)", r.o.topic, r.o.topic)
	}
	resp, err := r.adm.CreateTopic(ctx, r.o.partitions, -1, nil, r.o.topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return 0, topicError(r.o.topic, err, resp.ErrMessage)
	}
	// Wait until the topic's metadata shows all partitions.
	deadline := time.Now().Add(opTimeout)
	for {
		td, err := r.adm.ListTopics(ctx, r.o.topic)
		if err == nil {
			if d, ok := td[r.o.topic]; ok && d.Err == nil && len(d.Partitions) > 0 {
				return int32(len(d.Partitions)), nil
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return 0, fmt.Errorf("topic %q was created but is not visible in metadata", r.o.topic)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (r *benchRun) settings() benchSettings {
	s := benchSettings{
		Brokers: r.a.addr(), Topic: r.o.topic, Partitions: r.parts, RecordSize: r.o.recordSize, Records: r.o.records,
		Rate: r.o.rate, Producers: r.o.producers, Consumers: r.o.consumers, Acks: r.o.acks, Compression: r.o.compression,
		Keys: r.o.keys, MaxInFlight: r.o.maxInFlight, Group: r.o.group,
	}
	if r.o.txnRecords > 0 {
		s.TxnRecords, s.TxnID = r.o.txnRecords, r.o.txnID
	}
	switch r.mode {
	case "produce":
		s.Consumers = 0
	case "consume":
		s.Producers = 0
	}
	if r.o.records == 0 && (r.mode != "consume" || r.o.durationSet || r.o.from == "end") {
		s.Duration = r.o.duration.String()
	}
	return s
}

func setFirst(p *atomic.Pointer[string], err error) {
	msg := err.Error()
	p.CompareAndSwap(nil, &msg)
}

func loadFirst(p *atomic.Pointer[string]) string {
	if s := p.Load(); s != nil {
		return *s
	}
	return ""
}

// produceOnly runs the producers alone.
func (r *benchRun) produceOnly(ctx context.Context) (*benchReport, error) {
	prod, err := r.runProducers(ctx)
	if err != nil {
		return nil, err
	}
	return &benchReport{Mode: r.mode, Settings: r.settings(), Produce: prod}, nil
}

// endOffsets lists the topic's end (or start) offsets by partition.
func (r *benchRun) offsets(ctx context.Context, start bool) (map[int32]int64, error) {
	var (
		lo  kadm.ListedOffsets
		err error
	)
	if start {
		lo, err = r.adm.ListStartOffsets(ctx, r.o.topic)
	} else {
		lo, err = r.adm.ListEndOffsets(ctx, r.o.topic)
	}
	if err == nil {
		err = lo.Error()
	}
	if err != nil {
		return nil, r.a.explain("list offsets", err)
	}
	out := map[int32]int64{}
	lo.Each(func(o kadm.ListedOffset) { out[o.Partition] = o.Offset })
	return out, nil
}

// consumeOnly reads the topic: --records, --duration, or by default up to
// the end offsets seen now.
func (r *benchRun) consumeOnly(ctx context.Context) (*benchReport, error) {
	starts, err := r.offsets(ctx, r.o.from == "start")
	if err != nil {
		return nil, err
	}
	if r.o.group != "" {
		// Committed offsets take precedence where the group has them.
		if committed, err := r.adm.FetchOffsets(ctx, r.o.group); err == nil {
			committed.Each(func(o kadm.OffsetResponse) {
				if o.Topic == r.o.topic && o.Err == nil && o.At >= 0 {
					starts[o.Partition] = o.At
				}
			})
		}
	}
	ends, err := r.offsets(ctx, false)
	if err != nil {
		return nil, err
	}
	for p, o := range starts {
		r.next[p].Store(o)
	}
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var total int64
	for p, e := range ends {
		total += max(e-starts[p], 0)
	}
	// By default a catch-up read: from the start up to the end offsets
	// seen now. From the end, or with --duration, a timed read.
	untilEnd := r.o.records == 0 && !r.o.durationSet && r.o.from == "start"
	progressTotal := total
	if r.o.records > 0 {
		progressTotal = r.o.records
	}
	start := time.Now()
	done := r.consumers(cctx, starts)
	bar := r.progress("consume", progressTotal, r.o.duration, r.consumed.Load)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	var deadline <-chan time.Time
	if r.o.records == 0 && !untilEnd {
		t := time.NewTimer(r.o.duration)
		defer t.Stop()
		deadline = t.C
	}
wait:
	for {
		select {
		case <-ctx.Done():
			break wait
		case <-deadline:
			break wait
		case <-tick.C:
			if r.o.records > 0 && r.consumed.Load() >= r.o.records {
				break wait
			}
			if untilEnd && r.reached(ends) {
				break wait
			}
		}
	}
	end := time.Now()
	if last := r.lastConsume.Load(); last > 0 && (r.o.records > 0 || untilEnd) {
		end = time.Unix(0, last)
	}
	cancel()
	<-done
	bar()
	cons := newPhaseReport(r.consumed.Load(), r.consumedBytes.Load(), end.Sub(r.consumeStart(start)), r.fetchErrs.Load(), loadFirst(&r.firstFetchErr), nil)
	return &benchReport{Mode: r.mode, Settings: r.settings(), Consume: cons}, nil
}

// consumeStart is when consumption throughput is measured from: the
// first record received (so a group join or an idle wait for the first
// record does not count), or started if none came.
func (r *benchRun) consumeStart(started time.Time) time.Time {
	if first := r.firstConsume.Load(); first > 0 {
		return time.Unix(0, first)
	}
	return started
}

// reached reports whether every partition was consumed up to ends.
func (r *benchRun) reached(ends map[int32]int64) bool {
	for p, e := range ends {
		if r.next[p].Load() < e {
			return false
		}
	}
	return true
}

// endToEnd runs consumers from the current end offsets, then producers,
// then lets the consumers drain up to the final end offsets.
func (r *benchRun) endToEnd(ctx context.Context) (*benchReport, error) {
	r.led = newLedger(r.o.producers)
	starts, err := r.offsets(ctx, false)
	if err != nil {
		return nil, err
	}
	for p, o := range starts {
		r.next[p].Store(o)
	}
	if r.o.group != "" {
		// The group starts where this run's records will.
		offs := kadm.Offsets{}
		for p, o := range starts {
			offs.AddOffset(r.o.topic, p, o, -1)
		}
		resp, err := r.adm.CommitOffsets(ctx, r.o.group, offs)
		if err == nil {
			err = resp.Error()
		}
		if err != nil {
			return nil, groupError(r.o.group, err)
		}
	}
	// Consumers outlive Ctrl-C: after it the producers stop, and the
	// consumers still drain what was acknowledged (up to --drain-timeout)
	// so that the ledger does not report it lost.
	cctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	var done <-chan struct{}
	if r.o.beforeConsume == nil {
		done = r.consumers(cctx, starts)
	}
	consumeStart := time.Now()
	type result struct {
		p   *phaseReport
		err error
	}
	prodDone := make(chan result, 1)
	go func() {
		p, err := r.runProducers(ctx)
		prodDone <- result{p, err}
	}()
	if r.o.beforeConsume != nil {
		if err := r.o.beforeConsume(ctx, r.acked.Load); err != nil {
			return nil, err
		}
		done = r.consumers(cctx, starts)
	}
	res := <-prodDone
	if res.err != nil {
		return nil, res.err
	}
	// Still drain and report after Ctrl-C: list the final offsets even
	// if ctx is done.
	octx, ocancel := context.WithTimeout(context.WithoutCancel(ctx), opTimeout)
	ends, err := r.offsets(octx, false)
	ocancel()
	if err != nil {
		return nil, err
	}
	drain := time.NewTimer(r.o.drainTimeout)
	defer drain.Stop()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	bar := r.progress("drain", 0, r.o.drainTimeout, r.consumed.Load)
wait:
	for !r.reached(ends) {
		select {
		case <-drain.C:
			break wait
		case <-tick.C:
		}
	}
	bar()
	cancel()
	<-done
	end := time.Now()
	if last := r.lastConsume.Load(); last > 0 {
		end = time.Unix(0, last)
	}
	r.mu.Lock()
	delivery := r.led.report()
	e2e := r.e2eHist.stats()
	r.mu.Unlock()
	cons := newPhaseReport(r.consumed.Load(), r.consumedBytes.Load(), end.Sub(r.consumeStart(consumeStart)), r.fetchErrs.Load(), loadFirst(&r.firstFetchErr), nil)
	return &benchReport{Mode: r.mode, Settings: r.settings(), Produce: res.p, Consume: cons, EndToEnd: e2e, Delivery: &delivery}, nil
}

// producerOpts are the kgo options of a bench producer.
func (r *benchRun) producerOpts() ([]kgo.Opt, error) {
	opts, err := produceOpts{compression: r.o.compression, acks: r.o.acks, partition: -1}.clientOpts(r.o.topic)
	if err != nil {
		return nil, err
	}
	return append(opts,
		kgo.ClientID("weir-bench"),
		kgo.ProducerLinger(r.o.linger),
		kgo.ProducerBatchMaxBytes(r.o.batchMaxBytes),
		kgo.MaxBufferedRecords(max(10000, r.o.maxInFlight)),
		kgo.RecordDeliveryTimeout(2*time.Minute),
	), nil
}

// runProducers produces with --producers clients until --records or
// --duration, then waits for every acknowledgement.
func (r *benchRun) runProducers(ctx context.Context) (*phaseReport, error) {
	opts, err := r.producerOpts()
	if err != nil {
		return nil, err
	}
	clients := make([]*kgo.Client, r.o.producers)
	for i := range clients {
		copts := opts
		if r.o.txnRecords > 0 {
			copts = append(slices.Clip(opts), kgo.TransactionalID(fmt.Sprintf("%s-%d", r.o.txnID, i)))
		}
		if clients[i], err = r.a.client(ctx, copts...); err != nil {
			for _, c := range clients[:i] {
				c.Close()
			}
			return nil, err
		}
	}
	defer func() {
		for _, c := range clients {
			c.Close()
		}
	}()
	stopCtx, stop := context.WithCancel(ctx)
	defer stop()
	if r.o.records == 0 {
		var cancel context.CancelFunc
		stopCtx, cancel = context.WithTimeout(stopCtx, r.o.duration)
		defer cancel()
	}
	total := r.o.records
	bar := r.progress("produce", total, r.o.duration, r.acked.Load)
	start := time.Now()
	var wg sync.WaitGroup
	for i, cl := range clients {
		quota := int64(0)
		if total > 0 {
			quota = total / int64(len(clients))
			if int64(i) < total%int64(len(clients)) {
				quota++
			}
		}
		wg.Go(func() { r.produceLoop(stopCtx, uint32(i), cl, quota, start) })
	}
	wg.Wait()
	// Every record handed to a client is acknowledged or failed before
	// Flush returns (bounded by the delivery timeout).
	for _, cl := range clients {
		_ = cl.Flush(context.WithoutCancel(ctx))
	}
	bar()
	end := time.Now()
	if last := r.lastAck.Load(); last > 0 {
		end = time.Unix(0, last)
	}
	r.mu.Lock()
	lat := r.ackHist.stats()
	commits := r.commitHist.stats()
	r.mu.Unlock()
	if r.o.txnRecords == 0 {
		return newPhaseReport(r.acked.Load(), r.ackedBytes.Load(), end.Sub(start), r.produceErrs.Load(), loadFirst(&r.firstProduceErr), lat), nil
	}
	// Transactions: what was committed, up to the last commit.
	end = time.Now()
	if last := r.lastCommit.Load(); last > 0 {
		end = time.Unix(0, last)
	}
	p := newPhaseReport(r.committedRecs.Load(), r.committedBytes.Load(), end.Sub(start), r.produceErrs.Load(), loadFirst(&r.firstProduceErr), lat)
	p.Transactions = &txnReport{RecordsPerTxn: r.o.txnRecords, Committed: r.txnCommitted.Load(), Aborted: r.txnAborted.Load(), CommitLatency: commits}
	return p, nil
}

// txn is one producer's open transaction.
type txn struct {
	open          bool
	records       int64
	bytes         int64
	failedAtBegin int64 // the producer's failed records when it began
}

// endTxn flushes cl and ends its open transaction: a commit if commit is
// set and none of its records failed, else an abort. It reports whether
// the producer can go on (a failed commit is aborted; a failed abort
// leaves the producer unusable).
func (r *benchRun) endTxn(cl *kgo.Client, t *txn, commit bool, failed func() int64) bool {
	t.open = false
	// Not the run's context: ending the run must not cut a transaction
	// in half. The delivery timeout bounds Flush.
	bg := context.Background()
	_ = cl.Flush(bg)
	if failed() > t.failedAtBegin {
		commit = false
	}
	how := kgo.TryAbort
	if commit {
		how = kgo.TryCommit
	}
	begin := time.Now()
	err := cl.EndTransaction(bg, how)
	now := time.Now()
	if err == nil && commit {
		r.mu.Lock()
		r.commitHist.record(now.Sub(begin))
		r.mu.Unlock()
		r.txnCommitted.Add(1)
		r.committedRecs.Add(t.records)
		r.committedBytes.Add(t.bytes)
		r.lastCommit.Store(now.UnixNano())
		return true
	}
	if t.records > 0 {
		r.txnAborted.Add(1)
	}
	if err == nil {
		return true
	}
	r.produceErrs.Add(1)
	setFirst(&r.firstProduceErr, fmt.Errorf("end transaction: %w", err))
	if commit {
		// An unconfirmed or refused commit: abort (kgo's advice), then
		// go on if that worked.
		return cl.EndTransaction(bg, kgo.TryAbort) == nil
	}
	return false
}

// produceLoop is one producer: records stamped (producer, sequence, due
// time), paced to its share of --rate, at most --max-in-flight unacknowledged.
func (r *benchRun) produceLoop(ctx context.Context, id uint32, cl *kgo.Client, quota int64, start time.Time) {
	rate := r.o.rate / float64(r.o.producers)
	var inflight chan struct{}
	if r.o.maxInFlight > 0 {
		inflight = make(chan struct{}, r.o.maxInFlight)
	}
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	size := r.o.recordSize
	var (
		tx     txn
		failed atomic.Int64 // this producer's failed records
	)
	if r.o.txnRecords > 0 {
		// A transaction open at the end is committed if the quota was
		// reached, aborted if the run's time is up.
		defer func() {
			if tx.open {
				r.endTxn(cl, &tx, ctx.Err() == nil, failed.Load)
			}
		}()
	}
	promise := func(rec *kgo.Record, err error) {
		now := time.Now()
		if inflight != nil {
			<-inflight
		}
		st, _ := parseStamp(rec.Value)
		if err != nil {
			failed.Add(1)
			r.produceErrs.Add(1)
			setFirst(&r.firstProduceErr, err)
			if r.led != nil {
				r.mu.Lock()
				r.led.failed(st.producer, st.seq)
				r.mu.Unlock()
			}
			return
		}
		r.mu.Lock()
		r.ackHist.record(now.Sub(st.sent()))
		if r.led != nil {
			r.led.acked(st.producer, st.seq, rec.Partition)
		}
		r.mu.Unlock()
		r.acked.Add(1)
		r.ackedBytes.Add(int64(len(rec.Value) + len(rec.Key)))
		r.lastAck.Store(now.UnixNano())
	}
	for seq := uint64(0); quota == 0 || int64(seq) < quota; seq++ {
		if ctx.Err() != nil {
			return
		}
		due := time.Now()
		if rate > 0 {
			due = start.Add(time.Duration(float64(seq) / rate * float64(time.Second)))
			if d := time.Until(due); d > 0 {
				timer.Reset(d)
				select {
				case <-timer.C:
				case <-ctx.Done():
					return
				}
			}
		}
		if r.o.txnRecords > 0 && !tx.open {
			if err := cl.BeginTransaction(); err != nil {
				r.produceErrs.Add(1)
				setFirst(&r.firstProduceErr, fmt.Errorf("begin transaction: %w", err))
				return
			}
			tx = txn{open: true, failedAtBegin: failed.Load()}
		}
		if inflight != nil {
			select {
			case inflight <- struct{}{}:
			case <-ctx.Done():
				return
			}
		}
		val := make([]byte, size)
		off := int((seq*7919 + uint64(id)*104729) % payloadPool)
		copy(val[stampSize:], r.payload[off:off+size-stampSize])
		benchStamp{run: r.runID, producer: id, seq: seq, sentNs: due.UnixNano()}.put(val)
		rec := &kgo.Record{Value: val}
		if r.o.keys > 0 {
			rec.Key = strconv.AppendUint([]byte("key-"), seq%uint64(r.o.keys), 10)
		}
		if r.led != nil {
			r.mu.Lock()
			r.led.sent(id, seq)
			r.mu.Unlock()
		}
		// Not ctx: a record must not fail because the run's time is up.
		cl.Produce(context.Background(), rec, promise)
		if tx.open {
			tx.records++
			tx.bytes += int64(len(rec.Value) + len(rec.Key))
			if tx.records == int64(r.o.txnRecords) && !r.endTxn(cl, &tx, true, failed.Load) {
				return
			}
		}
	}
}

// consumers starts --consumers clients reading from starts (or, with
// --group, from the group's committed offsets); the returned channel is
// closed once all have stopped after ctx ends.
func (r *benchRun) consumers(ctx context.Context, starts map[int32]int64) <-chan struct{} {
	done := make(chan struct{})
	var wg sync.WaitGroup
	for i := range r.o.consumers {
		// Past a deleted range (retention, DeleteRecords) resume at the log
		// start: the ledger then reports the gap as lost. A group without
		// committed offsets starts at --from.
		reset := kgo.NewOffset().AtStart()
		if r.o.group != "" && r.o.from == "end" {
			reset = kgo.NewOffset().AtEnd()
		}
		opts := []kgo.Opt{
			kgo.ClientID("weir-bench"),
			kgo.FetchMaxWait(100 * time.Millisecond),
			kgo.ConsumeResetOffset(reset),
		}
		if r.o.group != "" {
			opts = append(opts, kgo.ConsumerGroup(r.o.group), kgo.ConsumeTopics(r.o.topic))
		} else {
			assign := map[int32]kgo.Offset{}
			for p := int32(i); p < r.parts; p += int32(r.o.consumers) {
				assign[p] = kgo.NewOffset().At(starts[p])
			}
			if len(assign) == 0 {
				continue
			}
			opts = append(opts, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{r.o.topic: assign}))
		}
		cl, err := r.a.client(ctx, opts...)
		if err != nil {
			r.fetchErrs.Add(1)
			setFirst(&r.firstFetchErr, err)
			continue
		}
		wg.Go(func() {
			defer cl.Close()
			r.consumeLoop(ctx, cl)
		})
	}
	go func() {
		wg.Wait()
		close(done)
	}()
	return done
}

func (r *benchRun) consumeLoop(ctx context.Context, cl *kgo.Client) {
	for {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return
		}
		now := time.Now()
		fs.EachError(func(_ string, _ int32, err error) {
			if !errors.Is(err, context.Canceled) {
				r.fetchErrs.Add(1)
				setFirst(&r.firstFetchErr, err)
			}
		})
		fs.EachPartition(func(p kgo.FetchTopicPartition) {
			if len(p.Records) == 0 {
				return
			}
			var bytes int64
			if r.led != nil {
				r.mu.Lock()
			}
			for _, rec := range p.Records {
				bytes += int64(len(rec.Value) + len(rec.Key))
				if r.led == nil {
					continue
				}
				st, ok := parseStamp(rec.Value)
				if !ok || st.run != r.runID {
					r.led.consumedForeign()
					continue
				}
				if r.led.consumed(st.producer, st.seq, rec.Partition) {
					r.e2eHist.record(now.Sub(st.sent()))
				}
			}
			if r.led != nil {
				r.mu.Unlock()
			}
			r.consumed.Add(int64(len(p.Records)))
			r.consumedBytes.Add(bytes)
			r.firstConsume.CompareAndSwap(0, now.UnixNano())
			r.lastConsume.Store(now.UnixNano())
			if p.Partition >= 0 && p.Partition < r.parts {
				last := p.Records[len(p.Records)-1].Offset + 1
				for {
					cur := r.next[p.Partition].Load()
					if last <= cur || r.next[p.Partition].CompareAndSwap(cur, last) {
						break
					}
				}
			}
		})
	}
}

// progress shows a bar on stderr while a phase runs: towards total
// records, or (total 0) through the duration. It returns the function that
// removes it.
func (r *benchRun) progress(label string, total int64, d time.Duration, count func() int64) func() {
	if !r.o.progress {
		return func() {}
	}
	limit := total
	if limit <= 0 {
		limit = d.Milliseconds()
	}
	bar := progressbar.NewOptions64(limit,
		progressbar.OptionSetWriter(r.stderr),
		progressbar.OptionSetDescription(label),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionSetElapsedTime(true),
	)
	stop := make(chan struct{})
	finished := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(finished)
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
			}
			n := count()
			secs := time.Since(start).Seconds()
			bar.Describe(fmt.Sprintf("%s %d rec, %.0f rec/s", label, n, float64(n)/secs))
			if total > 0 {
				_ = bar.Set64(min(n, total))
			} else {
				_ = bar.Set64(min(time.Since(start).Milliseconds(), limit))
			}
		}
	}()
	return func() {
		close(stop)
		<-finished
		_ = bar.Finish()
		_ = bar.Clear()
	}
}

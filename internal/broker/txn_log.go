package broker

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/weirhq/weir/internal/batch"
)

// The log side of transactions. A transactional producer's batches enter
// through the gate like any other; the first one of a transaction on a
// partition opens it there (producerState.txnFirst). The transaction
// coordinator ends it by writing a marker — a control batch, Kafka's
// format:
//
//	batch: attributes control|transactional, producer id and epoch,
//	       base sequence -1, one record:
//	  key:   version int16 = 0 | type int16 (0 abort, 1 commit)
//	  value: version int16 = 0 | coordinator epoch int32
//
// through the gate's marker path (WriteMarker), which alone may append
// control batches. Per partition this file keeps:
//
//   - the transactions that hold the last stable offset: open ones, and
//     ended ones whose marker is not yet durable (a crash could take the
//     marker back, reopening them);
//   - the aborted-transactions index: producer id, first offset and the
//     marker's offset of every aborted transaction in the log, ordered by
//     first offset, so read_committed fetches get theirs without scanning
//     segments.
//
// Both live in memory and are rebuilt at open by the one walk over the
// log's batch headers that already rebuilds idempotent-producer state
// (loadProducers), plus one small read per control batch to learn its
// type. Kafka keeps a .txnindex file per segment and producer snapshots so
// that open reads only the tail; persisting these is a later optimisation.
// The walk reads each batch's 61-byte header with one positional read
// (a marker takes a second, small read): BenchmarkLoadTxnState rebuilds a
// partition of 110,000 batches holding 10,000 transactions in about 35 ms
// on the in-memory filesystem (2-core CI machine); on disk the cost is
// those reads, the same walk idempotent producers already needed.
//
// Topics without transactions pay nothing: LastStableOffset is the high
// watermark after one atomic load, and the produce path branches once on
// the transactional bit.

// AbortedTxn is one aborted transaction on a partition: the producer, the
// offset of its first batch there, and the offset of its abort marker.
type AbortedTxn struct {
	ProducerID  int64
	FirstOffset int64
	LastOffset  int64
}

// Marker ends one producer's transaction on one partition: Kafka's
// WriteTxnMarkers entry for a single partition.
type Marker struct {
	Topic            string
	Partition        int32
	ProducerID       int64
	ProducerEpoch    int16
	Commit           bool // false: abort
	CoordinatorEpoch int32
}

// TxnMarker ends one producer's transaction on a set of partitions, as
// the transaction coordinator sends it (WriteTxnMarkers, API 27).
type TxnMarker struct {
	ProducerID       int64
	ProducerEpoch    int16
	Commit           bool // false: abort
	CoordinatorEpoch int32
	Partitions       []TopicPartition
}

// TopicPartition names one partition.
type TopicPartition struct {
	Topic     string
	Partition int32
}

// MarkerResult is the outcome of one marker on one partition; Err is nil
// once the marker is durable.
type MarkerResult struct {
	ProducerID int64
	TopicPartition
	Offset int64 // the marker's offset, -1 on error
	Err    error
}

// MarkerWriter writes transaction markers to the partitions' leaders and
// returns once they are durable, with one result per marker and
// partition, in order. The transaction coordinator writes through it: on
// one node the Broker implements it with local appends; a multi-node Weir
// implements it by sending WriteTxnMarkers (API 27) to each partition's
// leader, whose Kafka adapter calls the leader's Broker.WriteTxnMarkers.
type MarkerWriter interface {
	WriteTxnMarkers(ctx context.Context, markers []TxnMarker) []MarkerResult
}

var _ MarkerWriter = (*Broker)(nil)

// WriteTxnMarkers writes every marker to every partition it names through
// the gate, then waits until each written one is durable (or ctx ends).
// Results come one per marker and partition, in order.
func (b *Broker) WriteTxnMarkers(ctx context.Context, markers []TxnMarker) []MarkerResult {
	return b.AppendTxnMarkers(markers)(ctx)
}

// AppendTxnMarkers is WriteTxnMarkers in two steps: it appends every
// marker now, in order, and returns the wait for their durability, which
// gives the results. The Kafka adapter appends while handling the request
// (so later requests on the connection come after the markers) and waits
// off its reader goroutine.
func (b *Broker) AppendTxnMarkers(markers []TxnMarker) (wait func(context.Context) []MarkerResult) {
	var out []MarkerResult
	var parts []*Partition
	for _, m := range markers {
		for _, tp := range m.Partitions {
			r := MarkerResult{ProducerID: m.ProducerID, TopicPartition: tp, Offset: -1}
			pr, err := b.WriteMarker(Marker{Topic: tp.Topic, Partition: tp.Partition, ProducerID: m.ProducerID,
				ProducerEpoch: m.ProducerEpoch, Commit: m.Commit, CoordinatorEpoch: m.CoordinatorEpoch})
			r.Err = err
			if err == nil {
				r.Offset = pr.BaseOffset
			}
			out = append(out, r)
			parts = append(parts, pr.Partition)
		}
	}
	return func(ctx context.Context) []MarkerResult {
		for i := range out {
			if out[i].Err == nil {
				if err := parts[i].WaitDurable(ctx, out[i].Offset+1); err != nil {
					out[i].Err, out[i].Offset = err, -1
				}
			}
		}
		return out
	}
}

// WriteMarker appends one transaction marker through the gate's marker
// path, ending the producer's transaction on the partition (if one is
// open; Kafka writes the marker either way). It is not yet durable:
// callers wait with WaitDurable(ctx, BaseOffset+1), as WriteTxnMarkers
// does. A marker of an epoch older than the producer's is refused with
// ErrInvalidProducerEpoch, one of an older coordinator epoch than the
// partition last saw with ErrTransactionCoordinatorFenced.
func (b *Broker) WriteMarker(m Marker) (Produced, error) {
	if m.ProducerID < 0 || m.ProducerEpoch < 0 {
		return Produced{}, fmt.Errorf("%w: marker of producer %d epoch %d", ErrInvalidRequest, m.ProducerID, m.ProducerEpoch)
	}
	return b.gate(Write{Topic: m.Topic, Partition: m.Partition}, origin{marker: &m})
}

// appendMarker writes m as a control batch; only the gate calls it.
func (p *Partition) appendMarker(m *Marker) (Appended, error) {
	typ := batch.ControlAbort
	if m.Commit {
		typ = batch.ControlCommit
	}
	ts := p.broker.opts.Now().UnixMilli()
	raw, err := batch.Build(batch.BuildOptions{
		BaseTimestamp: ts,
		HasProducer:   true, ProducerID: m.ProducerID, ProducerEpoch: m.ProducerEpoch, BaseSequence: -1,
		Transactional: true, Control: true,
	}, []batch.Record{batch.EndTxnMarker(typ, m.CoordinatorEpoch)})
	if err != nil {
		return Appended{}, err
	}
	batch.SetPartitionLeaderEpoch(raw, -1)
	p.mu.Lock()
	defer p.mu.Unlock()
	if st := p.producers[m.ProducerID]; st != nil {
		if m.ProducerEpoch < st.epoch {
			return Appended{}, fmt.Errorf("%w: marker epoch %d is older than %d", ErrInvalidProducerEpoch, m.ProducerEpoch, st.epoch)
		}
		if m.CoordinatorEpoch < st.coordinatorEpoch {
			return Appended{}, fmt.Errorf("%w: coordinator epoch %d is older than %d", ErrTransactionCoordinatorFenced, m.CoordinatorEpoch, st.coordinatorEpoch)
		}
	}
	res, err := p.log.Append(raw)
	if err != nil {
		return Appended{}, err
	}
	if res.AppendTimeMs >= 0 {
		ts = res.AppendTimeMs
	}
	p.endTxn(m.ProducerID, m.ProducerEpoch, m.CoordinatorEpoch, m.Commit, res.BaseOffset, ts)
	// The marker may have become durable, and its waiters woken, before
	// endTxn released the LSO: wake them again so a read_committed long
	// poll sees the transaction end.
	p.log.Wake()
	return Appended{BaseOffset: res.BaseOffset, LastOffset: res.LastOffset, LogAppendTime: res.AppendTimeMs,
		LogStartOffset: res.LogStartOffset}, nil
}

// endTxn applies a marker at offset, stamped ts, to the producer's state
// and the partition's transaction index. Called with p.mu held or during
// load.
func (p *Partition) endTxn(pid int64, epoch int16, coordinatorEpoch int32, commit bool, offset, ts int64) {
	st := p.producer(pid, epoch)
	if st == nil {
		return // an older epoch's marker: refused when live, ignored at load
	}
	first := st.txnFirst
	st.txnFirst = -1
	st.coordinatorEpoch = coordinatorEpoch
	st.lastTimestamp = ts
	p.txns.end(pid, first, offset, commit)
}

// txnIndex is one partition's transactions as the log shows them.
type txnIndex struct {
	// holding is len(pending), so that LastStableOffset of a partition
	// without transactions is one atomic load.
	holding atomic.Int32
	mu      sync.Mutex
	pending []pendingTxn // by first offset (begun in offset order)
	aborted []AbortedTxn // by first offset
	maxSpan int64        // at least LastOffset-FirstOffset of every aborted entry
}

// pendingTxn holds the last stable offset at first: open (end -1), or
// ended by a marker at end that is not yet below the high watermark.
type pendingTxn struct {
	producerID, first, end int64
}

// begin registers a transaction opening at first; appendBatches calls it
// before the append (under p.mu, first being the log's end offset), so no
// reader can see the batch before it holds the LSO.
func (x *txnIndex) begin(pid, first int64) {
	x.mu.Lock()
	x.pending = append(x.pending, pendingTxn{producerID: pid, first: first, end: -1})
	x.holding.Store(int32(len(x.pending)))
	x.mu.Unlock()
}

// cancel undoes begin after a failed append.
func (x *txnIndex) cancel(pid int64) {
	x.mu.Lock()
	for i := len(x.pending) - 1; i >= 0; i-- {
		if e := x.pending[i]; e.producerID == pid && e.end < 0 {
			x.pending = slices.Delete(x.pending, i, i+1)
			break
		}
	}
	x.holding.Store(int32(len(x.pending)))
	x.mu.Unlock()
}

// end records the marker at offset of pid's transaction that began at
// first (-1: none was open on the partition).
func (x *txnIndex) end(pid, first, offset int64, commit bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if first >= 0 {
		for i := range x.pending {
			if e := &x.pending[i]; e.producerID == pid && e.end < 0 {
				e.end = offset
				break
			}
		}
	}
	if commit {
		return
	}
	if first < 0 {
		first = offset // as Kafka: an abort without data covers only its marker
	}
	a := AbortedTxn{ProducerID: pid, FirstOffset: first, LastOffset: offset}
	i := sort.Search(len(x.aborted), func(i int) bool { return x.aborted[i].FirstOffset > first })
	x.aborted = slices.Insert(x.aborted, i, a)
	x.maxSpan = max(x.maxSpan, offset-first)
}

// firstUnstable returns the first offset of the oldest transaction still
// holding the LSO, or hw; ended transactions whose marker lies below hw
// stop holding it here.
func (x *txnIndex) firstUnstable(hw int64) int64 {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.pending = slices.DeleteFunc(x.pending, func(e pendingTxn) bool { return e.end >= 0 && e.end < hw })
	x.holding.Store(int32(len(x.pending)))
	if len(x.pending) == 0 {
		return hw
	}
	return min(x.pending[0].first, hw)
}

// prune drops the aborted transactions wholly below the log start.
func (x *txnIndex) prune(logStart int64) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if len(x.aborted) == 0 || x.aborted[0].FirstOffset >= logStart {
		return
	}
	x.aborted = slices.DeleteFunc(x.aborted, func(a AbortedTxn) bool { return a.LastOffset < logStart })
	x.maxSpan = 0
	for _, a := range x.aborted {
		x.maxSpan = max(x.maxSpan, a.LastOffset-a.FirstOffset)
	}
}

// LastStableOffset is the offset below which every transaction on the
// partition is decided: the first offset of the oldest transaction still
// open (or whose marker is not yet durable), at most the high watermark
// and at least the log start. read_committed consumers read below it.
// Without transactions it is the high watermark.
func (p *Partition) LastStableOffset() int64 {
	hw := p.log.HighWatermark()
	// A transaction registers before its first batch is appended, hence
	// before the high watermark can pass it: hw first, then holding.
	if p.txns.holding.Load() == 0 {
		return hw
	}
	return max(p.txns.firstUnstable(hw), p.log.LogStartOffset())
}

// forget drops the aborted transaction of pid whose marker is at offset
// (the cleaner is removing that marker, the transaction's records being
// gone already: a reader told of it would skip pid's later records while
// waiting for the marker).
func (x *txnIndex) forget(pid, offset int64) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.aborted = slices.DeleteFunc(x.aborted, func(a AbortedTxn) bool { return a.ProducerID == pid && a.LastOffset == offset })
	x.maxSpan = 0
	for _, a := range x.aborted {
		x.maxSpan = max(x.maxSpan, a.LastOffset-a.FirstOffset)
	}
}

// AbortedTransactions returns the aborted transactions that overlap the
// offsets [from, to) — those with FirstOffset < to and LastOffset >= from —
// ordered by first offset, from the in-memory index (no segment is read).
func (p *Partition) AbortedTransactions(from, to int64) []AbortedTxn {
	x := &p.txns
	x.mu.Lock()
	defer x.mu.Unlock()
	return overlapping(x.aborted, x.maxSpan, from, to)
}

// overlapping returns the entries of aborted (ordered by first offset,
// none spanning more than maxSpan offsets) that overlap [from, to), in a
// new slice.
func overlapping(aborted []AbortedTxn, maxSpan, from, to int64) []AbortedTxn {
	hi := sort.Search(len(aborted), func(i int) bool { return aborted[i].FirstOffset >= to })
	var out []AbortedTxn
	// Entries starting before from-maxSpan end before from.
	for i := hi - 1; i >= 0 && aborted[i].FirstOffset >= from-maxSpan; i-- {
		if aborted[i].LastOffset >= from {
			out = append(out, aborted[i])
		}
	}
	slices.Reverse(out)
	return out
}

// pruneTxns drops index entries below the log start, after retention or
// DeleteRecords moved it.
//
// The start is the one readers see: for a tiered topic the archive's, so
// the index keeps the aborted transactions of archived offsets while the
// node runs. It is rebuilt from the local log at start; after a restart
// read_committed reads of archived offsets take theirs from the
// transaction indexes archived with the segments (tier_txn.go).
func (p *Partition) pruneTxns() { p.txns.prune(p.LogStartOffset()) }

// loadMarker applies the control batch h found at open.
func (p *Partition) loadMarker(h batch.Header) error {
	data, err := p.log.Read(h.BaseOffset, h.Size())
	if err != nil {
		return err
	}
	one, _, err := batch.Split(data)
	if err != nil {
		return err
	}
	_, recs, err := batch.RecordsCompacted(one, maxInternalRecordBytes)
	if err != nil {
		return err
	}
	if len(recs) == 0 {
		return nil
	}
	k, err := batch.ParseControlKey(recs[0].Key)
	if err != nil {
		return err
	}
	if k.Type != batch.ControlAbort && k.Type != batch.ControlCommit {
		return nil // a control type from the future: skipped, as consumers do
	}
	ce, err := batch.ParseEndTxnMarker(recs[0].Value)
	if err != nil {
		return err
	}
	p.endTxn(h.ProducerID, h.ProducerEpoch, ce, k.Type == batch.ControlCommit, h.BaseOffset, h.MaxTimestamp)
	return nil
}

// errTxnLoad wraps a failure to read a marker at open.
func errTxnLoad(p *Partition, h batch.Header, err error) error {
	if errors.Is(err, ErrLogCorrupt) || errors.Is(err, ErrStorage) {
		return fmt.Errorf("broker: %s-%d: marker at %d: %w", p.topic.Name, p.index, h.BaseOffset, err)
	}
	return fmt.Errorf("broker: %s-%d: marker at %d: %w: %w", p.topic.Name, p.index, h.BaseOffset, ErrLogCorrupt, err)
}

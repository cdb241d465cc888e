package broker

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"slices"
	"sync"

	"github.com/weirhq/weir/internal/batch"
	"github.com/weirhq/weir/internal/vfs"
)

// maxCachedBatches is how many recent batches per producer are remembered
// to answer retries with their original offsets (Kafka's 5 in flight).
const maxCachedBatches = 5

type seqEntry struct {
	firstSeq, lastSeq      int32
	baseOffset, lastOffset int64
}

type producerState struct {
	epoch   int16
	batches []seqEntry // oldest first, at most maxCachedBatches
	// txnFirst is the first offset of the producer's open transaction on
	// the partition, -1 when none is open (txn_log.go).
	txnFirst int64
	// coordinatorEpoch is that of the last marker written for the
	// producer, -1 before any: older coordinators are fenced.
	coordinatorEpoch int32
	// lastTimestamp is the max timestamp of the producer's last batch or
	// marker on the partition, -1 before any (DescribeProducers).
	lastTimestamp int64
}

// producer returns pid's state at epoch, creating it, or moving it to a
// newer epoch (whose sequences start afresh); nil when epoch is older
// than the state's. Called with p.mu held or during load.
func (p *Partition) producer(pid int64, epoch int16) *producerState {
	st := p.producers[pid]
	switch {
	case st == nil:
		st = &producerState{epoch: epoch, txnFirst: -1, coordinatorEpoch: -1, lastTimestamp: -1}
		p.producers[pid] = st
	case epoch > st.epoch:
		st.epoch, st.batches = epoch, nil
	case epoch < st.epoch:
		return nil
	}
	return st
}

// opensTxn reports whether a transactional batch of pid would open a
// transaction on the partition. Called with p.mu held or during load.
func (p *Partition) opensTxn(pid int64) bool {
	st := p.producers[pid]
	return st == nil || st.txnFirst < 0
}

// checkSequence validates an idempotent batch against the producer's
// state; a retried batch returns its original entry. Called with p.mu held.
func (p *Partition) checkSequence(h batch.Header) (*seqEntry, error) {
	st := p.producers[h.ProducerID]
	if st == nil {
		// Unknown producer (new, or its state expired with retention):
		// accept any starting sequence, as Kafka does since KIP-360.
		return nil, nil
	}
	if st.txnFirst >= 0 && !h.Transactional() && h.ProducerEpoch >= st.epoch {
		return nil, fmt.Errorf("%w: producer %d has a transaction open and sent a non-transactional batch", ErrInvalidTxnState, h.ProducerID)
	}
	switch {
	case h.ProducerEpoch < st.epoch:
		return nil, fmt.Errorf("%w: epoch %d is older than %d", ErrInvalidProducerEpoch, h.ProducerEpoch, st.epoch)
	case h.ProducerEpoch > st.epoch:
		if h.BaseSequence != 0 {
			return nil, fmt.Errorf("%w: new epoch %d must start at sequence 0, got %d", ErrOutOfOrderSequence, h.ProducerEpoch, h.BaseSequence)
		}
		return nil, nil
	}
	last := lastSeq(h)
	for i := range st.batches {
		if e := &st.batches[i]; e.firstSeq == h.BaseSequence && e.lastSeq == last {
			return e, nil
		}
	}
	if len(st.batches) > 0 {
		if want := nextSeq(st.batches[len(st.batches)-1].lastSeq); h.BaseSequence != want {
			return nil, fmt.Errorf("%w: producer %d expected sequence %d, got %d", ErrOutOfOrderSequence, h.ProducerID, want, h.BaseSequence)
		}
	}
	return nil, nil
}

// recordProducer remembers an appended idempotent batch (h.BaseOffset is
// the assigned offset). Called with p.mu held or during load.
func (p *Partition) recordProducer(h batch.Header) {
	st := p.producer(h.ProducerID, h.ProducerEpoch)
	if st == nil {
		return
	}
	if h.Transactional() && st.txnFirst < 0 {
		st.txnFirst = h.BaseOffset
	}
	st.lastTimestamp = h.MaxTimestamp
	st.batches = append(st.batches, seqEntry{
		firstSeq: h.BaseSequence, lastSeq: lastSeq(h),
		baseOffset: h.BaseOffset, lastOffset: h.LastOffset(),
	})
	if len(st.batches) > maxCachedBatches {
		st.batches = append(st.batches[:0], st.batches[len(st.batches)-maxCachedBatches:]...)
	}
}

// ProducerInfo is one producer's state on a partition, as Kafka's
// DescribeProducers reports it.
type ProducerInfo struct {
	ProducerID int64
	Epoch      int16
	// LastSequence is the last sequence number of the producer's last
	// batch, -1 when none is remembered (a new epoch began with a marker).
	LastSequence int32
	// LastTimestamp is the max timestamp of its last batch or marker.
	LastTimestamp    int64
	CoordinatorEpoch int32
	// TxnStartOffset is the first offset of its open transaction on the
	// partition, -1 when none is open.
	TxnStartOffset int64
}

// Producers returns the state of every producer the partition knows (since
// it was opened, from its whole log), ordered by producer id. Kafka also
// expires idle producers (producer.id.expiration.ms); Weir keeps them.
func (p *Partition) Producers() []ProducerInfo {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]ProducerInfo, 0, len(p.producers))
	for pid, st := range p.producers {
		pi := ProducerInfo{ProducerID: pid, Epoch: st.epoch, LastSequence: -1, LastTimestamp: st.lastTimestamp,
			CoordinatorEpoch: st.coordinatorEpoch, TxnStartOffset: st.txnFirst}
		if n := len(st.batches); n > 0 {
			pi.LastSequence = st.batches[n-1].lastSeq
		}
		out = append(out, pi)
	}
	slices.SortFunc(out, func(a, b ProducerInfo) int { return cmp.Compare(a.ProducerID, b.ProducerID) })
	return out
}

// loadProducers rebuilds producer state from the batches in the log, so
// retries after a restart are still recognised as duplicates, together
// with the partition's open transactions and aborted-transactions index
// (txn_log.go): one walk over the batch headers, plus a read of each
// control batch.
func (p *Partition) loadProducers() error {
	var failed error
	err := p.log.Batches(p.log.LogStartOffset(), func(h batch.Header) bool {
		switch {
		case h.ProducerID < 0:
		case h.Control():
			if err := p.loadMarker(h); err != nil {
				failed = errTxnLoad(p, h, err)
				return false
			}
		default:
			if h.Transactional() && p.opensTxn(h.ProducerID) {
				p.txns.begin(h.ProducerID, h.BaseOffset)
			}
			p.recordProducer(h)
		}
		return true
	})
	if err != nil {
		return err
	}
	return failed
}

// producerIDs hands out producer ids that are never reused, surviving
// restarts: a block is reserved durably before any id in it is used.
type producerIDs struct {
	mu    sync.Mutex
	fs    vfs.FS
	path  string
	next  int64
	limit int64
}

const producerIDBlock = 1000

func openProducerIDs(fsys vfs.FS, path string) (*producerIDs, error) {
	p := &producerIDs{fs: fsys, path: path}
	raw, err := readAll(fsys, path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("broker: read %s: %w", path, err)
	case len(raw) != 12 || crc32.ChecksumIEEE(raw[:8]) != binary.BigEndian.Uint32(raw[8:]):
		return nil, fmt.Errorf("broker: producer id checkpoint %s is damaged", path)
	default:
		p.next = int64(binary.BigEndian.Uint64(raw))
		p.limit = p.next
	}
	return p, nil
}

func (p *producerIDs) allocate() (int64, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.next >= p.limit {
		limit := p.next + producerIDBlock
		raw := binary.BigEndian.AppendUint64(nil, uint64(limit))
		raw = binary.BigEndian.AppendUint32(raw, crc32.ChecksumIEEE(raw))
		if err := writeDurable(p.fs, p.path, raw); err != nil {
			return 0, fmt.Errorf("%w: reserve producer ids: %w", ErrStorage, err)
		}
		p.limit = limit
	}
	id := p.next
	p.next++
	return id, nil
}

// InitProducerID returns a new producer id with epoch 0 for an idempotent
// (non-transactional) producer.
func (b *Broker) InitProducerID() (id int64, epoch int16, err error) {
	id, err = b.pids.allocate()
	return id, 0, err
}

package broker

import (
	"fmt"

	"github.com/weirhq/weir/internal/batch"
)

// IsolationLevel is a reader's view of transactional data, with Kafka's
// values.
type IsolationLevel int8

// Isolation levels.
const (
	// ReadUncommitted reads up to the high watermark, transactions open,
	// committed and aborted alike.
	ReadUncommitted IsolationLevel = 0
	// ReadCommitted reads below the last stable offset, and learns the
	// aborted transactions of what it read to skip their records.
	ReadCommitted IsolationLevel = 1
)

// CommittedRead is a read_committed read of one partition.
type CommittedRead struct {
	// Data holds whole batches, all below LastStableOffset; control
	// batches included, as Kafka returns them (consumers skip them).
	Data []byte
	// LastStableOffset is the bound the read applied.
	LastStableOffset int64
	// Aborted lists the aborted transactions overlapping Data.
	Aborted []AbortedTxn
}

// ReadCommittedBuf is ReadBuf for a read_committed consumer: batches at or
// past the last stable offset are withheld (an offset between it and the
// high watermark reads nothing), and the aborted transactions overlapping
// the batches returned come with them.
func (p *Partition) ReadCommittedBuf(offset int64, maxBytes int, alloc func(n int) []byte) (CommittedRead, error) {
	lso := p.LastStableOffset()
	r := CommittedRead{LastStableOffset: lso}
	if offset >= lso {
		if start, hw := p.LogStartOffset(), p.log.HighWatermark(); offset < start || offset > hw {
			return r, fmt.Errorf("%w: %d not in [%d, %d]", ErrOffsetOutOfRange, offset, start, hw)
		}
		return r, nil
	}
	data, err := p.readForConsumer(offset, maxBytes, alloc, lso)
	if err != nil {
		return r, err
	}
	// The LSO lies on a batch boundary (a transaction's first batch, or
	// the high watermark); the high watermark may have moved since.
	n, next := 0, int64(-1)
	for n < len(data) {
		h, err := batch.ParseHeader(data[n:])
		if err != nil || h.BaseOffset >= lso {
			break
		}
		n += h.Size()
		next = h.LastOffset() + 1
	}
	if n > 0 {
		// From the in-memory index, and for archived batches from their
		// segments' transaction indexes (tier_txn.go): without their
		// aborted transactions, batches are never returned.
		aborted, err := p.abortedTxnsFor(offset, next)
		if err != nil {
			return r, err
		}
		r.Aborted = aborted
	}
	r.Data = data[:n]
	p.topic.metrics.out(r.Data)
	return r, nil
}

// ListOffsetAt is ListOffset for a reader at iso: under ReadCommitted,
// LatestTimestamp answers the last stable offset and a timestamp lookup
// finds only offsets below it, as Kafka does.
func (p *Partition) ListOffsetAt(ts int64, iso IsolationLevel) (offset, timestamp int64, err error) {
	if iso != ReadCommitted {
		return p.ListOffset(ts)
	}
	switch ts {
	case LatestTimestamp:
		return p.LastStableOffset(), -1, nil
	case EarliestTimestamp, EarliestLocal, LatestTiered:
		return p.ListOffset(ts)
	}
	lso := p.LastStableOffset()
	offset, timestamp, err = p.ListOffset(ts)
	if err == nil && offset >= lso {
		return -1, -1, nil
	}
	return offset, timestamp, err
}

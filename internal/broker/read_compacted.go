package broker

import "github.com/weirhq/weir/internal/batch"

// Consumers' reads leave out the record-less batches compaction leaves
// (commitlog/clean.go): an idempotent producer's batch that lost every
// record stays as an empty batch, and a run of emptied batches without a
// producer becomes one empty batch over their offsets, so that the log's
// offsets stay contiguous from batch to batch. Kafka's cleaner keeps an
// empty batch only for the last batch of a live producer and otherwise
// leaves a gap, which every client steps over; empty batches are rare
// there, and some clients mishandle them:
//
//   - kafkajs 2.2.4 decodes an empty batch into no messages at all; a
//     fetch answered with nothing but empty batches leaves its position
//     where it was, so it fetches the same offset forever when the data
//     after the empty batch is in the next segment (a read never crosses
//     a segment).
//   - segmentio/kafka-go 0.4.51 reads a record from the bytes after an
//     empty batch (panic "markRead: negative count", or "unsupported
//     magic byte"); kafka-go issues 874 and 1393.
//
// So a read for a consumer drops every record-less batch but, when there
// is nothing else to return, the last one, and when a read held only such
// batches it goes on past them (into the next segment) first: clients see
// offset gaps, as with Kafka, and an empty batch only where nothing
// follows it yet, as the one way to move them past its offsets. Control
// batches (one record each) are never dropped. Internal logs' replays and
// the producer state read the log directly and see every batch.

// readForConsumer is log.ReadBuf without the record-less batches, as above;
// bound is the offset the read may not pass (the high watermark or, for
// read_committed, the last stable offset): an empty batch reaching it is
// returned rather than read past. Each pass moves past at least one batch,
// so the loop ends; a long run of empty batches costs a log read per
// maxBytes of them. A buffer from alloc that is dropped for the next read
// is left to the garbage collector (the caller recycles the one returned).
func (p *Partition) readForConsumer(offset int64, maxBytes int, alloc func(n int) []byte, bound int64) ([]byte, error) {
	data, err := p.readTiered(offset, maxBytes, alloc)
	for {
		if err != nil || len(data) == 0 {
			return data, err
		}
		kept, after := dropEmptyBatches(data)
		if after < 0 || after >= bound {
			return kept, nil
		}
		// Only record-less batches up to after: look past them. What
		// comes there replaces them (a gap, to the client); if nothing
		// does, the last empty batch moves the client on.
		more, merr := p.readTiered(after, maxBytes, alloc)
		if merr != nil || len(more) == 0 {
			return kept, nil
		}
		data = more
	}
}

// dropEmptyBatches removes from data (whole batches) the batches without
// records that are not control batches, moving the others to the front in
// place. When data held nothing else it keeps the last of them and
// returns the offset after it as after; otherwise after is -1.
func dropEmptyBatches(data []byte) (kept []byte, after int64) {
	w, last, lastSize := 0, -1, 0
	for n := 0; n < len(data); {
		h, err := batch.ParseHeader(data[n:])
		if err != nil || n+h.Size() > len(data) {
			// Not whole batches (never so from the log): keep the rest.
			w += copy(data[w:], data[n:])
			break
		}
		size := h.Size()
		if h.NumRecords == 0 && !h.Control() {
			last, lastSize, after = n, size, h.LastOffset()+1
		} else {
			w += copy(data[w:], data[n:n+size])
		}
		n += size
	}
	if w > 0 || last < 0 {
		return data[:w], -1
	}
	copy(data, data[last:last+lastSize])
	return data[:lastSize], after
}

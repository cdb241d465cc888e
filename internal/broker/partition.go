package broker

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"

	"github.com/weirhq/weir/internal/batch"
	"github.com/weirhq/weir/internal/commitlog"
)

// Partition is one partition of a topic: its log plus the idempotent
// producer state that guards appends to it.
type Partition struct {
	topic  *Topic
	index  int32
	log    *commitlog.Log
	broker *Broker

	mu        sync.Mutex // serialises sequence checks with appends
	producers map[int64]*producerState
	txns      txnIndex // open and aborted transactions (txn_log.go)

	// cleanedTo is where the last compaction stopped: the dirty part of
	// the log starts there (cleaner.go). In memory: after a restart the
	// whole log counts as dirty once.
	cleanedTo atomic.Int64

	// remote is the archive manifest as last loaded or changed (tier.go);
	// nil until loaded.
	remote    atomic.Pointer[RemoteManifest]
	tierState tierState // the uploader's (uploader.go)
}

// Topic returns the partition's topic name.
func (p *Partition) Topic() string { return p.topic.Name }

// Index returns the partition number.
func (p *Partition) Index() int32 { return p.index }

// HighWatermark is the offset after the last record consumers may read.
func (p *Partition) HighWatermark() int64 { return p.log.HighWatermark() }

// Size is the partition's size on disk in bytes.
func (p *Partition) Size() int64 { return p.log.Size() }

// Changed returns a channel closed when the high watermark next moves (or
// the log fails or closes): long-polling fetches wait on it. It signals
// the last stable offset's moves too: that moves only when the high
// watermark passes a transaction's marker, an append like any other.
func (p *Partition) Changed() <-chan struct{} { return p.log.Changed() }

// Err reports a permanent storage failure of the partition.
func (p *Partition) Err() error { return p.log.Err() }

// Appended describes a successful append.
type Appended struct {
	BaseOffset     int64
	LastOffset     int64
	LogAppendTime  int64 // -1 unless the topic uses LogAppendTime
	LogStartOffset int64
	// Duplicate is true when an idempotent producer retried a batch that
	// was already written: the offsets are the original ones.
	Duplicate bool

	bytes int // record batch bytes written, for the gate's counters
}

// maxDecompressedBatch bounds the decompressed size of one produced batch
// while its records are checked: a compressed batch of at most
// max.message.bytes that claims more is refused (MESSAGE_TOO_LARGE), so a
// compression bomb cannot make the broker allocate without bound.
const maxDecompressedBatch = 64 << 20

// appendBatches writes the record batches of one write; only the gate
// (gate.go) calls it. records is modified in place and not retained. The
// append is not yet durable: acks=all callers then call WaitDurable(ctx,
// a.LastOffset+1). Compressed batches are decompressed and their records
// checked; batches not in the topic's compression.type (unless
// "producer") are re-encoded in it, and max.message.bytes applies to the
// result, as in Kafka. check, if set, runs on the checked batches before
// they are written (the gate's record validator).
// A coordinator append (an InternalLog's) skips the sequence check, as
// Kafka's coordinator-origin appends do: the group coordinator writes a
// transaction's offsets as transactional batches of the producer (with
// sequence 0) after the transaction coordinator has checked its epoch.
func (p *Partition) appendBatches(records []byte, check func([]byte) error, coordinator bool) (Appended, error) {
	maxBytes := int(p.topic.maxMessageBytes.Load())
	recompressed := false
	if want := p.topic.compression.Load(); want >= 0 {
		var err error
		if records, recompressed, err = recompress(records, batch.Codec(want)); err != nil {
			return Appended{}, err
		}
	}
	var buf [4]batch.Header
	hdrs := buf[:0]
	for rest := records; len(rest) > 0; {
		one, r, err := batch.Split(rest)
		if err != nil {
			return Appended{}, fmt.Errorf("%w: %w", ErrCorruptMessage, err)
		}
		// Only the header here: the log verifies CRC and records before
		// writing, so each byte is checked once.
		h, err := batch.ParseHeader(one)
		if err != nil {
			return Appended{}, fmt.Errorf("%w: %w", ErrCorruptMessage, err)
		}
		if len(one) > maxBytes {
			return Appended{}, fmt.Errorf("%w: batch of %d bytes > max.message.bytes %d", ErrRecordTooLarge, len(one), maxBytes)
		}
		if h.Control() {
			return Appended{}, fmt.Errorf("%w: clients may not produce control batches", ErrInvalidRecord)
		}
		if h.Transactional() && h.ProducerID < 0 {
			return Appended{}, fmt.Errorf("%w: transactional batch without a producer id", ErrInvalidRecord)
		}
		if h.NumRecords == 0 {
			return Appended{}, fmt.Errorf("%w: batch without records", ErrCorruptMessage)
		}
		if h.Codec() != batch.CodecNone && !recompressed {
			// The log checks uncompressed records; compressed ones only
			// here, where they are decompressed once, as Kafka does.
			if _, err := batch.VerifyRecords(one, maxDecompressedBatch); err != nil {
				return Appended{}, recordsError(err)
			}
		}
		// Producers send 0 or -1; a single node has no leader epochs, so
		// store -1 (not covered by the CRC), as Metadata reports.
		batch.SetPartitionLeaderEpoch(one, -1)
		hdrs = append(hdrs, h)
		rest = r
	}
	if len(hdrs) == 0 {
		return Appended{}, fmt.Errorf("%w: no record batches", ErrCorruptMessage)
	}
	if err := p.checkTimestamps(records); err != nil {
		return Appended{}, err
	}
	pid := hdrs[0].ProducerID
	for _, h := range hdrs[1:] {
		if h.ProducerID != pid {
			return Appended{}, fmt.Errorf("%w: batches of different producers in one request", ErrInvalidRecord)
		}
	}

	if check != nil {
		if err := check(records); err != nil {
			return Appended{}, err
		}
	}

	p.mu.Lock()
	defer p.mu.Unlock()
	if pid >= 0 && len(hdrs) != 1 {
		return Appended{}, fmt.Errorf("%w: an idempotent producer sends one batch per partition", ErrInvalidRecord)
	}
	if pid >= 0 && !coordinator {
		if dup, err := p.checkSequence(hdrs[0]); err != nil {
			return Appended{}, err
		} else if dup != nil {
			return Appended{BaseOffset: dup.baseOffset, LastOffset: dup.lastOffset, LogAppendTime: -1,
				LogStartOffset: p.log.LogStartOffset(), Duplicate: true}, nil
		}
	}
	// A transaction's first batch holds the LSO before it is appended,
	// so no reader sees it below the LSO (txn_log.go).
	opened := hdrs[0].Transactional() && p.opensTxn(pid)
	if opened {
		p.txns.begin(pid, p.log.EndOffset())
	}
	res, err := p.log.Append(records)
	if err != nil && opened {
		p.txns.cancel(pid)
	}
	if errors.Is(err, commitlog.ErrInvalidBatch) {
		return Appended{}, fmt.Errorf("%w: %w", ErrCorruptMessage, err)
	}
	if err != nil {
		return Appended{}, err
	}
	if pid >= 0 {
		h := hdrs[0]
		h.BaseOffset = res.BaseOffset
		if res.AppendTimeMs >= 0 {
			h.MaxTimestamp = res.AppendTimeMs // LogAppendTime
		}
		p.recordProducer(h)
	}
	return Appended{BaseOffset: res.BaseOffset, LastOffset: res.LastOffset, LogAppendTime: res.AppendTimeMs,
		LogStartOffset: res.LogStartOffset, bytes: len(records)}, nil
}

// IsDurable reports, without waiting, whether WaitDurable(ctx, next)
// would succeed at once.
func (p *Partition) IsDurable(next int64) bool { return p.log.IsDurable(next) }

// WaitDurable blocks until offsets below next are fsynced (durability
// always), the log fails, or ctx ends.
func (p *Partition) WaitDurable(ctx context.Context, next int64) error {
	return p.log.WaitDurable(ctx, next)
}

// Read returns whole batches from the one holding offset, up to maxBytes
// (at least one batch), never past the high watermark. Reads through Read
// and ReadBuf are consumers' (any protocol) and are counted in the topic's
// records and bytes out; internal logs replay with the log's own reads.
// Offsets below the local log start of a tiered topic are read from the
// archive; batches compaction emptied are left out (read_compacted.go).
func (p *Partition) Read(offset int64, maxBytes int) ([]byte, error) {
	data, err := p.readForConsumer(offset, maxBytes, nil, p.log.HighWatermark())
	p.topic.metrics.out(data)
	return data, err
}

// ReadBuf is Read into a buffer from alloc(n), which returns an empty
// slice of capacity at least n; the fetch path recycles its buffers so.
func (p *Partition) ReadBuf(offset int64, maxBytes int, alloc func(n int) []byte) ([]byte, error) {
	data, err := p.readForConsumer(offset, maxBytes, alloc, p.log.HighWatermark())
	p.topic.metrics.out(data)
	return data, err
}

// Special ListOffsets timestamps, as Kafka defines them.
const (
	LatestTimestamp   = -1
	EarliestTimestamp = -2
	MaxTimestamp      = -3
	EarliestLocal     = -4
	LatestTiered      = -5
)

// ListOffset answers ListOffsets for one timestamp: the offset and the
// record timestamp (-1 where Kafka reports none).
func (p *Partition) ListOffset(ts int64) (offset, timestamp int64, err error) {
	switch ts {
	case LatestTimestamp:
		return p.log.HighWatermark(), -1, nil
	case EarliestTimestamp:
		return p.LogStartOffset(), -1, nil
	case EarliestLocal:
		return p.log.LogStartOffset(), -1, nil
	case LatestTiered:
		if start, last, ok := p.ArchivedRange(); ok && last >= start {
			return last, -1, nil
		}
		return -1, -1, nil
	case MaxTimestamp:
		o, t, found, err := p.log.MaxTimestamp()
		if err != nil || !found {
			return -1, -1, err
		}
		return o, t, nil
	}
	if ts < 0 {
		return 0, 0, fmt.Errorf("%w: timestamp %d", ErrInvalidRequest, ts)
	}
	if p.remoteEnabled() {
		if o, t, found, err := p.remoteOffsetForTimestamp(ts); err != nil || found {
			return o, t, err
		}
	}
	o, t, found, err := p.log.OffsetForTimestamp(ts)
	if err != nil {
		return 0, 0, err
	}
	if !found {
		return -1, -1, nil
	}
	return o, t, nil
}

// DeleteRecords advances the log start offset (-1 = high watermark) and
// returns the new low watermark.
func (p *Partition) DeleteRecords(before int64) (int64, error) {
	if IsReservedTopic(p.topic.Name) {
		return -1, errReserved(ErrInvalidTopic, p.topic.Name, "delete records of")
	}
	if p.remoteEnabled() {
		return p.deleteRecordsTiered(before)
	}
	low, err := p.log.DeleteRecordsBefore(before)
	p.pruneTxns()
	return low, err
}

// nextSeq is the sequence after s; sequences wrap at MaxInt32.
func nextSeq(s int32) int32 {
	if s == math.MaxInt32 {
		return 0
	}
	return s + 1
}

func lastSeq(h batch.Header) int32 {
	return int32((int64(h.BaseSequence) + int64(h.LastOffsetDelta)) % (math.MaxInt32 + 1))
}

// recompress re-encodes the batches of records whose codec is not want,
// reporting whether it did, in which case it has also checked the records
// of every compressed batch it returns; records is returned as is when
// every batch is in want already, or when its framing is bad (Append
// reports that). The producer fields,
// timestamps and transactional bit carry over, so idempotence and
// timestamps are unchanged.
func recompress(records []byte, want batch.Codec) ([]byte, bool, error) {
	need := false
	for rest := records; len(rest) > 0; {
		one, r, err := batch.Split(rest)
		if err != nil {
			return records, false, nil
		}
		h, err := batch.ParseHeader(one)
		if err != nil || h.Control() {
			return records, false, nil
		}
		need = need || h.Codec() != want
		rest = r
	}
	if !need {
		return records, false, nil
	}
	out := make([]byte, 0, len(records))
	for rest := records; len(rest) > 0; {
		one, r, _ := batch.Split(rest)
		rest = r
		h, _ := batch.ParseHeader(one)
		if h.Codec() == want {
			// Checked here as Append would; uncompressed ones by the log.
			if want != batch.CodecNone {
				if _, err := batch.VerifyRecords(one, maxDecompressedBatch); err != nil {
					return nil, false, recordsError(err)
				}
			}
			out = append(out, one...)
			continue
		}
		h, recs, err := batch.Records(one, maxDecompressedBatch)
		if err != nil {
			return nil, false, recordsError(err)
		}
		b, err := batch.Build(batch.BuildOptions{
			Codec:         want,
			BaseTimestamp: h.BaseTimestamp,
			LogAppendTime: h.LogAppendTime(),
			HasProducer:   h.ProducerID >= 0,
			ProducerID:    h.ProducerID,
			ProducerEpoch: h.ProducerEpoch,
			BaseSequence:  h.BaseSequence,
			Transactional: h.Transactional(),
		}, recs)
		if err != nil {
			return nil, false, fmt.Errorf("%w: re-encoding in %s: %w", ErrCorruptMessage, want, err)
		}
		out = append(out, b...)
	}
	return out, true, nil
}

// recordsError maps a failed check of a batch's records to the produce
// error: too large to decompress, or corrupt.
func recordsError(err error) error {
	if errors.Is(err, batch.ErrTooLarge) {
		return fmt.Errorf("%w: %w", ErrRecordTooLarge, err)
	}
	return fmt.Errorf("%w: %w", ErrCorruptMessage, err)
}

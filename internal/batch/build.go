package batch

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
)

// NoProducerID is the ProducerID, and -1 the epoch and sequence, of batches
// from producers that are neither idempotent nor transactional.
const NoProducerID = -1

// BuildOptions describes the batch a Builder writes. The zero value is an
// uncompressed batch at offset 0 with timestamps from 0 and no producer.
type BuildOptions struct {
	Codec                Codec
	BaseOffset           int64
	PartitionLeaderEpoch int32
	// BaseTimestamp is the timestamp, in milliseconds, that record
	// TimestampDeltas count from.
	BaseTimestamp int64
	// LogAppendTime marks the batch as stamped by the broker: every
	// record's timestamp is then BaseTimestamp, which becomes MaxTimestamp.
	LogAppendTime bool

	// HasProducer writes ProducerID, ProducerEpoch and BaseSequence as
	// given; without it they are -1, Kafka's "no producer", so that a
	// forgotten producer never reads as producer 0.
	HasProducer   bool
	ProducerID    int64
	ProducerEpoch int16
	BaseSequence  int32 // -1 for control batches
	// Transactional and Control set the attribute bits; both require
	// HasProducer.
	Transactional bool
	Control       bool

	// Thinned is the header of a batch that log compaction rewrites with
	// fewer records: its LastOffsetDelta and MaxTimestamp are written
	// instead of what the remaining records give, so the batch keeps its
	// offset range and time (as Kafka's cleaner does). Nil for new batches.
	Thinned *Header
}

// Builder writes a batch record by record. The zero Builder builds with
// zero BuildOptions; a Builder can be Reset and reused, and belongs to one
// goroutine.
type Builder struct {
	opts      BuildOptions
	recs      []byte // encoded records, uncompressed
	n         int32
	lastDelta int32
	maxDelta  int64
}

// NewBuilder returns a Builder for a batch with opts.
func NewBuilder(opts BuildOptions) *Builder {
	b := new(Builder)
	b.Reset(opts)
	return b
}

// Reset drops the records appended so far and sets the options of the next
// batch, keeping the Builder's buffer.
func (b *Builder) Reset(opts BuildOptions) {
	*b = Builder{opts: opts, recs: b.recs[:0], lastDelta: -1}
}

// Len returns the number of records appended since the last Reset.
func (b *Builder) Len() int { return int(b.n) }

// Append adds r as the next record: its OffsetDelta is one past the previous
// record's (0 for the first), whatever r.OffsetDelta says.
func (b *Builder) Append(r Record) error {
	if b.n == 0 {
		b.lastDelta = -1 // for the zero Builder
	}
	if b.lastDelta == math.MaxInt32 {
		return fmt.Errorf("%w: offset delta overflows", ErrTooLarge)
	}
	r.OffsetDelta = b.lastDelta + 1
	return b.add(r)
}

// AppendWithDelta adds r keeping its OffsetDelta, which must exceed the
// previous record's. Gaps build a batch as compaction leaves it, which only
// VerifyCompacted and RecordsCompacted accept.
func (b *Builder) AppendWithDelta(r Record) error {
	if r.OffsetDelta < 0 || b.n > 0 && r.OffsetDelta <= b.lastDelta {
		return fmt.Errorf("%w: offset delta %d after %d", ErrInvalid, r.OffsetDelta, b.lastDelta)
	}
	return b.add(r)
}

func (b *Builder) add(r Record) error {
	if b.n == math.MaxInt32 {
		return fmt.Errorf("%w: too many records", ErrTooLarge)
	}
	if len(r.Headers) > math.MaxInt32 {
		return fmt.Errorf("%w: %d headers", ErrTooLarge, len(r.Headers))
	}
	size := int64(1) + varlongLen(r.TimestampDelta) + varlongLen(int64(r.OffsetDelta)) +
		bytesLen(r.Key) + bytesLen(r.Value) + varlongLen(int64(len(r.Headers)))
	for _, h := range r.Headers {
		size += varlongLen(int64(len(h.Key))) + int64(len(h.Key)) + bytesLen(h.Value)
	}
	if size > math.MaxInt32-HeaderSize || int64(len(b.recs))+size > math.MaxInt32-HeaderSize-5 {
		return fmt.Errorf("%w: record of %d bytes", ErrTooLarge, size)
	}
	buf := appendVarlong(b.recs, size)
	buf = append(buf, byte(r.Attributes))
	buf = appendVarlong(buf, r.TimestampDelta)
	buf = appendVarlong(buf, int64(r.OffsetDelta))
	buf = appendBytes(buf, r.Key)
	buf = appendBytes(buf, r.Value)
	buf = appendVarlong(buf, int64(len(r.Headers)))
	for _, h := range r.Headers {
		buf = appendVarlong(buf, int64(len(h.Key)))
		buf = append(buf, h.Key...)
		buf = appendBytes(buf, h.Value)
	}
	b.recs = buf
	if b.n == 0 || r.TimestampDelta > b.maxDelta {
		b.maxDelta = r.TimestampDelta
	}
	b.lastDelta = r.OffsetDelta
	b.n++
	return nil
}

// Build returns the batch in a new slice; see AppendTo.
func (b *Builder) Build() ([]byte, error) { return b.AppendTo(nil) }

// AppendTo appends the batch of the records appended so far to dst, with
// the CRC computed, and returns the extended slice. An empty Builder makes
// an empty batch (NumRecords 0, LastOffsetDelta 0). The Builder is left as
// it was, so AppendTo can be called again after more Appends.
func (b *Builder) AppendTo(dst []byte) ([]byte, error) {
	o := &b.opts
	if !o.Codec.Known() {
		return nil, fmt.Errorf("%w: %s", ErrUnsupportedCodec, o.Codec)
	}
	if (o.Transactional || o.Control) && !o.HasProducer {
		return nil, fmt.Errorf("%w: transactional or control batch without a producer", ErrInvalid)
	}
	attrs := uint16(o.Codec)
	if o.LogAppendTime {
		attrs |= attrLogAppendTime
	}
	if o.Transactional {
		attrs |= attrTransactional
	}
	if o.Control {
		attrs |= attrControl
	}
	pid, epoch, seq := int64(NoProducerID), int16(-1), int32(-1)
	if o.HasProducer {
		pid, epoch, seq = o.ProducerID, o.ProducerEpoch, o.BaseSequence
	}
	maxTS := o.BaseTimestamp
	if b.n > 0 && !o.LogAppendTime {
		maxTS += b.maxDelta
	}
	lastDelta := max(b.lastDelta, 0)
	if t := o.Thinned; t != nil {
		lastDelta = max(lastDelta, t.LastOffsetDelta)
		maxTS = max(maxTS, t.MaxTimestamp)
	}

	start := len(dst)
	dst = binary.BigEndian.AppendUint64(dst, uint64(o.BaseOffset))
	dst = binary.BigEndian.AppendUint32(dst, 0) // BatchLength, below
	dst = binary.BigEndian.AppendUint32(dst, uint32(o.PartitionLeaderEpoch))
	dst = append(dst, Magic)
	dst = binary.BigEndian.AppendUint32(dst, 0) // CRC, below
	dst = binary.BigEndian.AppendUint16(dst, attrs)
	dst = binary.BigEndian.AppendUint32(dst, uint32(lastDelta))
	dst = binary.BigEndian.AppendUint64(dst, uint64(o.BaseTimestamp))
	dst = binary.BigEndian.AppendUint64(dst, uint64(maxTS))
	dst = binary.BigEndian.AppendUint64(dst, uint64(pid))
	dst = binary.BigEndian.AppendUint16(dst, uint16(epoch))
	dst = binary.BigEndian.AppendUint32(dst, uint32(seq))
	dst = binary.BigEndian.AppendUint32(dst, uint32(b.n))
	dst, err := compress(dst, o.Codec, b.recs)
	if err != nil {
		return nil, err
	}
	batch := dst[start:]
	if len(batch) > math.MaxInt32 {
		return nil, fmt.Errorf("%w: batch of %d bytes", ErrTooLarge, len(batch))
	}
	binary.BigEndian.PutUint32(batch[offBatchLength:], uint32(len(batch)-lengthOverhead))
	binary.BigEndian.PutUint32(batch[offCRC:], crc32.Checksum(batch[offAttributes:], castagnoli))
	return dst, nil
}

// Build builds one batch of recs with opts; records are numbered by
// position (OffsetDelta i), as producers do.
func Build(opts BuildOptions, recs []Record) ([]byte, error) {
	var b Builder
	b.Reset(opts)
	for _, r := range recs {
		if err := b.Append(r); err != nil {
			return nil, err
		}
	}
	return b.Build()
}

// varlongLen returns the size of v as a zigzag varint.
func varlongLen(v int64) int64 {
	u := uint64(v<<1) ^ uint64(v>>63)
	n := int64(1)
	for ; u >= 0x80; u >>= 7 {
		n++
	}
	return n
}

// bytesLen returns the encoded size of a nullable byte string.
func bytesLen(b []byte) int64 {
	if b == nil {
		return 1
	}
	return varlongLen(int64(len(b))) + int64(len(b))
}

// appendVarlong appends v as a zigzag varint; int32 varints share the
// encoding.
func appendVarlong(dst []byte, v int64) []byte {
	return binary.AppendUvarint(dst, uint64(v<<1)^uint64(v>>63))
}

// appendBytes appends a nullable byte string.
func appendBytes(dst, b []byte) []byte {
	if b == nil {
		return append(dst, 1) // -1
	}
	return append(appendVarlong(dst, int64(len(b))), b...)
}

package batch

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
)

// HeaderSize is the size of the fixed RecordBatch header; records start here.
const HeaderSize = 61

// Magic is the only RecordBatch version this package reads and writes.
const Magic = 2

// Field offsets within the header.
const (
	offBaseOffset      = 0
	offBatchLength     = 8
	offLeaderEpoch     = 12
	offMagic           = 16
	offCRC             = 17
	offAttributes      = 21 // also where CRC coverage starts
	offLastOffsetDelta = 23
	offBaseTimestamp   = 27
	offMaxTimestamp    = 35
	offProducerID      = 43
	offProducerEpoch   = 51
	offBaseSequence    = 53
	offNumRecords      = 57

	// lengthOverhead is the bytes that BatchLength does not count.
	lengthOverhead = offBatchLength + 4
)

// Attribute bits.
const (
	attrCodecMask     = 0x07
	attrLogAppendTime = 1 << 3
	attrTransactional = 1 << 4
	attrControl       = 1 << 5
)

// Sentinel errors. Every error this package returns wraps one of them.
var (
	// ErrInvalid reports a batch that breaks the format: wrong magic,
	// impossible lengths or counts, or malformed records.
	ErrInvalid = errors.New("batch: invalid record batch")
	// ErrCorrupt reports a CRC mismatch.
	ErrCorrupt = errors.New("batch: corrupt record batch (crc mismatch)")
	// ErrShort reports a buffer that ends before the batch does.
	ErrShort = errors.New("batch: short buffer")
	// ErrTooLarge reports records that would decompress past the caller's
	// bound, or a batch too large to encode.
	ErrTooLarge = errors.New("batch: record batch too large")
	// ErrUnsupportedCodec reports compression attribute bits 5, 6 or 7.
	ErrUnsupportedCodec = errors.New("batch: unsupported compression codec")
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Codec is the compression codec named by attribute bits 0-2.
type Codec int8

// Codecs, with Kafka's numbering.
const (
	CodecNone   Codec = 0
	CodecGzip   Codec = 1
	CodecSnappy Codec = 2
	CodecLZ4    Codec = 3
	CodecZstd   Codec = 4
)

// String returns Kafka's name for the codec, as in compression.type.
func (c Codec) String() string {
	switch c {
	case CodecNone:
		return "none"
	case CodecGzip:
		return "gzip"
	case CodecSnappy:
		return "snappy"
	case CodecLZ4:
		return "lz4"
	case CodecZstd:
		return "zstd"
	}
	return fmt.Sprintf("codec(%d)", int8(c))
}

// Known reports whether the package can decompress c.
func (c Codec) Known() bool { return c >= CodecNone && c <= CodecZstd }

// Header is the decoded fixed header of a RecordBatch.
type Header struct {
	BaseOffset           int64
	BatchLength          int32
	PartitionLeaderEpoch int32
	Magic                int8
	CRC                  uint32
	Attributes           int16
	LastOffsetDelta      int32
	BaseTimestamp        int64
	MaxTimestamp         int64
	ProducerID           int64
	ProducerEpoch        int16
	BaseSequence         int32
	NumRecords           int32
}

// Size returns the size of the whole batch in bytes, BatchLength+12.
func (h Header) Size() int { return int(h.BatchLength) + lengthOverhead }

// LastOffset returns the offset of the batch's last record, which stays
// BaseOffset+LastOffsetDelta even when compaction removed that record.
func (h Header) LastOffset() int64 { return h.BaseOffset + int64(h.LastOffsetDelta) }

// Codec returns the compression codec of the records.
func (h Header) Codec() Codec { return Codec(h.Attributes & attrCodecMask) }

// LogAppendTime reports whether the broker stamped the batch: every record's
// timestamp is then MaxTimestamp.
func (h Header) LogAppendTime() bool { return h.Attributes&attrLogAppendTime != 0 }

// Transactional reports whether a transactional producer wrote the batch.
func (h Header) Transactional() bool { return h.Attributes&attrTransactional != 0 }

// Control reports whether the batch holds a control record (a transaction
// marker) rather than user data.
func (h Header) Control() bool { return h.Attributes&attrControl != 0 }

// ParseHeader decodes the fixed header at the start of b without checking the
// CRC or anything past the header. It needs len(b) >= HeaderSize (else
// ErrShort) and rejects a magic other than 2 or a BatchLength too small for
// the header (ErrInvalid).
func ParseHeader(b []byte) (Header, error) {
	if len(b) < HeaderSize {
		return Header{}, fmt.Errorf("%w: %d bytes, header needs %d", ErrShort, len(b), HeaderSize)
	}
	h := Header{
		BaseOffset:           int64(binary.BigEndian.Uint64(b[offBaseOffset:])),
		BatchLength:          int32(binary.BigEndian.Uint32(b[offBatchLength:])),
		PartitionLeaderEpoch: int32(binary.BigEndian.Uint32(b[offLeaderEpoch:])),
		Magic:                int8(b[offMagic]),
		CRC:                  binary.BigEndian.Uint32(b[offCRC:]),
		Attributes:           int16(binary.BigEndian.Uint16(b[offAttributes:])),
		LastOffsetDelta:      int32(binary.BigEndian.Uint32(b[offLastOffsetDelta:])),
		BaseTimestamp:        int64(binary.BigEndian.Uint64(b[offBaseTimestamp:])),
		MaxTimestamp:         int64(binary.BigEndian.Uint64(b[offMaxTimestamp:])),
		ProducerID:           int64(binary.BigEndian.Uint64(b[offProducerID:])),
		ProducerEpoch:        int16(binary.BigEndian.Uint16(b[offProducerEpoch:])),
		BaseSequence:         int32(binary.BigEndian.Uint32(b[offBaseSequence:])),
		NumRecords:           int32(binary.BigEndian.Uint32(b[offNumRecords:])),
	}
	if err := checkFraming(h.Magic, h.BatchLength); err != nil {
		return Header{}, err
	}
	return h, nil
}

// checkFraming holds the checks that Split can make before a whole header
// has arrived.
func checkFraming(magic int8, length int32) error {
	if magic != Magic {
		return fmt.Errorf("%w: magic %d, want %d", ErrInvalid, magic, Magic)
	}
	// The upper bound keeps Size within an int32 on 32-bit platforms.
	if length < HeaderSize-lengthOverhead || length > math.MaxInt32-lengthOverhead {
		return fmt.Errorf("%w: batch length %d", ErrInvalid, length)
	}
	return nil
}

// IsControl reports whether b starts with the header of a control batch. It
// returns false when b is too short to tell.
func IsControl(b []byte) bool {
	return len(b) >= HeaderSize && binary.BigEndian.Uint16(b[offAttributes:])&attrControl != 0
}

// SetBaseOffset overwrites BaseOffset in place. The CRC does not cover it, so
// the broker assigns offsets without touching the rest of the batch. It
// panics if len(b) < HeaderSize.
func SetBaseOffset(b []byte, base int64) {
	_ = b[HeaderSize-1]
	binary.BigEndian.PutUint64(b[offBaseOffset:], uint64(base))
}

// SetPartitionLeaderEpoch overwrites PartitionLeaderEpoch in place; the CRC
// does not cover it. It panics if len(b) < HeaderSize.
func SetPartitionLeaderEpoch(b []byte, e int32) {
	_ = b[HeaderSize-1]
	binary.BigEndian.PutUint32(b[offLeaderEpoch:], uint32(e))
}

// SetLogAppendTime stamps the batch with the broker's clock for topics with
// message.timestamp.type=LogAppendTime, as Kafka's LogValidator does for
// magic v2: it sets the timestamp-type attribute and MaxTimestamp to ts,
// leaves BaseTimestamp and the records alone (readers then report ts for
// every record) and recomputes the CRC. b should be one whole batch; the CRC
// covers b up to BatchLength+12 or its end, whichever comes first. It panics
// if len(b) < HeaderSize.
func SetLogAppendTime(b []byte, ts int64) {
	_ = b[HeaderSize-1]
	attrs := binary.BigEndian.Uint16(b[offAttributes:]) | attrLogAppendTime
	binary.BigEndian.PutUint16(b[offAttributes:], attrs)
	binary.BigEndian.PutUint64(b[offMaxTimestamp:], uint64(ts))
	end := len(b)
	if n := int64(int32(binary.BigEndian.Uint32(b[offBatchLength:]))) + lengthOverhead; n >= HeaderSize && n < int64(end) {
		end = int(n)
	}
	binary.BigEndian.PutUint32(b[offCRC:], crc32.Checksum(b[offAttributes:end], castagnoli))
}

// Split returns the first whole batch of a concatenation such as a segment
// file or a fetch response, and the bytes after it. It checks only the
// framing (magic and BatchLength), not the CRC. It returns ErrShort when b
// holds only part of a batch (including when b is empty) and ErrInvalid when
// the framing is impossible. whole is capped so appending to it cannot
// overwrite rest.
func Split(b []byte) (whole, rest []byte, err error) {
	if len(b) < offMagic+1 {
		return nil, b, fmt.Errorf("%w: %d bytes, framing needs %d", ErrShort, len(b), offMagic+1)
	}
	length := int32(binary.BigEndian.Uint32(b[offBatchLength:]))
	if err := checkFraming(int8(b[offMagic]), length); err != nil {
		return nil, b, err
	}
	size := int(length) + lengthOverhead
	if len(b) < size {
		return nil, b, fmt.Errorf("%w: %d bytes, batch needs %d", ErrShort, len(b), size)
	}
	return b[:size:size], b[size:], nil
}

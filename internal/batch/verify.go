package batch

import (
	"fmt"
	"hash/crc32"
)

// Verify checks that b is exactly one whole, intact batch as a producer sends
// it: the header checks of ParseHeader, len(b) == Size (ErrShort when
// shorter, ErrInvalid when longer), the CRC (ErrCorrupt), NumRecords >= 0,
// LastOffsetDelta >= 0 and NumRecords == LastOffsetDelta+1 unless the batch is
// empty (ErrInvalid), and a known codec (ErrUnsupportedCodec).
//
// For an uncompressed batch Verify also walks the records: each must be
// well framed, offset deltas must rise from 0 to LastOffsetDelta, and exactly
// NumRecords must fill the batch (ErrInvalid). Compressed records are checked
// by Records, which has to decompress them. Verify does not allocate unless
// it fails.
func Verify(b []byte) (Header, error) {
	h, _, err := verify(b, false)
	return h, err
}

// VerifyRecords is Verify that also checks compressed records: they are
// decompressed, refusing to produce more than maxDecompressed bytes
// (ErrTooLarge; see Records for the decoders' working memory), and walked
// as Verify walks uncompressed ones (ErrInvalid). A producer's batch whose
// header is intact but whose compressed records are not is stopped here,
// before it reaches the log and every consumer. For uncompressed batches it
// is Verify.
func VerifyRecords(b []byte, maxDecompressed int) (Header, error) {
	h, _, err := verify(b, false)
	if err != nil || h.Codec() == CodecNone {
		return h, err
	}
	data, err := decompress(h.Codec(), b[HeaderSize:], maxDecompressed)
	if err != nil {
		return Header{}, err
	}
	if _, err := walk(data, &h); err != nil {
		return Header{}, err
	}
	return h, nil
}

// VerifyCompacted is Verify for batches that log compaction thinned: it
// accepts 0 <= NumRecords <= LastOffsetDelta+1 and offset deltas that rise
// with gaps, which is how Kafka keeps a batch's offset range after removing
// records. Everything else is checked as in Verify.
func VerifyCompacted(b []byte) (Header, error) {
	h, _, err := verify(b, true)
	return h, err
}

// verify returns the header and, for an uncompressed batch, the total number
// of record headers, which Records needs to size its output.
func verify(b []byte, compacted bool) (Header, int, error) {
	h, err := ParseHeader(b)
	if err != nil {
		return Header{}, 0, err
	}
	if size := h.Size(); len(b) != size {
		if len(b) < size {
			return Header{}, 0, fmt.Errorf("%w: %d bytes, batch needs %d", ErrShort, len(b), size)
		}
		return Header{}, 0, fmt.Errorf("%w: %d bytes after the batch", ErrInvalid, len(b)-size)
	}
	if crc := crc32.Checksum(b[offAttributes:], castagnoli); crc != h.CRC {
		return Header{}, 0, fmt.Errorf("%w: computed %#08x, header has %#08x", ErrCorrupt, crc, h.CRC)
	}
	if h.NumRecords < 0 || h.LastOffsetDelta < 0 {
		return Header{}, 0, fmt.Errorf("%w: %d records, last offset delta %d", ErrInvalid, h.NumRecords, h.LastOffsetDelta)
	}
	if h.NumRecords > 0 && (h.NumRecords-1 > h.LastOffsetDelta || !compacted && h.NumRecords-1 != h.LastOffsetDelta) {
		return Header{}, 0, fmt.Errorf("%w: %d records, last offset delta %d", ErrInvalid, h.NumRecords, h.LastOffsetDelta)
	}
	if c := h.Codec(); !c.Known() {
		return Header{}, 0, fmt.Errorf("%w: %s", ErrUnsupportedCodec, c)
	}
	if h.Codec() != CodecNone {
		return h, 0, nil
	}
	headers, err := walk(b[HeaderSize:], &h)
	if err != nil {
		return Header{}, 0, err
	}
	return h, headers, nil
}

// walk checks the framing of the records in data, the uncompressed record
// area of the batch with header h, and returns their total header count.
// Offset deltas must rise strictly and stay within LastOffsetDelta; with the
// count checks in verify that forces deltas 0..n-1 on uncompressed batches.
func walk(data []byte, h *Header) (headers int, err error) {
	var (
		r    rawRecord
		n    int32
		prev int32 = -1
	)
	for i := 0; i < len(data); {
		if n == h.NumRecords {
			return 0, fmt.Errorf("%w: %d bytes after the %d records the header counts", ErrInvalid, len(data)-i, n)
		}
		if i, err = r.parse(data, i); err != nil {
			return 0, fmt.Errorf("%w (record %d)", err, n)
		}
		if r.offsetDelta <= prev || r.offsetDelta > h.LastOffsetDelta {
			return 0, fmt.Errorf("%w: record %d has offset delta %d after %d, last offset delta %d",
				ErrInvalid, n, r.offsetDelta, prev, h.LastOffsetDelta)
		}
		prev = r.offsetDelta
		n++
		headers += r.headerCount
	}
	if n != h.NumRecords {
		return 0, fmt.Errorf("%w: %d records, header counts %d", ErrInvalid, n, h.NumRecords)
	}
	return headers, nil
}

// rawRecord is a record located in its buffer, with its headers still
// encoded so that walking a batch allocates nothing.
type rawRecord struct {
	attributes     int8
	timestampDelta int64
	offsetDelta    int32
	key, value     []byte // nil when null
	headerCount    int
	headers        []byte // the encoded headers
}

// errRecord builds the error for a malformed record field.
func errRecord(what string) error {
	return fmt.Errorf("%w: malformed record: %s", ErrInvalid, what)
}

// parse decodes and checks the record starting at data[i] and returns the
// index just past it.
func (r *rawRecord) parse(data []byte, i int) (int, error) {
	length, i, ok := varint(data, i)
	if !ok || length < 0 || int(length) > len(data)-i {
		return 0, errRecord("length")
	}
	rec, end := data[i:i+int(length)], i+int(length)
	j := 0
	if len(rec) < 1 {
		return 0, errRecord("attributes")
	}
	r.attributes = int8(rec[0])
	j++
	if r.timestampDelta, j, ok = varlong(rec, j); !ok {
		return 0, errRecord("timestamp delta")
	}
	if r.offsetDelta, j, ok = varint(rec, j); !ok {
		return 0, errRecord("offset delta")
	}
	if r.key, j, ok = nullableBytes(rec, j); !ok {
		return 0, errRecord("key")
	}
	if r.value, j, ok = nullableBytes(rec, j); !ok {
		return 0, errRecord("value")
	}
	count, j, ok := varint(rec, j)
	if !ok || count < 0 {
		return 0, errRecord("header count")
	}
	start := j
	for range count {
		var k []byte
		if k, j, ok = nullableBytes(rec, j); !ok || k == nil {
			return 0, errRecord("header key")
		}
		if _, j, ok = nullableBytes(rec, j); !ok {
			return 0, errRecord("header value")
		}
	}
	if j != len(rec) {
		return 0, errRecord(fmt.Sprintf("%d bytes past the last field", len(rec)-j))
	}
	r.headerCount, r.headers = int(count), rec[start:]
	return end, nil
}

// uvarint decodes an unsigned LEB128 varint of at most maxBytes bytes at
// b[i]. It rejects overlong encodings that overflow 7*maxBytes bits.
func uvarint(b []byte, i, maxBytes int) (uint64, int, bool) {
	var x uint64
	for s := 0; s < maxBytes*7; s += 7 {
		if i >= len(b) {
			return 0, 0, false
		}
		c := b[i]
		i++
		if c < 0x80 {
			if s == 63 && c > 1 {
				return 0, 0, false
			}
			return x | uint64(c)<<s, i, true
		}
		x |= uint64(c&0x7f) << s
	}
	return 0, 0, false
}

// varint decodes Kafka's zigzag varint, an int32 in at most 5 bytes.
func varint(b []byte, i int) (int32, int, bool) {
	u, i, ok := uvarint(b, i, 5)
	if !ok || u > 1<<32-1 {
		return 0, 0, false
	}
	return int32(u>>1) ^ -int32(u&1), i, true
}

// varlong decodes Kafka's zigzag varlong, an int64 in at most 10 bytes.
func varlong(b []byte, i int) (int64, int, bool) {
	u, i, ok := uvarint(b, i, 10)
	if !ok {
		return 0, 0, false
	}
	return int64(u>>1) ^ -int64(u&1), i, true
}

// nullableBytes decodes a varint length and that many bytes; length -1 is a
// null slice, and an empty value is a non-nil empty slice.
func nullableBytes(b []byte, i int) ([]byte, int, bool) {
	n, i, ok := varint(b, i)
	switch {
	case !ok || n < -1 || int(n) > len(b)-i:
		return nil, 0, false
	case n == -1:
		return nil, i, true
	}
	return b[i : i+int(n) : i+int(n)], i + int(n), true
}

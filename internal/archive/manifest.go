package archive

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"slices"
	"sort"
)

// castagnoli is the CRC-32C table of segment and manifest checksums.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

const (
	manifestMagic      = "WARM"
	manifestVersion    = 2 // written; 1 is read too
	manifestHeaderLen  = 28
	manifestEntryLenV1 = 56
	manifestEntryLen   = 72
	manifestTrailerLen = 4

	// entryTxnIndex flags an entry that records its transaction index.
	entryTxnIndex = 1
)

// Segment is one archived segment as the manifest records it.
type Segment struct {
	// BaseOffset and LastOffset are the first and last offsets the segment
	// holds.
	BaseOffset int64
	LastOffset int64
	// FirstTimestamp and MaxTimestamp are in Unix milliseconds (-1 unknown).
	FirstTimestamp int64
	MaxTimestamp   int64
	// Size is the object's length in bytes.
	Size int64
	// CRC32C is the Castagnoli CRC-32 of the object's bytes.
	CRC32C uint32
	// UploadTime is when the object was complete, Unix milliseconds.
	UploadTime int64
	// TxnIndex reports that the segment's transaction index was uploaded
	// with it: TxnIndexSize bytes with checksum TxnIndexCRC32C under
	// TxnIndexKey, or no object when TxnIndexSize is 0 (no aborted
	// transaction overlaps the segment). False for a segment uploaded
	// before Weir wrote transaction indexes (a version 1 manifest entry):
	// the archive does not know its aborted transactions.
	TxnIndex       bool
	TxnIndexSize   int64
	TxnIndexCRC32C uint32
}

// Manifest lists one partition's archived segments. A Manifest value is
// not safe for concurrent mutation; the Archive hands out copies.
type Manifest struct {
	// Generation rises by one with every stored change; 0 is a manifest
	// never stored.
	Generation uint64
	// StartOffset is the lowest offset the archive serves: offsets below it
	// were deleted (retention, DeleteRecords), even where a listed segment
	// still holds them.
	StartOffset int64
	// Segments are contiguous, by base offset.
	Segments []Segment
}

// Clone returns a deep copy.
func (m *Manifest) Clone() *Manifest {
	c := *m
	c.Segments = slices.Clone(m.Segments)
	return &c
}

// Empty reports whether the manifest lists no segment.
func (m *Manifest) Empty() bool { return len(m.Segments) == 0 }

// NextOffset is the offset after the last archived one, or StartOffset for
// an empty manifest.
func (m *Manifest) NextOffset() int64 {
	if len(m.Segments) == 0 {
		return m.StartOffset
	}
	return m.Segments[len(m.Segments)-1].LastOffset + 1
}

// Find returns the segment holding offset, if the archive serves it.
func (m *Manifest) Find(offset int64) (Segment, bool) {
	if offset < m.StartOffset {
		return Segment{}, false
	}
	i := sort.Search(len(m.Segments), func(i int) bool { return m.Segments[i].LastOffset >= offset })
	if i == len(m.Segments) || m.Segments[i].BaseOffset > offset {
		return Segment{}, false
	}
	return m.Segments[i], true
}

// segment returns the listed segment with the given base offset, even one
// that begins below StartOffset.
func (m *Manifest) segment(base int64) (Segment, bool) {
	i := sort.Search(len(m.Segments), func(i int) bool { return m.Segments[i].BaseOffset >= base })
	if i == len(m.Segments) || m.Segments[i].BaseOffset != base {
		return Segment{}, false
	}
	return m.Segments[i], true
}

// Add appends s. It must start right after the last segment (or, for an
// empty manifest, at or below StartOffset). A gap is accepted only when
// logStart, the log start offset of the partition's local log, is at least
// s.BaseOffset: the missing offsets were deleted, and the manifest restarts
// at logStart. logStart also raises StartOffset and drops segments wholly
// below it. Add changes nothing when it returns an error.
func (m *Manifest) Add(s Segment, logStart int64) error {
	if s.BaseOffset < 0 || s.LastOffset < s.BaseOffset || s.Size < 0 {
		return fmt.Errorf("archive: invalid segment %d-%d of %d bytes", s.BaseOffset, s.LastOffset, s.Size)
	}
	start := max(m.StartOffset, logStart)
	if s.LastOffset < start {
		return fmt.Errorf("%w: segment %d-%d, start offset %d", ErrBelowStart, s.BaseOffset, s.LastOffset, start)
	}
	next := m.NextOffset()
	switch {
	case len(m.Segments) > 0 && s.BaseOffset < next:
		return fmt.Errorf("%w: segment %d-%d, the archive holds up to %d", ErrOverlap, s.BaseOffset, s.LastOffset, next-1)
	case s.BaseOffset > next && logStart < s.BaseOffset:
		return fmt.Errorf("%w: segment %d-%d, the archive expects offset %d next; offsets %d-%d are missing "+
			"(pass a log start offset of at least %d if retention or DeleteRecords deleted them)",
			ErrGap, s.BaseOffset, s.LastOffset, next, next, s.BaseOffset-1, s.BaseOffset)
	}
	segs := m.Segments
	if start > m.StartOffset {
		i := sort.Search(len(segs), func(i int) bool { return segs[i].LastOffset >= start })
		segs = segs[i:]
	}
	m.Segments = append(slices.Clip(segs), s)
	m.StartOffset = start
	return nil
}

// Trim raises StartOffset to start (never lowers it) and drops segments
// wholly below it, returning the dropped ones.
func (m *Manifest) Trim(start int64) []Segment {
	if start <= m.StartOffset {
		return nil
	}
	m.StartOffset = start
	i := sort.Search(len(m.Segments), func(i int) bool { return m.Segments[i].LastOffset >= start })
	dropped := slices.Clone(m.Segments[:i])
	m.Segments = slices.Clone(m.Segments[i:])
	return dropped
}

// check verifies the invariants Add keeps.
func (m *Manifest) check() error {
	if m.StartOffset < 0 {
		return fmt.Errorf("negative start offset %d", m.StartOffset)
	}
	for i, s := range m.Segments {
		if s.BaseOffset < 0 || s.LastOffset < s.BaseOffset || s.Size < 0 {
			return fmt.Errorf("invalid segment %d-%d of %d bytes", s.BaseOffset, s.LastOffset, s.Size)
		}
		if s.TxnIndexSize < 0 || !s.TxnIndex && (s.TxnIndexSize != 0 || s.TxnIndexCRC32C != 0) {
			return fmt.Errorf("segment %d-%d: invalid transaction index of %d bytes", s.BaseOffset, s.LastOffset, s.TxnIndexSize)
		}
		if i > 0 && s.BaseOffset != m.Segments[i-1].LastOffset+1 {
			return fmt.Errorf("segment %d-%d does not follow %d", s.BaseOffset, s.LastOffset, m.Segments[i-1].LastOffset)
		}
	}
	if len(m.Segments) > 0 {
		first := m.Segments[0]
		if m.StartOffset < first.BaseOffset || m.StartOffset > first.LastOffset {
			return fmt.Errorf("start offset %d outside the first segment %d-%d", m.StartOffset, first.BaseOffset, first.LastOffset)
		}
	}
	return nil
}

// MarshalBinary encodes the manifest in the format of the package doc.
func (m *Manifest) MarshalBinary() ([]byte, error) {
	if err := m.check(); err != nil {
		return nil, fmt.Errorf("archive: manifest: %w", err)
	}
	b := make([]byte, manifestHeaderLen, manifestHeaderLen+len(m.Segments)*manifestEntryLen+manifestTrailerLen)
	copy(b, manifestMagic)
	binary.BigEndian.PutUint16(b[4:], manifestVersion)
	binary.BigEndian.PutUint16(b[6:], 0)
	binary.BigEndian.PutUint64(b[8:], m.Generation)
	binary.BigEndian.PutUint64(b[16:], uint64(m.StartOffset))
	binary.BigEndian.PutUint32(b[24:], uint32(len(m.Segments)))
	for _, s := range m.Segments {
		b = binary.BigEndian.AppendUint64(b, uint64(s.BaseOffset))
		b = binary.BigEndian.AppendUint64(b, uint64(s.LastOffset))
		b = binary.BigEndian.AppendUint64(b, uint64(s.FirstTimestamp))
		b = binary.BigEndian.AppendUint64(b, uint64(s.MaxTimestamp))
		b = binary.BigEndian.AppendUint64(b, uint64(s.Size))
		b = binary.BigEndian.AppendUint32(b, s.CRC32C)
		b = binary.BigEndian.AppendUint32(b, 0)
		b = binary.BigEndian.AppendUint64(b, uint64(s.UploadTime))
		var flags uint32
		if s.TxnIndex {
			flags |= entryTxnIndex
		}
		b = binary.BigEndian.AppendUint64(b, uint64(s.TxnIndexSize))
		b = binary.BigEndian.AppendUint32(b, s.TxnIndexCRC32C)
		b = binary.BigEndian.AppendUint32(b, flags)
	}
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli)), nil
}

// UnmarshalBinary decodes a manifest, refusing (with an error wrapping
// ErrCorrupt) any that fails its checksum, its length or an invariant. It
// allocates in proportion to len(b), whatever the count field claims.
func (m *Manifest) UnmarshalBinary(b []byte) error {
	corrupt := func(format string, args ...any) error {
		return fmt.Errorf("%w manifest: "+format, append([]any{ErrCorrupt}, args...)...)
	}
	if len(b) < manifestHeaderLen+manifestTrailerLen {
		return corrupt("%d bytes is shorter than a header", len(b))
	}
	if string(b[:4]) != manifestMagic {
		return corrupt("bad magic %q", b[:4])
	}
	body := b[:len(b)-manifestTrailerLen]
	if got, want := crc32.Checksum(body, castagnoli), binary.BigEndian.Uint32(b[len(body):]); got != want {
		return corrupt("checksum %08x, want %08x", got, want)
	}
	entryLen := uint64(manifestEntryLen)
	switch v := binary.BigEndian.Uint16(b[4:]); v {
	case manifestVersion:
	case 1:
		entryLen = manifestEntryLenV1
	default:
		return corrupt("unsupported version %d", v)
	}
	if f := binary.BigEndian.Uint16(b[6:]); f != 0 {
		return corrupt("unknown flags %#x", f)
	}
	count := uint64(binary.BigEndian.Uint32(b[24:]))
	if uint64(len(body)-manifestHeaderLen) != count*entryLen {
		return corrupt("%d entries do not fill %d bytes", count, len(body)-manifestHeaderLen)
	}
	out := Manifest{
		Generation:  binary.BigEndian.Uint64(b[8:]),
		StartOffset: int64(binary.BigEndian.Uint64(b[16:])),
		Segments:    make([]Segment, 0, count),
	}
	for e := body[manifestHeaderLen:]; len(e) > 0; e = e[entryLen:] {
		if binary.BigEndian.Uint32(e[44:]) != 0 {
			return corrupt("non-zero reserved word")
		}
		var txn struct {
			known bool
			size  int64
			crc   uint32
		}
		if entryLen == manifestEntryLen {
			flags := binary.BigEndian.Uint32(e[68:])
			if flags&^entryTxnIndex != 0 {
				return corrupt("unknown entry flags %#x", flags)
			}
			txn.known, txn.size, txn.crc = flags&entryTxnIndex != 0, int64(binary.BigEndian.Uint64(e[56:])), binary.BigEndian.Uint32(e[64:])
		}
		out.Segments = append(out.Segments, Segment{
			BaseOffset:     int64(binary.BigEndian.Uint64(e[0:])),
			LastOffset:     int64(binary.BigEndian.Uint64(e[8:])),
			FirstTimestamp: int64(binary.BigEndian.Uint64(e[16:])),
			MaxTimestamp:   int64(binary.BigEndian.Uint64(e[24:])),
			Size:           int64(binary.BigEndian.Uint64(e[32:])),
			CRC32C:         binary.BigEndian.Uint32(e[40:]),
			UploadTime:     int64(binary.BigEndian.Uint64(e[48:])),
			TxnIndex:       txn.known,
			TxnIndexSize:   txn.size,
			TxnIndexCRC32C: txn.crc,
		})
	}
	if err := out.check(); err != nil {
		return corrupt("%v", err)
	}
	*m = out
	return nil
}

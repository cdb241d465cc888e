package batch

// RecordHeader is one key/value header of a record. A nil Value is null;
// keys are never null.
type RecordHeader struct {
	Key   string
	Value []byte
}

// Record is one record of a batch. Key and Value are nil when null and
// non-nil (possibly empty) otherwise. Records returned by Records alias the
// batch (uncompressed) or one decompressed buffer shared by the batch's
// records (compressed): copy what outlives them.
type Record struct {
	Attributes     int8
	TimestampDelta int64
	OffsetDelta    int32
	Key, Value     []byte
	Headers        []RecordHeader
}

// Offset returns the record's offset within the batch with header h.
func (r Record) Offset(h Header) int64 { return h.BaseOffset + int64(r.OffsetDelta) }

// Timestamp returns the record's timestamp in milliseconds: the batch's
// MaxTimestamp when the broker stamped it (LogAppendTime), else
// BaseTimestamp+TimestampDelta.
func (r Record) Timestamp(h Header) int64 {
	if h.LogAppendTime() {
		return h.MaxTimestamp
	}
	return h.BaseTimestamp + r.TimestampDelta
}

// Records verifies b as Verify does, decompresses its records and parses
// them all. maxDecompressed bounds the decompressed size of compressed
// records: past it Records fails with ErrTooLarge, and however the input is
// crafted it allocates no more than maxDecompressed bytes of output plus
// the codecs' pooled working memory (an lz4 block up to 4 MiB; a zstd window
// up to 8 MiB, used to count a stream whose headers do not bound it within
// maxDecompressed; zstd frames needing a larger window then fail with
// ErrTooLarge). A value of 0 or less admits only empty payloads. The bound
// does not apply to uncompressed batches, which are parsed in place.
// Compressed records are checked as Verify checks uncompressed ones;
// malformed ones, or payloads that do not decompress, give ErrInvalid.
//
// Besides the decompressed bytes, the result costs one Record per record
// and one RecordHeader per header; callers bounding memory should allow for
// a Record (about 100 bytes) per 7 bytes of decompressed data, the smallest
// record.
func Records(b []byte, maxDecompressed int) (Header, []Record, error) {
	return records(b, maxDecompressed, false)
}

// RecordsCompacted is Records with the checks of VerifyCompacted, for
// batches that log compaction thinned.
func RecordsCompacted(b []byte, maxDecompressed int) (Header, []Record, error) {
	return records(b, maxDecompressed, true)
}

func records(b []byte, limit int, compacted bool) (Header, []Record, error) {
	h, headers, err := verify(b, compacted)
	if err != nil {
		return Header{}, nil, err
	}
	data := b[HeaderSize:]
	if h.Codec() != CodecNone {
		if data, err = decompress(h.Codec(), data, limit); err != nil {
			return Header{}, nil, err
		}
		if headers, err = walk(data, &h); err != nil {
			return Header{}, nil, err
		}
	}
	// walk has checked every record and that there are exactly NumRecords
	// of them, so the slices below are sized exactly.
	recs := make([]Record, h.NumRecords)
	var hdrs []RecordHeader
	if headers > 0 {
		hdrs = make([]RecordHeader, headers)
	}
	var r rawRecord
	for i, k := 0, 0; i < len(data); k++ {
		if i, err = r.parse(data, i); err != nil {
			return Header{}, nil, err
		}
		recs[k] = Record{
			Attributes:     r.attributes,
			TimestampDelta: r.timestampDelta,
			OffsetDelta:    r.offsetDelta,
			Key:            r.key,
			Value:          r.value,
		}
		if r.headerCount > 0 {
			hs := hdrs[:r.headerCount:r.headerCount]
			hdrs = hdrs[r.headerCount:]
			fillHeaders(hs, r.headers)
			recs[k].Headers = hs
		}
	}
	return h, recs, nil
}

// fillHeaders decodes len(dst) headers from enc, which rawRecord.parse has
// already checked.
func fillHeaders(dst []RecordHeader, enc []byte) {
	j := 0
	for n := range dst {
		var k, v []byte
		k, j, _ = nullableBytes(enc, j)
		v, j, _ = nullableBytes(enc, j)
		dst[n] = RecordHeader{Key: string(k), Value: v}
	}
}

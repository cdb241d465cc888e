package kafka

import (
	"bytes"
	"encoding/binary"
	"net"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Fetch responses are written with their record data by reference: one
// writev of the encoded fields with each partition's record batches
// spliced in, instead of kmsg copying every record byte into the response
// buffer first. At catch-up rates that copy was a fifth of the broker's
// fetch CPU (docs/benchmarks.md, "Side by side").
//
// kmsg encodes the response; only the length prefix of each spliced
// records field is written here, with kbin. The splice points are found
// by encoding the response twice, with every spliced partition's records
// null and then one byte long: the encodings are equal up to the first
// such field, where the null form (compact 0x00, or int32 -1 before v12)
// differs from the one-byte form in its first byte; after skipping both
// forms they are equal again up to the next. Anything unexpected falls
// back to the copying encoder.

// minVecRecords is the record data below which a fetch response is
// encoded by copying: for small responses the copy is cheaper than the
// second encoding.
const minVecRecords = 32 << 10

// fetchVec holds the scratch of vectored fetch encodings; one per
// connection writer.
type fetchVec struct {
	recs  [][]byte
	parts []*kmsg.FetchResponseTopicPartition
	one   []byte // the second encoding
	lens  []byte // spliced length prefixes
	vec   net.Buffers
}

// encode returns the response frame for h as buffers for one vectored
// write: hdr (the encoded fields, in the caller's buffer, returned grown)
// interleaved with the partitions' record data by reference. ok is false
// when the response is better or only encoded by copying (appendResponse).
func (fv *fetchVec) encode(hdr []byte, h requestHeader, resp *kmsg.FetchResponse) (_ []byte, _ net.Buffers, ok bool) {
	fv.recs, fv.parts = fv.recs[:0], fv.parts[:0]
	total := 0
	for i := range resp.Topics {
		t := &resp.Topics[i]
		for j := range t.Partitions {
			p := &t.Partitions[j]
			if len(p.RecordBatches) > 0 {
				fv.parts = append(fv.parts, p)
				fv.recs = append(fv.recs, p.RecordBatches)
				total += len(p.RecordBatches)
			}
		}
	}
	if total < minVecRecords {
		return hdr, nil, false
	}
	marker := []byte{0}
	for _, p := range fv.parts {
		p.RecordBatches = nil
	}
	hdr = appendResponse(hdr[:0], h, resp)
	for _, p := range fv.parts {
		p.RecordBatches = marker
	}
	fv.one = appendResponse(fv.one[:0], h, resp)
	for i, p := range fv.parts {
		p.RecordBatches = fv.recs[i]
	}

	// The null and one-byte forms of the records field at this version.
	nullForm, oneForm := []byte{0xff, 0xff, 0xff, 0xff}, []byte{0, 0, 0, 1, 0}
	if h.version >= 12 {
		nullForm, oneForm = []byte{0}, []byte{2, 0}
	}
	need := 5 * len(fv.recs)
	if cap(fv.lens) < need {
		fv.lens = make([]byte, 0, need)
	}
	fv.lens = fv.lens[:0]
	fv.vec = fv.vec[:0]
	// Compare from after the frame size prefixes, which differ.
	a, b, from := 4, 4, 0
	size := 0
	for _, rec := range fv.recs {
		for a < len(hdr) && b < len(fv.one) && hdr[a] == fv.one[b] {
			a, b = a+1, b+1
		}
		if !bytes.HasPrefix(hdr[a:], nullForm) || !bytes.HasPrefix(fv.one[b:], oneForm) {
			return hdr, nil, false
		}
		n := len(fv.lens)
		if h.version >= 12 {
			fv.lens = kbin.AppendUvarint(fv.lens, uint32(len(rec)+1))
		} else {
			fv.lens = kbin.AppendInt32(fv.lens, int32(len(rec)))
		}
		fv.vec = append(fv.vec, hdr[from:a], fv.lens[n:], rec)
		size += a - from + len(fv.lens) - n + len(rec)
		a, b = a+len(nullForm), b+len(oneForm)
		from = a
	}
	if !bytes.Equal(hdr[a:], fv.one[b:]) {
		return hdr, nil, false
	}
	fv.vec = append(fv.vec, hdr[from:])
	size += len(hdr) - from
	binary.BigEndian.PutUint32(hdr, uint32(size-4))
	return hdr, fv.vec, true
}

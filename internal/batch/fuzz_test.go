package batch

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
)

// fuzzLimit bounds decompression in the fuzz targets.
const fuzzLimit = 1 << 20

// addGoldenSeeds seeds f with every golden batch and the golden stream.
func addGoldenSeeds(f *testing.F) {
	for _, name := range goldenNames() {
		f.Add(readGolden(f, name+".batch"))
	}
	f.Add(readGolden(f, "stream.bin"))
	f.Add([]byte{})
}

// addSmallSeeds seeds f with a small batch per codec. Small seeds keep the
// fuzzer mutating rather than minimizing large inputs.
func addSmallSeeds(f *testing.F) {
	recs := []Record{
		{Key: []byte("k"), Value: []byte("value"), Headers: []RecordHeader{{Key: "h", Value: nil}}},
		{Key: nil, Value: []byte{}, OffsetDelta: 1},
	}
	for _, c := range allCodecs {
		f.Add(mustBuild(f, BuildOptions{Codec: c, BaseTimestamp: 1}, recs))
	}
	for _, v := range referenceVariants { // the other encoders: xerial, zstd streams
		f.Add(refBatch(f, v.codec, refOptions, recs, v.compress))
	}
	f.Add(mustBuild(f, BuildOptions{}, nil))
	f.Add(readGolden(f, "control.batch"))
}

// FuzzVerify checks that Verify and Records never panic, and that they
// agree. Random bytes rarely carry a valid length and CRC, so each input is
// also tried with both repaired, which lets the fuzzer reach the record and
// decompression code.
func FuzzVerify(f *testing.F) {
	addSmallSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		checkVerify(t, b)
		if len(b) >= HeaderSize {
			fixed := bytes.Clone(b)
			binary.BigEndian.PutUint32(fixed[offBatchLength:], uint32(len(b)-lengthOverhead))
			fixed[offMagic] = Magic
			fixCRC(fixed)
			checkVerify(t, fixed)
		}
	})
}

func checkVerify(t *testing.T, b []byte) {
	h, verr := Verify(b)
	_, cerr := VerifyCompacted(b)
	rh, recs, rerr := Records(b, fuzzLimit)
	_, crecs, crerr := RecordsCompacted(b, fuzzLimit)
	// VerifyRecords accepts exactly what Records can decode.
	if _, err := VerifyRecords(b, fuzzLimit); (err == nil) != (rerr == nil) {
		t.Fatalf("VerifyRecords: %v, Records: %v", err, rerr)
	}
	for _, err := range []error{verr, cerr, rerr, crerr} {
		if err != nil && !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrShort) && !errors.Is(err, ErrCorrupt) &&
			!errors.Is(err, ErrTooLarge) && !errors.Is(err, ErrUnsupportedCodec) {
			t.Fatalf("error wraps no sentinel: %v", err)
		}
	}
	if verr != nil {
		if rerr == nil {
			t.Fatalf("Verify failed (%v) but Records passed", verr)
		}
		return
	}
	if cerr != nil {
		t.Fatalf("Verify passed but VerifyCompacted failed: %v", cerr)
	}
	if h.Size() != len(b) {
		t.Fatalf("Verify passed a batch of size %d in %d bytes", h.Size(), len(b))
	}
	if h.Codec() == CodecNone && rerr != nil {
		t.Fatalf("Verify passed an uncompressed batch but Records failed: %v", rerr)
	}
	if rerr != nil {
		return
	}
	if crerr != nil || rh != h || len(recs) != int(h.NumRecords) || len(crecs) != len(recs) {
		t.Fatalf("Records: header %+v vs %+v, %d records vs %d, compacted: %v", rh, h, len(recs), h.NumRecords, crerr)
	}
	for i, r := range recs {
		if r.OffsetDelta != int32(i) {
			t.Fatalf("record %d has offset delta %d", i, r.OffsetDelta)
		}
	}
	// Rebuilding the records gives a batch with the same records.
	o := BuildOptions{Codec: CodecNone, BaseTimestamp: h.BaseTimestamp}
	rebuilt, err := Build(o, recs)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	_, again, err := Records(rebuilt, fuzzLimit)
	if err != nil {
		t.Fatalf("Records of rebuilt batch: %v", err)
	}
	checkRecords(t, again, recs)
}

// FuzzSplit checks that Split never panics, always progresses and cuts
// batches whose framing ParseHeader accepts.
func FuzzSplit(f *testing.F) {
	addGoldenSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		rest := b
		for len(rest) > 0 {
			whole, r, err := Split(rest)
			if err != nil {
				if !errors.Is(err, ErrShort) && !errors.Is(err, ErrInvalid) {
					t.Fatalf("Split: %v", err)
				}
				if len(r) != len(rest) {
					t.Fatal("Split consumed input on error")
				}
				return
			}
			h, err := ParseHeader(whole)
			if err != nil {
				t.Fatalf("Split returned a batch ParseHeader rejects: %v", err)
			}
			if h.Size() != len(whole) || len(whole)+len(r) != len(rest) || cap(whole) != len(whole) {
				t.Fatalf("Split: size %d, whole %d, rest %d of %d", h.Size(), len(whole), len(r), len(rest))
			}
			rest = r
		}
	})
}

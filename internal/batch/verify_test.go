package batch

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
)

// testBatches returns one small batch per codec, each with headers and
// null and empty fields.
func testBatches(t testing.TB) map[Codec][]byte {
	out := make(map[Codec][]byte)
	for _, c := range allCodecs {
		o := refOptions
		o.Codec = c
		out[c] = mustBuild(t, o, sampleRecords(12, 7))
	}
	return out
}

func TestCRCDetectsEveryFlip(t *testing.T) {
	for c, b := range testBatches(t) {
		for i := offCRC; i < len(b); i++ {
			for _, mask := range []byte{0x01, 0x80, 0xff} {
				bad := bytes.Clone(b)
				bad[i] ^= mask
				if _, err := Verify(bad); !errors.Is(err, ErrCorrupt) {
					t.Fatalf("%s: byte %d ^ %#x: Verify = %v, want ErrCorrupt", c, i, mask, err)
				}
				if _, _, err := Records(bad, 1<<20); !errors.Is(err, ErrCorrupt) {
					t.Fatalf("%s: byte %d ^ %#x: Records = %v, want ErrCorrupt", c, i, mask, err)
				}
			}
		}
		// The fields before the CRC: offset and epoch are free to change,
		// length and magic are checked as framing.
		for i := range offCRC {
			bad := bytes.Clone(b)
			bad[i] ^= 0xff
			_, err := Verify(bad)
			switch {
			case i < offBatchLength || i >= offLeaderEpoch && i < offMagic:
				if err != nil {
					t.Fatalf("%s: byte %d outside the CRC: %v", c, i, err)
				}
			case !errors.Is(err, ErrShort) && !errors.Is(err, ErrInvalid):
				t.Fatalf("%s: byte %d: %v", c, i, err)
			}
		}
	}
}

func TestTruncation(t *testing.T) {
	for c, b := range testBatches(t) {
		for n := range len(b) {
			// A cut buffer: the header promises more than there is.
			if _, err := Verify(b[:n]); !errors.Is(err, ErrShort) {
				t.Fatalf("%s: Verify(b[:%d]) = %v, want ErrShort", c, n, err)
			}
			if _, _, err := Records(b[:n], 1<<20); !errors.Is(err, ErrShort) {
				t.Fatalf("%s: Records(b[:%d]) = %v, want ErrShort", c, n, err)
			}
			if n < HeaderSize {
				continue
			}
			// A consistent batch whose records were cut: length and CRC
			// match, so only the record framing can tell.
			cut := edit(b[:n], func(b []byte) {
				binary.BigEndian.PutUint32(b[offBatchLength:], uint32(n-lengthOverhead))
			})
			_, verr := Verify(cut)
			_, _, rerr := Records(cut, 1<<20)
			if c == CodecNone && !errors.Is(verr, ErrInvalid) {
				t.Fatalf("%s: records cut at %d: Verify = %v, want ErrInvalid", c, n, verr)
			}
			if !errors.Is(rerr, ErrInvalid) {
				t.Fatalf("%s: records cut at %d: Records = %v, want ErrInvalid", c, n, rerr)
			}
		}
		if _, err := Verify(append(bytes.Clone(b), 0)); !errors.Is(err, ErrInvalid) {
			t.Fatalf("%s: trailing byte: %v", c, err)
		}
	}
}

func TestCountMismatch(t *testing.T) {
	setCounts := func(n, last int32) func([]byte) {
		return func(b []byte) {
			binary.BigEndian.PutUint32(b[offNumRecords:], uint32(n))
			binary.BigEndian.PutUint32(b[offLastOffsetDelta:], uint32(last))
		}
	}
	for c, b := range testBatches(t) { // 12 records
		for _, tc := range []struct {
			n, last int32
			verify  bool // whether Verify can see it without decompressing
		}{
			{11, 10, c == CodecNone},
			{13, 12, c == CodecNone},
			{0, 11, c == CodecNone},
			{12, 12, true},
			{12, 10, true},
			{-1, 11, true},
			{12, -1, true},
		} {
			bad := edit(b, setCounts(tc.n, tc.last))
			_, verr := Verify(bad)
			if tc.verify && !errors.Is(verr, ErrInvalid) || !tc.verify && verr != nil {
				t.Errorf("%s: %d records, last delta %d: Verify = %v", c, tc.n, tc.last, verr)
			}
			if _, _, err := Records(bad, 1<<20); !errors.Is(err, ErrInvalid) {
				t.Errorf("%s: %d records, last delta %d: Records = %v", c, tc.n, tc.last, err)
			}
		}
	}
}

func TestUnsupportedCodec(t *testing.T) {
	b := mustBuild(t, BuildOptions{}, sampleRecords(2, 1))
	for _, c := range []int16{5, 6, 7} {
		bad := edit(b, func(b []byte) { b[offAttributes+1] = byte(c) })
		if _, err := Verify(bad); !errors.Is(err, ErrUnsupportedCodec) {
			t.Fatalf("codec %d: %v", c, err)
		}
	}
	bad := edit(b, func(b []byte) { b[offMagic] = 1 })
	if _, err := Verify(bad); !errors.Is(err, ErrInvalid) {
		t.Fatalf("magic 1: %v", err)
	}
}

func TestMalformedRecords(t *testing.T) {
	// A valid record: length 6, attributes, ts 0, delta 0, null key,
	// null value, no headers.
	good := []byte{12, 0, 0, 0, 1, 1, 0}
	if _, err := Verify(withRecordBytes(good, 1)); err != nil {
		t.Fatalf("baseline: %v", err)
	}
	for name, recs := range map[string][]byte{
		"negative length":     {1, 0, 0, 0, 1, 1, 0},
		"length past end":     {16, 0, 0, 0, 1, 1, 0},
		"length short":        {10, 0, 0, 0, 1, 1, 0},
		"empty record":        {0},
		"overlong varlong":    {32, 0, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0, 0, 1, 1, 0},
		"varint over 5 bytes": {22, 0, 0, 0x80, 0x80, 0x80, 0x80, 0x80, 0, 1, 1, 0},
		"varint over int32":   {20, 0, 0, 0xfe, 0xff, 0xff, 0xff, 0x1f, 1, 1, 0},
		"key length -2":       {12, 0, 0, 0, 3, 1, 0},
		"key past record":     {12, 0, 0, 0, 20, 1, 0},
		"negative headers":    {12, 0, 0, 0, 1, 1, 1},
		"missing header":      {12, 0, 0, 0, 1, 1, 2},
		"null header key":     {16, 0, 0, 0, 1, 1, 2, 1, 1},
		"header value -2":     {16, 0, 0, 0, 1, 1, 2, 0, 3},
		"bytes past fields":   {14, 0, 0, 0, 1, 1, 0, 9},
		"delta 1 first":       {12, 0, 0, 2, 1, 1, 0},
		"truncated length":    {0x80},
	} {
		b := withRecordBytes(recs, 1)
		if _, err := Verify(b); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: Verify = %v", name, err)
		}
		if _, _, err := Records(b, 1<<20); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: Records = %v", name, err)
		}
	}
	// Two records with the same offset delta.
	twice := append(bytes.Clone(good), good...)
	if _, err := VerifyCompacted(withRecordBytes(twice, 2)); !errors.Is(err, ErrInvalid) {
		t.Errorf("repeated delta: %v", err)
	}
}

func TestVerifyDoesNotAllocate(t *testing.T) {
	b := mustBuild(t, BuildOptions{}, sampleRecords(64, 9))
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := Verify(b); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("Verify allocates %v times", allocs)
	}
}

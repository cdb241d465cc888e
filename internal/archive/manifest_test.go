package archive

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"reflect"
	"testing"
)

func seg(base, last int64) Segment {
	return Segment{BaseOffset: base, LastOffset: last, FirstTimestamp: base * 10, MaxTimestamp: last * 10,
		Size: (last - base + 1) * 100, CRC32C: uint32(base*31 + last), UploadTime: 1_700_000_000_000 + base}
}

func TestManifestAdd(t *testing.T) {
	for _, c := range []struct {
		name     string
		start    int64
		segs     [][2]int64
		add      [2]int64
		logStart int64
		want     string // ranges after, or "" when err is set
		err      error
	}{
		{"first at zero", 0, nil, [2]int64{0, 9}, 0, "start 0: 0-9", nil},
		{"contiguous", 0, [][2]int64{{0, 9}}, [2]int64{10, 19}, 0, "start 0: 0-9 10-19", nil},
		{"overlap", 0, [][2]int64{{0, 9}}, [2]int64{5, 19}, 0, "", ErrOverlap},
		{"duplicate", 0, [][2]int64{{0, 9}}, [2]int64{0, 9}, 0, "", ErrOverlap},
		{"gap", 0, [][2]int64{{0, 9}}, [2]int64{11, 19}, 0, "", ErrGap},
		{"gap not covered by log start", 0, [][2]int64{{0, 9}}, [2]int64{20, 29}, 15, "", ErrGap},
		{"gap after DeleteRecords", 0, [][2]int64{{0, 9}}, [2]int64{20, 29}, 25, "start 25: 20-29", nil},
		{"gap, log start at base", 0, [][2]int64{{0, 9}}, [2]int64{20, 29}, 20, "start 20: 20-29", nil},
		{"first not at zero needs log start", 0, nil, [2]int64{100, 199}, 0, "", ErrGap},
		{"first after retention", 0, nil, [2]int64{100, 199}, 100, "start 100: 100-199", nil},
		{"log start drops old segments", 0, [][2]int64{{0, 9}, {10, 19}}, [2]int64{20, 29}, 12, "start 12: 10-19 20-29", nil},
		{"log start past the new segment", 0, [][2]int64{{0, 9}}, [2]int64{10, 19}, 20, "", ErrBelowStart},
		{"empty after trim, straddling", 50, nil, [2]int64{40, 59}, 0, "start 50: 40-59", nil},
		{"empty after trim, below", 50, nil, [2]int64{40, 49}, 0, "", ErrBelowStart},
		{"invalid range", 0, nil, [2]int64{9, 0}, 0, "", nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := &Manifest{StartOffset: c.start}
			for _, s := range c.segs {
				m.Segments = append(m.Segments, seg(s[0], s[1]))
			}
			before := ranges(m)
			err := m.Add(seg(c.add[0], c.add[1]), c.logStart)
			if c.want == "" {
				if err == nil || c.err != nil && !errors.Is(err, c.err) {
					t.Fatalf("Add = %v, want %v", err, c.err)
				}
				if ranges(m) != before {
					t.Fatalf("a refused Add changed the manifest to %s", ranges(m))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := ranges(m); got != c.want {
				t.Fatalf("got %s, want %s", got, c.want)
			}
			if err := m.check(); err != nil {
				t.Fatalf("Add broke an invariant: %v", err)
			}
		})
	}
}

func TestManifestFindTrim(t *testing.T) {
	m := &Manifest{}
	for _, s := range [][2]int64{{0, 9}, {10, 19}, {20, 29}} {
		if err := m.Add(seg(s[0], s[1]), 0); err != nil {
			t.Fatal(err)
		}
	}
	for off, want := range map[int64]int64{0: 0, 9: 0, 10: 10, 25: 20, 29: 20, 30: -1, -1: -1} {
		s, ok := m.Find(off)
		if want < 0 && ok || want >= 0 && (!ok || s.BaseOffset != want) {
			t.Fatalf("Find(%d) = %d %v, want %d", off, s.BaseOffset, ok, want)
		}
	}
	dropped := m.Trim(15)
	if len(dropped) != 1 || dropped[0].BaseOffset != 0 || ranges(m) != "start 15: 10-19 20-29" {
		t.Fatalf("Trim(15): dropped %v, %s", dropped, ranges(m))
	}
	if _, ok := m.Find(12); ok {
		t.Fatal("Find below the start offset")
	}
	if m.Trim(3) != nil || m.StartOffset != 15 {
		t.Fatal("Trim lowered the start offset")
	}
}

func TestManifestEncoding(t *testing.T) {
	m := &Manifest{Generation: 7}
	for _, s := range [][2]int64{{100, 109}, {110, 119}} {
		if err := m.Add(seg(s[0], s[1]), 100); err != nil {
			t.Fatal(err)
		}
	}
	m.Segments[0].FirstTimestamp = -1
	m.Segments[1].TxnIndex, m.Segments[1].TxnIndexSize, m.Segments[1].TxnIndexCRC32C = true, 123, 0xfeedf00d
	b, err := m.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != manifestHeaderLen+2*manifestEntryLen+manifestTrailerLen || string(b[:4]) != "WARM" {
		t.Fatalf("encoding of %d bytes: % x", len(b), b[:8])
	}
	var got Manifest
	if err := got.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(&got, m) {
		t.Fatalf("round trip:\n%+v\n%+v", got, *m)
	}
	empty, _ := (&Manifest{}).MarshalBinary()
	if err := got.UnmarshalBinary(empty); err != nil || len(got.Segments) != 0 {
		t.Fatalf("empty manifest: %v", err)
	}
	// Every damaged form is refused with ErrCorrupt.
	reseal := func(b []byte) []byte {
		body := b[:len(b)-4]
		return binary.BigEndian.AppendUint32(bytes.Clone(body), crc32.Checksum(body, castagnoli))
	}
	edit := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(b)) }
	for name, bad := range map[string][]byte{
		"empty":       nil,
		"short":       b[:20],
		"truncated":   b[:len(b)-1],
		"bit flip":    edit(func(c []byte) []byte { c[40] ^= 1; return c }),
		"bad magic":   reseal(edit(func(c []byte) []byte { c[0] = 'X'; return c })),
		"version 3":   reseal(edit(func(c []byte) []byte { c[5] = 3; return c })),
		"version 1":   reseal(edit(func(c []byte) []byte { c[5] = 1; return c })), // 72-byte entries
		"entry flags": reseal(edit(func(c []byte) []byte { c[manifestHeaderLen+71] = 2; return c })),
		"index size without the flag": reseal(edit(func(c []byte) []byte {
			c[manifestHeaderLen+63] = 1
			return c
		})),
		"flags":      reseal(edit(func(c []byte) []byte { c[7] = 1; return c })),
		"count high": reseal(edit(func(c []byte) []byte { binary.BigEndian.PutUint32(c[24:], 1<<31); return c })),
		"count low":  reseal(edit(func(c []byte) []byte { binary.BigEndian.PutUint32(c[24:], 1); return c })),
		"reserved":   reseal(edit(func(c []byte) []byte { c[manifestHeaderLen+47] = 1; return c })),
		"gap": reseal(edit(func(c []byte) []byte {
			binary.BigEndian.PutUint64(c[manifestHeaderLen+manifestEntryLen:], 111)
			return c
		})),
		"start outside": reseal(edit(func(c []byte) []byte { binary.BigEndian.PutUint64(c[16:], 115); return c })),
		"extra byte":    reseal(append(bytes.Clone(b), 0)),
	} {
		var m Manifest
		if err := m.UnmarshalBinary(bad); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: %v, want ErrCorrupt", name, err)
		}
	}
	if _, err := (&Manifest{StartOffset: 5, Segments: []Segment{seg(10, 20)}}).MarshalBinary(); err == nil {
		t.Fatal("a manifest breaking its invariants was encoded")
	}
}

// encodeV1 encodes m as version 1 did (56-byte entries, no transaction
// index), as manifests stored before transaction indexes are.
func encodeV1(m *Manifest) []byte {
	b := []byte(manifestMagic)
	b = binary.BigEndian.AppendUint16(b, 1)
	b = binary.BigEndian.AppendUint16(b, 0)
	b = binary.BigEndian.AppendUint64(b, m.Generation)
	b = binary.BigEndian.AppendUint64(b, uint64(m.StartOffset))
	b = binary.BigEndian.AppendUint32(b, uint32(len(m.Segments)))
	for _, s := range m.Segments {
		for _, v := range []int64{s.BaseOffset, s.LastOffset, s.FirstTimestamp, s.MaxTimestamp, s.Size} {
			b = binary.BigEndian.AppendUint64(b, uint64(v))
		}
		b = binary.BigEndian.AppendUint32(b, s.CRC32C)
		b = binary.BigEndian.AppendUint32(b, 0)
		b = binary.BigEndian.AppendUint64(b, uint64(s.UploadTime))
	}
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

// A version 1 manifest (stored before transaction indexes) still reads:
// its segments record no transaction index; the next change stores it as
// version 2.
func TestManifestV1(t *testing.T) {
	m := &Manifest{Generation: 4, StartOffset: 5, Segments: []Segment{seg(0, 9), seg(10, 19)}}
	var got Manifest
	if err := got.UnmarshalBinary(encodeV1(m)); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(&got, m) {
		t.Fatalf("version 1:\n%+v\nwant\n%+v", got, *m)
	}
	if err := got.Add(Segment{BaseOffset: 20, LastOffset: 29, TxnIndex: true}, 0); err != nil {
		t.Fatal(err)
	}
	b, err := got.MarshalBinary()
	if err != nil || binary.BigEndian.Uint16(b[4:]) != 2 {
		t.Fatalf("re-encoded: %v", err)
	}
	var again Manifest
	if err := again.UnmarshalBinary(b); err != nil || !reflect.DeepEqual(again, got) {
		t.Fatalf("version 2 round trip: %v", err)
	}
}

// FuzzManifestDecode: the decoder never panics, allocates in proportion to
// its input whatever the count field says, and whatever it accepts
// re-encodes to the same bytes.
func FuzzManifestDecode(f *testing.F) {
	m := &Manifest{Generation: 3}
	for _, s := range [][2]int64{{0, 9}, {10, 19}, {20, 99}} {
		_ = m.Add(seg(s[0], s[1]), 0)
	}
	m.Segments[1].TxnIndex = true
	m.Segments[2].TxnIndex, m.Segments[2].TxnIndexSize, m.Segments[2].TxnIndexCRC32C = true, 48, 0xabcdef01
	good, _ := m.MarshalBinary()
	empty, _ := (&Manifest{Generation: 1, StartOffset: 42}).MarshalBinary()
	f.Add(good)
	f.Add(empty)
	f.Add(encodeV1(m))
	f.Add(good[:40])
	f.Add([]byte("WARM"))
	f.Fuzz(func(t *testing.T, b []byte) {
		checkDecode(t, b)
		// Again with a valid checksum, to reach the checks behind it.
		if len(b) >= manifestTrailerLen {
			body := b[:len(b)-manifestTrailerLen]
			checkDecode(t, binary.BigEndian.AppendUint32(bytes.Clone(body), crc32.Checksum(body, castagnoli)))
		}
	})
}

func checkDecode(t *testing.T, b []byte) {
	t.Helper()
	var m Manifest
	if err := m.UnmarshalBinary(b); err != nil {
		if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("error not ErrCorrupt: %v", err)
		}
		return
	}
	if cap(m.Segments)*manifestEntryLenV1 > len(b) {
		t.Fatalf("%d entries allocated from %d bytes", cap(m.Segments), len(b))
	}
	again, err := m.MarshalBinary()
	if err != nil {
		t.Fatalf("accepted manifest does not re-encode: %v", err)
	}
	if binary.BigEndian.Uint16(b[4:]) == 1 {
		// Version 1 is read, never written: it re-encodes as version 2,
		// which decodes to the same manifest.
		var m2 Manifest
		if err := m2.UnmarshalBinary(again); err != nil || !reflect.DeepEqual(m, m2) {
			t.Fatalf("version 1 round trip: %v", err)
		}
		return
	}
	if !bytes.Equal(again, b) {
		t.Fatal("round trip changed the bytes")
	}
}

package batch

import (
	"bytes"
	"errors"
	"math"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	sets := map[string][]Record{
		"one":        {{Key: []byte("k"), Value: []byte("v")}},
		"null key":   {{Key: nil, Value: []byte("v")}},
		"null value": {{Key: []byte("k"), Value: nil}},
		"empty":      {{Key: []byte{}, Value: []byte{}}},
		"headers": {{Value: []byte("v"), Headers: []RecordHeader{
			{Key: "a", Value: []byte("1")}, {Key: "b", Value: nil}, {Key: "", Value: []byte{}},
		}}},
		"many":     sampleRecords(2000, 1),
		"big":      {{Value: bytes.Repeat([]byte("0123456789"), 200_000)}},
		"negative": {{TimestampDelta: math.MinInt64 / 2, Value: []byte("x")}, {TimestampDelta: math.MaxInt64 / 2}},
	}
	for _, c := range allCodecs {
		for name, recs := range sets {
			t.Run(c.String()+"/"+name, func(t *testing.T) {
				o := refOptions
				o.Codec = c
				b := mustBuild(t, o, recs)
				h, err := Verify(b)
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if h.Codec() != c || h.NumRecords != int32(len(recs)) || h.LastOffsetDelta != int32(len(recs)-1) ||
					h.BaseOffset != o.BaseOffset || h.PartitionLeaderEpoch != o.PartitionLeaderEpoch ||
					h.ProducerID != o.ProducerID || h.ProducerEpoch != o.ProducerEpoch || h.BaseSequence != o.BaseSequence ||
					h.Size() != len(b) || h.Transactional() || h.Control() || h.LogAppendTime() {
					t.Fatalf("header %+v from options %+v", h, o)
				}
				h2, got, err := Records(b, 64<<20)
				if err != nil {
					t.Fatalf("Records: %v", err)
				}
				if h2 != h {
					t.Fatalf("Records header %+v, Verify %+v", h2, h)
				}
				want := make([]Record, len(recs))
				maxTS := int64(math.MinInt64)
				for i, r := range recs {
					r.OffsetDelta = int32(i)
					want[i] = r
					maxTS = max(maxTS, r.Timestamp(h))
				}
				checkRecords(t, got, want)
				if h.MaxTimestamp != maxTS {
					t.Fatalf("MaxTimestamp %d, want %d", h.MaxTimestamp, maxTS)
				}
				for i, r := range got {
					if r.Offset(h) != o.BaseOffset+int64(i) {
						t.Fatalf("record %d offset %d", i, r.Offset(h))
					}
				}
			})
		}
	}
}

func TestBuildDefaults(t *testing.T) {
	b := mustBuild(t, BuildOptions{}, nil)
	h, err := Verify(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != HeaderSize || h.NumRecords != 0 || h.LastOffsetDelta != 0 ||
		h.ProducerID != NoProducerID || h.ProducerEpoch != -1 || h.BaseSequence != -1 {
		t.Fatalf("empty batch header %+v (%d bytes)", h, len(b))
	}
	if _, recs, err := Records(b, 0); err != nil || len(recs) != 0 {
		t.Fatalf("Records of empty batch: %v, %v", recs, err)
	}

	var zero Builder // usable without NewBuilder
	if err := zero.Append(Record{Value: []byte("a")}); err != nil {
		t.Fatal(err)
	}
	if err := zero.Append(Record{Value: []byte("b"), OffsetDelta: 77}); err != nil {
		t.Fatal(err)
	}
	out, err := zero.Build()
	if err != nil {
		t.Fatal(err)
	}
	if _, recs, err := Records(out, 0); err != nil || len(recs) != 2 || recs[1].OffsetDelta != 1 {
		t.Fatalf("zero Builder: %+v, %v", recs, err)
	}

	if _, err := Build(BuildOptions{Codec: 5}, nil); !errors.Is(err, ErrUnsupportedCodec) {
		t.Fatalf("codec 5: %v", err)
	}
	if _, err := Build(BuildOptions{Transactional: true}, nil); !errors.Is(err, ErrInvalid) {
		t.Fatalf("transactional without producer: %v", err)
	}
}

func TestBuilderReuseAndAppendTo(t *testing.T) {
	bld := NewBuilder(BuildOptions{Codec: CodecZstd})
	var stream []byte
	for i := range 3 {
		bld.Reset(BuildOptions{Codec: allCodecs[i+1], BaseOffset: int64(10 * i)})
		for _, r := range sampleRecords(i+1, uint64(i)) {
			if err := bld.Append(r); err != nil {
				t.Fatal(err)
			}
		}
		if bld.Len() != i+1 {
			t.Fatalf("Len %d", bld.Len())
		}
		var err error
		if stream, err = bld.AppendTo(stream); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; len(stream) > 0; i++ {
		whole, rest, err := Split(stream)
		if err != nil {
			t.Fatal(err)
		}
		h, recs, err := Records(whole, 1<<20)
		if err != nil || h.BaseOffset != int64(10*i) || len(recs) != i+1 {
			t.Fatalf("batch %d: %+v %d records, %v", i, h, len(recs), err)
		}
		stream = rest
	}
}

func TestCompacted(t *testing.T) {
	var bld Builder
	for _, d := range []int32{0, 3, 4, 9} {
		if err := bld.AppendWithDelta(Record{OffsetDelta: d, Value: []byte{byte(d)}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := bld.AppendWithDelta(Record{OffsetDelta: 9}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("repeated delta: %v", err)
	}
	for _, c := range allCodecs {
		bld.opts.Codec = c
		b, err := bld.Build()
		if err != nil {
			t.Fatal(err)
		}
		h, err := VerifyCompacted(b)
		if err != nil || h.NumRecords != 4 || h.LastOffset() != 9 {
			t.Fatalf("%s: VerifyCompacted %+v, %v", c, h, err)
		}
		if _, err := Verify(b); !errors.Is(err, ErrInvalid) {
			t.Fatalf("%s: Verify of compacted batch: %v", c, err)
		}
		if _, _, err := Records(b, 1<<20); !errors.Is(err, ErrInvalid) {
			t.Fatalf("%s: Records of compacted batch: %v", c, err)
		}
		_, recs, err := RecordsCompacted(b, 1<<20)
		if err != nil || len(recs) != 4 || recs[3].OffsetDelta != 9 || recs[1].Value[0] != 3 {
			t.Fatalf("%s: RecordsCompacted %+v, %v", c, recs, err)
		}
	}
}

func TestSetters(t *testing.T) {
	for _, c := range allCodecs {
		o := refOptions
		o.Codec = c
		b := mustBuild(t, o, sampleRecords(10, 2))
		SetBaseOffset(b, 5000)
		SetPartitionLeaderEpoch(b, 99)
		h, err := Verify(b)
		if err != nil {
			t.Fatalf("%s: after offset and epoch: %v", c, err)
		}
		if h.BaseOffset != 5000 || h.PartitionLeaderEpoch != 99 || h.LastOffset() != 5009 {
			t.Fatalf("%s: header %+v", c, h)
		}
		const now = 1_800_000_000_000
		SetLogAppendTime(b, now)
		h, recs, err := Records(b, 1<<20)
		if err != nil {
			t.Fatalf("%s: after SetLogAppendTime: %v", c, err)
		}
		if !h.LogAppendTime() || h.MaxTimestamp != now || h.BaseTimestamp != o.BaseTimestamp || h.Codec() != c {
			t.Fatalf("%s: header %+v", c, h)
		}
		for _, r := range recs {
			if r.Timestamp(h) != now {
				t.Fatalf("%s: record timestamp %d", c, r.Timestamp(h))
			}
		}
		// The CRC covers only the batch when b runs on.
		long := append(bytes.Clone(b), 1, 2, 3)
		SetLogAppendTime(long, now+1)
		if _, err := Verify(long[:len(b)]); err != nil {
			t.Fatalf("%s: SetLogAppendTime on a longer slice: %v", c, err)
		}
	}
}

func TestLogAppendTimeBuild(t *testing.T) {
	b := mustBuild(t, BuildOptions{LogAppendTime: true, BaseTimestamp: 500}, []Record{{TimestampDelta: 40}, {TimestampDelta: -3}})
	h, recs, err := Records(b, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !h.LogAppendTime() || h.MaxTimestamp != 500 || recs[0].Timestamp(h) != 500 {
		t.Fatalf("header %+v", h)
	}
}

func TestSplit(t *testing.T) {
	a := mustBuild(t, BuildOptions{BaseOffset: 1}, sampleRecords(3, 3))
	b := mustBuild(t, BuildOptions{BaseOffset: 4, Codec: CodecGzip}, sampleRecords(5, 4))
	stream := append(append(bytes.Clone(a), b...), b[:30]...)
	whole, rest, err := Split(stream)
	if err != nil || !bytes.Equal(whole, a) || cap(whole) != len(a) {
		t.Fatalf("first: %v", err)
	}
	whole, rest, err = Split(rest)
	if err != nil || !bytes.Equal(whole, b) {
		t.Fatalf("second: %v", err)
	}
	if _, r, err := Split(rest); !errors.Is(err, ErrShort) || len(r) != 30 {
		t.Fatalf("partial tail: %v", err)
	}
	if _, _, err := Split(nil); !errors.Is(err, ErrShort) {
		t.Fatalf("empty: %v", err)
	}
	bad := bytes.Clone(a)
	bad[offMagic] = 1
	if _, _, err := Split(bad); !errors.Is(err, ErrInvalid) {
		t.Fatalf("magic 1: %v", err)
	}
	for n := range len(a) {
		if _, _, err := Split(a[:n]); !errors.Is(err, ErrShort) {
			t.Fatalf("prefix %d: %v", n, err)
		}
	}
}

func TestParseHeader(t *testing.T) {
	b := mustBuild(t, refOptions, sampleRecords(4, 5))
	if _, err := ParseHeader(b[:HeaderSize-1]); !errors.Is(err, ErrShort) {
		t.Fatalf("short: %v", err)
	}
	h, err := ParseHeader(b[:HeaderSize]) // the records need not be there
	if err != nil || h.Magic != Magic || h.NumRecords != 4 {
		t.Fatalf("%+v %v", h, err)
	}
	for _, l := range []int32{-1, 0, HeaderSize - 13, math.MaxInt32} {
		bad := bytes.Clone(b)
		bad[8], bad[9], bad[10], bad[11] = byte(l>>24), byte(l>>16), byte(l>>8), byte(l)
		if _, err := ParseHeader(bad); !errors.Is(err, ErrInvalid) {
			t.Fatalf("length %d: %v", l, err)
		}
	}
}

func TestCodecString(t *testing.T) {
	want := []string{"none", "gzip", "snappy", "lz4", "zstd", "codec(5)"}
	for i, w := range want {
		if got := Codec(i).String(); got != w {
			t.Errorf("Codec(%d) = %q, want %q", i, got, w)
		}
	}
}

func TestControl(t *testing.T) {
	o := BuildOptions{HasProducer: true, ProducerID: 9, ProducerEpoch: 2, BaseSequence: -1, Transactional: true, Control: true}
	b := mustBuild(t, o, []Record{EndTxnMarker(ControlCommit, 5)})
	if !IsControl(b) || IsControl(b[:HeaderSize-1]) {
		t.Fatal("IsControl")
	}
	h, recs, err := Records(b, 0)
	if err != nil || !h.Control() || !h.Transactional() || h.ProducerID != 9 {
		t.Fatalf("%+v %v", h, err)
	}
	k, err := ParseControlKey(recs[0].Key)
	if err != nil || k != (ControlKey{Version: 0, Type: ControlCommit}) || k.Type.String() != "commit" {
		t.Fatalf("key %+v %v", k, err)
	}
	if !bytes.Equal(recs[0].Value, []byte{0, 0, 0, 0, 0, 5}) {
		t.Fatalf("value %x", recs[0].Value)
	}
	if ce, err := ParseEndTxnMarker(recs[0].Value); err != nil || ce != 5 {
		t.Fatalf("ParseEndTxnMarker = %d, %v", ce, err)
	}
	if _, err := ParseEndTxnMarker([]byte{0, 0, 0}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("short marker: %v", err)
	}
	if _, err := ParseEndTxnMarker([]byte{0xff, 0xff, 0, 0, 0, 1}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("negative marker version: %v", err)
	}
	if IsControl(mustBuild(t, BuildOptions{}, nil)) {
		t.Fatal("plain batch is control")
	}
	if _, err := ParseControlKey([]byte{0, 0, 0}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("short key: %v", err)
	}
	if _, err := ParseControlKey([]byte{0xff, 0, 0, 0}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("negative version: %v", err)
	}
	if k, err := ParseControlKey([]byte{0, 1, 0, 7, 9}); err != nil || k.Type.String() != "control(7)" {
		t.Fatalf("future key: %+v %v", k, err)
	}
	if ControlAbort.String() != "abort" {
		t.Fatal(ControlAbort.String())
	}
}

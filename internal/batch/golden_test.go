package batch

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden batches in testdata")

// goldenRecords are the records of every data golden batch.
func goldenRecords() []Record { return sampleRecords(20, 42) }

// goldenControl is the control golden batch: an abort marker.
var goldenControl = BuildOptions{
	BaseOffset: 77, HasProducer: true, ProducerID: 5, ProducerEpoch: 1, BaseSequence: -1,
	Transactional: true, Control: true, BaseTimestamp: 1_700_000_000_500,
}

// goldenNames lists the golden files in the order stream.bin concatenates
// them.
func goldenNames() []string {
	var names []string
	for _, v := range referenceVariants {
		names = append(names, v.name)
	}
	return append(names, "control")
}

// writeGoldens regenerates testdata from the kmsg reference encoder, as
// producers would have written the batches.
func writeGoldens(t *testing.T) {
	var stream []byte
	for _, name := range goldenNames() {
		var b []byte
		if name == "control" {
			b = refBatch(t, CodecNone, goldenControl, []Record{EndTxnMarker(ControlAbort, 3)}, nil)
		} else {
			for _, v := range referenceVariants {
				if v.name == name {
					b = refBatch(t, v.codec, refOptions, goldenRecords(), v.compress)
				}
			}
		}
		check(t, os.WriteFile(filepath.Join("testdata", name+".batch"), b, 0o644))
		stream = append(stream, b...)
	}
	check(t, os.WriteFile(filepath.Join("testdata", "stream.bin"), stream, 0o644))
}

func readGolden(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatalf("%v (regenerate with go test -run TestGolden -update)", err)
	}
	return b
}

func TestGolden(t *testing.T) {
	if *update {
		writeGoldens(t)
	}
	var all []byte
	for _, name := range goldenNames() {
		b := readGolden(t, name+".batch")
		all = append(all, b...)
		h, recs, err := Records(b, 1<<20)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if name == "control" {
			k, err := ParseControlKey(recs[0].Key)
			if err != nil || !IsControl(b) || !h.Transactional() || k.Type != ControlAbort || h.ProducerID != 5 {
				t.Fatalf("control: %+v %+v %v", h, k, err)
			}
			continue
		}
		if h.BaseOffset != refOptions.BaseOffset || h.ProducerID != refOptions.ProducerID || h.BaseSequence != refOptions.BaseSequence {
			t.Fatalf("%s: header %+v", name, h)
		}
		checkRecords(t, recs, goldenRecords())
	}
	stream := readGolden(t, "stream.bin")
	if !bytes.Equal(stream, all) {
		t.Fatal("stream.bin is not the concatenation of the golden batches")
	}
	for i, rest := 0, stream; len(rest) > 0; i++ {
		whole, r, err := Split(rest)
		if err != nil {
			t.Fatalf("batch %d: %v", i, err)
		}
		if _, err := Verify(whole); err != nil {
			t.Fatalf("batch %d: %v", i, err)
		}
		rest = r
	}
}

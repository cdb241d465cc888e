package streamtest_test

import (
	"strings"
	"testing"
	"time"

	"github.com/weirhq/weir/stream"
	"github.com/weirhq/weir/stream/streamtest"
)

// TestErrorsAreSticky: a record that does not decode fails the driver,
// naming the record; later calls do nothing.
func TestErrorsAreSticky(t *testing.T) {
	topo := stream.NewTopology()
	stream.To(stream.Source(topo, "in", stream.String(), stream.Int64()), "out", stream.String(), stream.Int64())
	d, err := streamtest.New(topo, streamtest.Config{})
	if err != nil {
		t.Fatal(err)
	}
	streamtest.Input(d, "in", stream.String(), stream.String()).Pipe("k", "not 8 bytes", time.Unix(0, 0))
	if err := d.Err(); err == nil || !strings.Contains(err.Error(), "decode in/0@0") {
		t.Fatalf("err %v", err)
	}
	streamtest.Input(d, "in", stream.String(), stream.Int64()).Pipe("k", 1, time.Unix(0, 0))
	if n := len(d.Records("in")); n != 1 {
		t.Fatalf("a failed driver took %d records", n)
	}
	if got := streamtest.Output(d, "out", stream.String(), stream.Int64()).ReadAll(); len(got) != 0 {
		t.Fatalf("out %v", got)
	}
}

package stream_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weirhq/weir/stream"
	"github.com/weirhq/weir/stream/streamtest"
)

// TestEngineRestoreFromChangelog: a second engine restored from the first
// one's changelog continues its windows, and keeps its watermark: a record
// replayed into a window already emitted is late, not a new partial count.
func TestEngineRestoreFromChangelog(t *testing.T) {
	topo, _ := windowCount(stream.Tumbling(10 * time.Second))
	d := mustDriver(t, topo, streamtest.Config{ApplicationID: "app"})
	in := streamtest.Input(d, "in", S, S)
	in.Pipe("k", "", at(1))
	in.Pipe("k", "", at(12)) // closes [0,10)
	in.Pipe("k", "", at(15))
	if got := results(streamtest.Output(d, "out", S, I)); !slices.Equal(got, []string{"k@00.000-10.000=1"}) {
		t.Fatalf("first engine: %v", got)
	}
	changelog := d.Records("app-count-windows-1-changelog")
	if len(changelog) == 0 {
		t.Fatal("no changelog")
	}

	e, err := stream.NewEngine(topo, stream.EngineConfig{ApplicationID: "app", Partitions: func(string) (int32, bool) { return 1, true }})
	if err != nil {
		t.Fatal(err)
	}
	id, ok := e.TaskFor("in", 0)
	if !ok || e.OpenTask(id) != nil {
		t.Fatal("open task")
	}
	if got := e.Changelogs(id); !slices.Equal(got, []string{"app-count-windows-1-changelog"}) {
		t.Fatalf("changelogs %v", got)
	}
	for _, r := range changelog {
		if err := e.Restore(r); err != nil {
			t.Fatal(err)
		}
	}
	pipe := func(sec float64) {
		kb, _ := S.Encode("k")
		if err := e.Process(&kgo.Record{Topic: "in", Key: kb, Value: []byte{}, Timestamp: at(sec)}); err != nil {
			t.Fatal(err)
		}
	}
	pipe(5) // replayed into the emitted window [0,10): late
	if e.LateRecords() != 1 {
		t.Fatalf("late %d, want 1", e.LateRecords())
	}
	pipe(18)
	if err := e.EndPartition("in", 0); err != nil {
		t.Fatal(err)
	}
	outs, err := e.Commit()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range outs {
		if r.Topic == "out" {
			n, _ := I.Decode(r.Value)
			got = append(got, fmt.Sprintf("%s=%d", r.Key, n))
		}
	}
	if !slices.Equal(got, []string{"k@10.000-20.000=3"}) {
		t.Fatalf("restored engine emitted %v, want the [10,20) window with 12, 15 and 18", got)
	}
	if err := e.Restore(changelog[0]); err == nil {
		t.Fatal("restore into a running task accepted")
	}
}

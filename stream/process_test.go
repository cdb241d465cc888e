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

// sessionCount counts a key's records from its first one until 5 s of
// event time later, emitting "key:n" when its timer fires.
func sessionCount() *stream.Topology {
	topo := stream.NewTopology()
	in := stream.Source(topo, "in", S, S)
	out := stream.Process(stream.GroupByKey(in, S, S), I, stream.Processor[string, string, int64, string]{
		OnRecord: func(c *stream.ProcessContext[string, int64, string], _ string) {
			n, ok := c.State()
			if !ok {
				c.SetTimer(c.Time().Add(5 * time.Second))
			}
			c.SetState(n + 1)
		},
		OnTimer: func(c *stream.ProcessContext[string, int64, string]) {
			n, _ := c.State()
			c.ClearState()
			c.Emit(fmt.Sprintf("%s:%d@%s", c.Key(), n, c.Time().Format("05.000")))
		},
	}, stream.Named("sessions"))
	stream.To(out, "out", S, S)
	return topo
}

// TestProcessStateAndTimers: timers fire once the watermark passes them,
// in time then key order, with the key's state; end of input fires the
// rest.
func TestProcessStateAndTimers(t *testing.T) {
	d := mustDriver(t, sessionCount(), streamtest.Config{ApplicationID: "app"})
	in := streamtest.Input(d, "in", S, S)
	out := streamtest.Output(d, "out", S, S)
	in.Pipe("b", "", at(1))
	in.Pipe("a", "", at(1))
	in.Pipe("a", "", at(3))
	in.Pipe("a", "", at(6)) // watermark 6 = timers at 6 not yet passed
	if got := out.Values(); len(got) != 0 {
		t.Fatalf("fired early: %v", got)
	}
	in.Pipe("c", "", at(6.001)) // passes 6: a (3 records) and b (1), in key order
	if got := out.Values(); !slices.Equal(got, []string{"a:3@06.000", "b:1@06.000"}) {
		t.Fatalf("timers: %v", got)
	}
	in.Pipe("a", "", at(7)) // a's state was cleared: a new session
	d.EndOfInput()
	if got := out.Values(); !slices.Equal(got, []string{"c:1@11.001", "a:1@12.000"}) {
		t.Fatalf("end of input: %v", got)
	}
}

// TestProcessRestore: state and timers come back from the changelog.
func TestProcessRestore(t *testing.T) {
	topo := sessionCount()
	d := mustDriver(t, topo, streamtest.Config{ApplicationID: "app"})
	in := streamtest.Input(d, "in", S, S)
	in.Pipe("a", "", at(1))
	in.Pipe("a", "", at(2))
	changelog := d.Records("app-sessions-changelog")
	if len(changelog) == 0 {
		t.Fatal("no changelog")
	}
	e, err := stream.NewEngine(topo, stream.EngineConfig{ApplicationID: "app", Partitions: func(string) (int32, bool) { return 1, true }})
	if err != nil {
		t.Fatal(err)
	}
	id, _ := e.TaskFor("in", 0)
	if err := e.OpenTask(id); err != nil {
		t.Fatal(err)
	}
	for _, r := range changelog {
		if err := e.Restore(r); err != nil {
			t.Fatal(err)
		}
	}
	kb, _ := S.Encode("a")
	if err := e.Process(&kgo.Record{Topic: "in", Key: kb, Value: []byte{}, Timestamp: at(4)}); err != nil {
		t.Fatal(err)
	}
	if err := e.EndPartition("in", 0); err != nil {
		t.Fatal(err)
	}
	outs, _ := e.Commit()
	var got []string
	for _, r := range outs {
		if r.Topic == "out" {
			got = append(got, string(r.Value))
		}
	}
	if !slices.Equal(got, []string{"a:3@06.000"}) {
		t.Fatalf("restored: %v, want the session of 1, 2 and 4 firing at 6", got)
	}
}

func TestProcessNeedsOnRecord(t *testing.T) {
	topo := stream.NewTopology()
	in := stream.Source(topo, "in", S, S)
	stream.Process(stream.GroupByKey(in, S, S), I, stream.Processor[string, string, int64, string]{})
	if topo.Err() == nil {
		t.Fatal("Process without OnRecord accepted")
	}
}

// idleFlush counts a key's records and emits the count 10 s of wall-clock
// time after the key's first record, on a processing-time timer; a record
// "cancel" deletes the timer set at wall + 1 s (the test's).
func idleFlush() *stream.Topology {
	topo := stream.NewTopology()
	in := stream.Source(topo, "in", S, S)
	out := stream.Process(stream.GroupByKey(in, S, S), I, stream.Processor[string, string, int64, string]{
		OnRecord: func(c *stream.ProcessContext[string, int64, string], v string) {
			n, ok := c.State()
			if v == "cancel" && ok {
				c.DeleteProcessingTimer(wall.Add(11 * time.Second))
				c.ClearState()
				return
			}
			if !ok {
				c.SetProcessingTimer(c.Now().Add(10 * time.Second))
			}
			c.SetState(n + 1)
		},
		OnProcessingTimer: func(c *stream.ProcessContext[string, int64, string]) {
			n, _ := c.State()
			c.ClearState()
			c.Emit(fmt.Sprintf("%s:%d@%s", c.Key(), n, c.Time().Format("15:04:05")))
		},
	}, stream.Named("flush"))
	stream.To(out, "out", S, S)
	return topo
}

var wall = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// TestProcessingTimers: processing-time timers fire on the driver's wall
// clock (Advance), not on event time, and can be deleted.
func TestProcessingTimers(t *testing.T) {
	d := mustDriver(t, idleFlush(), streamtest.Config{ApplicationID: "app", Start: wall})
	in := streamtest.Input(d, "in", S, S)
	out := streamtest.Output(d, "out", S, S)
	in.Pipe("a", "", at(1))
	d.Advance(time.Second)
	in.Pipe("a", "", at(500)) // event time far ahead: no processing timer fires
	in.Pipe("b", "", at(501)) // b's timer at 12:00:11
	d.Advance(8 * time.Second)
	if got := out.Values(); len(got) != 0 {
		t.Fatalf("fired early: %v", got)
	}
	d.Advance(time.Second) // 12:00:10: a's timer
	if got := out.Values(); !slices.Equal(got, []string{"a:2@12:00:10"}) {
		t.Fatalf("a: %v", got)
	}
	if recs := d.Records("out"); !recs[0].Timestamp.Equal(wall.Add(10 * time.Second)) {
		t.Fatalf("emitted at %v, want the timer's time", recs[0].Timestamp)
	}
	in.Pipe("b", "cancel", at(502)) // deletes b's timer, at 12:00:11
	d.Advance(time.Minute)
	d.EndOfInput()
	if got := out.Values(); len(got) != 0 {
		t.Fatalf("a deleted timer fired: %v", got)
	}
}

// TestProcessingTimerRestore: a processing-time timer comes back from the
// changelog and fires at the restored engine's first tick past it.
func TestProcessingTimerRestore(t *testing.T) {
	topo := idleFlush()
	d := mustDriver(t, topo, streamtest.Config{ApplicationID: "app", Start: wall})
	streamtest.Input(d, "in", S, S).Pipe("a", "", at(1))
	e, err := stream.NewEngine(topo, stream.EngineConfig{ApplicationID: "app", Partitions: func(string) (int32, bool) { return 1, true }})
	if err != nil {
		t.Fatal(err)
	}
	id, _ := e.TaskFor("in", 0)
	if err := e.OpenTask(id); err != nil {
		t.Fatal(err)
	}
	for _, r := range d.Records("app-flush-changelog") {
		if err := e.Restore(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.Tick(wall.Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if outs := e.Drain(); len(outs) != 0 {
		t.Fatalf("fired early: %v", outs)
	}
	if err := e.Tick(wall.Add(time.Hour)); err != nil { // down for an hour: fires at once
		t.Fatal(err)
	}
	outs := e.Drain()
	if len(outs) != 1 || string(outs[0].Value) != "a:1@12:00:10" {
		t.Fatalf("restored timer: %v", outs)
	}
}

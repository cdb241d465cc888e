package txn

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"
)

// TestMachine runs the scripts in testdata against a Machine with a fake
// clock and producer ids from 1000 up. Regenerate the expected output with
//
//	go test ./internal/txn -run TestMachine -rewrite
//
// Commands (id defaults to t; pid and epoch default to the id's last
// InitProducerId answer; durations use time.ParseDuration):
//
//	config [max-timeout=15m expiration=168h max-partitions=10000]
//	    a fresh Machine, clock at +0s, empty log
//	init [id timeout=1m pid=-1 epoch=-1 v=4]
//	add-partitions [id pid epoch v=3] partitions=t/0,… | many=N (topic m, partitions 0..N-1)
//	add-offsets [id pid epoch v=3] group=g
//	end commit|abort [id pid epoch v=3]
//	markers-written [id pid epoch]   pid and epoch default to the id's current ones
//	advance <duration>   move the clock, then Tick
//	restart              a new Machine loaded from every record persisted so far
//	describe [id]
//	list [states=Ongoing,… pids=1000,…]
//
// Each command prints its answer, then the records to persist, the
// markers to write and the offsets to resolve, in that order.
func TestMachine(t *testing.T) {
	datadriven.Walk(t, "testdata", func(t *testing.T, path string) {
		h := &harness{}
		datadriven.RunTest(t, path, h.run)
	})
}

var epoch = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

type counter struct{ next int64 }

func (c *counter) InitProducerID() (int64, int16, error) {
	c.next++
	return c.next - 1, 0, nil
}

type pidEpoch struct {
	pid   int64
	epoch int16
}

type harness struct {
	cfg  Config
	ids  *counter
	m    *Machine
	now  time.Time
	log  []Record
	last map[string]pidEpoch // last InitProducerId answer per id
	out  strings.Builder
}

func (h *harness) run(t *testing.T, d *datadriven.TestData) string {
	h.out.Reset()
	if d.Cmd != "config" && h.m == nil {
		d.Fatalf(t, "config must come first")
	}
	a := args{t: t, d: d}
	id := a.str("id", "t")
	pid := func() int64 { return int64(a.int("pid", int(h.last[id].pid))) }
	ep := func() int16 { return int16(a.int("epoch", int(h.last[id].epoch))) }
	switch d.Cmd {
	case "config":
		h.cfg = Config{MaxTimeout: a.dur("max-timeout", 0), IDExpiration: a.dur("expiration", 0),
			MaxPartitions: a.int("max-partitions", 0)}
		h.ids, h.now, h.log, h.last = &counter{next: 1000}, epoch, nil, map[string]pidEpoch{}
		h.m = NewMachine(h.cfg, h.ids)
		h.out.WriteString("ok\n")

	case "init":
		r := h.m.InitProducerID(h.now, InitProducerIDRequest{TxnID: id, Timeout: a.dur("timeout", time.Minute),
			ProducerID: int64(a.int("pid", -1)), Epoch: int16(a.int("epoch", -1)), Version: int16(a.int("v", 4))})
		if r.Err == nil {
			h.last[id] = pidEpoch{r.ProducerID, r.Epoch}
			fmt.Fprintf(&h.out, "init %s: ok pid=%d epoch=%d\n", id, r.ProducerID, r.Epoch)
		} else {
			fmt.Fprintf(&h.out, "init %s: %s\n", id, errName(r.Err))
		}
		h.actions(r.Actions)

	case "add-partitions":
		var parts []TopicPartition
		for _, x := range a.list("partitions") {
			parts = append(parts, parseTP(t, d, x))
		}
		for i := range a.int("many", 0) {
			parts = append(parts, TopicPartition{Topic: "m", Partition: int32(i)})
		}
		r := h.m.AddPartitions(h.now, AddPartitionsRequest{TxnID: id, ProducerID: pid(), Epoch: ep(), Partitions: parts,
			Version: int16(a.int("v", 3))})
		h.result("add-partitions", id, r)

	case "add-offsets":
		r := h.m.AddOffsets(h.now, AddOffsetsRequest{TxnID: id, ProducerID: pid(), Epoch: ep(), Group: a.str("group", "g"),
			Version: int16(a.int("v", 3))})
		h.result("add-offsets", id, r)

	case "end":
		commit := d.HasArg("commit")
		if commit == d.HasArg("abort") {
			d.Fatalf(t, "end needs commit or abort")
		}
		r := h.m.EndTxn(h.now, EndTxnRequest{TxnID: id, ProducerID: pid(), Epoch: ep(), Commit: commit, Version: int16(a.int("v", 3))})
		h.result("end "+endName(commit), id, r)

	case "markers-written":
		cur, _ := h.m.Describe(id)
		r := h.m.MarkersWritten(h.now, id, int64(a.int("pid", int(cur.ProducerID))), int16(a.int("epoch", int(cur.Epoch))))
		h.result("markers-written", id, r)

	case "advance":
		if len(d.CmdArgs) != 1 {
			d.Fatalf(t, "advance <duration>")
		}
		dur, err := time.ParseDuration(d.CmdArgs[0].Key)
		if err != nil {
			d.Fatalf(t, "advance: %v", err)
		}
		h.now = h.now.Add(dur)
		fmt.Fprintf(&h.out, "now %s\n", h.rel(h.now))
		h.actions(h.m.Tick(h.now))

	case "restart":
		h.m = NewMachine(h.cfg, h.ids)
		fmt.Fprintf(&h.out, "loaded %d records\n", len(h.log))
		a := h.m.Load(h.log)
		if len(a.Persist) > 0 {
			d.Fatalf(t, "Load asked to persist %d records", len(a.Persist))
		}
		h.actions(a)
		for _, desc := range h.m.List(ListFilter{}) {
			h.out.WriteString(h.formatDesc(desc))
		}

	case "describe":
		desc, err := h.m.Describe(id)
		if err != nil {
			fmt.Fprintf(&h.out, "describe %s: %s\n", id, errName(err))
			break
		}
		h.out.WriteString(h.formatDesc(desc))

	case "list":
		var f ListFilter
		for _, s := range a.list("states") {
			st, ok := ParseState(s)
			if !ok {
				d.Fatalf(t, "unknown state %q", s)
			}
			f.States = append(f.States, st)
		}
		for _, s := range a.list("pids") {
			n, _ := strconv.ParseInt(s, 10, 64)
			f.ProducerIDs = append(f.ProducerIDs, n)
		}
		ds := h.m.List(f)
		if len(ds) == 0 {
			h.out.WriteString("(none)\n")
		}
		for _, desc := range ds {
			h.out.WriteString(h.formatDesc(desc))
		}

	default:
		d.Fatalf(t, "unknown command %q", d.Cmd)
	}
	return h.out.String()
}

func (h *harness) result(what, id string, r Result) {
	fmt.Fprintf(&h.out, "%s %s: %s\n", what, id, errName(r.Err))
	h.actions(r.Actions)
}

func (h *harness) actions(a Actions) {
	for _, r := range a.Persist {
		h.log = append(h.log, r)
		if r.Meta == nil {
			fmt.Fprintf(&h.out, "persist %s: tombstone\n", r.TxnID)
			continue
		}
		fmt.Fprintf(&h.out, "persist %s: %s\n", r.TxnID, h.formatMeta(*r.Meta))
	}
	for _, mk := range a.Markers {
		fmt.Fprintf(&h.out, "markers %s: %s pid=%d epoch=%d partitions=%s\n", mk.TxnID, endName(mk.Commit), mk.ProducerID,
			mk.Epoch, tps(mk.Partitions))
	}
	for _, o := range a.Offsets {
		fmt.Fprintf(&h.out, "offsets %s: %s group=%s pid=%d epoch=%d\n", o.TxnID, endName(o.Commit), o.Group, o.ProducerID, o.Epoch)
	}
}

func (h *harness) rel(ts time.Time) string {
	if ts.IsZero() {
		return "-"
	}
	return "+" + ts.Sub(epoch).String()
}

func tps(parts []TopicPartition) string {
	if len(parts) > 8 {
		return fmt.Sprintf("%s,…(%d)", tps(parts[:3]), len(parts))
	}
	s := make([]string, len(parts))
	for i, tp := range parts {
		s[i] = tp.String()
	}
	return "[" + strings.Join(s, ",") + "]"
}

func (h *harness) formatMeta(md Metadata) string {
	s := fmt.Sprintf("%s pid=%d epoch=%d last=%d/%d timeout=%v start=%s update=%s", md.State, md.ProducerID, md.Epoch,
		md.LastProducerID, md.LastEpoch, md.Timeout, h.rel(md.StartTime), h.rel(md.UpdateTime))
	if len(md.Partitions) > 0 {
		s += " partitions=" + tps(md.Partitions)
	}
	if len(md.Groups) > 0 {
		s += " groups=" + strings.Join(md.Groups, ",")
	}
	return s
}

func (h *harness) formatDesc(d Description) string {
	return fmt.Sprintf("%s: %s\n", d.TxnID, h.formatMeta(d.Metadata))
}

// errName prints an error as the Kafka code it maps to, with its detail.
func errName(err error) string {
	if err == nil {
		return "ok"
	}
	for _, e := range []struct {
		err  error
		name string
	}{
		{ErrInvalidRequest, "INVALID_REQUEST"},
		{ErrInvalidTransactionTimeout, "INVALID_TRANSACTION_TIMEOUT"},
		{ErrConcurrentTransactions, "CONCURRENT_TRANSACTIONS"},
		{ErrProducerFenced, "PRODUCER_FENCED"},
		{ErrInvalidProducerEpoch, "INVALID_PRODUCER_EPOCH"},
		{ErrInvalidProducerIDMapping, "INVALID_PRODUCER_ID_MAPPING"},
		{ErrInvalidTxnState, "INVALID_TXN_STATE"},
		{ErrTransactionalIDNotFound, "TRANSACTIONAL_ID_NOT_FOUND"},
		{ErrTooManyPartitions, "TOO_MANY_PARTITIONS"},
	} {
		if errors.Is(err, e.err) {
			if err.Error() == e.err.Error() {
				return e.name
			}
			return e.name + " (" + err.Error() + ")"
		}
	}
	return "error: " + err.Error()
}

func parseTP(t *testing.T, d *datadriven.TestData, s string) TopicPartition {
	topic, p, ok := strings.Cut(s, "/")
	n, err := strconv.Atoi(p)
	if !ok || err != nil {
		d.Fatalf(t, "bad partition %q", s)
	}
	return TopicPartition{Topic: topic, Partition: int32(n)}
}

// args reads a command's key=value arguments.
type args struct {
	t *testing.T
	d *datadriven.TestData
}

func (a args) get(key string) (string, bool) {
	for _, arg := range a.d.CmdArgs {
		if arg.Key == key {
			return strings.Join(arg.Vals, ","), true
		}
	}
	return "", false
}

func (a args) str(key, def string) string {
	if v, ok := a.get(key); ok {
		return v
	}
	return def
}

func (a args) int(key string, def int) int {
	v, ok := a.get(key)
	if !ok {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		a.d.Fatalf(a.t, "%s: %v", key, err)
	}
	return n
}

func (a args) dur(key string, def time.Duration) time.Duration {
	v, ok := a.get(key)
	if !ok {
		return def
	}
	dur, err := time.ParseDuration(v)
	if err != nil {
		a.d.Fatalf(a.t, "%s: %v", key, err)
	}
	return dur
}

func (a args) list(key string) []string {
	v, ok := a.get(key)
	if !ok || v == "" {
		return nil
	}
	return strings.Split(v, ",")
}

// TestCheckProduce: a transactional produce may write only the partitions
// of the ongoing transaction of the id's current producer id and epoch.
func TestCheckProduce(t *testing.T) {
	m := NewMachine(Config{}, &counter{})
	now := time.Unix(1000, 0)
	r := m.InitProducerID(now, InitProducerIDRequest{TxnID: "t", Timeout: time.Minute, ProducerID: -1, Epoch: -1, Version: 4})
	if r.Err != nil {
		t.Fatal(r.Err)
	}
	pid, epoch := r.ProducerID, r.Epoch
	in, out := TopicPartition{Topic: "a", Partition: 0}, TopicPartition{Topic: "a", Partition: 1}
	check := func(parts ...ProducePartition) []error { return m.CheckProduce("t", parts) }
	if errs := check(ProducePartition{in, pid, epoch}); !errors.Is(errs[0], ErrInvalidTxnState) {
		t.Fatalf("before AddPartitions: %v", errs)
	}
	if r := m.AddPartitions(now, AddPartitionsRequest{TxnID: "t", ProducerID: pid, Epoch: epoch,
		Partitions: []TopicPartition{in}, Version: 3}); r.Err != nil {
		t.Fatal(r.Err)
	}
	errs := check(ProducePartition{in, pid, epoch}, ProducePartition{out, pid, epoch},
		ProducePartition{in, pid, epoch + 1}, ProducePartition{in, pid + 1, epoch})
	if errs[0] != nil || !errors.Is(errs[1], ErrInvalidTxnState) || !errors.Is(errs[2], ErrInvalidProducerEpoch) ||
		!errors.Is(errs[3], ErrInvalidProducerIDMapping) {
		t.Fatalf("errors %v", errs)
	}
	if errs := m.CheckProduce("unknown", []ProducePartition{{in, pid, epoch}}); !errors.Is(errs[0], ErrInvalidProducerIDMapping) {
		t.Fatalf("unknown id: %v", errs)
	}
}

// TestCheckOffsets: a TxnOffsetCommit may stage only the offsets of a
// group added to the ongoing transaction of the id's producer and epoch.
func TestCheckOffsets(t *testing.T) {
	m := NewMachine(Config{}, &counter{})
	now := time.Unix(1000, 0)
	r := m.InitProducerID(now, InitProducerIDRequest{TxnID: "t", Timeout: time.Minute, ProducerID: -1, Epoch: -1, Version: 4})
	if r.Err != nil {
		t.Fatal(r.Err)
	}
	pid, epoch := r.ProducerID, r.Epoch
	if err := m.CheckOffsets("t", pid, epoch, "g"); !errors.Is(err, ErrInvalidTxnState) {
		t.Fatalf("before AddOffsets: %v", err)
	}
	if r := m.AddOffsets(now, AddOffsetsRequest{TxnID: "t", ProducerID: pid, Epoch: epoch, Group: "g", Version: 3}); r.Err != nil {
		t.Fatal(r.Err)
	}
	for _, c := range []struct {
		id    string
		pid   int64
		epoch int16
		group string
		want  error
	}{
		{"t", pid, epoch, "g", nil},
		{"t", pid, epoch, "other", ErrInvalidTxnState},
		{"t", pid, epoch + 1, "g", ErrInvalidProducerEpoch},
		{"t", pid + 1, epoch, "g", ErrInvalidProducerIDMapping},
		{"unknown", pid, epoch, "g", ErrInvalidProducerIDMapping},
	} {
		if err := m.CheckOffsets(c.id, c.pid, c.epoch, c.group); !errors.Is(err, c.want) || (c.want == nil) != (err == nil) {
			t.Fatalf("CheckOffsets(%q, %d, %d, %q) = %v, want %v", c.id, c.pid, c.epoch, c.group, err, c.want)
		}
	}
}

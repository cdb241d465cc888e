package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weirhq/weir/embedded"
)

func decodeReport(t *testing.T, s string) benchReport {
	t.Helper()
	var rep benchReport
	if err := json.Unmarshal([]byte(s), &rep); err != nil {
		t.Fatalf("bench JSON: %v\n%s", err, s)
	}
	return rep
}

// TestBenchCommands runs each mode through the CLI against an embedded
// broker: produce a known count, read it back, then a clean e2e run.
func TestBenchCommands(t *testing.T) {
	t.Parallel()
	b := startBroker(t, embedded.Options{})
	c := newCLI(t, b)

	r := c.runLine(`weir bench produce -t b1 -p 4 -n 3000 -s 100 --keys 10 --format json`)
	if r.err != nil {
		t.Fatalf("produce: %s\n%s", r.message(), r.stderr)
	}
	rep := decodeReport(t, r.stdout)
	if rep.Produce == nil || rep.Produce.Records != 3000 || rep.Produce.Bytes != 3000*105 {
		t.Fatalf("produce report %+v", rep.Produce)
	}
	if l := rep.Produce.Latency; l == nil || l.Count != 3000 || l.P50 <= 0 || l.P50 > l.P99 || l.P99 > l.Max {
		t.Fatalf("produce latency %+v", rep.Produce.Latency)
	}
	if rep.Settings.Partitions != 4 || rep.Settings.Keys != 10 {
		t.Fatalf("settings %+v", rep.Settings)
	}

	// A catch-up read of the topic: exactly what is there.
	r = c.runLine(`weir bench consume -t b1 --consumers 3 --format json`)
	if r.err != nil {
		t.Fatalf("consume: %s", r.message())
	}
	if rep := decodeReport(t, r.stdout); rep.Consume == nil || rep.Consume.Records != 3000 || rep.Consume.Errors != 0 {
		t.Fatalf("consume report %+v", rep.Consume)
	}

	// End to end, text output: nothing lost.
	r = c.runLine(`weir bench e2e -t b1 -n 2000 --producers 2 --consumers 2 -z lz4`)
	if r.err != nil {
		t.Fatalf("e2e: %s\n%s", r.message(), r.stdout)
	}
	for _, want := range []string{"produce (ack)  2000", "consume        2000", "end-to-end     2000",
		"delivery OK: 2000 sent, 2000 acknowledged, 0 failed, 2000 consumed; lost 0, duplicated 0, out of order 0"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("e2e output lacks %q:\n%s", want, r.stdout)
		}
	}

	// A fixed rate over a duration: about rate × duration records.
	r = c.runLine(`weir bench produce -t b1 --rate 500 -d 1s --max-in-flight 1 --format json`)
	if r.err != nil {
		t.Fatalf("paced produce: %s", r.message())
	}
	if rep := decodeReport(t, r.stdout); rep.Produce.Records < 300 || rep.Produce.Records > 520 {
		t.Errorf("500/s for 1s produced %d records", rep.Produce.Records)
	}
}

// TestBenchTransactions produces in transactions through the CLI: every
// record committed, one commit per --txn-records and the rest, and a
// read_committed consumer sees them all. A timed run aborts the
// transaction still open when its time is up.
func TestBenchTransactions(t *testing.T) {
	t.Parallel()
	b := startBroker(t, embedded.Options{})
	c := newCLI(t, b)

	r := c.runLine(`weir bench produce -t tx -p 4 -n 2500 -s 100 --txn-records 1000 --transactional-id tx-test --format json`)
	if r.err != nil {
		t.Fatalf("produce: %s\n%s", r.message(), r.stderr)
	}
	rep := decodeReport(t, r.stdout)
	p := rep.Produce
	if p == nil || p.Records != 2500 || p.Bytes != 2500*100 || p.Errors != 0 || p.RecordsPerSec <= 0 {
		t.Fatalf("produce report %+v", p)
	}
	tx := p.Transactions
	if tx == nil || tx.RecordsPerTxn != 1000 || tx.Committed != 3 || tx.Aborted != 0 {
		t.Fatalf("transactions %+v, want 3 committed (1000, 1000, 500)", tx)
	}
	if l := tx.CommitLatency; l == nil || l.Count != 3 || l.P50 <= 0 || l.P50 > l.P99 {
		t.Fatalf("commit latency %+v", tx.CommitLatency)
	}
	if rep.Settings.TxnRecords != 1000 || rep.Settings.TxnID != "tx-test" {
		t.Fatalf("settings %+v", rep.Settings)
	}

	// Committed: a read_committed consumer reads all 2500.
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.ConsumeTopics("tx"),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for n := 0; n < 2500; {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("read_committed consumer read %d of 2500 records", n)
		}
		n += fs.NumRecords()
	}

	// Out of time mid-transaction: nothing committed, one abort.
	r = c.runLine(`weir bench produce -t tx -p 4 -s 100 -d 300ms --txn-records 100000000`)
	if r.err != nil {
		t.Fatalf("timed produce: %s", r.message())
	}
	for _, want := range []string{"transactions of 100000000 records (weir-bench-N)", "produce (ack)  0 ",
		"transactions of 100000000 records: 0 committed, 1 aborted"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, r.stdout)
		}
	}
	if !regexp.MustCompile(`(?m)^txn commit\s+0\s+-\s+-\s+-\s+-\s+-\s+-\s+-\s+-\s+1$`).MatchString(r.stdout) {
		t.Errorf("no txn commit row of 0 commits, 1 abort:\n%s", r.stdout)
	}
}

func TestBenchFlagErrors(t *testing.T) {
	t.Parallel()
	c := &cli{t: t, env: map[string]string{"WEIR_BROKERS": "127.0.0.1:1"}}
	for line, want := range map[string]string{
		`weir bench produce -s 10`:                                  "--record-size 10: want at least 28",
		`weir bench e2e -n 0 -d 0s`:                                 "give --records or a positive --duration",
		`weir bench consume --from middle`:                          `--from "middle": want start or end`,
		`weir bench produce --producers 0`:                          "--producers and --consumers want at least 1",
		`weir bench produce --rate -1 -p 0`:                         "--partitions 0: want at least 1; --rate -1: want 0 (max) or more",
		`weir bench produce --compression foo`:                      "cannot reach broker", // checked once connected
		`weir bench produce --txn-records -1`:                       "--txn-records -1: want 0 (none) or more",
		`weir bench produce --txn-records 10 --acks leader`:         "--txn-records with --acks leader: transactions want --acks all",
		`weir bench produce --txn-records 10 --transactional-id ""`: "--transactional-id is empty",
		`weir bench e2e --txn-records 10`:                           "--txn-records: only with weir bench produce",
	} {
		if r := c.runLine(line); r.err == nil || !strings.Contains(r.message(), want) {
			t.Errorf("%s: got %q, want it to mention %q", line, r.message(), want)
		}
	}
}

// TestBenchE2EDetectsPlantedLossAndDuplicate runs weir bench e2e against a
// real broker while a hook, before the consumers start, deletes the first
// 100 records of the partition (DeleteRecords) and writes a copy of
// another one: the run must report exactly 100 lost and 1 duplicated,
// and exit with status 3.
func TestBenchE2EDetectsPlantedLossAndDuplicate(t *testing.T) {
	t.Parallel()
	b := startBroker(t, embedded.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	a := &app{brokers: b.Addr(), format: "json", getenv: func(string) string { return "" }}
	const deleted, dupOffset = 100, 150
	o := benchOpts{
		topic: "planted", partitions: 1, recordSize: 64, records: 400, producers: 1, consumers: 1,
		acks: "all", compression: "none", batchMaxBytes: 1 << 20, from: "start", drainTimeout: 10 * time.Second,
	}
	o.beforeConsume = func(ctx context.Context, acked func() int64) error {
		for acked() < dupOffset+1 {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			time.Sleep(5 * time.Millisecond)
		}
		cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.DefaultProduceTopic("planted"),
			kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"planted": {0: kgo.NewOffset().At(dupOffset)}}))
		if err != nil {
			return err
		}
		defer cl.Close()
		// Plant a loss: the log now starts at offset 100.
		del := kadm.Offsets{}
		del.AddOffset("planted", 0, deleted, -1)
		resp, err := kadm.NewClient(cl).DeleteRecords(ctx, del)
		if err == nil {
			err = resp.Error()
		}
		if err != nil {
			return err
		}
		// Plant a duplicate: the record at offset 150, written again.
		fs := cl.PollRecords(ctx, 1)
		if err := fs.Err0(); err != nil {
			return err
		}
		rec := fs.Records()[0]
		if rec.Offset != dupOffset {
			return errors.New("read the wrong record to duplicate")
		}
		return cl.ProduceSync(ctx, &kgo.Record{Value: rec.Value, Partition: 0}).FirstErr()
	}
	var out bytes.Buffer
	cmd := &cobra.Command{}
	cmd.SetOut(&out)
	cmd.SetErr(io.Discard)
	cmd.SetContext(ctx)
	err := runBench(cmd, a, "e2e", o)
	var ee exitError
	if !errors.As(err, &ee) || ee.code != 3 {
		t.Fatalf("run = %v, want exit status 3\n%s", err, out.String())
	}
	rep := decodeReport(t, out.String())
	d := rep.Delivery
	if d == nil || d.Acked != 400 || d.Lost != deleted || d.Duplicates != 1 || d.Reordered != 0 || d.Consumed != 400-deleted {
		t.Fatalf("delivery %+v, want 400 acknowledged, %d lost, 1 duplicated, %d consumed", d, deleted, 400-deleted)
	}
	want := []partitionDelivery{{Partition: 0, Acked: 400, Consumed: 400 - deleted, Lost: deleted, Duplicates: 1}}
	if len(d.Partitions) != 1 || d.Partitions[0] != want[0] {
		t.Fatalf("partitions %+v, want %+v", d.Partitions, want)
	}

	// The text summary names the damage per partition.
	var text bytes.Buffer
	if err := rep.writeText(&text); err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`delivery FAILED: .* lost 100, duplicated 1, out of order 0`).MatchString(text.String()) ||
		!regexp.MustCompile(`(?m)^0\s+400\s+300\s+100\s+1\s+0$`).MatchString(text.String()) {
		t.Errorf("text summary:\n%s", text.String())
	}
}

// TestGrafanaDashboardMatchesMetrics generates the dashboard and checks
// that every weir_ metric it queries is one a live broker serves.
func TestGrafanaDashboardMatchesMetrics(t *testing.T) {
	t.Parallel()
	b := startBroker(t, embedded.Options{})
	c := newCLI(t, b)
	// Traffic and a group with committed offsets, so every family exists.
	if r := c.runLine(`weir bench produce -t dash -p 2 -n 100`); r.err != nil {
		t.Fatal(r.message())
	}
	if r := c.runLine(`weir bench consume -t dash -g dash-group -n 100`); r.err != nil {
		t.Fatal(r.message())
	}
	resp, err := http.Get("http://" + b.HTTPAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	served := map[string]bool{}
	for _, l := range strings.Split(string(body), "\n") {
		if name, _, ok := strings.Cut(l, " "); ok && !strings.HasPrefix(l, "#") {
			name, _, _ = strings.Cut(name, "{")
			served[name] = true
		}
	}

	r := c.runLine(`weir generate grafana-dashboard`)
	if r.err != nil {
		t.Fatal(r.message())
	}
	var dash struct {
		Title  string `json:"title"`
		Panels []struct {
			Type    string `json:"type"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &dash); err != nil {
		t.Fatal(err)
	}
	metricRE := regexp.MustCompile(`\b((?:weir|go|process)_[a-z0-9_]+)`)
	queries := 0
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			queries++
			for _, m := range metricRE.FindAllString(tg.Expr, -1) {
				if !served[m] {
					t.Errorf("dashboard queries %s, which /metrics does not serve (in %s)", m, tg.Expr)
				}
			}
		}
	}
	if dash.Title != "Weir" || queries < 20 {
		t.Fatalf("dashboard %q with %d queries", dash.Title, queries)
	}
	for _, want := range []string{"kafka_consumergroup_lag", "kafka_consumergroup_current_offset", "kafka_topic_partition_current_offset", "weir_group_lag_seconds"} {
		if !served[want] {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

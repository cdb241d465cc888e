package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestKafkajsTransactions: kafkajs 2.2.4's transactional producer
// (test/kafkajs/txn.js: idempotent, maxInFlightRequests 1) runs three
// transactions over four partitions — commit with sendOffsets, abort with
// sendOffsets, commit — and a kafkajs consumer with readUncommitted: false
// reads exactly the committed records. The group whose offsets were sent
// holds the committed transaction's offsets, not the aborted one's.
//
// The same topic is then read with read_committed by franz-go, sarama and
// kcat (librdkafka): the aborted transaction is invisible to all four
// clients, while franz-go with read_uncommitted sees it.
func TestKafkajsTransactions(t *testing.T) {
	t.Parallel()
	dir, node := kafkajsDir(t)
	w := StartWeir(t, "", "--group-initial-rebalance-delay=0s")
	const in, out, offsetsGroup, readGroup = "kafkajs-txn-in", "kafkajs-txn-out", "kafkajs-txn-offsets", "kafkajs-txn-read"
	txnCreateTopics(t, w, 4, in, out)
	var input []rec
	for i := range 4 {
		for part := range int32(4) {
			input = append(input, rec{Value: fmt.Appendf(nil, "in-p%d-%d", part, i), Partition: part, Time: time.Now().Truncate(time.Millisecond)})
		}
	}
	kgoProduce(t, w.Addr, in, input)

	committed, all := txnParts{}, txnParts{}
	for n, commit := range []bool{true, false, true} {
		state := map[bool]string{true: "committed", false: "aborted"}[commit]
		for part := range int32(4) {
			for i := range 2 {
				v := fmt.Sprintf("t%d-%s-p%d-%d", n+1, state, part, i)
				all.add(part, v)
				if commit {
					committed.add(part, v)
				}
			}
		}
	}

	level := os.Getenv("KAFKAJS_LOG_LEVEL")
	if level == "" {
		level = "INFO"
	}
	start := time.Now()
	env := []string{"KAFKAJS_LOG_LEVEL=" + level, "KAFKAJS_NO_PARTITIONER_WARNING=1", "TXN_TIMEOUT_MS=30000"}
	stdout, errb, err := extRunTool(40*time.Second, nil, dir, env, node, "txn.js", w.Addr, in, out, offsetsGroup, readGroup)
	defer func() {
		if t.Failed() {
			t.Logf("kafkajs stderr (%s):\n%s", time.Since(start).Round(time.Millisecond), errb)
			t.Logf("weir log tail:\n%s", extLogTail(w, 80))
		}
	}()
	if err != nil {
		t.Fatalf("node txn.js: %v\nstdout:\n%s", err, stdout)
	}
	var res struct {
		Consumed []struct {
			P int32  `json:"p"`
			O string `json:"o"`
			V string `json:"v"`
		} `json:"consumed"`
	}
	if err := json.Unmarshal(bytes.TrimSpace(stdout), &res); err != nil {
		t.Fatalf("parse txn.js output: %v\n%s", err, stdout)
	}
	got := map[tp][]rec{}
	for _, c := range res.Consumed {
		o, err := strconv.ParseInt(c.O, 10, 64)
		if err != nil {
			t.Fatalf("txn.js offset %q: %v", c.O, err)
		}
		got[tp{out, c.P}] = append(got[tp{out, c.P}], rec{Partition: c.P, Offset: o, Value: []byte(c.V)})
	}
	txnCheck(t, "kafkajs readUncommitted=false", out, committed, got)

	// The offsets sent with t1 (2) are committed; t2's (4) were aborted.
	offs, err := kadm.NewClient(extKgoClient(t, w)).FetchOffsets(ctx(t), offsetsGroup)
	if err != nil {
		t.Fatalf("FetchOffsets(%s): %v", offsetsGroup, err)
	}
	for part := range int32(4) {
		if o, ok := offs.Lookup(in, part); !ok || o.Err != nil || o.At != 2 {
			t.Errorf("group %s committed offset of %s[%d] = %+v (found %v), want 2", offsetsGroup, in, part, o, ok)
		}
	}

	// Every client's read_committed consumer skips the aborted transaction.
	rc := kgoConsumeWith(t, w.Addr, committed.counts(out), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	txnCheck(t, "franz-go read_committed", out, committed, rc)
	rc = saramaConsumerWith(sarama.V3_6_0_0, saramaIsolation(sarama.ReadCommitted))(t, w.Addr, committed.counts(out))
	txnCheck(t, "sarama ReadCommitted", out, committed, rc)
	kc := kcatReadCommitted(t, w, out, 4)
	txnCheck(t, "kcat isolation.level=read_committed", out, committed, kc)
	// read_uncommitted sees the aborted records: they are in the log.
	ru := kgoConsumeWith(t, w.Addr, all.counts(out), kgo.FetchIsolationLevel(kgo.ReadUncommitted()))
	txnCheck(t, "franz-go read_uncommitted", out, all, ru)
}

// kcatReadCommitted reads partitions 0..parts-1 of topic to their end with
// kcat at isolation.level=read_committed.
func kcatReadCommitted(t *testing.T, w *Weir, topic string, parts int32) map[tp][]rec {
	t.Helper()
	kc := map[tp][]rec{}
	for part := range parts {
		lines := runKcat(t, w, nil, "-C", "-t", topic, "-p", fmt.Sprint(part), "-o", "beginning", "-e", "-q",
			"-X", "isolation.level=read_committed", "-f", "%o %s\n")
		for _, l := range strings.Split(strings.TrimSpace(string(lines)), "\n") {
			if l == "" {
				continue
			}
			o, v, _ := strings.Cut(l, " ")
			off, err := strconv.ParseInt(o, 10, 64)
			if err != nil {
				t.Fatalf("kcat line %q: %v", l, err)
			}
			kc[tp{topic, part}] = append(kc[tp{topic, part}], rec{Partition: part, Offset: off, Value: []byte(v)})
		}
	}
	return kc
}

package e2e

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// sarama's transactional producer and read_committed consumer against the
// built binary (issue 15). Versions: 2.5 (InitProducerId v3,
// AddPartitionsToTxn/EndTxn v1, TxnOffsetCommit v3, Fetch v11) and 3.6
// (the flexible v3 transaction APIs, Fetch v12).
var saramaTxnVersions = []struct {
	name string
	v    sarama.KafkaVersion
}{
	{"V2_5", sarama.V2_5_0_0},
	{"V3_6", sarama.V3_6_0_0},
}

// txnParts holds the values each partition must serve, in offset order.
type txnParts map[int32][]string

func (w txnParts) add(part int32, v string) { w[part] = append(w[part], v) }

// counts are the record counts of topic's partitions in w.
func (w txnParts) counts(topic string) map[tp]int {
	c := map[tp]int{}
	for p, vs := range w {
		c[tp{topic, p}] = len(vs)
	}
	return c
}

// txnCheck compares what a consumer read with want: the same values in
// the same order on every partition, at increasing offsets.
func txnCheck(t testing.TB, who, topic string, want txnParts, got map[tp][]rec) {
	t.Helper()
	for x, rs := range got {
		if x.topic != topic {
			t.Errorf("%s read %d records of %s, which it did not ask for", who, len(rs), x)
			continue
		}
		if _, ok := want[x.part]; !ok {
			t.Errorf("%s read %d records of %s, want none", who, len(rs), x)
		}
	}
	for p, vs := range want {
		rs := got[tp{topic, p}]
		var have []string
		for i, r := range rs {
			have = append(have, string(r.Value))
			if i > 0 && r.Offset <= rs[i-1].Offset {
				t.Errorf("%s %s[%d]: offset %d after %d", who, topic, p, r.Offset, rs[i-1].Offset)
			}
		}
		if !slices.Equal(have, vs) {
			t.Errorf("%s %s[%d]:\n got %q\nwant %q", who, topic, p, have, vs)
		}
	}
}

// saramaTxnConfig is a transactional producer's configuration.
func saramaTxnConfig(v sarama.KafkaVersion, txnID string) *sarama.Config {
	cfg := saramaConfig(v)
	cfg.ClientID = txnID
	cfg.Producer.Idempotent = true
	cfg.Producer.Transaction.ID = txnID
	cfg.Producer.Transaction.Timeout = 20 * time.Second
	cfg.Producer.Transaction.Retry.Backoff = 50 * time.Millisecond
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Retry.Max = 5
	cfg.Net.MaxOpenRequests = 1
	return cfg
}

func saramaTxnProducer(t testing.TB, addr string, v sarama.KafkaVersion, txnID string) sarama.SyncProducer {
	t.Helper()
	p, err := sarama.NewSyncProducer([]string{addr}, saramaTxnConfig(v, txnID))
	if err != nil {
		t.Fatalf("sarama NewSyncProducer (transactional %s): %v", txnID, err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("sarama transactional producer close: %v", err)
		}
	})
	return p
}

// saramaEndTxn commits or aborts p's transaction and checks it is idle.
func saramaEndTxn(t testing.TB, p sarama.SyncProducer, commit bool) {
	t.Helper()
	var err error
	if commit {
		err = p.CommitTxn()
	} else {
		err = p.AbortTxn()
	}
	if err != nil {
		t.Fatalf("sarama end transaction (commit=%v): %v (status %s)", commit, err, p.TxnStatus())
	}
	if s := p.TxnStatus(); s != sarama.ProducerTxnFlagReady {
		t.Fatalf("sarama transaction status %s after end (commit=%v), want ready", s, commit)
	}
}

func saramaIsolation(level sarama.IsolationLevel) func(*sarama.Config) {
	return func(cfg *sarama.Config) { cfg.Consumer.IsolationLevel = level }
}

func txnCreateTopics(t testing.TB, w *Weir, parts int32, topics ...string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(w.Addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	c, cancel := context.WithTimeout(context.Background(), stepTimeout)
	defer cancel()
	res, err := kadm.NewClient(cl).CreateTopics(c, parts, 1, nil, topics...)
	if err == nil {
		err = res.Error()
	}
	if err != nil {
		t.Fatalf("create topics %q: %v", topics, err)
	}
}

// TestSaramaTransactions: a sarama transactional producer writes five
// transactions across four partitions (commit, abort, commit, abort,
// commit). A sarama ReadCommitted consumer reads exactly the committed
// records of each partition, in order; a ReadUncommitted one reads every
// record, the aborted ones included.
func TestSaramaTransactions(t *testing.T) {
	t.Parallel()
	w := StartWeir(t, "")
	for _, ver := range saramaTxnVersions {
		t.Run(ver.name, func(t *testing.T) {
			t.Parallel()
			topic := "sarama-txn-" + ver.name
			txnCreateTopics(t, w, 4, topic)
			p := saramaTxnProducer(t, w.Addr, ver.v, "sarama-txn-"+ver.name)
			committed, all := txnParts{}, txnParts{}
			for n, commit := range []bool{true, false, true, false, true} {
				if err := p.BeginTxn(); err != nil {
					t.Fatalf("BeginTxn %d: %v", n, err)
				}
				state := map[bool]string{true: "committed", false: "aborted"}[commit]
				var msgs []*sarama.ProducerMessage
				for i := range 3 {
					for part := range int32(4) {
						v := fmt.Sprintf("t%d-%s-p%d-%d", n, state, part, i)
						msgs = append(msgs, &sarama.ProducerMessage{Topic: topic, Partition: part,
							Key: sarama.StringEncoder(fmt.Sprint(i)), Value: sarama.StringEncoder(v)})
						all.add(part, v)
						if commit {
							committed.add(part, v)
						}
					}
				}
				if err := p.SendMessages(msgs); err != nil {
					t.Fatalf("transaction %d: SendMessages: %v", n, err)
				}
				saramaEndTxn(t, p, commit)
			}
			defer func() {
				if t.Failed() {
					t.Logf("weir log tail:\n%s", extLogTail(w, 60))
				}
			}()
			rc := saramaConsumerWith(ver.v, saramaIsolation(sarama.ReadCommitted))(t, w.Addr, committed.counts(topic))
			txnCheck(t, "sarama ReadCommitted", topic, committed, rc)
			ru := saramaConsumerWith(ver.v, saramaIsolation(sarama.ReadUncommitted))(t, w.Addr, all.counts(topic))
			txnCheck(t, "sarama ReadUncommitted", topic, all, ru)
		})
	}
}

// TestSaramaInterleavedTransactions: two sarama transactional producers
// whose transactions overlap on the same four partitions, so committed
// records follow an aborted transaction's first offset and aborted ones
// sit between committed ones. The log of each partition is
//
//	a1 b1 [B commit] a2 [A abort] b2 a3 [B abort] [A commit]
//
// sarama's ReadCommitted consumer, franz-go's and kcat's read_committed
// ones read b1 then a3 (the aborted-transactions index must name the
// producer, not just an offset range); ReadUncommitted reads all five.
// Then A leaves a transaction open while B commits: kcat's read_committed
// stops at the last stable offset, before both, until A commits.
func TestSaramaInterleavedTransactions(t *testing.T) {
	t.Parallel()
	w := StartWeir(t, "")
	for _, ver := range saramaTxnVersions {
		t.Run(ver.name, func(t *testing.T) {
			t.Parallel()
			topic := "sarama-txn-interleaved-" + ver.name
			txnCreateTopics(t, w, 4, topic)
			a := saramaTxnProducer(t, w.Addr, ver.v, topic+"-a")
			b := saramaTxnProducer(t, w.Addr, ver.v, topic+"-b")
			committed, all := txnParts{}, txnParts{}
			send := func(p sarama.SyncProducer, name string, commit bool) {
				t.Helper()
				var msgs []*sarama.ProducerMessage
				for part := range int32(4) {
					for i := range 2 {
						v := fmt.Sprintf("%s-p%d-%d", name, part, i)
						msgs = append(msgs, &sarama.ProducerMessage{Topic: topic, Partition: part, Value: sarama.StringEncoder(v)})
						all.add(part, v)
						if commit {
							committed.add(part, v)
						}
					}
				}
				if err := p.SendMessages(msgs); err != nil {
					t.Fatalf("%s: SendMessages: %v", name, err)
				}
			}
			begin := func(p sarama.SyncProducer) {
				t.Helper()
				if err := p.BeginTxn(); err != nil {
					t.Fatalf("BeginTxn: %v", err)
				}
			}
			begin(a)
			send(a, "a1", false)
			begin(b)
			send(b, "b1", true)
			saramaEndTxn(t, b, true)
			send(a, "a2", false)
			saramaEndTxn(t, a, false)
			begin(b)
			send(b, "b2", false)
			begin(a)
			send(a, "a3", true)
			saramaEndTxn(t, b, false)
			saramaEndTxn(t, a, true)
			defer func() {
				if t.Failed() {
					t.Logf("weir log tail:\n%s", extLogTail(w, 60))
				}
			}()
			rc := saramaConsumerWith(ver.v, saramaIsolation(sarama.ReadCommitted))(t, w.Addr, committed.counts(topic))
			txnCheck(t, "sarama ReadCommitted", topic, committed, rc)
			ru := saramaConsumerWith(ver.v, saramaIsolation(sarama.ReadUncommitted))(t, w.Addr, all.counts(topic))
			txnCheck(t, "sarama ReadUncommitted", topic, all, ru)
			rc = kgoConsumeWith(t, w.Addr, committed.counts(topic), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
			txnCheck(t, "franz-go read_committed", topic, committed, rc)
			txnCheck(t, "kcat isolation.level=read_committed", topic, committed, kcatReadCommitted(t, w, topic, 4))

			// An open transaction holds back the last stable offset: B's
			// commit after A's open records is invisible to read_committed
			// until A ends. kcat -e stops at the LSO, so nothing waits.
			begin(a)
			send(a, "a4", true)
			begin(b)
			send(b, "b3", true)
			saramaEndTxn(t, b, true)
			before := txnParts{}
			for part, vs := range committed {
				before[part] = vs[:len(vs)-4] // less a4 and b3
			}
			txnCheck(t, "kcat read_committed with a transaction open", topic, before, kcatReadCommitted(t, w, topic, 4))
			saramaEndTxn(t, a, true)
			txnCheck(t, "kcat read_committed", topic, committed, kcatReadCommitted(t, w, topic, 4))
		})
	}
}

// saramaCTPHandler hands the session and every claimed message to the test.
type saramaCTPHandler struct {
	sess chan sarama.ConsumerGroupSession
	msgs chan *sarama.ConsumerMessage
}

func (h saramaCTPHandler) Setup(s sarama.ConsumerGroupSession) error {
	select {
	case h.sess <- s:
	default:
	}
	return nil
}

func (h saramaCTPHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }

func (h saramaCTPHandler) ConsumeClaim(s sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for {
		select {
		case m, ok := <-claim.Messages():
			if !ok {
				return nil
			}
			select {
			case h.msgs <- m:
			case <-s.Context().Done():
				return nil
			}
		case <-s.Context().Done():
			return nil
		}
	}
}

// saramaCTPRound joins group with a fresh sarama consumer group (no
// auto-commit), reads from the group's committed offsets the records in
// want (input values per partition, in order), and, while the session is
// live, copies each to the same partition of out as "out/<value>" in one
// transaction of p that adds the consumed offsets with AddMessageToTxn.
// The transaction is committed or aborted; then the member leaves. It
// returns the session's group metadata (stale once the member left).
func saramaCTPRound(t *testing.T, addr string, v sarama.KafkaVersion, p sarama.SyncProducer, group, in, out string,
	want txnParts, withSession, commit bool,
) *sarama.ConsumerGroupMetadata {
	t.Helper()
	cfg := saramaConfig(v)
	cfg.ClientID = group + "-member"
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	cfg.Consumer.Offsets.AutoCommit.Enable = false
	cfg.Consumer.IsolationLevel = sarama.ReadCommitted
	cfg.Consumer.Group.Session.Timeout = 10 * time.Second
	cfg.Consumer.Group.Heartbeat.Interval = 500 * time.Millisecond
	cfg.Consumer.Group.Rebalance.Retry.Backoff = 100 * time.Millisecond
	cg, err := sarama.NewConsumerGroup([]string{addr}, group, cfg)
	if err != nil {
		t.Fatalf("sarama NewConsumerGroup: %v", err)
	}
	h := saramaCTPHandler{sess: make(chan sarama.ConsumerGroupSession, 1), msgs: make(chan *sarama.ConsumerMessage)}
	c, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for c.Err() == nil {
			if err := cg.Consume(c, []string{in}, h); errors.Is(err, sarama.ErrClosedConsumerGroup) {
				return
			}
		}
	}()
	defer func() {
		cancel()
		grpWaitDone(t, "sarama Consume", done, 20*time.Second)
		if err := cg.Close(); err != nil {
			t.Errorf("sarama consumer group close: %v", err)
		}
	}()

	timer := time.NewTimer(stepTimeout)
	defer timer.Stop()
	var sess sarama.ConsumerGroupSession
	select {
	case sess = <-h.sess:
	case <-timer.C:
		t.Fatalf("sarama consumer group %s: no session within %v", group, stepTimeout)
	}
	got := txnParts{}
	var msgs []*sarama.ConsumerMessage
	total := 0
	for _, vs := range want {
		total += len(vs)
	}
	for len(msgs) < total {
		select {
		case m := <-h.msgs:
			msgs = append(msgs, m)
			got.add(m.Partition, string(m.Value))
		case err := <-cg.Errors():
			t.Fatalf("sarama consumer group %s: %v", group, err)
		case <-timer.C:
			t.Fatalf("sarama consumer group %s: %d of %d records within %v: %q", group, len(msgs), total, stepTimeout, got)
		}
	}
	for part, vs := range want {
		if !slices.Equal(got[part], vs) {
			t.Fatalf("sarama consumer group %s read %s[%d]:\n got %q\nwant %q", group, in, part, got[part], vs)
		}
	}

	if err := p.BeginTxn(); err != nil {
		t.Fatalf("BeginTxn: %v", err)
	}
	outs := make([]*sarama.ProducerMessage, len(msgs))
	for i, m := range msgs {
		outs[i] = &sarama.ProducerMessage{Topic: out, Partition: m.Partition, Key: sarama.ByteEncoder(m.Key),
			Value: sarama.StringEncoder("out/" + string(m.Value))}
	}
	if err := p.SendMessages(outs); err != nil {
		t.Fatalf("transaction SendMessages: %v", err)
	}
	meta := sarama.NewConsumerGroupMetadataFromSession(sess, group, nil)
	for _, m := range msgs {
		if withSession {
			err = p.AddMessageToTxnWithGroupMetadata(m, meta, nil)
		} else {
			err = p.AddMessageToTxn(m, group, nil) // generation -1, no member: sarama's exactly_once example
		}
		if err != nil {
			t.Fatalf("AddMessageToTxn %s[%d]@%d: %v", m.Topic, m.Partition, m.Offset, err)
		}
	}
	saramaEndTxn(t, p, commit)
	return meta
}

// TestSaramaConsumeTransformProduce: sarama's consume-transform-produce
// loop. A consumer group reads an input topic of four partitions; each
// round copies what it read to an output topic in one transaction that
// also commits the group's offsets (AddMessageToTxn). Round 1 commits,
// round 2 aborts (the group's committed offsets stay where round 1 left
// them, so round 3's new session reads the same records again), round 3
// commits. A zombie transaction that commits offsets under round 3's
// member, gone since, is refused (UNKNOWN_MEMBER_ID or ILLEGAL_GENERATION)
// and aborted. read_committed sees each output record once;
// read_uncommitted sees the aborted records too.
//
// sarama sends a transaction's offsets (AddOffsetsToTxn, TxnOffsetCommit)
// only when it commits, so the aborted round never stages offsets on the
// broker; TestKafkajsTransactions covers offsets staged and then aborted.
func TestSaramaConsumeTransformProduce(t *testing.T) {
	t.Parallel()
	w := StartWeir(t, "", "--group-initial-rebalance-delay=0s")
	for _, ver := range saramaTxnVersions {
		t.Run(ver.name, func(t *testing.T) {
			t.Parallel()
			in, out, group := "sarama-ctp-in-"+ver.name, "sarama-ctp-out-"+ver.name, "sarama-ctp-"+ver.name
			txnCreateTopics(t, w, 4, in, out)
			defer func() {
				if t.Failed() {
					t.Logf("weir log tail:\n%s", extLogTail(w, 80))
				}
			}()
			produceInput := func(batch string, n int) txnParts {
				var rs []rec
				want := txnParts{}
				for i := range n {
					for part := range int32(4) {
						v := fmt.Sprintf("%s-p%d-%d", batch, part, i)
						rs = append(rs, rec{Key: []byte(fmt.Sprint(i)), Value: []byte(v), Partition: part, Time: time.Now().Truncate(time.Millisecond)})
						want.add(part, v)
					}
				}
				saramaProduceSync(t, w.Addr, saramaConfig(ver.v), in, rs)
				return want
			}
			committedOffsets := func(want int64) {
				t.Helper()
				cl := extKgoClient(t, w)
				offs, err := kadm.NewClient(cl).FetchOffsets(ctx(t), group)
				if err != nil {
					t.Fatalf("FetchOffsets(%s): %v", group, err)
				}
				for part := range int32(4) {
					o, ok := offs.Lookup(in, part)
					if !ok || o.Err != nil || o.At != want {
						t.Errorf("group %s committed offset of %s[%d] = %+v (found %v), want %d", group, in, part, o, ok, want)
					}
				}
			}
			p := saramaTxnProducer(t, w.Addr, ver.v, "sarama-ctp-"+ver.name)
			outCommitted, outAll := txnParts{}, txnParts{}
			copyOf := func(want txnParts, into ...txnParts) {
				for part, vs := range want {
					for _, v := range vs {
						for _, x := range into {
							x.add(part, "out/"+v)
						}
					}
				}
			}

			b1 := produceInput("b1", 3)
			saramaCTPRound(t, w.Addr, ver.v, p, group, in, out, b1, false, true)
			copyOf(b1, outCommitted, outAll)
			committedOffsets(3)

			b2 := produceInput("b2", 2)
			saramaCTPRound(t, w.Addr, ver.v, p, group, in, out, b2, true, false)
			copyOf(b2, outAll)
			committedOffsets(3) // the aborted round moved nothing

			stale := saramaCTPRound(t, w.Addr, ver.v, p, group, in, out, b2, true, true) // reads b2 again
			copyOf(b2, outCommitted, outAll)
			committedOffsets(5)

			// A zombie: offsets under the metadata of a member that has
			// left. The TxnOffsetCommit is refused, so CommitTxn fails with
			// an abortable error; the producer aborts and goes on.
			if err := p.BeginTxn(); err != nil {
				t.Fatalf("BeginTxn: %v", err)
			}
			if _, _, err := p.SendMessage(&sarama.ProducerMessage{Topic: out, Partition: 0, Value: sarama.StringEncoder("out/zombie")}); err != nil {
				t.Fatalf("zombie SendMessage: %v", err)
			}
			outAll.add(0, "out/zombie")
			zombie := map[string][]*sarama.PartitionOffsetMetadata{in: {{Partition: 0, Offset: 1000}}}
			if err := p.AddOffsetsToTxnWithGroupMetadata(zombie, stale); err != nil {
				t.Fatalf("AddOffsetsToTxn: %v", err)
			}
			err := p.CommitTxn()
			if !errors.Is(err, sarama.ErrUnknownMemberId) && !errors.Is(err, sarama.ErrIllegalGeneration) {
				t.Fatalf("CommitTxn with the offsets of member %s generation %d, which left: %v (status %s), want UNKNOWN_MEMBER_ID or ILLEGAL_GENERATION",
					stale.MemberID, stale.GenerationID, err, p.TxnStatus())
			}
			if p.TxnStatus()&sarama.ProducerTxnFlagAbortableError == 0 {
				t.Fatalf("transaction status %s after the refused offsets, want an abortable error", p.TxnStatus())
			}
			saramaEndTxn(t, p, false)
			committedOffsets(5)

			rc := saramaConsumerWith(ver.v, saramaIsolation(sarama.ReadCommitted))(t, w.Addr, outCommitted.counts(out))
			txnCheck(t, "sarama ReadCommitted", out, outCommitted, rc)
			ru := saramaConsumerWith(ver.v, saramaIsolation(sarama.ReadUncommitted))(t, w.Addr, outAll.counts(out))
			txnCheck(t, "sarama ReadUncommitted", out, outAll, ru)
		})
	}
}

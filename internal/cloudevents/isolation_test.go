package cloudevents

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/weirhq/weir/internal/batch"
	"github.com/weirhq/weir/internal/broker"
)

// txnLog writes a partition's records through the broker API: plain
// batches, transactional ones and their markers, as a transactional Kafka
// producer and the coordinator would.
type txnLog struct {
	e     *env
	topic string
	seq   map[int64]int32
	pad   int // bytes added to each value
}

func newTxnLog(e *env, topic string) *txnLog {
	e.ensureTopic(topic)
	return &txnLog{e: e, topic: topic, seq: map[int64]int32{}}
}

// append writes n records, transactional for pid >= 0, waits until they
// are durable and returns their offsets.
func (l *txnLog) append(pid int64, n int) []int64 {
	l.e.t.Helper()
	o := batch.BuildOptions{BaseSequence: -1, BaseTimestamp: time.Now().UnixMilli()}
	if pid >= 0 {
		o.HasProducer, o.ProducerID, o.BaseSequence, o.Transactional = true, pid, l.seq[pid], true
		l.seq[pid] += int32(n)
	}
	recs := make([]batch.Record, n)
	for i := range recs {
		recs[i] = batch.Record{OffsetDelta: int32(i), Value: []byte(fmt.Sprintf("v%d", i) + strings.Repeat("x", l.pad)),
			Headers: []batch.RecordHeader{{Key: "content-type", Value: []byte("text/plain")}}}
	}
	raw, err := batch.Build(o, recs)
	if err != nil {
		l.e.t.Fatal(err)
	}
	pr, err := l.e.b.Produce(broker.Write{Topic: l.topic, Records: raw})
	if err != nil {
		l.e.t.Fatal(err)
	}
	if err := pr.Partition.WaitDurable(context.Background(), pr.LastOffset+1); err != nil {
		l.e.t.Fatal(err)
	}
	var out []int64
	for off := pr.BaseOffset; off <= pr.LastOffset; off++ {
		out = append(out, off)
	}
	return out
}

// end writes pid's commit or abort marker and returns its offset.
func (l *txnLog) end(pid int64, commit bool) int64 {
	l.e.t.Helper()
	res := l.e.b.WriteTxnMarkers(context.Background(), []broker.TxnMarker{{ProducerID: pid, Commit: commit,
		Partitions: []broker.TopicPartition{{Topic: l.topic}}}})
	if len(res) != 1 || res[0].Err != nil {
		l.e.t.Fatalf("WriteTxnMarkers = %+v", res)
	}
	return res[0].Offset
}

// ids are the CloudEvents ids of the records of topic (one partition) at
// offsets, as the gateway names records without ce_ headers.
func ids(topic string, offsets ...[]int64) []string {
	var out []string
	for _, offs := range offsets {
		for _, o := range offs {
			out = append(out, fmt.Sprintf("%s/0/%d", topic, o))
		}
	}
	return out
}

// writeTxnHistory writes to topic: plain records, an aborted transaction
// interleaved with a committed one, more plain records, then a
// transaction left open followed by plain records it holds back. It
// returns the ids readable now, the open transaction's producer and the
// ids its commit releases.
func writeTxnHistory(e *env, topic string) (l *txnLog, visible []string, openPID int64, released []string) {
	l = newTxnLog(e, topic)
	n0 := l.append(-1, 2)
	l.append(10, 3) // aborted
	c := l.append(11, 2)
	l.append(10, 1) // aborted, a second batch of the same transaction
	l.end(10, false)
	n1 := l.append(-1, 1)
	l.end(11, true)
	l.append(12, 2) // aborted with one batch only
	l.end(12, false)
	o := l.append(13, 2) // left open
	n2 := l.append(-1, 1)
	return l, ids(topic, n0, c, n1), 13, ids(topic, o, n2)
}

// TestPullReadsCommitted: a pull group reads the committed and plain
// records in order, never aborted or open ones; a long poll wakes when the
// open transaction commits, and the group's offset ends past its marker.
func TestPullReadsCommitted(t *testing.T) {
	e := newEnv(t)
	l, want, open, later := writeTxnHistory(e, "txp")
	var got []string
	for range 10 {
		_, evs := e.pull("/events/txp?group=iso&max=2&wait=0s")
		if len(evs) == 0 {
			break
		}
		for _, ev := range evs {
			got = append(got, ev["id"].(string))
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("pulled %v, want %v", got, want)
	}
	done := make(chan []jsonEvent)
	go func() {
		r := e.do("GET", "/events/txp?group=iso&wait=10s", nil)
		var evs []jsonEvent
		if r.status == 200 {
			r.json(t, &evs)
		}
		done <- evs
	}()
	time.Sleep(100 * time.Millisecond) // let the poll wait
	marker := l.end(open, true)
	select {
	case evs := <-done:
		got = got[:0]
		for _, ev := range evs {
			got = append(got, ev["id"].(string))
		}
		if !slices.Equal(got, later) {
			t.Fatalf("after the commit: %v, want %v", got, later)
		}
	case <-time.After(8 * time.Second):
		t.Fatal("the long poll did not wake on the commit")
	}
	e.pull("/events/txp?group=iso&wait=0s") // commits what the last poll delivered
	if offs := e.committedOffsets("iso"); offs[0] != marker+1 {
		t.Fatalf("committed %v, want past the marker at %d", offs, marker)
	}
}

// TestPullSkipsLongAbortedRuns: a run of aborted records larger than one
// read does not end a poll empty while committed records follow it.
func TestPullSkipsLongAbortedRuns(t *testing.T) {
	e := newEnv(t)
	l := newTxnLog(e, "txlong")
	l.pad = 1 << 10
	for range 30 {
		l.append(20, 50) // 1.5 MiB in all, more than one read
	}
	l.end(20, false)
	last := l.append(-1, 1)
	_, evs := e.pull("/events/txlong?group=g&wait=0s")
	if len(evs) != 1 || evs[0]["id"] != ids("txlong", last)[0] {
		t.Fatalf("pulled %v", evs)
	}
}

// TestSSEReadsCommitted: an SSE stream sends the committed and plain
// records only, and the open transaction's once it commits.
func TestSSEReadsCommitted(t *testing.T) {
	e := newEnv(t)
	l, want, open, later := writeTxnHistory(e, "txs")
	s := e.sse("/events/txs?from=earliest&group=ssei")
	var got []string
	for range want {
		_, ev := s.next()
		got = append(got, ev["id"].(string))
	}
	if !slices.Equal(got, want) {
		t.Fatalf("streamed %v, want %v", got, want)
	}
	marker := l.end(open, true)
	got = got[:0]
	for range later {
		_, ev := s.next()
		got = append(got, ev["id"].(string))
	}
	if !slices.Equal(got, later) {
		t.Fatalf("after the commit: %v, want %v", got, later)
	}
	eventually(t, "the SSE group past the marker", func() bool { return e.committedOffsets("ssei")[0] == marker+1 })
}

// TestPushReadsCommitted: a push subscription delivers the committed and
// plain records only, reports lag against the last stable offset, and
// drains it past the markers once the open transaction commits.
func TestPushReadsCommitted(t *testing.T) {
	e := newEnv(t)
	l, want, open, later := writeTxnHistory(e, "txq")
	sk := newSink(t, nil)
	e.createSub(fmt.Sprintf(`{"name":"iso","topic":"txq","sink":%q,"startFrom":"earliest"}`, sk.srv.URL))
	eventually(t, "the committed events", func() bool { return len(sk.ids()) >= len(want) })
	eventually(t, "no lag below the open transaction", func() bool { return e.getSub("iso").Status.Lag == 0 })
	if got := sk.ids(); !slices.Equal(got, want) {
		t.Fatalf("delivered %v, want %v", got, want)
	}
	if ps := e.getSub("iso").Status.Partitions[0]; ps.LastStableOffset >= ps.HighWatermark {
		t.Fatalf("status %+v: the open transaction holds the last stable offset", ps)
	}
	marker := l.end(open, true)
	all := append(slices.Clone(want), later...)
	eventually(t, "the released events", func() bool { return len(sk.ids()) >= len(all) })
	if got := sk.ids(); strings.Join(got, ",") != strings.Join(all, ",") {
		t.Fatalf("delivered %v, want %v", got, all)
	}
	eventually(t, "the subscription past the marker", func() bool {
		ps := e.getSub("iso").Status.Partitions[0]
		return ps.Committed == marker+1 && ps.Lag == 0
	})
}

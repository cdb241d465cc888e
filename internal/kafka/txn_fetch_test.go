package kafka

import (
	"bytes"
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weirhq/weir/internal/batch"
	"github.com/weirhq/weir/internal/broker"
)

// txnAppend appends one batch of values through the broker API (the
// Kafka adapter still refuses transactional produce), transactional
// for pid >= 0, and waits until it is durable.
func txnAppend(t *testing.T, b *broker.Broker, topic string, pid int64, seq int32, values ...string) broker.Produced {
	t.Helper()
	recs := make([]batch.Record, len(values))
	for i, v := range values {
		recs[i] = batch.Record{OffsetDelta: int32(i), Value: []byte(v)}
	}
	o := batch.BuildOptions{BaseTimestamp: time.Now().UnixMilli()}
	if pid >= 0 {
		o.HasProducer, o.ProducerID, o.BaseSequence, o.Transactional = true, pid, seq, true
	}
	raw, err := batch.Build(o, recs)
	if err != nil {
		t.Fatal(err)
	}
	pr, err := b.Produce(broker.Write{Topic: topic, Records: raw})
	if err != nil {
		t.Fatal(err)
	}
	if err := pr.Partition.WaitDurable(context.Background(), pr.LastOffset+1); err != nil {
		t.Fatal(err)
	}
	return pr
}

func txnEnd(t *testing.T, b *broker.Broker, topic string, pid int64, commit bool) int64 {
	t.Helper()
	res := b.WriteTxnMarkers(context.Background(), []broker.TxnMarker{{ProducerID: pid, Commit: commit,
		Partitions: []broker.TopicPartition{{Topic: topic}}}})
	if res[0].Err != nil {
		t.Fatal(res[0].Err)
	}
	return res[0].Offset
}

// lastFetched is the last offset of the batches in a fetch response, -1
// for none.
func lastFetched(t *testing.T, data []byte) int64 {
	t.Helper()
	last := int64(-1)
	for len(data) > 0 {
		one, rest, err := batch.Split(data)
		if err != nil {
			t.Fatal(err)
		}
		h, err := batch.ParseHeader(one)
		if err != nil {
			t.Fatal(err)
		}
		last, data = h.LastOffset(), rest
	}
	return last
}

func TestFetchReadCommitted(t *testing.T) {
	ts := startServer(t, Options{})
	b := ts.opts.Broker
	if _, err := b.CreateTopic("tx", 1, nil, false); err != nil {
		t.Fatal(err)
	}
	c := dial(t, ts.addr)
	txnAppend(t, b, "tx", -1, 0, "a", "b")        // 0-1
	txnAppend(t, b, "tx", 7, 0, "t1", "t2", "t3") // 2-4, open
	fetch := func(v int16, iso int8, offset int64) kmsg.FetchResponseTopicPartition {
		t.Helper()
		req := fetchReq(v, "tx", 0, offset, 0, 0)
		req.IsolationLevel = iso
		p := c.roundTrip(req).(*kmsg.FetchResponse).Topics[0].Partitions[0]
		if p.ErrorCode != 0 {
			t.Fatalf("fetch v%d isolation %d: error %d", v, iso, p.ErrorCode)
		}
		return p
	}
	listLatest := func(v int16, iso int8) int64 {
		t.Helper()
		req := kmsg.NewPtrListOffsetsRequest()
		req.Version, req.ReplicaID, req.IsolationLevel = v, -1, iso
		rt := kmsg.NewListOffsetsRequestTopic()
		rt.Topic = "tx"
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Timestamp, rp.CurrentLeaderEpoch = -1, -1
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		return c.roundTrip(req).(*kmsg.ListOffsetsResponse).Topics[0].Partitions[0].Offset
	}

	for _, v := range []int16{4, 11, 12} {
		p := fetch(v, 1, 0)
		if p.HighWatermark != 5 || p.LastStableOffset != 2 || lastFetched(t, p.RecordBatches) != 1 {
			t.Fatalf("v%d read_committed: hw %d lso %d last %d", v, p.HighWatermark, p.LastStableOffset, lastFetched(t, p.RecordBatches))
		}
		if p.AbortedTransactions == nil || len(p.AbortedTransactions) != 0 {
			t.Fatalf("v%d read_committed aborted = %#v, want empty", v, p.AbortedTransactions)
		}
		if p := fetch(v, 1, 2); len(p.RecordBatches) != 0 {
			t.Fatalf("v%d read_committed at the LSO returned %d bytes", v, len(p.RecordBatches))
		}
		p = fetch(v, 0, 0)
		if p.HighWatermark != 5 || p.LastStableOffset != 2 || lastFetched(t, p.RecordBatches) != 4 || p.AbortedTransactions != nil {
			t.Fatalf("v%d read_uncommitted: hw %d lso %d last %d aborted %v", v, p.HighWatermark, p.LastStableOffset,
				lastFetched(t, p.RecordBatches), p.AbortedTransactions)
		}
	}
	for _, v := range []int16{2, 7} {
		if got := listLatest(v, 1); got != 2 {
			t.Fatalf("ListOffsets v%d read_committed latest = %d, want 2", v, got)
		}
		if got := listLatest(v, 0); got != 5 {
			t.Fatalf("ListOffsets v%d read_uncommitted latest = %d, want 5", v, got)
		}
	}

	marker := txnEnd(t, b, "tx", 7, false) // 5
	txnAppend(t, b, "tx", -1, 0, "c")      // 6
	want := []kmsg.FetchResponseTopicPartitionAbortedTransaction{{ProducerID: 7, FirstOffset: 2}}
	for _, v := range []int16{4, 11} {
		p := fetch(v, 1, 0)
		if p.LastStableOffset != 7 || lastFetched(t, p.RecordBatches) != 6 {
			t.Fatalf("v%d after abort: lso %d last %d", v, p.LastStableOffset, lastFetched(t, p.RecordBatches))
		}
		if !reflect.DeepEqual(p.AbortedTransactions, want) {
			t.Fatalf("v%d aborted = %+v, want %+v", v, p.AbortedTransactions, want)
		}
		if p := fetch(v, 1, marker+1); len(p.AbortedTransactions) != 0 {
			t.Fatalf("v%d past the abort: aborted %+v", v, p.AbortedTransactions)
		}
	}
	if got := listLatest(7, 1); got != 7 {
		t.Fatalf("ListOffsets read_committed latest after abort = %d, want 7", got)
	}
}

// TestFetchReadCommittedVectored: a read_committed response big enough to
// be written by reference (fetch_vec.go) carries the bounded data.
func TestFetchReadCommittedVectored(t *testing.T) {
	ts := startServer(t, Options{})
	b := ts.opts.Broker
	if _, err := b.CreateTopic("tx", 1, nil, false); err != nil {
		t.Fatal(err)
	}
	big := string(bytes.Repeat([]byte("x"), 1000))
	var vals []string
	for range 100 {
		vals = append(vals, big)
	}
	pr := txnAppend(t, b, "tx", -1, 0, vals...) // ~100 KB, committed
	txnAppend(t, b, "tx", 3, 0, vals...)        // open
	c := dial(t, ts.addr)
	for _, v := range []int16{4, 12} {
		req := fetchReq(v, "tx", 0, 0, 0, 0)
		req.IsolationLevel = 1
		p := c.roundTrip(req).(*kmsg.FetchResponse).Topics[0].Partitions[0]
		if p.ErrorCode != 0 || len(p.RecordBatches) < minVecRecords || lastFetched(t, p.RecordBatches) != pr.LastOffset {
			t.Fatalf("v%d: error %d, %d bytes up to %d", v, p.ErrorCode, len(p.RecordBatches), lastFetched(t, p.RecordBatches))
		}
		if p.LastStableOffset != pr.LastOffset+1 {
			t.Fatalf("v%d: lso %d", v, p.LastStableOffset)
		}
	}
}

// TestFranzGoReadCommitted: a kgo consumer at read_committed skips aborted
// transactions' records and never sees an open one's.
func TestFranzGoReadCommitted(t *testing.T) {
	ts := startServer(t, Options{})
	b := ts.opts.Broker
	if _, err := b.CreateTopic("tx", 1, nil, false); err != nil {
		t.Fatal(err)
	}
	txnAppend(t, b, "tx", -1, 0, "plain-0")
	txnAppend(t, b, "tx", 7, 0, "aborted-0", "aborted-1")
	txnAppend(t, b, "tx", 8, 0, "committed-0")
	txnAppend(t, b, "tx", -1, 0, "plain-1")
	txnAppend(t, b, "tx", 7, 2, "aborted-2")
	txnEnd(t, b, "tx", 7, false)
	txnEnd(t, b, "tx", 8, true)
	txnAppend(t, b, "tx", -1, 0, "plain-2")
	txnAppend(t, b, "tx", 9, 0, "open-0") // never ended: past the LSO

	consume := func(iso kgo.IsolationLevel, n int) []string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		cl, err := kgo.NewClient(kgo.SeedBrokers(ts.addr), kgo.ConsumeTopics("tx"), kgo.FetchIsolationLevel(iso),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		var got []string
		for len(got) < n {
			fs := cl.PollFetches(ctx)
			if err := ctx.Err(); err != nil {
				t.Fatalf("got %v before %v", got, err)
			}
			fs.EachError(func(_ string, _ int32, err error) { t.Fatalf("fetch: %v", err) })
			fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
		}
		// One more poll: nothing else may come.
		ctx2, cancel2 := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel2()
		cl.PollFetches(ctx2).EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
		return got
	}
	want := []string{"plain-0", "committed-0", "plain-1", "plain-2"}
	if got := consume(kgo.ReadCommitted(), len(want)); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("read_committed consumed %v, want %v", got, want)
	}
	if got := consume(kgo.ReadUncommitted(), 8); len(got) != 8 {
		t.Fatalf("read_uncommitted consumed %v", got)
	}
}

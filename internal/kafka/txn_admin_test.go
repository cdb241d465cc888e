package kafka

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func describeProducers(c *rawClient, topic string, parts ...int32) []kmsg.DescribeProducersResponseTopicPartition {
	req := kmsg.NewPtrDescribeProducersRequest()
	rt := kmsg.NewDescribeProducersRequestTopic()
	rt.Topic, rt.Partitions = topic, parts
	req.Topics = append(req.Topics, rt)
	resp := c.roundTrip(req).(*kmsg.DescribeProducersResponse)
	if len(resp.Topics) != 1 || resp.Topics[0].Topic != topic {
		panic("describe producers: wrong topics in the response")
	}
	return resp.Topics[0].Partitions
}

type markerSpec struct {
	pid              int64
	epoch            int16
	coordinatorEpoch int32
	commit           bool
	topic            string
	parts            []int32
}

func writeMarkers(c *rawClient, version int16, specs ...markerSpec) *kmsg.WriteTxnMarkersResponse {
	req := kmsg.NewPtrWriteTxnMarkersRequest()
	req.Version = version
	for _, s := range specs {
		m := kmsg.NewWriteTxnMarkersRequestMarker()
		m.ProducerID, m.ProducerEpoch, m.CoordinatorEpoch, m.Committed = s.pid, s.epoch, s.coordinatorEpoch, s.commit
		rt := kmsg.NewWriteTxnMarkersRequestMarkerTopic()
		rt.Topic, rt.Partitions = s.topic, s.parts
		m.Topics = append(m.Topics, rt)
		req.Markers = append(req.Markers, m)
	}
	return c.roundTrip(req).(*kmsg.WriteTxnMarkersResponse)
}

func markerCode(resp *kmsg.WriteTxnMarkersResponse, marker int) int16 {
	return resp.Markers[marker].Topics[0].Partitions[0].ErrorCode
}

// TestDescribeProducersAndWriteTxnMarkers: an open transaction is found
// with DescribeProducers and aborted with WriteTxnMarkers, as
// kafka-transactions.sh abort does; bad input gets Kafka's codes.
func TestDescribeProducersAndWriteTxnMarkers(t *testing.T) {
	ts := startTxnServer(t)
	c := dial(t, ts.addr)
	pid, epoch, _ := initTxnProducer(t, c, "t1", 4)
	addPartitions(c, "t1", pid, epoch, "tx", 0)
	if code := txnProduce(t, c, "t1", pid, epoch, 0, 0, true); code != 0 {
		t.Fatalf("produce: code %d", code)
	}
	if code := txnProduce(t, c, "t1", pid, epoch, 0, 1, true); code != 0 {
		t.Fatalf("produce: code %d", code)
	}
	p, _ := ts.opts.Broker.Partition("tx", 0)
	if p.LastStableOffset() != 0 || p.HighWatermark() != 2 {
		t.Fatalf("LSO %d HW %d", p.LastStableOffset(), p.HighWatermark())
	}

	parts := describeProducers(c, "tx", 0, 1, 9)
	if len(parts) != 3 {
		t.Fatalf("describe producers: %+v", parts)
	}
	if got := parts[0]; got.ErrorCode != 0 || len(got.ActiveProducers) != 1 {
		t.Fatalf("tx/0: %+v", got)
	}
	ap := parts[0].ActiveProducers[0]
	if ap.ProducerID != pid || ap.ProducerEpoch != int32(epoch) || ap.LastSequence != 1 || ap.CurrentTxnStartOffset != 0 ||
		ap.CoordinatorEpoch != -1 || time.Since(time.UnixMilli(ap.LastTimestamp)) > time.Minute {
		t.Fatalf("tx/0 producer: %+v", ap)
	}
	if got := parts[1]; got.ErrorCode != 0 || len(got.ActiveProducers) != 0 {
		t.Fatalf("tx/1 (no producers): %+v", got)
	}
	if got := parts[2]; got.ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("tx/9: %+v", got)
	}
	if got := describeProducers(c, "missing", 0); got[0].ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("unknown topic: %+v", got)
	}

	// Bad markers first: nothing is written.
	resp := writeMarkers(c, 1,
		markerSpec{pid: pid, epoch: epoch, topic: "missing", parts: []int32{0}},
		markerSpec{pid: pid, epoch: epoch, topic: "tx", parts: []int32{5}},
		markerSpec{pid: pid, epoch: epoch, topic: "__consumer_offsets", parts: []int32{0}},
		markerSpec{pid: -1, epoch: 0, topic: "tx", parts: []int32{0}},
	)
	for i, want := range []int16{kerr.UnknownTopicOrPartition.Code, kerr.UnknownTopicOrPartition.Code,
		kerr.InvalidTopicException.Code, kerr.InvalidRequest.Code} {
		if got := markerCode(resp, i); got != want {
			t.Errorf("bad marker %d: code %d, want %d", i, got, want)
		}
	}
	if p.LastStableOffset() != 0 {
		t.Fatalf("a refused marker moved the LSO to %d", p.LastStableOffset())
	}
	// Too many partitions in one request.
	many := make([]int32, maxTxnMarkerPartitions+1)
	if got := markerCode(writeMarkers(c, 1, markerSpec{pid: pid, epoch: epoch, topic: "tx", parts: many}), 0); got != kerr.InvalidRequest.Code {
		t.Errorf("too many marker partitions: code %d", got)
	}

	// The abort, with the producer's epoch and coordinator epoch 0 (v0).
	resp = writeMarkers(c, 0, markerSpec{pid: pid, epoch: epoch, coordinatorEpoch: 0, topic: "tx", parts: []int32{0}})
	if resp.Markers[0].ProducerID != pid || markerCode(resp, 0) != 0 {
		t.Fatalf("abort: %+v", resp)
	}
	if p.LastStableOffset() != 3 || p.HighWatermark() != 3 {
		t.Fatalf("after the abort: LSO %d HW %d", p.LastStableOffset(), p.HighWatermark())
	}
	if ab := p.AbortedTransactions(0, 3); len(ab) != 1 || ab[0].ProducerID != pid || ab[0].FirstOffset != 0 {
		t.Fatalf("aborted index: %+v", ab)
	}
	ap = describeProducers(c, "tx", 0)[0].ActiveProducers[0]
	if ap.CurrentTxnStartOffset != -1 || ap.CoordinatorEpoch != 0 {
		t.Fatalf("after the abort: %+v", ap)
	}

	// Stale epochs.
	if code := markerCode(writeMarkers(c, 1, markerSpec{pid: pid, epoch: epoch + 1, coordinatorEpoch: 5, topic: "tx", parts: []int32{0}}), 0); code != 0 {
		t.Fatalf("newer epochs: code %d", code)
	}
	if code := markerCode(writeMarkers(c, 1, markerSpec{pid: pid, epoch: epoch, coordinatorEpoch: 5, topic: "tx", parts: []int32{0}}), 0); code != kerr.InvalidProducerEpoch.Code {
		t.Errorf("stale producer epoch: code %d", code)
	}
	if code := markerCode(writeMarkers(c, 1, markerSpec{pid: pid, epoch: epoch + 1, coordinatorEpoch: 4, topic: "tx", parts: []int32{0}}), 0); code != kerr.TransactionCoordinatorFenced.Code {
		t.Errorf("stale coordinator epoch: code %d", code)
	}
}

func TestDescribeProducersBound(t *testing.T) {
	ts := startTxnServer(t)
	c := dial(t, ts.addr)
	parts := describeProducers(c, "tx", make([]int32, maxDescribeProducersPartitions+1)...)
	if parts[0].ErrorCode != kerr.InvalidRequest.Code || parts[0].ErrorMessage == nil {
		t.Fatalf("too many partitions: %+v", parts[0])
	}
}

// TestProducerAdminKadm: kadm's DescribeProducers and WriteTxnMarkers
// against the server.
func TestProducerAdminKadm(t *testing.T) {
	ts := startTxnServer(t)
	c := dial(t, ts.addr)
	pid, epoch, _ := initTxnProducer(t, c, "t1", 4)
	addPartitions(c, "t1", pid, epoch, "tx", 1)
	if code := txnProduce(t, c, "t1", pid, epoch, 1, 0, true); code != 0 {
		t.Fatalf("produce: code %d", code)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(ts.addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	described, err := adm.DescribeProducers(ctx, kadm.TopicsSet{"tx": {0: {}, 1: {}}})
	if err != nil {
		t.Fatal(err)
	}
	dp := described["tx"].Partitions[1]
	prod, ok := dp.ActiveProducers[pid]
	if dp.Err != nil || !ok || prod.CurrentTxnStartOffset != 0 || prod.ProducerEpoch != epoch {
		t.Fatalf("kadm DescribeProducers: %+v", described)
	}
	res, err := adm.WriteTxnMarkers(ctx, kadm.TxnMarkers{ProducerID: pid, ProducerEpoch: epoch,
		CoordinatorEpoch: max(0, prod.CoordinatorEpoch), Topics: kadm.TopicsSet{"tx": {1: {}}}})
	if err != nil {
		t.Fatal(err)
	}
	if r := res[pid].Topics["tx"].Partitions[1]; r.Err != nil {
		t.Fatalf("kadm WriteTxnMarkers: %v", r.Err)
	}
	p, _ := ts.opts.Broker.Partition("tx", 1)
	if p.LastStableOffset() != p.HighWatermark() {
		t.Fatalf("LSO %d HW %d after the abort", p.LastStableOffset(), p.HighWatermark())
	}
}

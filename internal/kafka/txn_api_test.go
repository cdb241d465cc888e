package kafka

import (
	"log/slog"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weirhq/weir/internal/batch"
	"github.com/weirhq/weir/internal/txn"
)

// startTxnServer serves a test backend with a transaction coordinator on
// its __transaction_state, and topic "tx" with two partitions.
func startTxnServer(t *testing.T) *testServer {
	t.Helper()
	opts := testOptions(t)
	l, err := opts.Broker.OpenInternalLog(TransactionStateTopic)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := txn.NewService(txn.ServiceOptions{Store: NewTxnStore(l), ProducerIDs: opts.Broker,
		Markers: TxnMarkers{W: opts.Broker}, Offsets: TxnOffsets{Groups: opts.Groups}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(svc.Close)
	opts.Txns = svc
	if _, err := opts.Broker.CreateTopic("tx", 2, nil, false); err != nil {
		t.Fatal(err)
	}
	return startServer(t, opts)
}

func initTxnProducer(t *testing.T, c *rawClient, id string, version int16) (int64, int16, int16) {
	t.Helper()
	req := kmsg.NewPtrInitProducerIDRequest()
	req.Version = version
	req.TransactionalID = &id
	req.TransactionTimeoutMillis = 60000
	resp := c.roundTrip(req).(*kmsg.InitProducerIDResponse)
	return resp.ProducerID, resp.ProducerEpoch, resp.ErrorCode
}

func addPartitions(c *rawClient, id string, pid int64, epoch int16, topic string, parts ...int32) *kmsg.AddPartitionsToTxnResponse {
	req := kmsg.NewPtrAddPartitionsToTxnRequest()
	req.Version = 3
	req.TransactionalID, req.ProducerID, req.ProducerEpoch = id, pid, epoch
	rt := kmsg.NewAddPartitionsToTxnRequestTopic()
	rt.Topic, rt.Partitions = topic, parts
	req.Topics = append(req.Topics, rt)
	return c.roundTrip(req).(*kmsg.AddPartitionsToTxnResponse)
}

func endTxn(c *rawClient, id string, pid int64, epoch int16, commit bool, version int16) int16 {
	req := kmsg.NewPtrEndTxnRequest()
	req.Version = version
	req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Commit = id, pid, epoch, commit
	return c.roundTrip(req).(*kmsg.EndTxnResponse).ErrorCode
}

// txnProduce sends one transactional batch to tx/partition.
func txnProduce(t *testing.T, c *rawClient, id string, pid int64, epoch int16, partition int32, seq int32, transactional bool) int16 {
	t.Helper()
	raw, err := batch.Build(batch.BuildOptions{BaseTimestamp: time.Now().UnixMilli(), HasProducer: true,
		ProducerID: pid, ProducerEpoch: epoch, BaseSequence: seq, Transactional: transactional},
		[]batch.Record{{Value: []byte("v")}})
	if err != nil {
		t.Fatal(err)
	}
	req := kmsg.NewPtrProduceRequest()
	req.Version = 9
	req.Acks = -1
	req.TimeoutMillis = 5000
	req.TransactionID = &id
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = "tx"
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition, rp.Records = partition, raw
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return c.roundTrip(req).(*kmsg.ProduceResponse).Topics[0].Partitions[0].ErrorCode
}

// TestTxnAPIsHappyPath runs a transaction over the wire: InitProducerId,
// AddPartitionsToTxn, a transactional Produce, EndTxn; DescribeTransactions
// and ListTransactions report it.
func TestTxnAPIsHappyPath(t *testing.T) {
	ts := startTxnServer(t)
	c := dial(t, ts.addr)
	pid, epoch, code := initTxnProducer(t, c, "t1", 4)
	if code != 0 || pid < 0 || epoch != 0 {
		t.Fatalf("InitProducerId: pid %d epoch %d code %d", pid, epoch, code)
	}
	resp := addPartitions(c, "t1", pid, epoch, "tx", 0, 1)
	for _, p := range resp.Topics[0].Partitions {
		if p.ErrorCode != 0 {
			t.Fatalf("AddPartitionsToTxn: partition %d code %d", p.Partition, p.ErrorCode)
		}
	}
	if code := txnProduce(t, c, "t1", pid, epoch, 0, 0, true); code != 0 {
		t.Fatalf("produce: code %d", code)
	}

	dreq := kmsg.NewPtrDescribeTransactionsRequest()
	dreq.TransactionalIDs = []string{"t1", "nope"}
	dresp := c.roundTrip(dreq).(*kmsg.DescribeTransactionsResponse)
	if len(dresp.TransactionStates) != 2 {
		t.Fatalf("describe: %+v", dresp)
	}
	d := dresp.TransactionStates[0]
	if d.ErrorCode != 0 || d.State != "Ongoing" || d.ProducerID != pid || d.ProducerEpoch != epoch ||
		d.TimeoutMillis != 60000 || d.StartTimestamp <= 0 || len(d.Topics) != 1 || d.Topics[0].Topic != "tx" ||
		len(d.Topics[0].Partitions) != 2 {
		t.Fatalf("describe t1: %+v", d)
	}
	if code := dresp.TransactionStates[1].ErrorCode; code != kerr.TransactionalIDNotFound.Code {
		t.Fatalf("describe unknown id: code %d", code)
	}

	lreq := kmsg.NewPtrListTransactionsRequest()
	lreq.Version = 1
	lreq.StateFilters = []string{"Ongoing", "Bogus"}
	lresp := c.roundTrip(lreq).(*kmsg.ListTransactionsResponse)
	if lresp.ErrorCode != 0 || len(lresp.TransactionStates) != 1 || lresp.TransactionStates[0].TransactionalID != "t1" ||
		lresp.TransactionStates[0].TransactionState != "Ongoing" || len(lresp.UnknownStateFilters) != 1 {
		t.Fatalf("list: %+v", lresp)
	}
	lreq.StateFilters, lreq.ProducerIDFilters = nil, []int64{pid + 1000}
	if lresp := c.roundTrip(lreq).(*kmsg.ListTransactionsResponse); len(lresp.TransactionStates) != 0 {
		t.Fatalf("list by another producer id: %+v", lresp)
	}

	if code := endTxn(c, "t1", pid, epoch, true, 3); code != 0 {
		t.Fatalf("EndTxn: code %d", code)
	}
	p, err := ts.opts.Broker.Partition("tx", 0)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the commit marker", func() bool { return p.LastStableOffset() == 2 && p.HighWatermark() == 2 })
	waitFor(t, "CompleteCommit", func() bool {
		lreq.StateFilters, lreq.ProducerIDFilters = []string{"CompleteCommit"}, nil
		return len(c.roundTrip(lreq).(*kmsg.ListTransactionsResponse).TransactionStates) == 1
	})
}

// TestTxnAPIsFencing: a second InitProducerId for the id bumps the epoch;
// the old producer's requests are fenced, per version.
func TestTxnAPIsFencing(t *testing.T) {
	ts := startTxnServer(t)
	c := dial(t, ts.addr)
	pid, e0, _ := initTxnProducer(t, c, "t1", 4)
	pid2, e1, code := initTxnProducer(t, c, "t1", 4)
	if code != 0 || pid2 != pid || e1 != e0+1 {
		t.Fatalf("second InitProducerId: pid %d epoch %d code %d", pid2, e1, code)
	}
	if code := addPartitions(c, "t1", pid, e0, "tx", 0).Topics[0].Partitions[0].ErrorCode; code != kerr.ProducerFenced.Code {
		t.Fatalf("AddPartitionsToTxn v3 with the old epoch: code %d", code)
	}
	if code := endTxn(c, "t1", pid, e0, true, 1); code != kerr.InvalidProducerEpoch.Code {
		t.Fatalf("EndTxn v1 with the old epoch: code %d", code)
	}
	if code := endTxn(c, "t1", pid, e0, true, 3); code != kerr.ProducerFenced.Code {
		t.Fatalf("EndTxn v3 with the old epoch: code %d", code)
	}
	// The new producer adds a partition; the old one may not produce.
	if code := addPartitions(c, "t1", pid, e1, "tx", 0).Topics[0].Partitions[0].ErrorCode; code != 0 {
		t.Fatalf("AddPartitionsToTxn: code %d", code)
	}
	if code := txnProduce(t, c, "t1", pid, e0, 0, 0, true); code != kerr.InvalidProducerEpoch.Code {
		t.Fatalf("produce with the old epoch: code %d", code)
	}
	// InitProducerId while a transaction is ongoing aborts it first.
	if _, _, code := initTxnProducer(t, c, "t1", 4); code != kerr.ConcurrentTransactions.Code {
		t.Fatalf("InitProducerId during a transaction: code %d", code)
	}
	waitFor(t, "the fencing abort", func() bool {
		_, e, code := initTxnProducer(t, c, "t1", 4)
		return code == 0 && e > e1
	})
}

// TestTxnAPIsErrors: unknown partitions, an empty EndTxn, produce outside
// the transaction, a non-transactional batch, a bad timeout.
func TestTxnAPIsErrors(t *testing.T) {
	ts := startTxnServer(t)
	c := dial(t, ts.addr)
	pid, epoch, _ := initTxnProducer(t, c, "t1", 4)

	req := kmsg.NewPtrAddPartitionsToTxnRequest()
	req.Version = 0
	req.TransactionalID, req.ProducerID, req.ProducerEpoch = "t1", pid, epoch
	for _, tp := range []struct {
		topic string
		parts []int32
	}{{"tx", []int32{0, 7}}, {"missing", []int32{0}}} {
		rt := kmsg.NewAddPartitionsToTxnRequestTopic()
		rt.Topic, rt.Partitions = tp.topic, tp.parts
		req.Topics = append(req.Topics, rt)
	}
	resp := c.roundTrip(req).(*kmsg.AddPartitionsToTxnResponse)
	got := map[string]int16{}
	for _, rt := range resp.Topics {
		for _, p := range rt.Partitions {
			got[rt.Topic+"/"+string(rune('0'+p.Partition))] = p.ErrorCode
		}
	}
	want := map[string]int16{"tx/0": kerr.OperationNotAttempted.Code, "tx/7": kerr.UnknownTopicOrPartition.Code,
		"missing/0": kerr.UnknownTopicOrPartition.Code}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("AddPartitionsToTxn %s: code %d, want %d", k, got[k], v)
		}
	}

	if code := endTxn(c, "t1", pid, epoch, true, 3); code != kerr.InvalidTxnState.Code {
		t.Fatalf("EndTxn on an empty transaction: code %d", code)
	}
	if code := txnProduce(t, c, "t1", pid, epoch, 0, 0, true); code != kerr.InvalidTxnState.Code {
		t.Fatalf("produce with no transaction: code %d", code)
	}
	if code := addPartitions(c, "t1", pid, epoch, "tx", 0).Topics[0].Partitions[0].ErrorCode; code != 0 {
		t.Fatalf("AddPartitionsToTxn: code %d", code)
	}
	if code := txnProduce(t, c, "t1", pid, epoch, 1, 0, true); code != kerr.InvalidTxnState.Code {
		t.Fatalf("produce to a partition not added: code %d", code)
	}
	if code := txnProduce(t, c, "t1", pid, epoch, 0, 0, false); code != kerr.InvalidRecord.Code {
		t.Fatalf("non-transactional batch with a transactional id: code %d", code)
	}
	if code := txnProduce(t, c, "t1", pid+1000, 0, 0, 0, true); code != kerr.InvalidProducerIDMapping.Code {
		t.Fatalf("produce with another producer id: code %d", code)
	}
	if code := endTxn(c, "other", pid, epoch, true, 3); code != kerr.InvalidProducerIDMapping.Code {
		t.Fatalf("EndTxn for an unknown id: code %d", code)
	}
	id := "t2"
	ireq := kmsg.NewPtrInitProducerIDRequest()
	ireq.TransactionalID, ireq.TransactionTimeoutMillis = &id, int32(time.Hour.Milliseconds())
	if code := c.roundTrip(ireq).(*kmsg.InitProducerIDResponse).ErrorCode; code != kerr.InvalidTransactionTimeout.Code {
		t.Fatalf("InitProducerId with a 1h timeout: code %d", code)
	}
}

// TestTransactionalBatchWithoutTransactionalID: a transactional batch in a
// Produce request without a transactional id is refused, so no producer
// can open a transaction the coordinator does not know, which would hold
// the partition's last stable offset (and every read_committed reader)
// forever.
func TestTransactionalBatchWithoutTransactionalID(t *testing.T) {
	ts := startTxnServer(t)
	c := dial(t, ts.addr)
	raw := buildBatch(t, 1, batch.BuildOptions{HasProducer: true, ProducerID: 77, ProducerEpoch: 0, Transactional: true})
	resp := c.roundTrip(produceReq(9, -1, "tx", 0, raw)).(*kmsg.ProduceResponse)
	if code := resp.Topics[0].Partitions[0].ErrorCode; code != kerr.InvalidRecord.Code {
		t.Fatalf("transactional batch without a transactional id: code %d, want INVALID_RECORD", code)
	}
	p, err := ts.opts.Broker.Partition("tx", 0)
	if err != nil {
		t.Fatal(err)
	}
	if hw, lso := p.HighWatermark(), p.LastStableOffset(); hw != 0 || lso != 0 {
		t.Fatalf("the refused batch left high watermark %d, last stable offset %d", hw, lso)
	}
}

// TestTxnAPIsWithoutCoordinator: with no Options.Txns, transactions are
// refused as before.
func TestTxnAPIsWithoutCoordinator(t *testing.T) {
	ts := startServer(t, testOptions(t))
	c := dial(t, ts.addr)
	if _, _, code := initTxnProducer(t, c, "t1", 4); code != kerr.TransactionalIDAuthorizationFailed.Code {
		t.Fatalf("InitProducerId: code %d", code)
	}
	if code := endTxn(c, "t1", 1, 0, true, 3); code != kerr.TransactionalIDAuthorizationFailed.Code {
		t.Fatalf("EndTxn: code %d", code)
	}
	lreq := kmsg.NewPtrListTransactionsRequest()
	if code := c.roundTrip(lreq).(*kmsg.ListTransactionsResponse).ErrorCode; code != kerr.TransactionalIDAuthorizationFailed.Code {
		t.Fatalf("ListTransactions: code %d", code)
	}
}

// TestTxnBackToBack: EndTxn answers once the transaction is complete, so
// the producer's next AddPartitionsToTxn starts a transaction at once
// instead of meeting CONCURRENT_TRANSACTIONS (a 20 ms client backoff per
// transaction), and a transaction with nothing in it (AddPartitionsToTxn
// of no partitions, as a client may send) ends instead of staying
// prepared, so the id is usable again.
func TestTxnBackToBack(t *testing.T) {
	ts := startTxnServer(t)
	c := dial(t, ts.addr)
	pid, epoch, code := initTxnProducer(t, c, "bb", 4)
	if code != 0 {
		t.Fatalf("InitProducerId: code %d", code)
	}
	for i := range 20 {
		if code := addPartitions(c, "bb", pid, epoch, "tx", int32(i%2)).Topics[0].Partitions[0].ErrorCode; code != 0 {
			t.Fatalf("transaction %d: AddPartitionsToTxn right after the last EndTxn: %v", i, kerr.ErrorForCode(code))
		}
		if code := txnProduce(t, c, "bb", pid, epoch, int32(i%2), int32(i/2), true); code != 0 {
			t.Fatalf("transaction %d: produce: %v", i, kerr.ErrorForCode(code))
		}
		if code := endTxn(c, "bb", pid, epoch, i%3 != 0, 3); code != 0 {
			t.Fatalf("transaction %d: EndTxn: %v", i, kerr.ErrorForCode(code))
		}
	}

	req := kmsg.NewPtrAddPartitionsToTxnRequest()
	req.Version = 3
	req.TransactionalID, req.ProducerID, req.ProducerEpoch = "bb", pid, epoch
	if resp := c.roundTrip(req).(*kmsg.AddPartitionsToTxnResponse); len(resp.Topics) != 0 {
		t.Fatalf("AddPartitionsToTxn of nothing: %+v", resp.Topics)
	}
	if code := endTxn(c, "bb", pid, epoch, true, 3); code != 0 {
		t.Fatalf("EndTxn of an empty transaction: %v", kerr.ErrorForCode(code))
	}
	if _, e, code := initTxnProducer(t, c, "bb", 4); code != 0 || e != epoch+1 {
		t.Fatalf("InitProducerId after the empty transaction: epoch %d, %v", e, kerr.ErrorForCode(code))
	}
}

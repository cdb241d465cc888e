package kafka

import (
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weirhq/weir/internal/batch"
	"github.com/weirhq/weir/internal/broker"
)

func buildBatch(t *testing.T, n int, opts batch.BuildOptions) []byte {
	t.Helper()
	recs := make([]batch.Record, n)
	for i := range recs {
		recs[i] = batch.Record{OffsetDelta: int32(i), Value: []byte("value")}
	}
	if opts.BaseTimestamp == 0 {
		opts.BaseTimestamp = time.Now().UnixMilli()
	}
	b, err := batch.Build(opts, recs)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func produceReq(version int16, acks int16, topic string, partition int32, records []byte) *kmsg.ProduceRequest {
	req := kmsg.NewPtrProduceRequest()
	req.Version, req.Acks, req.TimeoutMillis = version, acks, 5000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition, rp.Records = partition, records
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}

func TestProduceErrors(t *testing.T) {
	ts := startServer(t, Options{})
	if _, err := ts.opts.Broker.CreateTopic("t", 1, map[string]string{"max.message.bytes": "200"}, false); err != nil {
		t.Fatal(err)
	}
	c := dial(t, ts.addr)
	good := buildBatch(t, 2, batch.BuildOptions{})
	corrupt := append([]byte(nil), good...)
	corrupt[len(corrupt)-1] ^= 1
	zstd := buildBatch(t, 2, batch.BuildOptions{Codec: batch.CodecZstd})
	for _, tc := range []struct {
		name string
		req  *kmsg.ProduceRequest
		want int16
	}{
		{"ok v3", produceReq(3, -1, "t", 0, good), 0},
		{"ok v11", produceReq(11, 1, "t", 0, good), 0},
		{"unknown topic", produceReq(7, -1, "nope", 0, good), kerr.UnknownTopicOrPartition.Code},
		{"unknown partition", produceReq(7, -1, "t", 5, good), kerr.UnknownTopicOrPartition.Code},
		{"bad acks", produceReq(7, 2, "t", 0, good), kerr.InvalidRequiredAcks.Code},
		{"corrupt crc", produceReq(7, -1, "t", 0, corrupt), kerr.CorruptMessage.Code},
		{"too large", produceReq(7, -1, "t", 0, buildBatch(t, 30, batch.BuildOptions{})), kerr.MessageTooLarge.Code},
		{"message set v2", produceReq(2, -1, "t", 0, good), kerr.UnsupportedForMessageFormat.Code},
		{"zstd before v7", produceReq(6, -1, "t", 0, zstd), kerr.UnsupportedCompressionType.Code},
		{"zstd v7", produceReq(7, -1, "t", 0, zstd), 0},
		{"internal topic", produceReq(7, -1, OffsetsTopic, 0, good), kerr.InvalidTopicException.Code},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := c.roundTrip(tc.req).(*kmsg.ProduceResponse)
			p := resp.Topics[0].Partitions[0]
			if p.ErrorCode != tc.want {
				t.Fatalf("error %v, want %v (%v)", kerr.ErrorForCode(p.ErrorCode), kerr.ErrorForCode(tc.want), p.ErrorMessage)
			}
			if tc.want == 0 && p.BaseOffset < 0 {
				t.Fatalf("base offset %d", p.BaseOffset)
			}
			if tc.want != 0 && p.BaseOffset != -1 {
				t.Fatalf("failed produce has base offset %d", p.BaseOffset)
			}
		})
	}
	// Three successful produces of two records each: offsets 0..5.
	if hw := mustPartition(t, ts, "t", 0).HighWatermark(); hw != 6 {
		t.Fatalf("high watermark %d, want 6", hw)
	}
}

// TestProduceToInternalTopicsEveryVersion: no Produce version writes an
// internal topic: v0-2 are refused for their message format, v3-11 with
// INVALID_TOPIC_EXCEPTION and the gate's reason; nothing is appended.
func TestProduceToInternalTopicsEveryVersion(t *testing.T) {
	ts := startServer(t, Options{})
	b := ts.opts.Broker
	for _, name := range []string{broker.SchemasTopic, broker.SubscriptionsTopic} {
		if _, err := b.OpenInternalLog(name); err != nil {
			t.Fatal(err)
		}
	}
	c := dial(t, ts.addr)
	for _, name := range []string{OffsetsTopic, broker.SchemasTopic, broker.SubscriptionsTopic} {
		p := mustPartition(t, ts, name, 0)
		end := p.HighWatermark()
		for v := int16(0); v <= 11; v++ {
			resp := c.roundTrip(produceReq(v, -1, name, 0, buildBatch(t, 1, batch.BuildOptions{}))).(*kmsg.ProduceResponse)
			rp := resp.Topics[0].Partitions[0]
			want := kerr.InvalidTopicException.Code
			if v < 3 {
				want = kerr.UnsupportedForMessageFormat.Code
			}
			if rp.ErrorCode != want {
				t.Errorf("%s v%d: %v, want %v", name, v, kerr.ErrorForCode(rp.ErrorCode), kerr.ErrorForCode(want))
			}
			if v >= 8 && (rp.ErrorMessage == nil || !strings.Contains(*rp.ErrorMessage, "written only by the node itself")) {
				t.Errorf("%s v%d: message %v", name, v, rp.ErrorMessage)
			}
		}
		if got := p.HighWatermark(); got != end {
			t.Errorf("%s: high watermark %d -> %d", name, end, got)
		}
	}
}

func TestProduceAcksZeroSendsNoResponse(t *testing.T) {
	ts := startServer(t, Options{})
	if _, err := ts.opts.Broker.CreateTopic("t", 1, nil, false); err != nil {
		t.Fatal(err)
	}
	c := dial(t, ts.addr)
	c.send(produceReq(7, 0, "t", 0, buildBatch(t, 1, batch.BuildOptions{})))
	// The next response on the connection must be the ApiVersions one.
	req := kmsg.NewPtrApiVersionsRequest()
	req.Version = 3
	c.readResponse(req, c.send(req))
	waitFor(t, "acks=0 record to be durable", func() bool { return mustPartition(t, ts, "t", 0).HighWatermark() == 1 })
}

func TestProduceIdempotentDuplicate(t *testing.T) {
	ts := startServer(t, Options{})
	if _, err := ts.opts.Broker.CreateTopic("t", 1, nil, false); err != nil {
		t.Fatal(err)
	}
	c := dial(t, ts.addr)
	ip := c.roundTrip(&kmsg.InitProducerIDRequest{Version: 4, ProducerID: -1, ProducerEpoch: -1}).(*kmsg.InitProducerIDResponse)
	if ip.ErrorCode != 0 || ip.ProducerID < 0 {
		t.Fatalf("init producer id: %+v", ip)
	}
	b := func(seq int32) []byte {
		return buildBatch(t, 3, batch.BuildOptions{HasProducer: true, ProducerID: ip.ProducerID, ProducerEpoch: ip.ProducerEpoch, BaseSequence: seq})
	}
	first := c.roundTrip(produceReq(9, -1, "t", 0, b(0))).(*kmsg.ProduceResponse).Topics[0].Partitions[0]
	again := c.roundTrip(produceReq(9, -1, "t", 0, b(0))).(*kmsg.ProduceResponse).Topics[0].Partitions[0]
	gap := c.roundTrip(produceReq(9, -1, "t", 0, b(7))).(*kmsg.ProduceResponse).Topics[0].Partitions[0]
	if first.ErrorCode != 0 || again.ErrorCode != 0 || again.BaseOffset != first.BaseOffset {
		t.Fatalf("duplicate not answered with the original offset: first %+v again %+v", first, again)
	}
	if gap.ErrorCode != kerr.OutOfOrderSequenceNumber.Code {
		t.Fatalf("sequence gap: %v", kerr.ErrorForCode(gap.ErrorCode))
	}
	if hw := mustPartition(t, ts, "t", 0).HighWatermark(); hw != 3 {
		t.Fatalf("high watermark %d, want 3 (the duplicate must not be stored)", hw)
	}
	bump := c.roundTrip(&kmsg.InitProducerIDRequest{Version: 4, ProducerID: ip.ProducerID, ProducerEpoch: ip.ProducerEpoch}).(*kmsg.InitProducerIDResponse)
	if bump.ProducerID != ip.ProducerID || bump.ProducerEpoch != ip.ProducerEpoch+1 {
		t.Fatalf("epoch bump: %+v", bump)
	}
	txn := "tx"
	tr := c.roundTrip(&kmsg.InitProducerIDRequest{Version: 4, TransactionalID: &txn, TransactionTimeoutMillis: 1000, ProducerID: -1, ProducerEpoch: -1}).(*kmsg.InitProducerIDResponse)
	if tr.ErrorCode == 0 {
		t.Fatal("transactional init must be refused until transactions exist")
	}
}

func fetchReq(version int16, topic string, partition int32, offset int64, maxWait, minBytes int32) *kmsg.FetchRequest {
	req := kmsg.NewPtrFetchRequest()
	req.Version, req.MaxWaitMillis, req.MinBytes, req.MaxBytes = version, maxWait, minBytes, 1<<20
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = partition, offset, 1<<20
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}

func TestFetch(t *testing.T) {
	ts := startServer(t, Options{})
	if _, err := ts.opts.Broker.CreateTopic("t", 1, nil, false); err != nil {
		t.Fatal(err)
	}
	c := dial(t, ts.addr)
	if p := c.roundTrip(produceReq(7, -1, "t", 0, buildBatch(t, 4, batch.BuildOptions{}))).(*kmsg.ProduceResponse).Topics[0].Partitions[0]; p.ErrorCode != 0 {
		t.Fatal(kerr.ErrorForCode(p.ErrorCode))
	}
	for _, v := range []int16{4, 7, 11, 12} {
		resp := c.roundTrip(fetchReq(v, "t", 0, 2, 0, 0)).(*kmsg.FetchResponse)
		p := resp.Topics[0].Partitions[0]
		wantStart := int64(0)
		if v < 5 {
			wantStart = -1 // log start offset arrived in Fetch v5
		}
		if p.ErrorCode != 0 || p.HighWatermark != 4 || p.LogStartOffset != wantStart {
			t.Fatalf("v%d: %+v", v, p)
		}
		h, recs, err := batch.Records(p.RecordBatches, 1<<20)
		if err != nil || h.BaseOffset != 0 || len(recs) != 4 {
			t.Fatalf("v%d: batch base %d, %d records, %v", v, h.BaseOffset, len(recs), err)
		}
		// At the high watermark: an empty but present record set.
		empty := c.roundTrip(fetchReq(v, "t", 0, 4, 0, 0)).(*kmsg.FetchResponse).Topics[0].Partitions[0]
		if empty.ErrorCode != 0 || empty.RecordBatches == nil || len(empty.RecordBatches) != 0 {
			t.Fatalf("v%d at hwm: code %d records %v", v, empty.ErrorCode, empty.RecordBatches)
		}
	}
	oor := c.roundTrip(fetchReq(11, "t", 0, 99, 0, 0)).(*kmsg.FetchResponse).Topics[0].Partitions[0]
	if oor.ErrorCode != kerr.OffsetOutOfRange.Code {
		t.Fatalf("offset past hwm: %v", kerr.ErrorForCode(oor.ErrorCode))
	}
	unk := c.roundTrip(fetchReq(11, "nope", 0, 0, 0, 0)).(*kmsg.FetchResponse).Topics[0].Partitions[0]
	if unk.ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("unknown topic: %v", kerr.ErrorForCode(unk.ErrorCode))
	}

	// Long poll: max wait expires with nothing new.
	start := time.Now()
	w := c.roundTrip(fetchReq(11, "t", 0, 4, 300, 1)).(*kmsg.FetchResponse).Topics[0].Partitions[0]
	if len(w.RecordBatches) != 0 || time.Since(start) < 250*time.Millisecond {
		t.Fatalf("long poll returned early after %v with %d bytes", time.Since(start), len(w.RecordBatches))
	}
	// Long poll: a produce on another connection wakes the waiting fetch.
	corr := c.send(fetchReq(11, "t", 0, 4, 20000, 1))
	other := dial(t, ts.addr)
	other.roundTrip(produceReq(7, -1, "t", 0, buildBatch(t, 1, batch.BuildOptions{})))
	got := c.readResponse(fetchReq(11, "t", 0, 4, 20000, 1), corr).(*kmsg.FetchResponse).Topics[0].Partitions[0]
	if h, err := batch.ParseHeader(got.RecordBatches); err != nil || h.BaseOffset != 4 {
		t.Fatalf("woken fetch: %v base %d", err, h.BaseOffset)
	}
}

func TestListOffsets(t *testing.T) {
	ts := startServer(t, Options{})
	if _, err := ts.opts.Broker.CreateTopic("t", 1, nil, false); err != nil {
		t.Fatal(err)
	}
	c := dial(t, ts.addr)
	for _, ts0 := range []int64{1000, 5000, 3000} {
		c.roundTrip(produceReq(7, -1, "t", 0, buildBatch(t, 1, batch.BuildOptions{BaseTimestamp: ts0})))
	}
	for _, v := range []int16{1, 4, 7} {
		for _, tc := range []struct{ ts, off int64 }{{-2, 0}, {-1, 3}, {2000, 1}, {9000, -1}} {
			req := kmsg.NewPtrListOffsetsRequest()
			req.Version, req.ReplicaID = v, -1
			rt := kmsg.NewListOffsetsRequestTopic()
			rt.Topic = "t"
			rp := kmsg.NewListOffsetsRequestTopicPartition()
			rp.Partition, rp.Timestamp = 0, tc.ts
			rt.Partitions = append(rt.Partitions, rp)
			req.Topics = append(req.Topics, rt)
			p := c.roundTrip(req).(*kmsg.ListOffsetsResponse).Topics[0].Partitions[0]
			if p.ErrorCode != 0 || p.Offset != tc.off {
				t.Errorf("v%d ts %d: offset %d code %d, want %d", v, tc.ts, p.Offset, p.ErrorCode, tc.off)
			}
		}
	}
}

func TestMetadata(t *testing.T) {
	ts := startServer(t, Options{})
	c := dial(t, ts.addr)
	auto := kmsg.NewPtrMetadataRequest()
	auto.Version, auto.AllowAutoTopicCreation = 12, true
	name := "auto-created"
	auto.Topics = []kmsg.MetadataRequestTopic{{Topic: &name}}
	mt := c.roundTrip(auto).(*kmsg.MetadataResponse)
	if len(mt.Topics) != 1 || mt.Topics[0].ErrorCode != 0 || len(mt.Topics[0].Partitions) != 1 || mt.Topics[0].Partitions[0].LeaderEpoch != -1 {
		t.Fatalf("auto-create: %+v", mt.Topics)
	}
	if len(mt.Brokers) != 1 || mt.Brokers[0].Port == 0 || mt.Brokers[0].Host == "" {
		t.Fatalf("brokers: %+v", mt.Brokers)
	}

	noAuto := kmsg.NewPtrMetadataRequest()
	noAuto.Version = 9
	other := "not-created"
	noAuto.Topics = []kmsg.MetadataRequestTopic{{Topic: &other}}
	if got := c.roundTrip(noAuto).(*kmsg.MetadataResponse).Topics[0].ErrorCode; got != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("no auto-create: %v", kerr.ErrorForCode(got))
	}
	bad := kmsg.NewPtrMetadataRequest()
	bad.Version = 1
	badName := "bad name!"
	bad.Topics = []kmsg.MetadataRequestTopic{{Topic: &badName}}
	if got := c.roundTrip(bad).(*kmsg.MetadataResponse).Topics[0].ErrorCode; got != kerr.InvalidTopicException.Code {
		t.Fatalf("invalid name: %v", kerr.ErrorForCode(got))
	}

	// v0 with an empty list and v12 with a null list both mean all topics;
	// v12 looks a topic up by its id.
	v0 := kmsg.NewPtrMetadataRequest()
	v0.Version = 0
	v0.Topics = []kmsg.MetadataRequestTopic{}
	if n := len(c.roundTrip(v0).(*kmsg.MetadataResponse).Topics); n < 1 {
		t.Fatalf("v0 all topics: %d", n)
	}
	byID := kmsg.NewPtrMetadataRequest()
	byID.Version = 12
	byID.Topics = []kmsg.MetadataRequestTopic{{TopicID: mt.Topics[0].TopicID}}
	got := c.roundTrip(byID).(*kmsg.MetadataResponse).Topics
	if len(got) != 1 || got[0].Topic == nil || *got[0].Topic != name {
		t.Fatalf("by id: %+v", got)
	}
}

func mustPartition(t *testing.T, ts *testServer, topic string, p int32) interface{ HighWatermark() int64 } {
	t.Helper()
	part, err := ts.opts.Broker.Partition(topic, p)
	if err != nil {
		t.Fatal(err)
	}
	return part
}

// TestProduceKeylessToCompactedTopic: a compacted topic refuses records
// without a key (as Kafka does) with INVALID_RECORD naming the record and
// the rule; keyed records are stored.
func TestProduceKeylessToCompactedTopic(t *testing.T) {
	opts := testOptions(t)
	if _, err := opts.Broker.CreateTopic("table", 1, map[string]string{"cleanup.policy": "compact"}, false); err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, opts)
	c := dial(t, ts.addr)
	raw, err := batch.Build(batch.BuildOptions{BaseTimestamp: time.Now().UnixMilli()},
		[]batch.Record{{Key: []byte("k"), Value: []byte("a")}, {OffsetDelta: 1, Value: []byte("no key")}})
	if err != nil {
		t.Fatal(err)
	}
	resp := c.roundTrip(produceReq(8, -1, "table", 0, raw)).(*kmsg.ProduceResponse)
	pr := resp.Topics[0].Partitions[0]
	if pr.ErrorCode != kerr.InvalidRecord.Code || len(pr.ErrorRecords) != 1 || pr.ErrorRecords[0].RelativeOffset != 1 ||
		pr.ErrorMessage == nil || !strings.Contains(*pr.ErrorMessage, "without a key") {
		t.Fatalf("keyless record to a compacted topic: %+v", pr)
	}
	raw, err = batch.Build(batch.BuildOptions{BaseTimestamp: time.Now().UnixMilli()}, []batch.Record{{Key: []byte("k"), Value: []byte("a")}})
	if err != nil {
		t.Fatal(err)
	}
	if pr := c.roundTrip(produceReq(8, -1, "table", 0, raw)).(*kmsg.ProduceResponse).Topics[0].Partitions[0]; pr.ErrorCode != 0 {
		t.Fatalf("keyed record: %+v", pr)
	}
}

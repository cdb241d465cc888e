package kafka

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weirhq/weir/internal/batch"
)

// produceN writes n records to partition p of topic through kgo (acks=all)
// and returns once all are acknowledged.
func produceN(t *testing.T, addr, topic string, p int32, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for i := range n {
		r := &kgo.Record{Topic: topic, Partition: p, Value: fmt.Appendf(nil, "v%d", i)}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatalf("produce: %v", err)
		}
	}
}

func deleteRecordsReq(version int16, topic string, offsets map[int32]int64, order ...int32) *kmsg.DeleteRecordsRequest {
	req := kmsg.NewPtrDeleteRecordsRequest()
	req.Version = version
	rt := kmsg.NewDeleteRecordsRequestTopic()
	rt.Topic = topic
	for _, p := range order {
		rp := kmsg.NewDeleteRecordsRequestTopicPartition()
		rp.Partition, rp.Offset = p, offsets[p]
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = []kmsg.DeleteRecordsRequestTopic{rt}
	return req
}

func TestDeleteRecords(t *testing.T) {
	ts := startServer(t, Options{})
	b := ts.opts.Broker
	if _, err := b.CreateTopic("dr", 3, nil, false); err != nil {
		t.Fatal(err)
	}
	produceN(t, ts.addr, "dr", 0, 10)
	produceN(t, ts.addr, "dr", 1, 4)
	cl := dial(t, ts.addr)

	type result struct {
		low  int64
		code int16
	}
	check := func(what string, req *kmsg.DeleteRecordsRequest, want map[int32]result) {
		t.Helper()
		resp := cl.roundTrip(req).(*kmsg.DeleteRecordsResponse)
		if len(resp.Topics) != 1 || resp.Topics[0].Topic != req.Topics[0].Topic {
			t.Fatalf("%s: topics %+v", what, resp.Topics)
		}
		got := resp.Topics[0].Partitions
		if len(got) != len(want) {
			t.Fatalf("%s: %d partitions, want %d", what, len(got), len(want))
		}
		for i, p := range got {
			if p.Partition != req.Topics[0].Partitions[i].Partition {
				t.Errorf("%s: partition %d answered in place of %d", what, p.Partition, req.Topics[0].Partitions[i].Partition)
			}
			if w := want[p.Partition]; p.LowWatermark != w.low || p.ErrorCode != w.code {
				t.Errorf("%s: partition %d = low %d code %d, want low %d code %d", what, p.Partition, p.LowWatermark, p.ErrorCode, w.low, w.code)
			}
		}
	}

	check("v0", deleteRecordsReq(0, "dr", map[int32]int64{0: 4, 1: 5, 2: -2, 9: 0}, 0, 1, 2, 9), map[int32]result{
		0: {4, 0},
		1: {-1, kerr.OffsetOutOfRange.Code}, // beyond the high watermark 4
		2: {-1, kerr.OffsetOutOfRange.Code},
		9: {-1, kerr.UnknownTopicOrPartition.Code},
	})
	check("v2", deleteRecordsReq(2, "dr", map[int32]int64{0: -1, 1: 2, 2: 0}, 0, 1, 2), map[int32]result{
		0: {10, 0}, // -1: up to the high watermark
		1: {2, 0},
		2: {0, 0},
	})
	check("v2 below start", deleteRecordsReq(2, "dr", map[int32]int64{1: 1}, 1), map[int32]result{1: {2, 0}})
	check("v1 unknown topic", deleteRecordsReq(1, "missing", map[int32]int64{0: 0}, 0), map[int32]result{
		0: {-1, kerr.UnknownTopicOrPartition.Code},
	})
	check("v1 internal", deleteRecordsReq(1, OffsetsTopic, map[int32]int64{0: -1}, 0), map[int32]result{
		0: {-1, kerr.InvalidTopicException.Code},
	})
	for p, want := range map[int32]int64{0: 10, 1: 2, 2: 0} {
		part, _ := b.Partition("dr", p)
		if got := part.LogStartOffset(); got != want {
			t.Errorf("dr-%d log start %d, want %d", p, got, want)
		}
	}
}

func TestDescribeCluster(t *testing.T) {
	ts := startServer(t, Options{NodeID: 3})
	cl := dial(t, ts.addr)
	host, portStr, _ := net.SplitHostPort(ts.addr)
	port, _ := strconv.Atoi(portStr)

	for _, v := range []int16{0, 1} {
		for _, ops := range []bool{false, true} {
			req := kmsg.NewPtrDescribeClusterRequest()
			req.Version = v
			req.IncludeClusterAuthorizedOperations = ops
			resp := cl.roundTrip(req).(*kmsg.DescribeClusterResponse)
			what := fmt.Sprintf("v%d ops=%v", v, ops)
			wantError(t, what, resp.ErrorCode, resp.ErrorMessage, 0, true, "")
			if resp.ClusterID != ts.opts.Broker.ClusterID() || resp.ClusterID == "" || resp.ControllerID != 3 {
				t.Errorf("%s: cluster %q controller %d, want %q 3", what, resp.ClusterID, resp.ControllerID, ts.opts.Broker.ClusterID())
			}
			if len(resp.Brokers) != 1 || resp.Brokers[0].NodeID != 3 || resp.Brokers[0].Host != host ||
				resp.Brokers[0].Port != int32(port) || resp.Brokers[0].Rack != nil {
				t.Errorf("%s: brokers %+v, want node 3 at %s", what, resp.Brokers, ts.addr)
			}
			wantOps := int32(authorizedOpsUnset)
			if ops {
				wantOps = 0b1_1111_1001_0000 // ALTER, CREATE, DESCRIBE, CLUSTER_ACTION, DESCRIBE/ALTER_CONFIGS, IDEMPOTENT_WRITE
			}
			if resp.ClusterAuthorizedOperations != wantOps {
				t.Errorf("%s: authorized operations %b, want %b", what, resp.ClusterAuthorizedOperations, wantOps)
			}
			if v == 1 && resp.EndpointType != 1 {
				t.Errorf("%s: endpoint type %d, want 1", what, resp.EndpointType)
			}
		}
	}

	// Controllers are not described by a broker.
	req := kmsg.NewPtrDescribeClusterRequest()
	req.Version = 1
	req.EndpointType = 2
	resp := cl.roundTrip(req).(*kmsg.DescribeClusterResponse)
	wantError(t, "controllers", resp.ErrorCode, resp.ErrorMessage, kerr.UnsupportedEndpointType.Code, true, "endpoint type 2")
	if len(resp.Brokers) != 0 || resp.EndpointType != 2 {
		t.Errorf("controllers: brokers %+v endpoint type %d, want none and 2", resp.Brokers, resp.EndpointType)
	}

	// Advertised address, when configured, is what DescribeCluster gives.
	ts2 := startServer(t, Options{AdvertisedHost: "kafka.example", AdvertisedPort: 19092})
	resp = dial(t, ts2.addr).roundTrip(kmsg.NewPtrDescribeClusterRequest()).(*kmsg.DescribeClusterResponse)
	if len(resp.Brokers) != 1 || resp.Brokers[0].Host != "kafka.example" || resp.Brokers[0].Port != 19092 || resp.ControllerID != 0 {
		t.Errorf("advertised: brokers %+v controller %d", resp.Brokers, resp.ControllerID)
	}
}

func TestDescribeLogDirs(t *testing.T) {
	ts := startServer(t, Options{})
	if _, err := ts.opts.Broker.CreateTopic("sized", 2, nil, false); err != nil {
		t.Fatal(err)
	}
	c := dial(t, ts.addr)
	c.roundTrip(produceReq(7, -1, "sized", 1, buildBatch(t, 3, batch.BuildOptions{})))
	for _, v := range []int16{0, 4} {
		req := kmsg.NewPtrDescribeLogDirsRequest()
		req.Version = v
		req.Topics = []kmsg.DescribeLogDirsRequestTopic{{Topic: "sized", Partitions: []int32{0, 1, 9}}, {Topic: "missing", Partitions: []int32{0}}}
		resp := c.roundTrip(req).(*kmsg.DescribeLogDirsResponse)
		if len(resp.Dirs) != 1 || len(resp.Dirs[0].Topics) != 1 {
			t.Fatalf("v%d: %+v", v, resp.Dirs)
		}
		ps := resp.Dirs[0].Topics[0].Partitions
		if len(ps) != 2 || ps[0].Size != 0 || ps[1].Size <= 0 {
			t.Fatalf("v%d: partitions %+v", v, ps)
		}
	}
}

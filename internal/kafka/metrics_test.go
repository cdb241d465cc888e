package kafka

import (
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weirhq/weir/internal/metrics"
)

func TestForEachErrorCode(t *testing.T) {
	resp := kmsg.NewPtrProduceResponse()
	for ti, codes := range [][]int16{{0, kerr.NotLeaderForPartition.Code}, {kerr.UnknownTopicOrPartition.Code, 0, kerr.UnknownTopicOrPartition.Code}} {
		rt := kmsg.NewProduceResponseTopic()
		rt.Topic = string(rune('a' + ti))
		for pi, c := range codes {
			p := kmsg.NewProduceResponseTopicPartition()
			p.Partition, p.ErrorCode = int32(pi), c
			rt.Partitions = append(rt.Partitions, p)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	var got []int16
	forEachErrorCode(resp, func(c int16) { got = append(got, c) })
	want := []int16{kerr.NotLeaderForPartition.Code, kerr.UnknownTopicOrPartition.Code, kerr.UnknownTopicOrPartition.Code}
	if !slices.Equal(got, want) {
		t.Fatalf("codes %v, want %v", got, want)
	}

	// A top-level code and nested resources (DescribeConfigs).
	dc := kmsg.NewPtrDescribeConfigsResponse()
	r := kmsg.NewDescribeConfigsResponseResource()
	r.ErrorCode = kerr.InvalidConfig.Code
	dc.Resources = append(dc.Resources, r, kmsg.NewDescribeConfigsResponseResource())
	got = nil
	forEachErrorCode(dc, func(c int16) { got = append(got, c) })
	if !slices.Equal(got, []int16{kerr.InvalidConfig.Code}) {
		t.Fatalf("describe configs codes %v", got)
	}
	hb := kmsg.NewPtrHeartbeatResponse()
	hb.ErrorCode = kerr.RebalanceInProgress.Code
	got = nil
	forEachErrorCode(hb, func(c int16) { got = append(got, c) })
	if !slices.Equal(got, []int16{kerr.RebalanceInProgress.Code}) {
		t.Fatalf("heartbeat codes %v", got)
	}
}

func TestServerMetricsCounts(t *testing.T) {
	reg := metrics.NewBare()
	m := newServerMetrics(reg)
	start := time.Now()

	resp := kmsg.NewPtrProduceResponse()
	rt := kmsg.NewProduceResponseTopic()
	p := kmsg.NewProduceResponseTopicPartition()
	p.ErrorCode = kerr.UnknownTopicOrPartition.Code
	rt.Partitions = append(rt.Partitions, p, p)
	resp.Topics = append(resp.Topics, rt)
	m.done(0, start, resp)
	m.done(0, start, nil) // acks=0
	m.done(0, start, kmsg.NewPtrProduceResponse())

	if v := testutil.ToFloat64(m.requests.WithLabelValues("Produce")); v != 3 {
		t.Errorf("Produce requests %v, want 3", v)
	}
	if v := testutil.ToFloat64(m.errors.WithLabelValues("Produce", "UNKNOWN_TOPIC_OR_PARTITION")); v != 2 {
		t.Errorf("Produce errors %v, want 2", v)
	}
	if n := testutil.CollectAndCount(m.duration, "weir_kafka_request_duration_seconds"); n != len(apis) {
		t.Errorf("%d duration series, want one per API (%d)", n, len(apis))
	}

	// A nil registry still counts, into unregistered metrics.
	n := newServerMetrics(nil)
	n.done(1, start, kmsg.NewPtrFetchResponse())
	if v := testutil.ToFloat64(n.requests.WithLabelValues("Fetch")); v != 1 {
		t.Errorf("nil-registry Fetch requests %v, want 1", v)
	}
	// The same registry twice (a restarted server) reuses the metrics.
	again := newServerMetrics(reg)
	if v := testutil.ToFloat64(again.requests.WithLabelValues("Produce")); v != 3 {
		t.Errorf("re-created Produce requests %v, want 3", v)
	}
}

// TestForEachErrorCodeFastPaths checks the typed Produce and Fetch walks
// against the reflective one.
func TestForEachErrorCodeFastPaths(t *testing.T) {
	fetch := kmsg.NewPtrFetchResponse()
	fetch.ErrorCode = kerr.UnknownServerError.Code
	ft := kmsg.NewFetchResponseTopic()
	for _, c := range []int16{0, kerr.OffsetOutOfRange.Code, kerr.NotLeaderForPartition.Code} {
		p := kmsg.NewFetchResponseTopicPartition()
		p.ErrorCode = c
		ft.Partitions = append(ft.Partitions, p)
	}
	fetch.Topics = append(fetch.Topics, ft, ft)
	var fast, slow []int16
	forEachErrorCode(fetch, func(c int16) { fast = append(fast, c) })
	v := reflect.ValueOf(fetch).Elem()
	planFor(v.Type()).walk(v, func(c int16) { slow = append(slow, c) })
	if !slices.Equal(fast, slow) || len(fast) != 5 {
		t.Fatalf("fetch: fast %v, reflective %v", fast, slow)
	}
}

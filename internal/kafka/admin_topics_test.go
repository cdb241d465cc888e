package kafka

import (
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func strp(s string) *string { return &s }

// wantError checks an admin response entry's error code and message: the
// message must contain msg, or be absent when msg is "" (or the version has
// no message field, hasMsg false).
func wantError(t *testing.T, what string, code int16, msg *string, wantCode int16, hasMsg bool, wantMsg string) {
	t.Helper()
	if code != wantCode {
		t.Errorf("%s: error code %d (%v), want %d (%v)", what, code, kerr.ErrorForCode(code), wantCode, kerr.ErrorForCode(wantCode))
	}
	switch {
	case !hasMsg || wantMsg == "":
		if msg != nil {
			t.Errorf("%s: error message %q, want none", what, *msg)
		}
	case msg == nil:
		t.Errorf("%s: no error message, want one containing %q", what, wantMsg)
	case !strings.Contains(*msg, wantMsg):
		t.Errorf("%s: error message %q, want it to contain %q", what, *msg, wantMsg)
	}
}

func createTopicReq(name string, partitions int32, rf int16, configs ...string) kmsg.CreateTopicsRequestTopic {
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, partitions, rf
	for i := 0; i+1 < len(configs); i += 2 {
		c := kmsg.NewCreateTopicsRequestTopicConfig()
		c.Name, c.Value = configs[i], &configs[i+1]
		rt.Configs = append(rt.Configs, c)
	}
	return rt
}

func assigned(rt kmsg.CreateTopicsRequestTopic, replicas ...[]int32) kmsg.CreateTopicsRequestTopic {
	rt.NumPartitions, rt.ReplicationFactor = -1, -1
	for p, r := range replicas {
		a := kmsg.NewCreateTopicsRequestTopicReplicaAssignment()
		a.Partition, a.Replicas = int32(p), r
		rt.ReplicaAssignment = append(rt.ReplicaAssignment, a)
	}
	return rt
}

// partitionCount returns the broker's partition count of topic, or -1 if it
// does not exist.
func partitionCount(t *testing.T, ts *testServer, topic string) int {
	t.Helper()
	tp, err := ts.opts.Broker.Topic(topic)
	if err != nil {
		return -1
	}
	return len(tp.Partitions())
}

func TestCreateTopicsV0(t *testing.T) {
	ts := startServer(t, Options{})
	cl := dial(t, ts.addr)
	if _, err := ts.opts.Broker.CreateTopic("exists", 1, nil, false); err != nil {
		t.Fatal(err)
	}
	gapped := assigned(createTopicReq("gapped", 0, 0), []int32{0}, []int32{0})
	gapped.ReplicaAssignment[1].Partition = 2
	withCount := assigned(createTopicReq("with-count", 0, 0), []int32{0})
	withCount.NumPartitions = 1

	req := kmsg.NewPtrCreateTopicsRequest()
	req.Version = 0
	req.Topics = []kmsg.CreateTopicsRequestTopic{
		createTopicReq("a", 3, 1),
		createTopicReq("exists", 1, 1),
		createTopicReq("rf3", 1, 3),
		createTopicReq("rf0", 1, 0),
		createTopicReq("zero", 0, 1),
		createTopicReq("bad name", 1, 1),
		createTopicReq("dup", 1, 1),
		createTopicReq("dup", 2, 1),
		assigned(createTopicReq("manual", 0, 0), []int32{0}, []int32{0}),
		assigned(createTopicReq("elsewhere", 0, 0), []int32{0}, []int32{1}),
		assigned(createTopicReq("replicated", 0, 0), []int32{0, 1}),
		gapped,
		withCount,
		createTopicReq("badcfg", 1, 1, "retention.ms", "soon"),
		createTopicReq("unknowncfg", 1, 1, "no.such.config", "1"),
		createTopicReq("a_b", 1, 1),
		createTopicReq("a.b", 1, 1),
	}
	resp := cl.roundTrip(req).(*kmsg.CreateTopicsResponse)
	want := []struct {
		topic string
		code  int16
	}{
		{"a", 0},
		{"exists", kerr.TopicAlreadyExists.Code},
		{"rf3", kerr.InvalidReplicationFactor.Code},
		{"rf0", kerr.InvalidReplicationFactor.Code},
		{"zero", kerr.InvalidPartitions.Code},
		{"bad name", kerr.InvalidTopicException.Code},
		{"dup", kerr.InvalidRequest.Code},
		{"dup", kerr.InvalidRequest.Code},
		{"manual", 0},
		{"elsewhere", kerr.InvalidRequest.Code},
		{"replicated", kerr.InvalidRequest.Code},
		{"gapped", kerr.InvalidReplicaAssignment.Code},
		{"with-count", kerr.InvalidRequest.Code},
		{"badcfg", kerr.InvalidConfig.Code},
		{"unknowncfg", kerr.InvalidConfig.Code},
		{"a_b", 0},
		{"a.b", kerr.InvalidTopicException.Code}, // collides with a_b
	}
	if len(resp.Topics) != len(want) {
		t.Fatalf("%d topics in response, want %d", len(resp.Topics), len(want))
	}
	for i, w := range want {
		got := resp.Topics[i]
		if got.Topic != w.topic {
			t.Errorf("topic %d is %q, want %q", i, got.Topic, w.topic)
		}
		wantError(t, w.topic, got.ErrorCode, got.ErrorMessage, w.code, false, "")
	}
	for topic, n := range map[string]int{"a": 3, "manual": 2, "dup": -1, "elsewhere": -1, "rf3": -1, "exists": 1} {
		if got := partitionCount(t, ts, topic); got != n {
			t.Errorf("%s has %d partitions, want %d", topic, got, n)
		}
	}
}

func TestCreateTopicsV7(t *testing.T) {
	ts := startServer(t, Options{})
	cl := dial(t, ts.addr)
	b := ts.opts.Broker

	req := kmsg.NewPtrCreateTopicsRequest()
	req.Version = 7
	withNull := createTopicReq("b", -1, -1, "cleanup.policy", "compact")
	nullCfg := kmsg.NewCreateTopicsRequestTopicConfig()
	nullCfg.Name = "retention.ms" // a null value leaves the default
	withNull.Configs = append(withNull.Configs, nullCfg)
	req.Topics = []kmsg.CreateTopicsRequestTopic{withNull, createTopicReq("rf2", 1, 2)}
	resp := cl.roundTrip(req).(*kmsg.CreateTopicsResponse)
	if len(resp.Topics) != 2 {
		t.Fatalf("%d topics in response, want 2", len(resp.Topics))
	}
	got := resp.Topics[0]
	wantError(t, "b", got.ErrorCode, got.ErrorMessage, 0, true, "")
	tp, err := b.Topic("b")
	if err != nil {
		t.Fatal(err)
	}
	if got.TopicID != tp.ID || got.TopicID == [16]byte{} {
		t.Errorf("TopicID %x, want %x", got.TopicID, tp.ID)
	}
	if got.NumPartitions != 1 || got.ReplicationFactor != 1 || len(tp.Partitions()) != 1 {
		t.Errorf("NumPartitions %d ReplicationFactor %d (broker: %d partitions), want 1 1 1",
			got.NumPartitions, got.ReplicationFactor, len(tp.Partitions()))
	}
	configs := map[string]kmsg.CreateTopicsResponseTopicConfig{}
	for _, c := range got.Configs {
		configs[c.Name] = c
	}
	if len(configs) != len(b.ConfigEntries(tp)) {
		t.Errorf("%d configs, want %d", len(configs), len(b.ConfigEntries(tp)))
	}
	for name, want := range map[string]struct {
		value  string
		source int8
	}{
		"cleanup.policy": {"compact", int8(kmsg.ConfigSourceDynamicTopicConfig)},
		"retention.ms":   {"604800000", int8(kmsg.ConfigSourceDefaultConfig)},
		"segment.bytes":  {"1073741824", int8(kmsg.ConfigSourceDefaultConfig)},
	} {
		c, ok := configs[name]
		if !ok || c.Value == nil || *c.Value != want.value || c.Source != want.source || c.ReadOnly || c.IsSensitive {
			t.Errorf("config %s = %+v, want value %q source %d", name, c, want.value, want.source)
		}
	}

	bad := resp.Topics[1]
	wantError(t, "rf2", bad.ErrorCode, bad.ErrorMessage, kerr.InvalidReplicationFactor.Code, true, "single node")
	if bad.NumPartitions != -1 || bad.ReplicationFactor != -1 || len(bad.Configs) != 0 || bad.TopicID != [16]byte{} {
		t.Errorf("failed topic = %+v, want -1 counts, no configs, no id", bad)
	}

	// Validate only: the result is reported, nothing is created.
	req = kmsg.NewPtrCreateTopicsRequest()
	req.Version = 7
	req.ValidateOnly = true
	req.Topics = []kmsg.CreateTopicsRequestTopic{
		createTopicReq("c", 4, 1, "retention.ms", "1000"),
		createTopicReq("b", 1, 1),
		createTopicReq("dup", 1, 1),
		createTopicReq("dup", 1, 1),
	}
	resp = cl.roundTrip(req).(*kmsg.CreateTopicsResponse)
	c := resp.Topics[0]
	wantError(t, "validate c", c.ErrorCode, c.ErrorMessage, 0, true, "")
	if c.NumPartitions != 4 || c.ReplicationFactor != 1 || c.TopicID != [16]byte{} {
		t.Errorf("validated topic = %d partitions, rf %d, id %x; want 4, 1, zero", c.NumPartitions, c.ReplicationFactor, c.TopicID)
	}
	found := false
	for _, cfg := range c.Configs {
		if cfg.Name == "retention.ms" {
			found = *cfg.Value == "1000" && cfg.Source == int8(kmsg.ConfigSourceDynamicTopicConfig)
		}
	}
	if !found {
		t.Errorf("validated configs lack retention.ms=1000 from the topic: %+v", c.Configs)
	}
	if n := partitionCount(t, ts, "c"); n != -1 {
		t.Errorf("validate-only created c with %d partitions", n)
	}
	wantError(t, "validate existing", resp.Topics[1].ErrorCode, resp.Topics[1].ErrorMessage, kerr.TopicAlreadyExists.Code, true, "already exists")
	for _, d := range resp.Topics[2:] {
		wantError(t, "dup", d.ErrorCode, d.ErrorMessage, kerr.InvalidRequest.Code, true, "more than once")
	}
}

func TestDeleteTopics(t *testing.T) {
	ts := startServer(t, Options{})
	cl := dial(t, ts.addr)
	b := ts.opts.Broker
	for _, name := range []string{"a", "b", "c"} {
		if _, err := b.CreateTopic(name, 2, nil, false); err != nil {
			t.Fatal(err)
		}
	}

	v0 := kmsg.NewPtrDeleteTopicsRequest()
	v0.Version = 0
	v0.TopicNames = []string{"a", "missing", "a"}
	resp := cl.roundTrip(v0).(*kmsg.DeleteTopicsResponse)
	if len(resp.Topics) != 2 {
		t.Fatalf("v0: %d results, want 2 (a once, missing)", len(resp.Topics))
	}
	for i, w := range []struct {
		name string
		code int16
	}{{"a", 0}, {"missing", kerr.UnknownTopicOrPartition.Code}} {
		got := resp.Topics[i]
		if got.Topic == nil || *got.Topic != w.name {
			t.Errorf("v0 result %d names %v, want %q", i, got.Topic, w.name)
		}
		wantError(t, "v0 "+w.name, got.ErrorCode, got.ErrorMessage, w.code, false, "")
	}
	if partitionCount(t, ts, "a") != -1 {
		t.Error("topic a survived DeleteTopics")
	}

	bt, _ := b.Topic("b")
	ct, _ := b.Topic("c")
	byID := func(id [16]byte) kmsg.DeleteTopicsRequestTopic {
		rt := kmsg.NewDeleteTopicsRequestTopic()
		rt.TopicID = id
		return rt
	}
	byName := func(name string) kmsg.DeleteTopicsRequestTopic {
		rt := kmsg.NewDeleteTopicsRequestTopic()
		rt.Topic = &name
		return rt
	}
	both := byName("c")
	both.TopicID = ct.ID
	unknownID := [16]byte{1, 2, 3}
	v6 := kmsg.NewPtrDeleteTopicsRequest()
	v6.Version = 6
	internal, _ := b.Topic(OffsetsTopic)
	v6.Topics = []kmsg.DeleteTopicsRequestTopic{byID(bt.ID), byID(unknownID), both, byID([16]byte{}), byName("c"), byID(internal.ID)}
	resp = cl.roundTrip(v6).(*kmsg.DeleteTopicsResponse)
	if len(resp.Topics) != 6 {
		t.Fatalf("v6: %d results, want 6", len(resp.Topics))
	}
	want := []struct {
		name *string
		id   [16]byte
		code int16
		msg  string
	}{
		{strp("b"), bt.ID, 0, ""},
		{nil, unknownID, kerr.UnknownTopicID.Code, "unknown topic id"},
		{strp("c"), ct.ID, kerr.InvalidRequest.Code, "not both"},
		{nil, [16]byte{}, kerr.InvalidRequest.Code, "required"},
		{strp("c"), ct.ID, 0, ""},
		{strp(OffsetsTopic), internal.ID, kerr.InvalidRequest.Code, "internal topic"},
	}
	for i, w := range want {
		got := resp.Topics[i]
		if (got.Topic == nil) != (w.name == nil) || (got.Topic != nil && *got.Topic != *w.name) || got.TopicID != w.id {
			t.Errorf("v6 result %d = %v/%x, want %v/%x", i, got.Topic, got.TopicID, w.name, w.id)
		}
		wantError(t, "v6 result", got.ErrorCode, got.ErrorMessage, w.code, true, w.msg)
	}
	if left := b.Topics(); len(left) != 1 || left[0].Name != OffsetsTopic {
		t.Errorf("%d topics left, want only %s", len(left), OffsetsTopic)
	}
}

func createPartitionsReq(version int16, validateOnly bool, topics ...kmsg.CreatePartitionsRequestTopic) *kmsg.CreatePartitionsRequest {
	req := kmsg.NewPtrCreatePartitionsRequest()
	req.Version, req.ValidateOnly, req.Topics = version, validateOnly, topics
	return req
}

func partitionsTo(topic string, count int32, assignment ...[]int32) kmsg.CreatePartitionsRequestTopic {
	rt := kmsg.NewCreatePartitionsRequestTopic()
	rt.Topic, rt.Count = topic, count
	for _, r := range assignment {
		a := kmsg.NewCreatePartitionsRequestTopicAssignment()
		a.Replicas = r
		rt.Assignment = append(rt.Assignment, a)
	}
	return rt
}

func TestCreatePartitions(t *testing.T) {
	ts := startServer(t, Options{})
	cl := dial(t, ts.addr)
	for _, name := range []string{"p", "q"} {
		if _, err := ts.opts.Broker.CreateTopic(name, 1, nil, false); err != nil {
			t.Fatal(err)
		}
	}
	type result struct {
		code int16
		msg  string
	}
	check := func(what string, req *kmsg.CreatePartitionsRequest, want ...result) {
		t.Helper()
		resp := cl.roundTrip(req).(*kmsg.CreatePartitionsResponse)
		if len(resp.Topics) != len(want) {
			t.Fatalf("%s: %d results, want %d", what, len(resp.Topics), len(want))
		}
		for i, w := range want {
			got := resp.Topics[i]
			if got.Topic != req.Topics[i].Topic {
				t.Errorf("%s: result %d for %q, want %q", what, i, got.Topic, req.Topics[i].Topic)
			}
			wantError(t, what+" "+got.Topic, got.ErrorCode, got.ErrorMessage, w.code, true, w.msg)
		}
	}

	check("v0", createPartitionsReq(0, false, partitionsTo("p", 3), partitionsTo("missing", 2), partitionsTo("q", 1),
		partitionsTo("q", 1)),
		result{0, ""}, result{kerr.UnknownTopicOrPartition.Code, "unknown topic"},
		result{kerr.InvalidRequest.Code, "more than once"}, result{kerr.InvalidRequest.Code, "more than once"})
	check("v0 shrink", createPartitionsReq(0, false, partitionsTo("p", 2), partitionsTo("q", 1)),
		result{kerr.InvalidPartitions.Code, "must be larger"}, result{kerr.InvalidPartitions.Code, "must be larger"})
	if n := partitionCount(t, ts, "p"); n != 3 {
		t.Fatalf("p has %d partitions, want 3", n)
	}

	check("v3 validate", createPartitionsReq(3, true, partitionsTo("p", 5)), result{0, ""})
	if n := partitionCount(t, ts, "p"); n != 3 {
		t.Fatalf("validate-only changed p to %d partitions", n)
	}
	check("v3", createPartitionsReq(3, false,
		partitionsTo("p", 5, []int32{0}, []int32{0}),
		partitionsTo("q", 2, []int32{1}),
		partitionsTo("q", 3, []int32{0}), // duplicate
	), result{0, ""}, result{kerr.InvalidRequest.Code, "more than once"}, result{kerr.InvalidRequest.Code, "more than once"})
	check("v3 assignments", createPartitionsReq(3, false,
		partitionsTo("p", 8, []int32{0}),
		partitionsTo("q", 2, []int32{0, 1}),
	), result{kerr.InvalidReplicaAssignment.Code, "3 partition(s) but 1 assignment(s)"},
		result{kerr.InvalidRequest.Code, "manual replica assignment [0 1] is not supported"})
	if p, q := partitionCount(t, ts, "p"), partitionCount(t, ts, "q"); p != 5 || q != 1 {
		t.Errorf("p, q have %d, %d partitions, want 5, 1", p, q)
	}
}

package server

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hamba/avro/v2"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/weirhq/weir/internal/batch"
	"github.com/weirhq/weir/internal/config"
	"github.com/weirhq/weir/internal/metrics"
)

// startNode starts a node on loopback with free ports, edit adjusting its
// config first.
func startNode(t *testing.T, dir string, edit func(*config.Config)) *Server {
	t.Helper()
	cfg := config.Defaults()
	cfg.DataDir = dir
	cfg.KafkaAddr, cfg.HTTPAddr, cfg.RegistryAddr = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	cfg.GroupInitialRebalanceDelay = 0
	if edit != nil {
		edit(&cfg)
	}
	s, err := Start(cfg, Options{Logger: quiet, Metrics: metrics.New()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func srClient(t *testing.T, s *Server) *sr.Client {
	t.Helper()
	cl, err := sr.NewClient(sr.URLs("http://" + s.RegistryAddr()))
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

const (
	orderV1 = `{"type":"record","name":"Order","namespace":"weir.test","fields":[
		{"name":"id","type":"string"},{"name":"cents","type":"long"}]}`
	orderV2 = `{"type":"record","name":"Order","namespace":"weir.test","fields":[
		{"name":"id","type":"string"},{"name":"cents","type":"long"},{"name":"note","type":"string","default":""}]}`
	orderBad = `{"type":"record","name":"Order","namespace":"weir.test","fields":[
		{"name":"id","type":"string"},{"name":"cents","type":"long"},{"name":"zip","type":"string"}]}`
)

type order struct {
	ID    string `avro:"id"`
	Cents int64  `avro:"cents"`
}

func srCode(err error) int {
	if re, ok := errors.AsType[*sr.ResponseError](err); ok {
		return re.ErrorCode
	}
	return 0
}

// TestRegistryWithSRClient drives the registry with franz-go's pkg/sr as
// a real client, and round-trips a record through sr.Serde.
func TestRegistryWithSRClient(t *testing.T) {
	s := startNode(t, t.TempDir(), nil)
	cl := srClient(t, s)
	ctx := context.Background()

	types, err := cl.SupportedTypes(ctx)
	if err != nil || len(types) != 3 {
		t.Fatalf("supported types = %v, %v", types, err)
	}
	ss, err := cl.CreateSchema(ctx, "orders-value", sr.Schema{Schema: orderV1})
	if err != nil {
		t.Fatal(err)
	}
	if ss.ID != 1 || ss.Version != 1 || ss.Subject != "orders-value" {
		t.Fatalf("created %+v", ss)
	}
	again, err := cl.CreateSchema(ctx, "orders-value", sr.Schema{Schema: orderV1})
	if err != nil || again.ID != ss.ID || again.Version != 1 {
		t.Fatalf("re-registering = %+v, %v", again, err)
	}
	got, err := cl.SchemaByID(ctx, ss.ID)
	if err != nil || got.Schema != orderV1 || got.Type != sr.TypeAvro {
		t.Fatalf("schema by id = %+v, %v", got, err)
	}
	text, err := cl.SchemaTextByID(ctx, ss.ID)
	if err != nil || text != orderV1 {
		t.Fatalf("schema text = %q, %v", text, err)
	}
	found, err := cl.LookupSchema(ctx, "orders-value", sr.Schema{Schema: orderV1})
	if err != nil || found.ID != ss.ID || found.Version != 1 {
		t.Fatalf("lookup = %+v, %v", found, err)
	}

	res, err := cl.CheckCompatibility(ctx, "orders-value", -1, sr.Schema{Schema: orderV2})
	if err != nil || !res.Is {
		t.Fatalf("v2 compatibility = %+v, %v", res, err)
	}
	res, err = cl.CheckCompatibility(sr.WithParams(ctx, sr.Verbose), "orders-value", -1, sr.Schema{Schema: orderBad})
	if err != nil || res.Is || len(res.Messages) == 0 {
		t.Fatalf("bad compatibility = %+v, %v", res, err)
	}
	if _, err := cl.CreateSchema(ctx, "orders-value", sr.Schema{Schema: orderBad}); srCode(err) != 409 {
		t.Fatalf("registering an incompatible schema: %v", err)
	}
	v2, err := cl.CreateSchema(ctx, "orders-value", sr.Schema{Schema: orderV2})
	if err != nil || v2.Version != 2 || v2.ID != 2 {
		t.Fatalf("v2 = %+v, %v", v2, err)
	}
	versions, err := cl.SubjectVersions(ctx, "orders-value")
	if err != nil || !slices.Equal(versions, []int{1, 2}) {
		t.Fatalf("versions = %v, %v", versions, err)
	}
	latest, err := cl.SchemaByVersion(ctx, "orders-value", -1)
	if err != nil || latest.Version != 2 {
		t.Fatalf("latest = %+v, %v", latest, err)
	}
	if _, err := cl.SchemaByVersion(ctx, "nope", 1); srCode(err) != 40401 {
		t.Fatalf("unknown subject: %v", err)
	}
	if _, err := cl.SchemaByID(ctx, 99); srCode(err) != 40403 {
		t.Fatalf("unknown id: %v", err)
	}

	// JSON Schema and Protobuf through the same client.
	js, err := cl.CreateSchema(ctx, "events-value", sr.Schema{Type: sr.TypeJSON, Schema: `{"type":"object","properties":{"n":{"type":"integer"}}}`})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.CreateSchema(ctx, "users-value", sr.Schema{Type: sr.TypeProtobuf, Schema: "syntax = \"proto3\";\nmessage User { string name = 1; }"}); err != nil {
		t.Fatal(err)
	}

	// Compatibility levels.
	set := cl.SetCompatibility(ctx, sr.SetCompatibility{Level: sr.CompatFull}, "orders-value")
	if set[0].Err != nil || set[0].Level != sr.CompatFull {
		t.Fatalf("set compatibility = %+v", set[0])
	}
	levels := cl.Compatibility(ctx, "", "orders-value")
	if levels[0].Err != nil || levels[0].Level != sr.CompatBackward || levels[1].Err != nil || levels[1].Level != sr.CompatFull {
		t.Fatalf("compatibility = %+v", levels)
	}
	modes := cl.Mode(ctx)
	if modes[0].Err != nil || modes[0].Mode != sr.ModeReadWrite {
		t.Fatalf("mode = %+v", modes)
	}

	// Serde round trip: the encoded record carries the registry's id.
	sch := avro.MustParse(orderV1)
	var serde sr.Serde
	serde.Register(ss.ID, order{},
		sr.EncodeFn(func(v any) ([]byte, error) { return avro.Marshal(sch, v) }),
		sr.DecodeFn(func(b []byte, v any) error { return avro.Unmarshal(sch, b, v) }))
	enc, err := serde.Encode(order{ID: "o-1", Cents: 1299})
	if err != nil {
		t.Fatal(err)
	}
	if enc[0] != 0 || binary.BigEndian.Uint32(enc[1:5]) != uint32(ss.ID) {
		t.Fatalf("encoded prefix % x", enc[:5])
	}
	var back order
	if err := serde.Decode(enc, &back); err != nil || back != (order{ID: "o-1", Cents: 1299}) {
		t.Fatalf("decoded %+v, %v", back, err)
	}
	// The registry accepts what the serde produced.
	if err := s.Registry().CheckRecord("orders-value", enc, true); err != nil {
		t.Fatal(err)
	}

	// A JSON serde for the JSON Schema subject.
	var jserde sr.Serde
	jserde.Register(js.ID, map[string]any{}, sr.EncodeFn(json.Marshal), sr.DecodeFn(json.Unmarshal))
	jenc, err := jserde.Encode(map[string]any{"n": 3})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Registry().CheckRecord("events-value", jenc, true); err != nil {
		t.Fatal(err)
	}

	// Deletes.
	if _, err := cl.DeleteSubject(ctx, "users-value", sr.HardDelete); srCode(err) != 40405 {
		t.Fatalf("hard delete first: %v", err)
	}
	if vs, err := cl.DeleteSubject(ctx, "users-value", sr.SoftDelete); err != nil || !slices.Equal(vs, []int{1}) {
		t.Fatalf("soft delete = %v, %v", vs, err)
	}
	if vs, err := cl.DeleteSubject(ctx, "users-value", sr.HardDelete); err != nil || !slices.Equal(vs, []int{1}) {
		t.Fatalf("hard delete = %v, %v", vs, err)
	}
	subjects, err := cl.Subjects(ctx)
	if err != nil || !slices.Equal(subjects, []string{"events-value", "orders-value"}) {
		t.Fatalf("subjects = %v, %v", subjects, err)
	}
}

// TestRegistryRestartKeepsIDs restarts the node and checks that ids,
// versions and configs come back from _schemas and new ids continue.
func TestRegistryRestartKeepsIDs(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s := startNode(t, dir, nil)
	cl := srClient(t, s)
	var ids []int
	for i, subj := range []string{"a-value", "b-value", "c-value"} {
		schema := `{"type":"fixed","name":"F` + subj[:1] + `","size":` + string(rune('1'+i)) + `}`
		id, err := cl.RegisterSchema(ctx, subj, sr.Schema{Schema: schema}, -1, -1)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if set := cl.SetCompatibility(ctx, sr.SetCompatibility{Level: sr.CompatNone}, "b-value"); set[0].Err != nil {
		t.Fatal(set[0].Err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s2 := startNode(t, dir, nil)
	cl2 := srClient(t, s2)
	for i, subj := range []string{"a-value", "b-value", "c-value"} {
		got, err := cl2.SchemaByVersion(ctx, subj, 1)
		if err != nil || got.ID != ids[i] {
			t.Fatalf("%s after restart = %+v, %v (want id %d)", subj, got, err, ids[i])
		}
	}
	if lv := cl2.Compatibility(ctx, "b-value"); lv[0].Err != nil || lv[0].Level != sr.CompatNone {
		t.Fatalf("level after restart = %+v", lv[0])
	}
	id, err := cl2.RegisterSchema(ctx, "d-value", sr.Schema{Schema: `"string"`}, -1, -1)
	if err != nil || id != ids[2]+1 {
		t.Fatalf("next id after restart = %d, %v (want %d)", id, err, ids[2]+1)
	}
	// Clients may not write the registry's topic.
	pcl := client(t, s2)
	err = pcl.ProduceSync(ctx, &kgo.Record{Topic: SchemasTopic, Value: []byte("x")}).FirstErr()
	if !errors.Is(err, kerr.InvalidTopicException) {
		t.Fatalf("produce to %s: %v", SchemasTopic, err)
	}
}

// TestSchemasTopicIsCreatedAtStartAndReserved checks that _schemas exists
// from start-up with its fixed configs (so nothing can create it first with
// others), and that clients can neither create, reconfigure nor delete it.
func TestSchemasTopicIsCreatedAtStartAndReserved(t *testing.T) {
	s := startNode(t, t.TempDir(), nil)
	ctx := context.Background()
	tp, err := s.Broker().Topic(SchemasTopic)
	if err != nil {
		t.Fatalf("%s does not exist at start: %v", SchemasTopic, err)
	}
	want := map[string]string{"cleanup.policy": "compact", "retention.ms": "-1", "retention.bytes": "-1", "segment.bytes": "104857600"}
	if got := tp.Configs(); !maps.Equal(got, want) {
		t.Fatalf("configs = %v, want %v", got, want)
	}
	if err := createTopic(t, client(t, s), SchemasTopic, nil); !errors.Is(err, kerr.TopicAlreadyExists) {
		t.Fatalf("client creating %s: %v", SchemasTopic, err)
	}
	adm := kadm.NewClient(client(t, s))
	alt, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: "retention.ms", Value: kadm.StringPtr("1000")}}, SchemasTopic)
	if err == nil && alt[0].Err == nil {
		t.Fatalf("a client changed the retention of %s", SchemasTopic)
	}
	if _, err := srClient(t, s).CreateSchema(ctx, "a", sr.Schema{Schema: `"int"`}); err != nil {
		t.Fatal(err)
	}
	resp, err := kadm.NewClient(client(t, s)).DeleteTopic(ctx, SchemasTopic)
	if err == nil && resp.Err == nil {
		t.Fatalf("a client deleted %s", SchemasTopic)
	}
}

// wire prefixes payload with the Confluent wire format header.
func wire(id int, payload []byte) []byte {
	b := make([]byte, 5, 5+len(payload))
	binary.BigEndian.PutUint32(b[1:], uint32(id))
	return append(b, payload...)
}

func createTopic(t *testing.T, cl *kgo.Client, name string, configs map[string]*string) error {
	t.Helper()
	resp, err := kadm.NewClient(cl).CreateTopic(context.Background(), 1, 1, configs, name)
	if err != nil {
		return err
	}
	return resp.Err
}

// TestProduceSchemaValidation produces with franz-go to topics with
// schema validation on and checks what is accepted and what is rejected.
func TestProduceSchemaValidation(t *testing.T) {
	s := startNode(t, t.TempDir(), nil)
	ctx := context.Background()
	reg := srClient(t, s)
	adm := client(t, s)

	on, full := "true", "full"
	if err := createTopic(t, adm, "orders", map[string]*string{"weir.value.schema.validation": &on}); err != nil {
		t.Fatal(err)
	}
	if err := createTopic(t, adm, "payments", map[string]*string{"weir.value.schema.validation": &full}); err != nil {
		t.Fatal(err)
	}
	if err := createTopic(t, adm, "legacy", map[string]*string{"confluent.value.schema.validation": &on}); err != nil {
		t.Fatal(err)
	}
	if err := createTopic(t, adm, "keyed", map[string]*string{"weir.key.schema.validation": &on}); err != nil {
		t.Fatal(err)
	}
	bad := "sometimes"
	if err := createTopic(t, adm, "x", map[string]*string{"weir.value.schema.validation": &bad}); !errors.Is(err, kerr.InvalidConfig) {
		t.Fatalf("invalid validation mode: %v", err)
	}
	orders, err := reg.CreateSchema(ctx, "orders-value", sr.Schema{Schema: orderV1})
	if err != nil {
		t.Fatal(err)
	}
	payments, err := reg.CreateSchema(ctx, "payments-value", sr.Schema{Type: sr.TypeJSON,
		Schema: `{"type":"object","properties":{"cents":{"type":"integer"}},"required":["cents"]}`})
	if err != nil {
		t.Fatal(err)
	}
	legacy, err := reg.CreateSchema(ctx, "legacy-value", sr.Schema{Schema: `"string"`})
	if err != nil {
		t.Fatal(err)
	}
	keyed, err := reg.CreateSchema(ctx, "keyed-key", sr.Schema{Schema: `"long"`})
	if err != nil {
		t.Fatal(err)
	}
	other, err := reg.CreateSchema(ctx, "other-value", sr.Schema{Schema: `"boolean"`})
	if err != nil {
		t.Fatal(err)
	}
	sch := avro.MustParse(orderV1)
	valid, err := avro.Marshal(sch, order{ID: "o-1", Cents: 5})
	if err != nil {
		t.Fatal(err)
	}

	// One idempotent producer for every case: a rejected batch must not
	// wedge the ones after it.
	pcl := client(t, s, kgo.AllowAutoTopicCreation())
	for _, c := range []struct {
		name  string
		rec   *kgo.Record
		valid bool
	}{
		{"valid id", &kgo.Record{Topic: "orders", Value: wire(orders.ID, valid)}, true},
		{"tombstone", &kgo.Record{Topic: "orders", Key: []byte("k")}, true},
		{"unknown id", &kgo.Record{Topic: "orders", Value: wire(999, valid)}, false},
		{"id of another subject", &kgo.Record{Topic: "orders", Value: wire(other.ID, valid)}, false},
		{"no magic byte", &kgo.Record{Topic: "orders", Value: []byte(`{"id":"o-1"}`)}, false},
		{"malformed payload passes id-only validation", &kgo.Record{Topic: "orders", Value: wire(orders.ID, []byte{0xff})}, true},
		{"valid json payload", &kgo.Record{Topic: "payments", Value: wire(payments.ID, []byte(`{"cents":3}`))}, true},
		{"json payload missing a required property", &kgo.Record{Topic: "payments", Value: wire(payments.ID, []byte(`{}`))}, false},
		{"malformed json payload", &kgo.Record{Topic: "payments", Value: wire(payments.ID, []byte(`{"cents":`))}, false},
		{"confluent config name", &kgo.Record{Topic: "legacy", Value: wire(legacy.ID, []byte{0x02, 'x'})}, true},
		{"confluent config name, no id", &kgo.Record{Topic: "legacy", Value: []byte("x")}, false},
		{"valid key", &kgo.Record{Topic: "keyed", Key: wire(keyed.ID, []byte{0x02}), Value: []byte("anything")}, true},
		{"key without id", &kgo.Record{Topic: "keyed", Key: []byte("k"), Value: []byte("anything")}, false},
		{"topic without validation", &kgo.Record{Topic: "free", Value: []byte("anything")}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := pcl.ProduceSync(ctx, c.rec).FirstErr()
			switch {
			case c.valid && err != nil:
				t.Fatalf("rejected: %v", err)
			case !c.valid && !errors.Is(err, kerr.InvalidRecord):
				t.Fatalf("got %v, want INVALID_RECORD", err)
			}
		})
	}
}

// TestProduceSchemaValidationMessage checks the produce answer names the
// record and the reason, in ErrorMessage and per record (v8+).
func TestProduceSchemaValidationMessage(t *testing.T) {
	s := startNode(t, t.TempDir(), nil)
	ctx := context.Background()
	cl := client(t, s)
	on := "true"
	if err := createTopic(t, cl, "orders", map[string]*string{"weir.value.schema.validation": &on}); err != nil {
		t.Fatal(err)
	}
	ss, err := srClient(t, s).CreateSchema(ctx, "orders-value", sr.Schema{Schema: orderV1})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := batch.Build(batch.BuildOptions{Codec: batch.CodecZstd, BaseTimestamp: time.Now().UnixMilli()}, []batch.Record{
		{OffsetDelta: 0, Value: wire(ss.ID, []byte{0x02, 'a', 0x02})},
		{OffsetDelta: 1, Value: []byte("plain text")},
		{OffsetDelta: 2, Value: wire(77, nil)},
	})
	if err != nil {
		t.Fatal(err)
	}
	req := kmsg.NewPtrProduceRequest()
	req.Acks = -1
	req.TimeoutMillis = 5000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = "orders"
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = raw
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	pr := resp.Topics[0].Partitions[0]
	if pr.ErrorCode != kerr.InvalidRecord.Code {
		t.Fatalf("error code %d, want INVALID_RECORD", pr.ErrorCode)
	}
	if pr.ErrorMessage == nil || !strings.Contains(*pr.ErrorMessage, "orders-0 record 1: value does not start with magic byte 0") ||
		!strings.Contains(*pr.ErrorMessage, "and 1 more") {
		t.Fatalf("error message %v", pr.ErrorMessage)
	}
	if len(pr.ErrorRecords) != 2 || pr.ErrorRecords[0].RelativeOffset != 1 || pr.ErrorRecords[1].RelativeOffset != 2 ||
		!strings.Contains(*pr.ErrorRecords[1].ErrorMessage, "schema id 77 is not registered") {
		t.Fatalf("error records %+v", pr.ErrorRecords)
	}
	p, err := s.Broker().Partition("orders", 0)
	if err != nil || p.HighWatermark() != 0 {
		t.Fatalf("rejected records were appended: hw %d, %v", p.HighWatermark(), err)
	}
}

// TestTopicPolicies checks the broker-level policies: a naming pattern
// and a required schema, answered with POLICY_VIOLATION; and auto-creation
// off.
func TestTopicPolicies(t *testing.T) {
	s := startNode(t, t.TempDir(), func(c *config.Config) {
		c.TopicNamePattern = `(orders|payments)\.[a-z]+`
		c.RequireTopicSchema = true
		c.AutoCreateTopics = false
	})
	ctx := context.Background()
	cl := client(t, s)
	adm := kadm.NewClient(cl)
	if err := createTopic(t, cl, "misc", nil); !errors.Is(err, kerr.PolicyViolation) {
		t.Fatalf("bad name: %v", err)
	}
	resp, _ := adm.CreateTopic(ctx, 1, 1, nil, "orders.eu")
	if !errors.Is(resp.Err, kerr.PolicyViolation) || !strings.Contains(resp.ErrMessage, `subject "orders.eu-value"`) {
		t.Fatalf("no schema yet: %+v", resp)
	}
	if _, err := srClient(t, s).CreateSchema(ctx, "orders.eu-value", sr.Schema{Schema: `"string"`}); err != nil {
		t.Fatal(err)
	}
	if err := createTopic(t, cl, "orders.eu", nil); err != nil {
		t.Fatalf("with a schema: %v", err)
	}
	// Auto-creation is off: producing to an unknown topic fails.
	pcl := client(t, s, kgo.AllowAutoTopicCreation(), kgo.RecordRetries(1), kgo.UnknownTopicRetries(1))
	err := pcl.ProduceSync(ctx, &kgo.Record{Topic: "orders.us", Value: []byte("x")}).FirstErr()
	if !errors.Is(err, kerr.UnknownTopicOrPartition) {
		t.Fatalf("auto-create off: %v", err)
	}
}

// TestAutoCreatePolicy checks that auto-creation applies the policy.
func TestAutoCreatePolicy(t *testing.T) {
	s := startNode(t, t.TempDir(), func(c *config.Config) { c.TopicNamePattern = `app\..+` })
	ctx := context.Background()
	pcl := client(t, s, kgo.AllowAutoTopicCreation(), kgo.RecordRetries(1), kgo.UnknownTopicRetries(1))
	err := pcl.ProduceSync(ctx, &kgo.Record{Topic: "other", Value: []byte("x")}).FirstErr()
	if !errors.Is(err, kerr.PolicyViolation) {
		t.Fatalf("auto-created against the pattern: %v", err)
	}
	if err := pcl.ProduceSync(ctx, &kgo.Record{Topic: "app.one", Value: []byte("x")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// TestRegistryIDsNeverReusedAfterCompaction: the highest schema id is
// hard-deleted and _schemas compacted (small internal segments, a fast
// cleaner), so no SCHEMA record carries it any more; after a restart the
// next registration still gets a new id (from the WEIR_MAX_ID record),
// never the deleted one.
func TestRegistryIDsNeverReusedAfterCompaction(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	edit := func(c *config.Config) {
		c.InternalSegmentBytes = 4096
		c.LogCleanerBackoff = 50 * time.Millisecond
		c.LogRetentionCheckInterval = 50 * time.Millisecond
	}
	s := startNode(t, dir, edit)
	cl := srClient(t, s)
	top, err := cl.RegisterSchema(ctx, "gone-value", sr.Schema{Schema: `{"type":"fixed","name":"Gone","size":7}`}, -1, -1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.DeleteSubject(ctx, "gone-value", sr.SoftDelete); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.DeleteSubject(ctx, "gone-value", sr.HardDelete); err != nil {
		t.Fatal(err)
	}
	// Config changes fill segments so the ones holding the schema roll
	// and are cleaned: its SCHEMA record is superseded by the tombstone.
	for i := range 200 {
		lvl := sr.CompatNone
		if i%2 == 0 {
			lvl = sr.CompatFull
		}
		if set := cl.SetCompatibility(ctx, sr.SetCompatibility{Level: lvl}, "filler-value"); set[0].Err != nil {
			t.Fatal(set[0].Err)
		}
	}
	l, err := s.Broker().OpenInternalLog(SchemasTopic)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the cleaner to remove the deleted schema's record", func() bool {
		found := false
		_ = l.Replay(func(_ int64, r batch.Record) error {
			if r.Value != nil && strings.Contains(string(r.Value), `"Gone"`) {
				found = true
			}
			return nil
		})
		return !found
	})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := startNode(t, dir, edit)
	id, err := srClient(t, s2).RegisterSchema(ctx, "next-value", sr.Schema{Schema: `"string"`}, -1, -1)
	if err != nil || id <= top {
		t.Fatalf("next id after compaction and restart = %d, %v; the deleted highest id was %d", id, err, top)
	}
}

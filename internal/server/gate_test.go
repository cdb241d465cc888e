package server

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/weirhq/weir/internal/batch"
	"github.com/weirhq/weir/internal/config"
	"github.com/weirhq/weir/internal/metrics"
)

// The write gate seen from every write path of a running node: the same
// payload is refused with the same reason over Kafka and over HTTP, and
// JSON events are framed against a JSON Schema subject.

// postCE posts one binary-mode CloudEvent and returns the status and body.
func postCE(t *testing.T, s *Server, topic, contentType, dataschema string, data []byte) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, "http://"+s.HTTPAddr()+"/events/"+topic, strings.NewReader(string(data)))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("ce-specversion", "1.0")
	req.Header.Set("ce-id", fmt.Sprintf("id-%d", time.Now().UnixNano()))
	req.Header.Set("ce-source", "/gate-test")
	req.Header.Set("ce-type", "t")
	if dataschema != "" {
		req.Header.Set("ce-dataschema", dataschema)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// rawProduce sends one record to partition 0 of topic in a raw Produce
// request of the given version (kgo's producer does not surface a
// partition's ErrorMessage) and returns the partition's answer.
func rawProduce(t *testing.T, cl *kgo.Client, version int16, topic string, rec batch.Record) kmsg.ProduceResponseTopicPartition {
	t.Helper()
	raw, err := batch.Build(batch.BuildOptions{BaseTimestamp: time.Now().UnixMilli()}, []batch.Record{rec})
	if err != nil {
		t.Fatal(err)
	}
	req := kmsg.NewPtrProduceRequest()
	req.Version, req.Acks, req.TimeoutMillis = version, -1, 10000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = raw
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	return resp.Topics[0].Partitions[0]
}

// produceErr produces value to topic with Produce v9 and returns the
// partition's error with the message the broker sent and its RecordErrors.
func produceErr(t *testing.T, s *Server, topic string, value []byte) (string, error) {
	t.Helper()
	p := rawProduce(t, client(t, s), 9, topic, batch.Record{Value: value})
	if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
		msg := ""
		if p.ErrorMessage != nil {
			msg = *p.ErrorMessage
		}
		for _, re := range p.ErrorRecords {
			if re.ErrorMessage != nil {
				msg += fmt.Sprintf(" | record %d: %s", re.RelativeOffset, *re.ErrorMessage)
			}
		}
		return msg, err
	}
	return "", nil
}

func TestGateSameRefusalOnEveryPath(t *testing.T) {
	s := startNode(t, t.TempDir(), nil)
	ctx := context.Background()
	reg := srClient(t, s)
	avroID, err := reg.CreateSchema(ctx, "orders-value", sr.Schema{Type: sr.TypeAvro,
		Schema: `{"type":"record","name":"Order","fields":[{"name":"id","type":"long"}]}`})
	if err != nil {
		t.Fatal(err)
	}
	jsonID, err := reg.CreateSchema(ctx, "people-value", sr.Schema{Type: sr.TypeJSON,
		Schema: `{"type":"object","properties":{"name":{"type":"string"}},"required":["name"]}`})
	if err != nil {
		t.Fatal(err)
	}
	full := "full"
	for _, topic := range []string{"orders", "people"} {
		if err := createTopic(t, client(t, s), topic, map[string]*string{"weir.value.schema.validation": &full}); err != nil {
			t.Fatal(err)
		}
	}

	// Unframed bytes: INVALID_RECORD over Kafka, 422 over HTTP, one reason.
	const reason = "does not start with magic byte 0 and a 4-byte schema id"
	msg, kerrv := produceErr(t, s, "orders", []byte("not avro"))
	if kerrv != kerr.InvalidRecord || !strings.Contains(msg, reason) || !strings.Contains(msg, "| record 0: value ") {
		t.Errorf("kafka: %v %q, want INVALID_RECORD saying %q for record 0", kerrv, msg, reason)
	}
	code, body := postCE(t, s, "orders", "application/octet-stream", "", []byte("not avro"))
	if code != http.StatusUnprocessableEntity || !strings.Contains(body, reason) || !strings.Contains(body, `"invalid_record"`) {
		t.Errorf("http: %d %s, want 422 saying %q", code, body, reason)
	}
	// A framed value with an id of another subject: same reason on both.
	wrong := wire(jsonID.ID, []byte(`{"name":"x"}`))
	reason2 := fmt.Sprintf("schema id %d is not registered under subject 'orders-value'", jsonID.ID)
	if msg, _ := produceErr(t, s, "orders", wrong); !strings.Contains(msg, reason2) {
		t.Errorf("kafka: %q, want %q", msg, reason2)
	}
	if code, body := postCE(t, s, "orders", "application/avro", "", wrong); code != 422 || !strings.Contains(body, reason2) {
		t.Errorf("http: %d %s, want 422 saying %q", code, body, reason2)
	}
	// JSON to an Avro subject cannot be framed.
	if code, body := postCE(t, s, "orders", "application/json", "", []byte(`{"id":1}`)); code != 422 || !strings.Contains(body, "only JSON Schema subjects frame JSON") {
		t.Errorf("json to avro subject: %d %s", code, body)
	}
	// Properly framed Avro goes in on both paths.
	good := wire(avroID.ID, []byte{0x02}) // id = 1, zig-zag
	if _, err := produceErr(t, s, "orders", good); err != nil {
		t.Errorf("kafka good: %v", err)
	}
	if code, body := postCE(t, s, "orders", "application/avro", "", good); code != http.StatusAccepted {
		t.Errorf("http good: %d %s", code, body)
	}

	// JSON events to a JSON Schema subject are validated and framed.
	if code, body := postCE(t, s, "people", "application/json", "", []byte(`{"name":"ada"}`)); code != http.StatusAccepted {
		t.Fatalf("valid json: %d %s", code, body)
	}
	code, body = postCE(t, s, "people", "application/json", "", []byte(`{"age":3}`))
	if code != 422 || !strings.Contains(body, "not valid for subject 'people-value' version 1") {
		t.Errorf("invalid json: %d %s", code, body)
	}
	dsOK := "http://registry.example/subjects/people-value/versions/1"
	if code, body := postCE(t, s, "people", "application/json", dsOK, []byte(`{"name":"bob"}`)); code != http.StatusAccepted {
		t.Errorf("dataschema naming the subject: %d %s", code, body)
	}
	dsBad := "http://registry.example/subjects/orders-value/versions/1"
	if code, body := postCE(t, s, "people", "application/json", dsBad, []byte(`{"name":"bob"}`)); code != 422 || !strings.Contains(body, "dataschema names subject 'orders-value'") {
		t.Errorf("dataschema naming another subject: %d %s", code, body)
	}
	// Kafka consumers see the Confluent wire format; HTTP readers the JSON.
	cl := client(t, s, kgo.ConsumeTopics("people"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var values []string
	for len(values) < 2 && cctx.Err() == nil {
		cl.PollFetches(cctx).EachRecord(func(r *kgo.Record) { values = append(values, string(r.Value)) })
	}
	if len(values) != 2 || values[0] != string(wire(jsonID.ID, []byte(`{"name":"ada"}`))) {
		t.Fatalf("kafka sees %q", values)
	}
	code, body = get(t, "http://"+s.HTTPAddr()+"/events/people?group=g&wait=0")
	var evs []map[string]any
	if code != 200 || json.Unmarshal([]byte(body), &evs) != nil || len(evs) != 2 {
		t.Fatalf("pull: %d %s", code, body)
	}
	if d, _ := json.Marshal(evs[0]["data"]); string(d) != `{"name":"ada"}` {
		t.Errorf("pulled data %s, want the JSON document", d)
	}
}

// TestGateBatchAllOrNothingAcrossPartitions: a CloudEvents batch whose
// events land on several partitions is stored whole or not at all, also
// when the gate's schema validation refuses one of them.
func TestGateBatchAllOrNothingAcrossPartitions(t *testing.T) {
	s := startNode(t, t.TempDir(), nil)
	ctx := context.Background()
	if _, err := srClient(t, s).CreateSchema(ctx, "multi-value", sr.Schema{Type: sr.TypeJSON,
		Schema: `{"type":"object","required":["ok"]}`}); err != nil {
		t.Fatal(err)
	}
	full := "full"
	cl := client(t, s)
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 4, 1, map[string]*string{"weir.value.schema.validation": &full}, "multi"); err != nil {
		t.Fatal(err)
	}
	event := func(i int, data string) map[string]any {
		return map[string]any{"specversion": "1.0", "id": fmt.Sprint("m-", i), "source": "/multi", "type": "t",
			"partitionkey": fmt.Sprint("key-", i), "datacontenttype": "application/json", "data": json.RawMessage(data)}
	}
	post := func(evs ...map[string]any) (int, string) {
		body, _ := json.Marshal(evs)
		req, _ := http.NewRequest(http.MethodPost, "http://"+s.HTTPAddr()+"/events/multi", strings.NewReader(string(body)))
		req.Header.Set("Content-Type", "application/cloudevents-batch+json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	// The gate itself refuses (framed data with an unknown id), not the
	// gateway's JSON framing: eight keys spread over the partitions.
	var evs []map[string]any
	for i := range 8 {
		evs = append(evs, event(i, `{"ok":1}`))
	}
	// The bad event's partition must come after the first event's in the
	// write order, so that without the all-or-nothing check a partition
	// would already be written when the bad one is refused. The gateway
	// partitions keyed events as Kafka's default partitioner does.
	part := kgo.StickyKeyPartitioner(nil).ForTopic("multi")
	badKey := ""
	for i := 0; badKey == ""; i++ {
		if k := fmt.Sprint("bad-", i); part.Partition(&kgo.Record{Key: []byte(k)}, 4) != part.Partition(&kgo.Record{Key: []byte("key-0")}, 4) {
			badKey = k
		}
	}
	bad := map[string]any{"specversion": "1.0", "id": "m-bad", "source": "/multi", "type": "t", "partitionkey": badKey,
		"datacontenttype": "application/octet-stream", "data_base64": base64.StdEncoding.EncodeToString(wire(999, []byte(`{"ok":1}`)))}
	code, body := post(append(evs, bad)...)
	if code != http.StatusUnprocessableEntity || !strings.Contains(body, "schema id 999 is not registered") {
		t.Fatalf("batch with one bad event: %d %s", code, body)
	}
	total := func() int64 {
		var n int64
		for _, p := range s.Broker().Topics() {
			if p.Name == "multi" {
				for _, part := range p.Partitions() {
					n += part.HighWatermark()
				}
			}
		}
		return n
	}
	if n := total(); n != 0 {
		t.Fatalf("a refused batch stored %d events", n)
	}
	// New ids: the gateway's idempotence would answer events it stored
	// before as duplicates and hide them from the count.
	for i := range evs {
		evs[i]["id"] = fmt.Sprint("again-", i)
	}
	if code, body := post(evs...); code != http.StatusAccepted {
		t.Fatalf("good batch: %d %s", code, body)
	}
	// The 202 came after fsync, which covers every earlier append.
	if n := total(); n != 8 {
		t.Fatalf("%d events stored, want the good batch's 8 (the refused batch stored %d)", n, n-8)
	}
}

// TestStartFailureStopsEveryStage: when a late stage fails (the Kafka
// address is taken), Start stops the stages it started, in reverse: the
// data directory is unlocked and the listeners closed, so a second Start on
// the same directory and addresses succeeds.
func TestStartFailureStopsEveryStage(t *testing.T) {
	dir := t.TempDir()
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	httpLn, _ := net.Listen("tcp", "127.0.0.1:0")
	httpAddr := httpLn.Addr().String()
	_ = httpLn.Close()
	cfg := config.Defaults()
	cfg.DataDir, cfg.KafkaAddr, cfg.HTTPAddr, cfg.RegistryAddr = dir, taken.Addr().String(), httpAddr, "127.0.0.1:0"
	if _, err := Start(cfg, Options{Logger: quiet, Metrics: metrics.New()}); err == nil || !strings.Contains(err.Error(), "listen on kafka address") {
		t.Fatalf("start with the Kafka address taken: %v", err)
	}
	_ = taken.Close()
	cfg.KafkaAddr = "127.0.0.1:0"
	s, err := Start(cfg, Options{Logger: quiet, Metrics: metrics.New()})
	if err != nil {
		t.Fatalf("start after the failed one: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

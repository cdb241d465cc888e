package cloudevents

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weirhq/weir/internal/broker"
	"github.com/weirhq/weir/internal/vfs"
)

// headerMap returns a record's headers by key.
func headerMap(r *kgo.Record) map[string]string {
	m := map[string]string{}
	for _, h := range r.Headers {
		m[h.Key] = string(h.Value)
	}
	return m
}

func TestIngestBinaryMode(t *testing.T) {
	e := newEnv(t)
	r := e.postBinary("orders", "evt-1", `{"total":42}`,
		"Content-Type: application/json",
		"ce-subject: order/1",
		"ce-time: 2024-05-01T10:00:00.5+02:00",
		"ce-partitionkey: customer-7",
		"ce-traceparent: 00-abc-def-01",
		"ce-comment: 50%25 off %E2%82%AC") // percent-encoded per the HTTP binding
	ir := e.mustAccept(r)
	if ir.Topic != "orders" || len(ir.Events) != 1 || ir.Events[0].ID != "evt-1" || ir.Events[0].Offset != 0 {
		t.Fatalf("answer %+v", ir)
	}
	recs := e.consumeAll("orders", 1)
	rec := recs[0]
	if string(rec.Key) != "customer-7" {
		t.Errorf("key %q, want the partitionkey", rec.Key)
	}
	if string(rec.Value) != `{"total":42}` {
		t.Errorf("value %q", rec.Value)
	}
	want := map[string]string{
		"ce_specversion":  "1.0",
		"ce_id":           "evt-1",
		"ce_source":       "/test",
		"ce_type":         "test.event",
		"ce_subject":      "order/1",
		"ce_time":         "2024-05-01T08:00:00.5Z",
		"content-type":    "application/json",
		"ce_partitionkey": "customer-7",
		"ce_traceparent":  "00-abc-def-01",
		"ce_comment":      "50% off €",
	}
	got := headerMap(rec)
	for k, v := range want {
		if got[k] != v {
			t.Errorf("header %s = %q, want %q", k, got[k], v)
		}
	}
	if len(got) != len(want) {
		t.Errorf("headers %v, want exactly %v", got, want)
	}
	if rec.Headers[0].Key != "ce_specversion" {
		t.Errorf("first header %q, want ce_specversion", rec.Headers[0].Key)
	}
}

func TestIngestStructuredMode(t *testing.T) {
	e := newEnv(t)
	body := `{"specversion":"1.0","id":"s-1","source":"https://shop.example/orders","type":"order.created",
		"datacontenttype":"application/json","data":{"total":42},"count":7,"flag":true,"partitionkey":"k1"}`
	e.mustAccept(e.do(http.MethodPost, "/events/structured", []byte(body), "Content-Type: application/cloudevents+json; charset=utf-8"))
	// data_base64, and JSON data without datacontenttype.
	e.mustAccept(e.do(http.MethodPost, "/events/structured",
		[]byte(`{"specversion":"1.0","id":"s-2","source":"/x","type":"t","datacontenttype":"application/octet-stream","data_base64":"AAEC/w=="}`),
		"Content-Type: application/cloudevents+json"))
	e.mustAccept(e.do(http.MethodPost, "/events/structured",
		[]byte(`{"specversion":"1.0","id":"s-3","source":"/x","type":"t","data":[1,2]}`),
		"Content-Type: application/cloudevents+json"))
	e.mustAccept(e.do(http.MethodPost, "/events/structured",
		[]byte(`{"specversion":"1.0","id":"s-4","source":"/x","type":"t","datacontenttype":"text/plain","data":"héllo"}`),
		"Content-Type: application/cloudevents+json"))
	recs := e.consumeAll("structured", 4)
	h := headerMap(recs[0])
	if string(recs[0].Value) != `{"total":42}` || h["ce_count"] != "7" || h["ce_flag"] != "true" || string(recs[0].Key) != "k1" {
		t.Errorf("record 0: key %q value %q headers %v", recs[0].Key, recs[0].Value, h)
	}
	if string(recs[1].Value) != "\x00\x01\x02\xff" || headerMap(recs[1])["content-type"] != "application/octet-stream" {
		t.Errorf("record 1: %q %v", recs[1].Value, headerMap(recs[1]))
	}
	if string(recs[2].Value) != "[1,2]" || headerMap(recs[2])["content-type"] != "application/json" {
		t.Errorf("record 2: %q %v", recs[2].Value, headerMap(recs[2]))
	}
	if string(recs[3].Value) != "héllo" || recs[3].Key != nil {
		t.Errorf("record 3: key %q value %q", recs[3].Key, recs[3].Value)
	}
}

func TestIngestBatchMode(t *testing.T) {
	e := newEnv(t, withBroker(func(o *broker.Options) { o.DefaultPartitions = 3 }))
	var evs []string
	for i := range 10 {
		evs = append(evs, fmt.Sprintf(`{"specversion":"1.0","id":"b-%d","source":"/batch","type":"t","data":{"i":%d}}`, i, i))
	}
	ir := e.mustAccept(e.do(http.MethodPost, "/events/batched", []byte("["+strings.Join(evs, ",")+"]"),
		"Content-Type: application/cloudevents-batch+json"))
	if len(ir.Events) != 10 {
		t.Fatalf("%d events accepted", len(ir.Events))
	}
	// Unkeyed events of one request share a partition, in order.
	for i, a := range ir.Events {
		if a.Partition != ir.Events[0].Partition || a.Offset != ir.Events[0].Offset+int64(i) || a.ID != fmt.Sprintf("b-%d", i) {
			t.Fatalf("event %d stored at %+v", i, a)
		}
	}

	// All or nothing: one invalid event refuses the whole batch.
	bad := append([]string(nil), evs...)
	for i := range bad {
		bad[i] = strings.ReplaceAll(bad[i], `"b-`, `"c-`)
	}
	bad[7] = `{"specversion":"1.0","id":"c-7","source":"/batch","type":"t","time":"yesterday"}`
	r := e.do(http.MethodPost, "/events/batched", []byte("["+strings.Join(bad, ",")+"]"), "Content-Type: application/cloudevents-batch+json")
	if r.status != http.StatusBadRequest {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	ae := r.apiErr(t)
	if ae.Index == nil || *ae.Index != 7 || ae.Attribute != "time" || ae.Code != codeInvalidEvent {
		t.Fatalf("error %s", r.body)
	}
	var total int64
	tp, _ := e.b.Topic("batched")
	for _, p := range tp.Partitions() {
		total += p.HighWatermark()
	}
	if total != 10 {
		t.Fatalf("%d records stored, want only the first batch's 10", total)
	}
}

// TestPartitionerMatchesKafka checks keyed events land where a Kafka
// producer's default partitioner puts the same key.
func TestPartitionerMatchesKafka(t *testing.T) {
	for in, want := range map[string]int32{
		"21": -973932308, "foobar": -790332482, "a-little-bit-long-string": -985981536,
		"a-little-bit-longer-string": -1486304829, "lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971, "abc": 479470107,
	} {
		if got := murmur2([]byte(in)); got != want {
			t.Errorf("murmur2(%q) = %d, want %d", in, got, want)
		}
	}
	e := newEnv(t, withBroker(func(o *broker.Options) { o.DefaultPartitions = 7 }))
	cl := e.kgoClient(kgo.DefaultProduceTopic("keyed"))
	ctx := context.Background()
	for i := range 30 {
		key := fmt.Sprintf("customer-%d", i*7919)
		ir := e.mustAccept(e.postBinary("keyed", fmt.Sprintf("k-%d", i), "x", "ce-partitionkey: "+key))
		res := cl.ProduceSync(ctx, &kgo.Record{Key: []byte(key), Value: []byte("y")})
		if err := res.FirstErr(); err != nil {
			t.Fatal(err)
		}
		if p := res[0].Record.Partition; p != ir.Events[0].Partition {
			t.Fatalf("key %q: gateway chose partition %d, franz-go %d", key, ir.Events[0].Partition, p)
		}
	}
}

func TestIngestErrors(t *testing.T) {
	e := newEnv(t, withBroker(func(o *broker.Options) { o.AutoCreateTopics = false }),
		withOptions(func(o *Options) { o.MaxEventBytes = 4096; o.MaxBatchEvents = 3; o.MaxBatchBytes = 16384 }))
	if _, err := e.b.CreateTopic("t", 1, nil, false); err != nil {
		t.Fatal(err)
	}
	ce := []string{"ce-specversion: 1.0", "ce-id: 1", "ce-source: /s", "ce-type: t"}
	with := func(extra ...string) []string { return append(append([]string(nil), ce...), extra...) }
	structured := "Content-Type: application/cloudevents+json"
	batch := "Content-Type: application/cloudevents-batch+json"
	big := strings.Repeat("x", 5000)
	cases := []struct {
		name    string
		method  string
		path    string
		body    string
		headers []string
		status  int
		code    string
		attr    string
	}{
		{"missing id", "POST", "/events/t", "", []string{"ce-specversion: 1.0", "ce-source: /s", "ce-type: t"}, 400, codeInvalidEvent, "id"},
		{"empty type", "POST", "/events/t", "", []string{"ce-specversion: 1.0", "ce-id: 1", "ce-source: /s", "ce-type: "}, 400, codeInvalidEvent, "type"},
		{"missing specversion", "POST", "/events/t", "", []string{"ce-id: 1", "ce-source: /s", "ce-type: t"}, 400, codeInvalidEvent, "specversion"},
		{"specversion 0.3", "POST", "/events/t", "", []string{"ce-specversion: 0.3", "ce-id: 1", "ce-source: /s", "ce-type: t"}, 400, codeInvalidEvent, "specversion"},
		{"bad time", "POST", "/events/t", "", with("ce-time: 2024-13-01"), 400, codeInvalidEvent, "time"},
		{"bad extension name", "POST", "/events/t", "", with("ce-my-ext: 1"), 400, codeInvalidEvent, "my-ext"},
		{"bad datacontenttype", "POST", "/events/t", "x", with("Content-Type: not a type"), 415, codeUnsupportedMedia, ""},
		{"bad dataschema", "POST", "/events/t", "", with("ce-dataschema: relative/path"), 400, codeInvalidEvent, "dataschema"},
		{"control character", "POST", "/events/t", "", with("ce-subject: a%0Ab"), 400, codeInvalidEvent, "subject"},
		{"structured uppercase extension", "POST", "/events/t", `{"specversion":"1.0","id":"1","source":"/s","type":"t","Ext":"v"}`, []string{structured}, 400, codeInvalidEvent, "Ext"},
		{"structured float extension", "POST", "/events/t", `{"specversion":"1.0","id":"1","source":"/s","type":"t","n":1.5}`, []string{structured}, 400, codeInvalidEvent, "n"},
		{"structured object extension", "POST", "/events/t", `{"specversion":"1.0","id":"1","source":"/s","type":"t","o":{}}`, []string{structured}, 400, codeInvalidEvent, "o"},
		{"structured numeric id", "POST", "/events/t", `{"specversion":"1.0","id":1,"source":"/s","type":"t"}`, []string{structured}, 400, codeInvalidEvent, "id"},
		{"structured bad datacontenttype", "POST", "/events/t", `{"specversion":"1.0","id":"1","source":"/s","type":"t","datacontenttype":"??"}`, []string{structured}, 400, codeInvalidEvent, "datacontenttype"},
		{"structured data and data_base64", "POST", "/events/t", `{"specversion":"1.0","id":"1","source":"/s","type":"t","data":1,"data_base64":"AA=="}`, []string{structured}, 400, codeInvalidEvent, "data"},
		{"structured duplicate key", "POST", "/events/t", `{"specversion":"1.0","id":"1","id":"2","source":"/s","type":"t"}`, []string{structured}, 400, codeInvalidEvent, "id"},
		{"structured malformed", "POST", "/events/t", `{"specversion":`, []string{structured}, 400, codeInvalidEvent, ""},
		{"batch not an array", "POST", "/events/t", `{}`, []string{batch}, 400, codeInvalidEvent, ""},
		{"empty batch", "POST", "/events/t", `[]`, []string{batch}, 400, codeInvalidEvent, ""},
		{"unknown topic", "POST", "/events/nope", "", ce, 404, codeUnknownTopic, ""},
		{"invalid topic", "POST", "/events/bad%20name", "", ce, 400, codeInvalidTopic, ""},
		{"internal topic", "POST", "/events/__consumer_offsets", "", ce, 403, codeForbidden, ""},
		{"PUT", "PUT", "/events/t", "", ce, 405, codeMethodNotAllowed, ""},
		{"DELETE", "DELETE", "/events/t", "", nil, 405, codeMethodNotAllowed, ""},
		{"GET commit", "GET", "/events/t/commit?group=g", "", nil, 405, codeMethodNotAllowed, ""},
		{"binary too large", "POST", "/events/t", big, ce, 413, codeTooLarge, ""},
		{"structured too large", "POST", "/events/t", `{"specversion":"1.0","id":"1","source":"/s","type":"t","datacontenttype":"text/plain","data":"` + big + `"}`, []string{structured}, 413, codeTooLarge, ""},
		{"batch too many events", "POST", "/events/t", `[{"specversion":"1.0","id":"1","source":"/s","type":"t"},{"specversion":"1.0","id":"2","source":"/s","type":"t"},{"specversion":"1.0","id":"3","source":"/s","type":"t"},{"specversion":"1.0","id":"4","source":"/s","type":"t"}]`, []string{batch}, 413, codeTooLarge, ""},
		{"batch body too large", "POST", "/events/t", "[" + strings.Repeat(" ", 20000) + "]", []string{batch}, 413, codeTooLarge, ""},
		{"text/plain without ce headers", "POST", "/events/t", "hello", []string{"Content-Type: text/plain"}, 415, codeUnsupportedMedia, ""},
		{"no content type, no ce headers", "POST", "/events/t", "hello", nil, 415, codeUnsupportedMedia, ""},
		{"unsupported event format", "POST", "/events/t", "<e/>", []string{"Content-Type: application/cloudevents+xml"}, 415, codeUnsupportedMedia, ""},
		{"structured latin1", "POST", "/events/t", "{}", []string{"Content-Type: application/cloudevents+json; charset=latin1"}, 415, codeUnsupportedMedia, ""},
		{"no route", "GET", "/events/", "", nil, 404, codeNotFound, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var body []byte
			if c.body != "" {
				body = []byte(c.body)
			}
			r := e.do(c.method, c.path, body, c.headers...)
			if r.status != c.status {
				t.Fatalf("status %d, want %d: %s", r.status, c.status, r.body)
			}
			ae := r.apiErr(t)
			if ae.Code != c.code || ae.Attribute != c.attr {
				t.Fatalf("error %s, want code %s attribute %q", r.body, c.code, c.attr)
			}
			if c.status == 405 && r.header.Get("Allow") == "" {
				t.Fatal("405 without Allow")
			}
		})
	}
	if hw := mustPartition(t, e.b, "t", 0).HighWatermark(); hw != 0 {
		t.Fatalf("refused requests stored %d records", hw)
	}
	// The batch event index is reported for a too-large event too.
	r := e.do(http.MethodPost, "/events/t", []byte(`[{"specversion":"1.0","id":"1","source":"/s","type":"t"},{"specversion":"1.0","id":"2","source":"/s","type":"t","datacontenttype":"text/plain","data":"`+big+`"}]`), batch)
	if ae := r.apiErr(t); r.status != 413 || ae.Index == nil || *ae.Index != 1 {
		t.Fatalf("status %d body %s", r.status, r.body)
	}
}

func mustPartition(t *testing.T, b *broker.Broker, topic string, p int32) *broker.Partition {
	t.Helper()
	part, err := b.Partition(topic, p)
	if err != nil {
		t.Fatal(err)
	}
	return part
}

// TestIngestBackpressure429: past MaxInflightBytes ingest answers 429 with
// Retry-After rather than queueing.
func TestIngestBackpressure429(t *testing.T) {
	e := newEnv(t, withOptions(func(o *Options) { o.MaxInflightBytes = 1 }))
	pr, pw := io.Pipe()
	req, _ := http.NewRequest(http.MethodPost, e.url+"/events/slow", pr)
	for _, h := range [][2]string{{"ce-specversion", "1.0"}, {"ce-id", "slow"}, {"ce-source", "/s"}, {"ce-type", "t"}} {
		req.Header.Set(h[0], h[1])
	}
	done := make(chan *http.Response, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Error(err)
		}
		done <- resp
	}()
	_, _ = pw.Write([]byte("partial "))
	eventually(t, "the slow request to hold its reservation", func() bool {
		e.gw.inflight.mu.Lock()
		defer e.gw.inflight.mu.Unlock()
		return e.gw.inflight.used > 0
	})
	r := e.postBinary("slow", "fast", "x")
	if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") == "" {
		t.Fatalf("status %d Retry-After %q: %s", r.status, r.header.Get("Retry-After"), r.body)
	}
	if ae := r.apiErr(t); ae.Code != codeBackpressure {
		t.Fatalf("code %s", ae.Code)
	}
	_, _ = pw.Write([]byte("body"))
	_ = pw.Close()
	resp := <-done
	if resp == nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("slow request: %v", resp)
	}
	_ = resp.Body.Close()
	e.mustAccept(e.postBinary("slow", "after", "x"))
}

// TestIngestStorageFailure503: when the disk fails the fsync, the event is
// not acknowledged: 503 with Retry-After.
func TestIngestStorageFailure503(t *testing.T) {
	toggle := vfs.NewToggle(vfs.OpSync)
	e := newEnv(t, withFS(func(fs vfs.FS) vfs.FS { return vfs.NewErrorFS(fs, toggle) }))
	e.mustAccept(e.postBinary("disk", "ok", "x"))
	toggle.Set(syscall.EIO)
	r := e.postBinary("disk", "lost", "x")
	if r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") == "" {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	if ae := r.apiErr(t); ae.Code != codeUnavailable {
		t.Fatalf("code %s", ae.Code)
	}
	// The failed log refuses appends from now on: still 503.
	toggle.Clear()
	if r := e.postBinary("disk", "later", "x"); r.status != http.StatusServiceUnavailable {
		t.Fatalf("status %d after failure", r.status)
	}
	e.gw.Close()
	if r := e.postBinary("disk", "closed", "x"); r.status != http.StatusServiceUnavailable {
		t.Fatalf("status %d after Close", r.status)
	}
}

// TestIdempotentIngest: a retried POST of the same source+id stores one
// record, also after a restart, and a batch with a repeated event stores it
// once.
func TestIdempotentIngest(t *testing.T) {
	e := newEnv(t)
	first := e.mustAccept(e.postBinary("idem", "same", "one"))
	again := e.mustAccept(e.postBinary("idem", "same", "two"))
	if !again.Events[0].Duplicate || again.Events[0].Offset != first.Events[0].Offset {
		t.Fatalf("retry answered %+v, want the original position", again.Events[0])
	}
	// Another source with the same id is another event.
	other := e.mustAccept(e.postBinary("idem", "same", "three", "ce-source: /elsewhere"))
	if other.Events[0].Duplicate {
		t.Fatal("a different source was taken for a duplicate")
	}
	batch := `[{"specversion":"1.0","id":"b1","source":"/s","type":"t"},{"specversion":"1.0","id":"same","source":"/test","type":"test.event"},{"specversion":"1.0","id":"b1","source":"/s","type":"t"}]`
	ir := e.mustAccept(e.do(http.MethodPost, "/events/idem", []byte(batch), "Content-Type: application/cloudevents-batch+json"))
	if ir.Events[0].Duplicate || !ir.Events[1].Duplicate || !ir.Events[2].Duplicate || ir.Events[2].Offset != ir.Events[0].Offset {
		t.Fatalf("batch answered %+v", ir.Events)
	}
	if hw := mustPartition(t, e.b, "idem", 0).HighWatermark(); hw != 3 {
		t.Fatalf("%d records, want 3", hw)
	}
	e.restart()
	after := e.mustAccept(e.postBinary("idem", "same", "four"))
	if !after.Events[0].Duplicate || after.Events[0].Offset != first.Events[0].Offset {
		t.Fatalf("retry after restart answered %+v", after.Events[0])
	}
	if hw := mustPartition(t, e.b, "idem", 0).HighWatermark(); hw != 3 {
		t.Fatalf("%d records after restart, want 3", hw)
	}
	// A topic deleted and created again remembers nothing.
	if err := e.b.DeleteTopic("idem"); err != nil {
		t.Fatal(err)
	}
	if e.mustAccept(e.postBinary("idem", "same", "five")).Events[0].Duplicate {
		t.Fatal("deduplicated against a deleted topic")
	}
}

// TestIdempotentWindowExpires: past the window the pair is forgotten.
func TestIdempotentWindowExpires(t *testing.T) {
	var now atomic.Int64
	now.Store(time.Now().UnixNano())
	clock := func() time.Time { return time.Unix(0, now.Load()) }
	e := newEnv(t, withOptions(func(o *Options) { o.DedupWindow = time.Minute; o.Now = clock }))
	e.mustAccept(e.postBinary("win", "x", "1"))
	if !e.mustAccept(e.postBinary("win", "x", "2")).Events[0].Duplicate {
		t.Fatal("not deduplicated within the window")
	}
	now.Add(int64(2 * time.Minute))
	if e.mustAccept(e.postBinary("win", "x", "3")).Events[0].Duplicate {
		t.Fatal("deduplicated past the window")
	}
}

// TestIngestCompactedTopicNeedsAKey: the write gate refuses keyless
// records on a compacted topic for every door, so an event without the
// partitionkey extension (the record key) gets a 422 naming the rule, and
// one with it is stored.
func TestIngestCompactedTopicNeedsAKey(t *testing.T) {
	e := newEnv(t)
	if _, err := e.b.CreateTopic("table", 1, map[string]string{"cleanup.policy": "compact"}, false); err != nil {
		t.Fatal(err)
	}
	r := e.postBinary("table", "no-key", "x")
	if r.status != http.StatusUnprocessableEntity || !strings.Contains(string(r.body), "compacted topic cannot accept a record without a key") {
		t.Fatalf("keyless event to a compacted topic: %d %s", r.status, r.body)
	}
	if r := e.postBinary("table", "keyed", "x", "ce-partitionkey: user-1"); r.status != http.StatusAccepted {
		t.Fatalf("keyed event: %d %s", r.status, r.body)
	}
	p, _ := e.b.Partition("table", 0)
	if hw := p.HighWatermark(); hw != 1 {
		t.Fatalf("compacted topic holds %d records, want the keyed one", hw)
	}
}

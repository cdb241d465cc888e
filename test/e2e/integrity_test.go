package e2e

import (
	"bytes"
	be "encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"
)

// The seven reproductions of issue 14 ("Core integrity"), against the built
// binary: each was a way to break one of Weir's promises from HTTP or from
// a second process, and each must now be refused.

// httpDo sends one request to w's HTTP listener and returns the status and
// body.
func httpDo(t *testing.T, method, url string, body []byte, headers ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx(t), method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// postBinaryCE posts data as one binary-mode CloudEvent to topic.
func postBinaryCE(t *testing.T, w *Weir, topic, id string, data []byte, extra ...string) (int, string) {
	t.Helper()
	h := append([]string{"Content-Type", "application/json", "ce-specversion", "1.0", "ce-id", id,
		"ce-source", "/e2e/integrity", "ce-type", "com.example.t"}, extra...)
	return httpDo(t, http.MethodPost, "http://"+w.HTTP+"/events/"+topic, data, h...)
}

// isJSONError reports whether body is a JSON error object naming a
// problem, as every HTTP 4xx must be.
func isJSONError(body string) bool {
	var e struct {
		Error   string `json:"error"`
		Message string `json:"message"`
	}
	return json.Unmarshal([]byte(body), &e) == nil && e.Error != "" && e.Message != ""
}

func topicConfigs(t *testing.T, w *Weir, topic string) map[string]string {
	t.Helper()
	rcs, err := kadm.NewClient(extKgoClient(t, w)).DescribeTopicConfigs(ctx(t), topic)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := rcs.On(topic, nil)
	if err != nil || rc.Err != nil {
		t.Fatalf("describe %s: %v %v", topic, err, rc.Err)
	}
	out := map[string]string{}
	for _, c := range rc.Configs {
		if c.Value != nil {
			out[c.Key] = *c.Value
		}
	}
	return out
}

// Reproductions 1 and 3: an HTTP write to _schemas (any body, or a crafted
// schema record) is refused, the topic keeps its fixed configs, and after a
// restart the registry knows no forged id.
func TestIntegritySchemasTopicOverHTTP(t *testing.T) {
	t.Parallel()
	w := StartWeir(t, "")
	if code, body := postBinaryCE(t, w, "_schemas", "x-1", []byte(`{"any":"json"}`)); code != http.StatusForbidden || !isJSONError(body) {
		t.Fatalf("POST /events/_schemas: %d %s, want 403 with a JSON error", code, body)
	}
	forged := []byte(`{"subject":"payments-value","version":1,"id":7,"schema":"\"string\"","deleted":false}`)
	code, body := postBinaryCE(t, w, "_schemas", "x-2", forged,
		"ce-partitionkey", `{"keytype":"SCHEMA","subject":"payments-value","version":1,"magic":1}`)
	if code != http.StatusForbidden {
		t.Fatalf("forged schema record: %d %s, want 403", code, body)
	}
	cfg := topicConfigs(t, w, "_schemas")
	if cfg["cleanup.policy"] != "compact" || cfg["retention.ms"] != "-1" || cfg["retention.bytes"] != "-1" {
		t.Fatalf("_schemas configs %v, want compact with retention -1", cfg)
	}
	w.Restart(false)
	if code, body := httpDo(t, http.MethodGet, "http://"+w.Registry+"/schemas/ids/7", nil); code != http.StatusNotFound {
		t.Fatalf("GET /schemas/ids/7 after restart: %d %s, want 404", code, body)
	}
	if code, body := httpDo(t, http.MethodGet, "http://"+w.Registry+"/subjects", nil); code != 200 || strings.Contains(body, "payments") {
		t.Fatalf("subjects after restart: %d %s", code, body)
	}
}

// Reproduction 2: a topic validating values refuses a non-Avro value from
// kcat and from HTTP alike, with the same reason, and stores neither.
func TestIntegritySchemaValidationEveryPath(t *testing.T) {
	t.Parallel()
	w := StartWeir(t, "")
	cl := extKgoClient(t, w)
	adm := kadm.NewClient(cl)
	on := "true"
	if _, err := adm.CreateTopic(ctx(t), 1, 1, map[string]*string{"weir.value.schema.validation": &on}, "orders"); err != nil {
		t.Fatal(err)
	}
	reg, err := sr.NewClient(sr.URLs("http://" + w.Registry))
	if err != nil {
		t.Fatal(err)
	}
	id, err := reg.CreateSchema(ctx(t), "orders-value", sr.Schema{Type: sr.TypeAvro,
		Schema: `{"type":"record","name":"Order","fields":[{"name":"id","type":"long"}]}`})
	if err != nil {
		t.Fatal(err)
	}
	const reason = "does not start with magic byte 0"
	_, errb, kerr := extRunTool(25*time.Second, []byte("not-avro\n"), "", nil, kcatBin(t), "-b", w.Addr, "-P", "-t", "orders", "-p", "0")
	if kerr == nil && !bytes.Contains(errb, []byte("Invalid record")) && !bytes.Contains(errb, []byte("failed to validate")) {
		t.Fatalf("kcat produced a non-Avro value to a validated topic:\n%s", errb)
	}
	code, body := postBinaryCE(t, w, "orders", "o-1", []byte("not-avro"), "Content-Type", "application/octet-stream")
	if code != http.StatusUnprocessableEntity || !strings.Contains(body, reason) || !isJSONError(body) {
		t.Fatalf("HTTP non-Avro value: %d %s, want 422 saying %q", code, body, reason)
	}
	// What is framed with the registered id goes in on both paths.
	good := be.BigEndian.AppendUint32([]byte{0}, uint32(id.ID))
	good = append(good, 0x54) // long 42, zig-zag
	if code, body := postBinaryCE(t, w, "orders", "o-2", good, "Content-Type", "application/avro"); code != http.StatusAccepted {
		t.Fatalf("HTTP framed Avro: %d %s", code, body)
	}
	if err := cl.ProduceSync(ctx(t), &kgo.Record{Topic: "orders", Value: good}).FirstErr(); err != nil {
		t.Fatalf("Kafka framed Avro: %v", err)
	}
	ends, err := adm.ListEndOffsets(ctx(t), "orders")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := ends.Lookup("orders", 0); o.Offset != 2 {
		t.Fatalf("orders end offset %d, want 2 (the refused values stored nothing)", o.Offset)
	}
}

// Reproduction 5: an HTTP read of an unknown topic answers 404 and creates
// nothing, as the CLI says.
func TestIntegrityReadsDoNotCreateTopics(t *testing.T) {
	t.Parallel()
	w := StartWeir(t, "")
	for _, path := range []string{"/events/nosuch?group=g&wait=0", "/events/nosuch-sse"} {
		hdr := []string{}
		if strings.HasSuffix(path, "-sse") {
			hdr = []string{"Accept", "text/event-stream"}
		}
		if code, body := httpDo(t, http.MethodGet, "http://"+w.HTTP+path, nil, hdr...); code != http.StatusNotFound || !isJSONError(body) {
			t.Fatalf("GET %s: %d %s, want 404 with a JSON error", path, code, body)
		}
	}
	sub := []byte(`{"name":"s","topic":"nosuch-sub","sink":"http://127.0.0.1:1/"}`)
	if code, body := httpDo(t, http.MethodPost, "http://"+w.HTTP+"/subscriptions", sub, "Content-Type", "application/json"); code != http.StatusNotFound {
		t.Fatalf("subscription to an unknown topic: %d %s, want 404", code, body)
	}
	topics, err := kadm.NewClient(extKgoClient(t, w)).ListTopics(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"nosuch", "nosuch-sse", "nosuch-sub"} {
		if topics.Has(name) {
			t.Errorf("reading %s created it", name)
		}
	}
}

// Reproduction 7: records written over HTTP are counted in the per-topic
// traffic metrics, as Kafka ones are.
func TestIntegrityMetricsCountHTTPWrites(t *testing.T) {
	t.Parallel()
	w := StartWeir(t, "")
	for i := range 3 {
		if code, body := postBinaryCE(t, w, "ce-metrics", fmt.Sprint("m-", i), []byte(`{"n":1}`)); code != http.StatusAccepted {
			t.Fatalf("POST: %d %s", code, body)
		}
	}
	if err := extKgoClient(t, w).ProduceSync(ctx(t), &kgo.Record{Topic: "ce-metrics", Value: []byte("k")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	_, body := httpDo(t, http.MethodGet, "http://"+w.HTTP+"/metrics", nil)
	if want := `weir_topic_records_in_total{topic="ce-metrics"} 4`; !strings.Contains(body, want) {
		t.Fatalf("/metrics lacks %q:\n%s", want, grepLines(body, "weir_topic_records_in_total"))
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// Reproduction 4: a second process on a data directory in use exits at
// once with one line naming the holder's pid, and the first one's
// acknowledged records survive both.
func TestIntegrityDataDirLocked(t *testing.T) {
	t.Parallel()
	w := StartWeir(t, "")
	cl := extKgoClient(t, w, kgo.DefaultProduceTopic("locked"), kgo.AllowAutoTopicCreation())
	for i := range 3 {
		if err := cl.ProduceSync(ctx(t), &kgo.Record{Value: fmt.Appendf(nil, "v%d", i)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	out, errb, err := extRunTool(30*time.Second, nil, "", nil, binary(t), "serve", "--data-dir", w.DataDir,
		"--kafka-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--registry-addr", "127.0.0.1:0")
	if err == nil {
		t.Fatalf("a second weir serve on %s ran:\n%s%s", w.DataDir, out, errb)
	}
	lines := strings.Split(strings.TrimSpace(string(errb)), "\n")
	want := fmt.Sprintf("in use by another Weir process (pid %d)", w.cmd.Process.Pid)
	if len(lines) != 1 || !strings.Contains(lines[0], want) {
		t.Fatalf("second process said %q, want one line containing %q", errb, want)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("the second process took %v to refuse", d)
	}
	w.Restart(false)
	recs := extKgoRead(t, w, "locked", 0, 3)
	for i, r := range recs {
		if string(r.Value) != fmt.Sprintf("v%d", i) {
			t.Fatalf("record %d = %q after restart", i, r.Value)
		}
	}
}

// Reproduction 6: a legal 249-character topic name works end to end and
// survives a restart; errors sent to clients never carry the data
// directory's path.
func TestIntegrityLongTopicName(t *testing.T) {
	t.Parallel()
	w := StartWeir(t, "")
	name := strings.Repeat("a.b-c_", 41) + "xyz" // 249 characters
	if len(name) != 249 {
		t.Fatalf("name has %d characters", len(name))
	}
	adm := kadm.NewClient(extKgoClient(t, w))
	resp, err := adm.CreateTopic(ctx(t), 1, 1, nil, name)
	if err != nil || resp.Err != nil {
		t.Fatalf("create a 249-character topic: %v %v (%s)", err, resp.Err, resp.ErrMessage)
	}
	cl := extKgoClient(t, w)
	if err := cl.ProduceSync(ctx(t), &kgo.Record{Topic: name, Value: []byte("long")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	// One character more is refused, naming the rule, not a path.
	resp, err = adm.CreateTopic(ctx(t), 1, 1, nil, name+"z")
	if err == nil && resp.Err == nil {
		t.Fatal("a 250-character name was accepted")
	}
	if strings.Contains(resp.ErrMessage, w.DataDir) {
		t.Fatalf("error message leaks the data directory: %q", resp.ErrMessage)
	}
	w.Restart(true)
	if recs := extKgoRead(t, w, name, 0, 1); string(recs[0].Value) != "long" {
		t.Fatalf("after a crash: %q", recs[0].Value)
	}
}

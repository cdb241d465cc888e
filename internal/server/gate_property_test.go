package server

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/weirhq/weir/internal/batch"
	"github.com/weirhq/weir/internal/broker"
)

// TestGateProperty drives a seeded random mix of writes through every
// write path of a running node — Kafka Produce at every record-batch
// version, CloudEvents binary, structured and batch mode, the schema
// registry, group offset commits and push subscriptions — at ordinary,
// schema-validated and internal topics, and checks the gate's promises
// against a model:
//
//   - every client write to an internal topic is refused with its
//     protocol's error (INVALID_TOPIC_EXCEPTION, 403), and no client byte
//     ever lands in one, while the owners' writes (registry, commits,
//     subscriptions) succeed;
//   - a validated topic holds exactly the writes the model accepts (framed
//     with a registered id and valid, or JSON the subject's JSON Schema
//     validates, over HTTP), on every path alike;
//   - the per-topic records-in counters equal what was stored.
func TestGateProperty(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("WEIRTEST_GATE_SEED"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("WEIRTEST_GATE_SEED: %v", err)
		}
		seed = n
	}
	t.Logf("seed %d (rerun with WEIRTEST_GATE_SEED)", seed)
	rng := rand.New(rand.NewPCG(seed, 14))
	s := startNode(t, t.TempDir(), nil)
	ctx := context.Background()
	reg := srClient(t, s)
	js, err := reg.CreateSchema(ctx, "v-value", sr.Schema{Type: sr.TypeJSON,
		Schema: `{"type":"object","properties":{"ok":{"type":"integer"}},"required":["ok"]}`})
	if err != nil {
		t.Fatal(err)
	}
	full := "full"
	if err := createTopic(t, client(t, s), "v", map[string]*string{"weir.value.schema.validation": &full}); err != nil {
		t.Fatal(err)
	}
	if err := createTopic(t, client(t, s), "plain", nil); err != nil {
		t.Fatal(err)
	}
	cl := client(t, s)
	adm := kadm.NewClient(cl)

	const mark = "CLIENT-MARK"
	type payload struct {
		data  []byte
		json  bool // a JSON document (sent as application/json over HTTP)
		valid bool // framed with v-value's id and valid
		ok    bool // valid for v-value once framed (JSON documents)
	}
	payloads := []payload{
		{data: wire(js.ID, []byte(`{"ok":1,"m":"`+mark+`"}`)), valid: true},
		{data: wire(js.ID, []byte(`{"no":1,"m":"`+mark+`"}`))},
		{data: wire(999, []byte(`{"ok":1,"m":"`+mark+`"}`))},
		{data: []byte(`{"ok":2,"m":"` + mark + `"}`), json: true, ok: true},
		{data: []byte(`{"no":2,"m":"` + mark + `"}`), json: true},
		{data: []byte(mark + "\x01\x02")},
	}
	reserved := []string{broker.SchemasTopic, broker.OffsetsTopic, broker.SubscriptionsTopic, broker.TransactionStateTopic, "__weir_other"}
	stored := map[string]int64{}
	// accepts is the model: whether a write of p to topic over a path
	// (framing: HTTP frames JSON documents) is stored.
	accepts := func(topic string, p payload, http bool) bool {
		switch topic {
		case "plain":
			return true
		case "v":
			return p.valid || (http && p.json && p.ok)
		}
		return false
	}
	pickTopic := func() string {
		switch rng.IntN(3) {
		case 0:
			return reserved[rng.IntN(len(reserved))]
		case 1:
			return "v"
		}
		return "plain"
	}
	isReserved := func(topic string) bool { return topic != "v" && topic != "plain" }

	produce := func(version int16, topic string, p payload) int16 {
		return rawProduce(t, cl, version, topic, batch.Record{Key: []byte(mark), Value: p.data}).ErrorCode
	}
	post := func(topic, contentType string, body []byte, headers map[string]string) int {
		req, _ := http.NewRequest(http.MethodPost, "http://"+s.HTTPAddr()+"/events/"+topic, bytes.NewReader(body))
		req.Header.Set("Content-Type", contentType)
		for k, v := range headers {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode >= 400 && !json.Valid(b) {
			t.Fatalf("%d answer without a JSON body: %s", resp.StatusCode, b)
		}
		return resp.StatusCode
	}
	// structured events carry unique ids: the gateway drops a repeated
	// (source, id) as a duplicate, which the model does not count.
	structured := func(id string, p payload) map[string]any {
		ev := map[string]any{"specversion": "1.0", "id": id, "source": "/" + mark, "type": "t"}
		if p.json {
			ev["datacontenttype"] = "application/json"
			ev["data"] = json.RawMessage(p.data)
		} else {
			ev["datacontenttype"] = "application/octet-stream"
			ev["data_base64"] = base64.StdEncoding.EncodeToString(p.data)
		}
		return ev
	}

	owners := 0
	for op := range 150 {
		topic := pickTopic()
		p := payloads[rng.IntN(len(payloads))]
		switch path := rng.IntN(7); path {
		case 0: // Kafka Produce, any record-batch version
			version := int16(3 + rng.IntN(9))
			code := produce(version, topic, p)
			want := int16(0)
			switch {
			case isReserved(topic):
				want = kerr.InvalidTopicException.Code
			case !accepts(topic, p, false):
				want = kerr.InvalidRecord.Code
			}
			if code != want {
				t.Fatalf("op %d: Produce v%d of %q to %s: code %d, want %d", op, version, p.data, topic, code, want)
			}
			if code == 0 {
				stored[topic]++
			}
		case 1, 2: // binary and structured mode
			var code int
			if path == 1 {
				ct := "application/octet-stream"
				if p.json {
					ct = "application/json"
				}
				code = post(topic, ct, p.data, map[string]string{"ce-specversion": "1.0", "ce-id": fmt.Sprint("b-", op),
					"ce-source": "/" + mark, "ce-type": "t"})
			} else {
				body, _ := json.Marshal(structured(fmt.Sprint("structured-", op), p))
				code = post(topic, "application/cloudevents+json", body, nil)
			}
			want := http.StatusAccepted
			switch {
			case isReserved(topic):
				want = http.StatusForbidden
			case !accepts(topic, p, true):
				want = http.StatusUnprocessableEntity
			}
			if code != want {
				t.Fatalf("op %d: mode %d POST of %q to %s: %d, want %d", op, path, p.data, topic, code, want)
			}
			if code == http.StatusAccepted {
				stored[topic]++
			}
		case 3: // batch mode: all or nothing on a one-partition topic
			n := 1 + rng.IntN(3)
			evs := make([]map[string]any, n)
			all := true
			for i := range evs {
				q := payloads[rng.IntN(len(payloads))]
				evs[i] = structured(fmt.Sprintf("batch-%d-%d", op, i), q)
				all = all && accepts(topic, q, true)
			}
			body, _ := json.Marshal(evs)
			code := post(topic, "application/cloudevents-batch+json", body, nil)
			want := http.StatusAccepted
			switch {
			case isReserved(topic):
				want = http.StatusForbidden
			case !all:
				want = http.StatusUnprocessableEntity
			}
			if code != want {
				t.Fatalf("op %d: batch of %d to %s: %d, want %d", op, n, topic, code, want)
			}
			if code == http.StatusAccepted {
				stored[topic] += int64(n)
			}
		case 4: // the registry writes _schemas
			if _, err := reg.CreateSchema(ctx, fmt.Sprintf("s%d-value", op), sr.Schema{Schema: `"string"`}); err != nil {
				t.Fatalf("op %d: register: %v", op, err)
			}
			owners++
		case 5: // a group commit writes __consumer_offsets
			offs := kadm.Offsets{}
			offs.AddOffset("plain", 0, stored["plain"], -1)
			if err := adm.CommitAllOffsets(ctx, fmt.Sprint("g", op), offs); err != nil {
				t.Fatalf("op %d: commit: %v", op, err)
			}
			owners++
		case 6: // a subscription writes __weir_subscriptions
			body := fmt.Sprintf(`{"name":"sub%d","topic":"plain","sink":"http://127.0.0.1:1/"}`, op)
			req, _ := http.NewRequest(http.MethodPost, "http://"+s.HTTPAddr()+"/subscriptions", strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusCreated {
				t.Fatalf("op %d: subscription: %d", op, resp.StatusCode)
			}
			owners++
		}
	}
	t.Logf("%d owner writes; stored %v", owners, stored)

	// Validated and plain topics hold what the model accepted, each record
	// of v valid for the subject; the counters agree.
	b := s.Broker()
	sc := scrapeMetrics(t, s)
	for _, topic := range []string{"v", "plain"} {
		p, _ := b.Partition(topic, 0)
		if hw := p.HighWatermark(); hw != stored[topic] {
			t.Errorf("%s holds %d records, the model %d", topic, hw, stored[topic])
		}
		if got := sc.sum("weir_topic_records_in_total", "topic="+topic); int64(got) != stored[topic] {
			t.Errorf("%s records in %v, want %d", topic, got, stored[topic])
		}
	}
	eachRecord(t, b, "v", func(r batch.Record) {
		if err := s.Registry().CheckRecord("v-value", r.Value, true); err != nil {
			t.Errorf("v holds an invalid value %q: %v", r.Value, err)
		}
	})
	// No client byte ever reached an internal topic.
	for _, name := range reserved {
		if _, err := b.Topic(name); err != nil {
			continue
		}
		eachRecord(t, b, name, func(r batch.Record) {
			if bytes.Contains(r.Key, []byte(mark)) || bytes.Contains(r.Value, []byte(mark)) {
				t.Errorf("a client's record reached %s: %q=%q", name, r.Key, r.Value)
			}
		})
	}
}

// eachRecord calls fn for every record of partition 0 of topic.
func eachRecord(t *testing.T, b *broker.Broker, topic string, fn func(batch.Record)) {
	t.Helper()
	p, err := b.Partition(topic, 0)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.WaitDurable(ctx, p.HighWatermark()); err != nil {
		t.Fatal(err)
	}
	for off := p.LogStartOffset(); off < p.HighWatermark(); {
		data, err := p.Read(off, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		for len(data) > 0 {
			one, rest, err := batch.Split(data)
			if err != nil {
				t.Fatal(err)
			}
			data = rest
			h, recs, err := batch.Records(one, 64<<20)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range recs {
				fn(r)
			}
			off = h.LastOffset() + 1
		}
	}
}

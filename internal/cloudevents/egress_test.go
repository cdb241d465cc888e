package cloudevents

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weirhq/weir/internal/broker"
)

// jsonEvent is an event in the JSON format, as a client decodes it.
type jsonEvent map[string]any

func (e *env) pull(path string) (response, []jsonEvent) {
	e.t.Helper()
	r := e.do(http.MethodGet, path, nil)
	if r.status != http.StatusOK {
		e.t.Fatalf("GET %s: %d %s", path, r.status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != mediaBatchJSON {
		e.t.Fatalf("Content-Type %q", ct)
	}
	var evs []jsonEvent
	r.json(e.t, &evs)
	return r, evs
}

// committedOffsets reads a group's offsets as a Kafka admin client does.
func (e *env) committedOffsets(groupID string) map[int32]int64 {
	e.t.Helper()
	adm := kadm.NewClient(e.kgoClient())
	offs, err := adm.FetchOffsets(context.Background(), groupID)
	if err != nil {
		e.t.Fatal(err)
	}
	out := map[int32]int64{}
	offs.Each(func(o kadm.OffsetResponse) { out[o.Partition] = o.At })
	return out
}

func TestPullBatches(t *testing.T) {
	e := newEnv(t)
	for i := range 5 {
		e.mustAccept(e.postBinary("pulled", fmt.Sprintf("p-%d", i), fmt.Sprintf(`{"i":%d}`, i), "Content-Type: application/json"))
	}
	r, evs := e.pull("/events/pulled?group=g1&max=3")
	if len(evs) != 3 || evs[0]["id"] != "p-0" || evs[2]["id"] != "p-2" || r.header.Get("Weir-Next-Offsets") != "0=3" {
		t.Fatalf("first batch %v (next %s)", evs, r.header.Get("Weir-Next-Offsets"))
	}
	if d, _ := json.Marshal(evs[1]["data"]); string(d) != `{"i":1}` || evs[1]["specversion"] != "1.0" || evs[1]["type"] != "test.event" {
		t.Fatalf("event %v", evs[1])
	}
	if offs := e.committedOffsets("g1"); len(offs) != 0 {
		t.Fatalf("committed %v before the group asked again", offs)
	}
	// Asking again commits the previous batch.
	_, evs = e.pull("/events/pulled?group=g1&max=3")
	if len(evs) != 2 || evs[0]["id"] != "p-3" {
		t.Fatalf("second batch %v", evs)
	}
	if offs := e.committedOffsets("g1"); offs[0] != 3 {
		t.Fatalf("committed %v, want 3", offs)
	}
	// Nothing new: the long-poll ends with an empty batch.
	start := time.Now()
	_, evs = e.pull("/events/pulled?group=g1&wait=100ms")
	if len(evs) != 0 || time.Since(start) < 100*time.Millisecond {
		t.Fatalf("empty poll returned %v after %v", evs, time.Since(start))
	}
	if offs := e.committedOffsets("g1"); offs[0] != 5 {
		t.Fatalf("committed %v, want 5", offs)
	}
	// A long-poll wakes when an event arrives.
	got := make(chan []jsonEvent, 1)
	go func() {
		r, err := http.Get(e.url + "/events/pulled?group=g1&wait=10s")
		if err != nil {
			t.Error(err)
			got <- nil
			return
		}
		defer r.Body.Close()
		var evs []jsonEvent
		_ = json.NewDecoder(r.Body).Decode(&evs)
		got <- evs
	}()
	eventually(t, "the long-poll to start", func() bool { return len(e.gw.streams) == 1 })
	e.mustAccept(e.postBinary("pulled", "late", "x"))
	select {
	case evs := <-got:
		if len(evs) != 1 || evs[0]["id"] != "late" {
			t.Fatalf("long-poll returned %v", evs)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the long-poll did not wake")
	}
	// Explicit commit, then a rewind by offsets.
	r = e.do(http.MethodPost, "/events/pulled/commit?group=g1", nil)
	var cr commitResponse
	r.json(t, &cr)
	if r.status != 200 || len(cr.Offsets) != 1 || cr.Offsets[0].Offset != 6 {
		t.Fatalf("commit: %d %s", r.status, r.body)
	}
	r = e.do(http.MethodPost, "/events/pulled/commit?group=g1", []byte(`{"offsets":[{"partition":0,"offset":4}]}`))
	if r.status != 200 || e.committedOffsets("g1")[0] != 4 {
		t.Fatalf("rewind: %d %s", r.status, r.body)
	}
	_, evs = e.pull("/events/pulled?group=g1&wait=0")
	if len(evs) != 2 || evs[0]["id"] != "p-4" {
		t.Fatalf("after rewind %v", evs)
	}
	// Kafka tools see the group's lag.
	adm := kadm.NewClient(e.kgoClient())
	lags, err := adm.Lag(context.Background(), "g1")
	if err != nil {
		t.Fatal(err)
	}
	if l := lags["g1"].Lag.TotalByTopic()["pulled"].Lag; l != 2 {
		t.Fatalf("lag %d, want 2 (handed out, not yet acknowledged)", l)
	}

	for _, bad := range []string{"/events/pulled", "/events/pulled?group=weir-sub-x", "/events/pulled?group=g&max=0", "/events/pulled?group=g&wait=soon", "/events/pulled?group=g&from=middle"} {
		if r := e.do(http.MethodGet, bad, nil); r.status != http.StatusBadRequest {
			t.Errorf("GET %s: %d", bad, r.status)
		}
	}
}

// TestPullGroupInUseByKafka: a group whose members are Kafka consumers
// refuses simple commits; the gateway answers 409.
func TestPullGroupInUseByKafka(t *testing.T) {
	e := newEnv(t)
	e.mustAccept(e.postBinary("shared", "1", "x"))
	cl := e.kgoClient(kgo.ConsumerGroup("kafka-group"), kgo.ConsumeTopics("shared"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for len(cl.PollFetches(ctx).Records()) == 0 && ctx.Err() == nil {
	}
	e.pull("/events/shared?group=kafka-group&wait=0")
	r := e.do(http.MethodGet, "/events/shared?group=kafka-group&wait=0", nil)
	if r.status != http.StatusConflict {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	if ae := r.apiErr(t); ae.Code != codeConflict {
		t.Fatal(ae.Code)
	}
}

// sseMsg is one server-sent event.
type sseMsg struct {
	id   string
	data string
}

// sseStream reads messages from a GET with Accept: text/event-stream.
type sseStream struct {
	t      *testing.T
	cancel context.CancelFunc
	resp   *http.Response
	msgs   chan sseMsg
}

func (e *env) sse(path string, headers ...string) *sseStream {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.url+path, nil)
	req.Header.Set("Accept", "text/event-stream")
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ":")
		req.Header.Set(k, strings.TrimSpace(v))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		e.t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		cancel()
		e.t.Fatalf("SSE: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	s := &sseStream{t: e.t, cancel: cancel, resp: resp, msgs: make(chan sseMsg, 100)}
	go func() {
		defer close(s.msgs)
		sc := bufio.NewScanner(resp.Body)
		var m sseMsg
		var data []string
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if len(data) > 0 {
					m.data = strings.Join(data, "\n")
					s.msgs <- m
				}
				m, data = sseMsg{}, nil
			case strings.HasPrefix(line, "id: "):
				m.id = line[4:]
			case strings.HasPrefix(line, "data: "):
				data = append(data, line[6:])
			}
		}
	}()
	e.t.Cleanup(s.close)
	return s
}

func (s *sseStream) close() {
	s.cancel()
	_ = s.resp.Body.Close()
}

// next returns the next message and its event.
func (s *sseStream) next() (sseMsg, jsonEvent) {
	s.t.Helper()
	select {
	case m, ok := <-s.msgs:
		if !ok {
			s.t.Fatal("the stream ended")
		}
		var ev jsonEvent
		if err := json.Unmarshal([]byte(m.data), &ev); err != nil {
			s.t.Fatalf("SSE data %q: %v", m.data, err)
		}
		return m, ev
	case <-time.After(10 * time.Second):
		s.t.Fatal("no SSE message")
	}
	return sseMsg{}, nil
}

// TestSSEFromKafka: records produced by a Kafka client without ce_ headers
// stream as weir.record events with their offset as the SSE id, and the
// stream resumes after Last-Event-ID.
func TestSSEFromKafka(t *testing.T) {
	e := newEnv(t)
	if _, err := e.b.CreateTopic("plain", 1, nil, false); err != nil {
		t.Fatal(err)
	}
	cl := e.kgoClient(kgo.DefaultProduceTopic("plain"))
	ctx := context.Background()
	values := []string{`{"n":1}`, "plain text", "\x00\x01binary"}
	for i, v := range values {
		rec := &kgo.Record{Value: []byte(v)}
		if i == 0 {
			rec.Key = []byte("user-1")
		}
		if i == 1 {
			rec.Headers = []kgo.RecordHeader{{Key: "content-type", Value: []byte("text/plain")}}
		}
		if err := cl.ProduceSync(ctx, rec).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	s := e.sse("/events/plain?from=earliest")
	m, ev := s.next()
	if m.id != "0" || ev["type"] != RecordType || ev["source"] != "/topics/plain" || ev["id"] != "plain/0/0" || ev["partitionkey"] != "user-1" {
		t.Fatalf("first: id %s event %v", m.id, ev)
	}
	if d, _ := json.Marshal(ev["data"]); string(d) != `{"n":1}` || ev["time"] == nil {
		t.Fatalf("first data %s", d)
	}
	m, ev = s.next()
	if m.id != "1" || ev["data"] != "plain text" || ev["datacontenttype"] != "text/plain" {
		t.Fatalf("second: %s %v", m.id, ev)
	}
	s.close()
	// Resume after the second event.
	s = e.sse("/events/plain", "Last-Event-ID: 1")
	m, ev = s.next()
	if m.id != "2" || ev["data_base64"] != "AAFiaW5hcnk=" {
		t.Fatalf("resumed: %s %v", m.id, ev)
	}
	// A gateway event streams as it was posted, and live.
	e.mustAccept(e.postBinary("plain", "ce-1", "hi", "Content-Type: text/plain", "ce-color: red"))
	m, ev = s.next()
	if m.id != "3" || ev["id"] != "ce-1" || ev["source"] != "/test" || ev["color"] != "red" || ev["data"] != "hi" {
		t.Fatalf("live: %s %v", m.id, ev)
	}
}

// TestSSEMultiPartitionAndGroup: the SSE id carries every partition's
// position; with a group the stream commits what it delivered.
func TestSSEMultiPartitionAndGroup(t *testing.T) {
	e := newEnv(t, withBroker(func(o *broker.Options) { o.DefaultPartitions = 2 }))
	for i := range 4 {
		e.mustAccept(e.postBinary("multi", fmt.Sprintf("m-%d", i), "x", fmt.Sprintf("ce-partitionkey: key-%d", i)))
	}
	s := e.sse("/events/multi?group=sse")
	seen := map[string]bool{}
	var last string
	for range 4 {
		m, ev := s.next()
		seen[ev["id"].(string)] = true
		last = m.id
	}
	if len(seen) != 4 {
		t.Fatalf("saw %v", seen)
	}
	next, err := parseCursor(last)
	if err != nil || len(next) != 2 {
		t.Fatalf("cursor %q: %v %v", last, next, err)
	}
	tp, _ := e.b.Topic("multi")
	for _, p := range tp.Partitions() {
		if next[p.Index()] != p.HighWatermark() {
			t.Fatalf("cursor %q does not reach partition %d's end %d", last, p.Index(), p.HighWatermark())
		}
	}
	eventually(t, "the SSE group to commit", func() bool {
		offs := e.committedOffsets("sse")
		return offs[0]+offs[1] == 4
	})
	s.close()
	// Resuming from the cursor delivers only what is new.
	s = e.sse("/events/multi", "Last-Event-ID: "+last)
	e.mustAccept(e.postBinary("multi", "m-new", "x"))
	if _, ev := s.next(); ev["id"] != "m-new" {
		t.Fatalf("resumed with %v", ev)
	}
	if r := e.do(http.MethodGet, "/events/multi", nil, "Accept: text/event-stream", "Last-Event-ID: nonsense"); r.status != 400 {
		t.Fatalf("bad Last-Event-ID: %d", r.status)
	}
}

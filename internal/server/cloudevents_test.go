package server

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weirhq/weir/internal/config"
)

// The CloudEvents gateway as the node serves it: on the HTTP listener next
// to /healthz, its records readable by Kafka clients, its subscriptions
// surviving a restart, and Close not held up by an open SSE stream.

func postEvent(t *testing.T, s *Server, topic, id string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, "http://"+s.HTTPAddr()+"/events/"+topic, strings.NewReader(`{"n":1}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("ce-specversion", "1.0")
	req.Header.Set("ce-id", id)
	req.Header.Set("ce-source", "/server-test")
	req.Header.Set("ce-type", "t")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode
}

func TestCloudEventsMounted(t *testing.T) {
	dir := t.TempDir()
	var mu sync.Mutex
	var got []string
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.Header.Get("Ce-Id"))
		mu.Unlock()
	}))
	defer sink.Close()
	received := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(got)
	}

	s := startNode(t, dir, nil)
	if code := postEvent(t, s, "ce.orders", "e-1"); code != http.StatusAccepted {
		t.Fatalf("POST: %d", code)
	}
	if code, _ := get(t, "http://"+s.HTTPAddr()+"/healthz"); code != 200 {
		t.Fatalf("/healthz: %d", code)
	}
	cl := client(t, s, kgo.ConsumeTopics("ce.orders"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	recs := cl.PollFetches(ctx).Records()
	if len(recs) != 1 || string(recs[0].Value) != `{"n":1}` || len(recs[0].Headers) < 4 || recs[0].Headers[0].Key != "ce_specversion" {
		t.Fatalf("records %v", recs)
	}

	body := fmt.Sprintf(`{"name":"to-sink","topic":"ce.orders","sink":%q,"delivery":{"backoffDelay":"10ms"}}`, sink.URL)
	resp, err := http.Post("http://"+s.HTTPAddr()+"/subscriptions", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create subscription: %d", resp.StatusCode)
	}
	postEvent(t, s, "ce.orders", "e-2")
	waitFor(t, "the push delivery", func() bool { return received() == 1 })

	// An open SSE stream does not hold up Close.
	req, _ := http.NewRequest(http.MethodGet, "http://"+s.HTTPAddr()+"/events/ce.orders", nil)
	req.Header.Set("Accept", "text/event-stream")
	stream, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Body.Close()
	start := time.Now()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("Close took %v with an SSE stream open", d)
	}

	// Restarted on the same data, the subscription is back.
	s = startNode(t, dir, nil)
	code, list := get(t, "http://"+s.HTTPAddr()+"/subscriptions")
	if code != 200 || !strings.Contains(list, `"name":"to-sink"`) {
		t.Fatalf("after restart: %d %s", code, list)
	}
	postEvent(t, s, "ce.orders", "e-3")
	waitFor(t, "the delivery after restart", func() bool { return received() == 2 })
}

// TestCloudEventsTopicPolicy: the gateway creates topics under the same
// policy as Kafka clients.
func TestCloudEventsTopicPolicy(t *testing.T) {
	s := startNode(t, t.TempDir(), func(c *config.Config) { c.TopicNamePattern = `app\..+` })
	if code := postEvent(t, s, "other", "x"); code != http.StatusForbidden {
		t.Fatalf("POST against the pattern: %d", code)
	}
	if code := postEvent(t, s, "app.events", "x"); code != http.StatusAccepted {
		t.Fatalf("POST within the pattern: %d", code)
	}
}

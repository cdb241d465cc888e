package cloudevents

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
)

// TestSDKSender: the CloudEvents Go SDK's HTTP client publishes in binary
// and structured mode, and a batch built with it is accepted; the events
// read back equal.
func TestSDKSender(t *testing.T) {
	e := newEnv(t)
	c, err := cloudevents.NewClientHTTP()
	if err != nil {
		t.Fatal(err)
	}
	ctx := cloudevents.ContextWithTarget(context.Background(), e.url+"/events/sdk")
	var sent []event.Event
	for i, structured := range []bool{false, true} {
		ev := cloudevents.NewEvent()
		ev.SetID(fmt.Sprintf("sdk-%d", i))
		ev.SetSource("https://example.com/sdk")
		ev.SetType("com.example.sdk")
		ev.SetSubject("subject")
		ev.SetTime(time.Date(2024, 1, 2, 3, 4, 5, 600000000, time.UTC))
		ev.SetExtension("tenant", "acme")
		ev.SetExtension("count", 3)
		if err := ev.SetData(cloudevents.ApplicationJSON, map[string]any{"i": i}); err != nil {
			t.Fatal(err)
		}
		sendCtx := ctx
		if structured {
			sendCtx = binding.WithForceStructured(ctx)
		}
		if res := c.Send(sendCtx, ev); !cloudevents.IsACK(res) {
			t.Fatalf("send (structured %v): %v", structured, res)
		}
		sent = append(sent, ev)
	}
	var batch []event.Event
	for i := 2; i < 4; i++ {
		ev := cloudevents.NewEvent()
		ev.SetID(fmt.Sprintf("sdk-%d", i))
		ev.SetSource("/sdk/batch")
		ev.SetType("com.example.batch")
		_ = ev.SetData("text/plain", fmt.Sprintf("text %d", i))
		batch = append(batch, ev)
	}
	req, err := cehttp.NewHTTPRequestFromEvents(context.Background(), e.url+"/events/sdk", batch)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("batch: %d", resp.StatusCode)
	}
	sent = append(sent, batch...)

	// Read back with the SDK's batch parser.
	r, err := http.Get(e.url + "/events/sdk?group=sdk&wait=0")
	if err != nil {
		t.Fatal(err)
	}
	got, err := cehttp.NewEventsFromHTTPResponse(r)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(sent) {
		t.Fatalf("read %d events, sent %d", len(got), len(sent))
	}
	for i := range sent {
		if got[i].String() != sent[i].String() {
			t.Errorf("event %d:\n%s\nsent:\n%s", i, got[i].String(), sent[i].String())
		}
		if string(got[i].Data()) != string(sent[i].Data()) {
			t.Errorf("event %d data %q, sent %q", i, got[i].Data(), sent[i].Data())
		}
	}
}

// TestSDKReceiver: the SDK's HTTP receiver is a push sink; it sees the
// event as it was published, and its NACK is retried.
func TestSDKReceiver(t *testing.T) {
	e := newEnv(t)
	p, err := cloudevents.NewHTTP()
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var got []event.Event
	h, err := cloudevents.NewHTTPReceiveHandler(context.Background(), p, func(ctx context.Context, ev event.Event) cloudevents.Result {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, ev)
		if len(got) == 1 {
			return cehttp.NewResult(http.StatusServiceUnavailable, "not yet")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	e.createSub(fmt.Sprintf(`{"name":"sdk","topic":"sdkpush","sink":%q,"delivery":{"backoffDelay":"5ms"}}`, srv.URL))

	c, _ := cloudevents.NewClientHTTP()
	ev := cloudevents.NewEvent()
	ev.SetID("push-1")
	ev.SetSource("https://example.com/push")
	ev.SetType("com.example.push")
	ev.SetExtension("quote", `say "100%"`)
	ev.SetExtension("partitionkey", "k")
	_ = ev.SetData(cloudevents.ApplicationJSON, map[string]string{"hello": "world"})
	if res := c.Send(cloudevents.ContextWithTarget(context.Background(), e.url+"/events/sdkpush"), ev); !cloudevents.IsACK(res) {
		t.Fatal(res)
	}
	eventually(t, "the redelivery", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) == 2
	})
	mu.Lock()
	defer mu.Unlock()
	for _, g := range got {
		if g.ID() != "push-1" || g.Source() != ev.Source() || g.Type() != ev.Type() || string(g.Data()) != `{"hello":"world"}` ||
			g.DataContentType() != cloudevents.ApplicationJSON || g.Extensions()["partitionkey"] != "k" {
			t.Fatalf("received %s", g)
		}
		// The SDK receiver does not percent-decode; the HTTP binding
		// encodes '"' and '%'.
		if q := g.Extensions()["quote"]; q != `say %22100%25%22` && q != `say "100%"` {
			t.Fatalf("quote %q", q)
		}
	}
}

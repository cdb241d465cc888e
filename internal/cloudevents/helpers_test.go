package cloudevents

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weirhq/weir/internal/broker"
	"github.com/weirhq/weir/internal/group"
	"github.com/weirhq/weir/internal/kafka"
	"github.com/weirhq/weir/internal/vfs"
)

// env is a node in memory: broker, group coordinator, Kafka listener and
// the gateway on httptest, mounted as the server mounts it.
type env struct {
	t      *testing.T
	fs     vfs.FS
	mem    *vfs.MemFS
	broker broker.Options
	opts   Options

	b      *broker.Broker
	groups *group.Service
	ks     *kafka.Server
	kaddr  string
	gw     *Gateway
	srv    *httptest.Server
	url    string
}

type envOption func(*env)

func withOptions(f func(*Options)) envOption { return func(e *env) { f(&e.opts) } }
func withBroker(f func(*broker.Options)) envOption {
	return func(e *env) { f(&e.broker) }
}
func withFS(wrap func(vfs.FS) vfs.FS) envOption {
	return func(e *env) { e.fs = wrap(e.fs) }
}

func newEnv(t *testing.T, opts ...envOption) *env {
	t.Helper()
	mem := vfs.NewMem()
	e := &env{t: t, mem: mem, fs: mem}
	e.broker = broker.Options{Dir: "/data", AutoCreateTopics: true, DefaultPartitions: 1, Logger: slog.New(slog.DiscardHandler)}
	e.opts = Options{
		Logger:                 slog.New(slog.DiscardHandler),
		CommitInterval:         20 * time.Millisecond,
		PartitionCheckInterval: 50 * time.Millisecond,
		DefaultPollWait:        5 * time.Second,
	}
	for _, o := range opts {
		o(e)
	}
	e.broker.FS = e.fs
	e.start()
	t.Cleanup(e.stop)
	return e
}

func (e *env) start() {
	t := e.t
	t.Helper()
	b, err := broker.Open(e.broker)
	if err != nil {
		t.Fatal(err)
	}
	store, err := kafka.OpenGroupStore(b)
	if err != nil {
		t.Fatal(err)
	}
	groups, err := group.NewService(group.ServiceOptions{Store: store, Config: group.Config{},
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ks, err := kafka.NewServer(kafka.Options{Broker: b, Groups: groups, ClusterID: b.ClusterID(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = ks.Serve(ln) }()
	opts := e.opts
	opts.Broker, opts.Groups = b, groups
	gw, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/events/", gw)
	mux.Handle("/subscriptions", gw)
	mux.Handle("/subscriptions/", gw)
	e.b, e.groups, e.ks, e.kaddr, e.gw = b, groups, ks, ln.Addr().String(), gw
	e.srv = httptest.NewServer(mux)
	e.url = e.srv.URL
}

// stop closes the node in the server's order.
func (e *env) stop() {
	if e.b == nil {
		return
	}
	_ = e.ks.Close()
	_ = e.gw.Close()
	e.srv.CloseClientConnections()
	e.srv.Close()
	e.groups.Close()
	if err := e.b.Close(); err != nil {
		e.t.Logf("broker close: %v", err)
	}
	e.b = nil
}

// restart closes the node cleanly and opens it again on the same data.
func (e *env) restart() {
	e.stop()
	e.start()
}

// kgoClient is a franz-go client on the node.
func (e *env) kgoClient(opts ...kgo.Opt) *kgo.Client {
	e.t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(e.kaddr)}, opts...)...)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(cl.Close)
	return cl
}

// consumeAll reads n records of topic from the start with franz-go.
func (e *env) consumeAll(topic string, n int) []*kgo.Record {
	e.t.Helper()
	cl := e.kgoClient(kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out []*kgo.Record
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			e.t.Fatalf("consumed %d of %d records of %s", len(out), n, topic)
		}
		fs.EachError(func(t string, p int32, err error) { e.t.Logf("fetch %s-%d: %v", t, p, err) })
		out = append(out, fs.Records()...)
	}
	return out
}

// response is a finished HTTP exchange.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decoding %s: %v", r.body, err)
	}
}

// apiErr decodes an error body.
func (r response) apiErr(t *testing.T) apiError {
	t.Helper()
	var ae apiError
	r.json(t, &ae)
	if ae.Status != r.status || ae.Code == "" || ae.Message == "" {
		t.Fatalf("error body %s does not match status %d", r.body, r.status)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("error Content-Type %q", ct)
	}
	return ae
}

// do makes one request with headers given as "Key: value" pairs.
func (e *env) do(method, path string, body []byte, headers ...string) response {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, e.url+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ":")
		req.Header.Add(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

// postBinary posts one binary-mode event.
func (e *env) postBinary(topic, id string, data string, headers ...string) response {
	e.t.Helper()
	var hs []string
	for _, d := range []string{"ce-specversion: 1.0", "ce-id: " + id, "ce-source: /test", "ce-type: test.event"} {
		k, _, _ := strings.Cut(d, ":")
		overridden := false
		for _, h := range headers {
			hk, _, _ := strings.Cut(h, ":")
			overridden = overridden || strings.EqualFold(strings.TrimSpace(hk), k)
		}
		if !overridden {
			hs = append(hs, d)
		}
	}
	return e.do(http.MethodPost, "/events/"+topic, []byte(data), append(hs, headers...)...)
}

func (e *env) mustAccept(r response) ingestResponse {
	e.t.Helper()
	if r.status != http.StatusAccepted {
		e.t.Fatalf("status %d, want 202: %s", r.status, r.body)
	}
	var ir ingestResponse
	r.json(e.t, &ir)
	return ir
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// sink is a push target recording what it receives.
type sink struct {
	mu     sync.Mutex
	got    []received
	handle func(n int, r *http.Request) int // status for the n-th request (1-based)
	n      int
	srv    *httptest.Server
}

type received struct {
	header http.Header
	body   []byte
	at     time.Time
}

func newSink(t *testing.T, handle func(n int, r *http.Request) int) *sink {
	s := &sink{handle: handle}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.n++
		n := s.n
		s.got = append(s.got, received{header: r.Header.Clone(), body: body, at: time.Now()})
		s.mu.Unlock()
		status := http.StatusOK
		if s.handle != nil {
			status = s.handle(n, r)
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *sink) received() []received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]received(nil), s.got...)
}

// ids returns the ce-id of each request received.
func (s *sink) ids() []string {
	var out []string
	for _, r := range s.received() {
		out = append(out, r.header.Get("Ce-Id"))
	}
	return out
}

// createSub creates a subscription, and its topic first if missing
// (subscriptions never create the topic they read), and fails the test
// unless it is 201.
func (e *env) createSub(body string) SubscriptionView {
	e.t.Helper()
	var sub struct {
		Topic string `json:"topic"`
	}
	if err := json.Unmarshal([]byte(body), &sub); err != nil {
		e.t.Fatal(err)
	}
	e.ensureTopic(sub.Topic)
	r := e.do(http.MethodPost, "/subscriptions", []byte(body), "Content-Type: application/json")
	if r.status != http.StatusCreated {
		e.t.Fatalf("create subscription: %d %s", r.status, r.body)
	}
	var v SubscriptionView
	r.json(e.t, &v)
	return v
}

// ensureTopic creates topic (one partition) unless it exists.
func (e *env) ensureTopic(topic string) {
	e.t.Helper()
	if _, err := e.b.Topic(topic); err == nil {
		return
	}
	if _, err := e.b.CreateTopic(topic, 1, nil, false); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) getSub(name string) SubscriptionView {
	e.t.Helper()
	r := e.do(http.MethodGet, "/subscriptions/"+name, nil)
	if r.status != http.StatusOK {
		e.t.Fatalf("get subscription: %d %s", r.status, r.body)
	}
	var v SubscriptionView
	r.json(e.t, &v)
	return v
}

package cloudevents

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/weirhq/weir/internal/broker"
	"github.com/weirhq/weir/internal/group"
)

// Groups is the consumer-group coordinator as the gateway uses it: simple
// (generation -1) commits, committed offsets, and deleting a subscription's
// group. *group.Service implements it.
type Groups interface {
	Commit(ctx context.Context, req group.CommitRequest) ([]error, error)
	Committed(ctx context.Context, groupID string, tps []group.TopicPartition) (map[group.TopicPartition]group.Offset, error)
	Delete(ctx context.Context, groupIDs []string) ([]error, error)
}

// Options configure a Gateway. Zero values take the defaults noted.
type Options struct {
	// Broker holds the topics; required.
	Broker *broker.Broker
	// Groups commits and reads consumer-group offsets; required.
	Groups Groups
	// Store persists subscriptions; default the __weir_subscriptions
	// topic of Broker.
	Store Store
	// Logger; default slog.Default().
	Logger *slog.Logger
	// Schemas frames JSON events for topics whose values are validated
	// (see Schemas); nil stores data as sent, for the gate to judge.
	Schemas Schemas

	// MaxEventBytes bounds one event (data plus attributes); default 1 MiB.
	MaxEventBytes int
	// MaxBatchBytes bounds a batched-mode request body; default 4 MiB.
	MaxBatchBytes int
	// MaxBatchEvents bounds the events of one batched-mode request;
	// default 1000.
	MaxBatchEvents int
	// MaxInflightBytes bounds the request bodies being read, written and
	// made durable at once; past it ingest answers 429. Default 64 MiB.
	MaxInflightBytes int64
	// MaxStreams bounds concurrent long-polls and SSE streams; past it
	// they answer 429. Default 1024.
	MaxStreams int
	// BodyReadTimeout bounds reading one request body; default 30s.
	BodyReadTimeout time.Duration

	// DedupWindow is how long a source+id pair is remembered so that a
	// retried POST does not write the event twice; default 10 minutes,
	// negative disables idempotent ingest.
	DedupWindow time.Duration
	// DedupMaxEntries bounds the pairs remembered; default 200,000.
	DedupMaxEntries int

	// DefaultPollWait and MaxPollWait are the long-poll wait of a pull
	// without, and the most allowed with, a wait parameter; defaults 20s
	// and 60s.
	DefaultPollWait time.Duration
	MaxPollWait     time.Duration
	// MaxPollEvents bounds the events of one pulled batch; default 1000.
	MaxPollEvents int
	// KeepAlive is the SSE comment interval keeping idle streams open;
	// default 15s.
	KeepAlive time.Duration

	// CommitInterval is how often subscriptions and SSE groups commit
	// their progress; default 1s.
	CommitInterval time.Duration
	// PartitionCheckInterval is how often a subscription looks for new
	// partitions and a reader for a deleted topic; default 5s.
	PartitionCheckInterval time.Duration
	// Client sends push deliveries; default an http.Client with pooled
	// connections and no overall timeout (each attempt has its own).
	Client *http.Client

	// Now is the clock; default time.Now.
	Now func() time.Time
}

func (o *Options) fill() error {
	if o.Broker == nil || o.Groups == nil {
		return errors.New("cloudevents: Options.Broker and Options.Groups are required")
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	defD := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&o.MaxEventBytes, 1<<20)
	def(&o.MaxBatchBytes, 4<<20)
	def(&o.MaxBatchEvents, 1000)
	if o.MaxInflightBytes <= 0 {
		o.MaxInflightBytes = 64 << 20
	}
	def(&o.MaxStreams, 1024)
	defD(&o.BodyReadTimeout, 30*time.Second)
	if o.DedupWindow == 0 {
		o.DedupWindow = 10 * time.Minute
	}
	def(&o.DedupMaxEntries, 200000)
	defD(&o.DefaultPollWait, 20*time.Second)
	defD(&o.MaxPollWait, 60*time.Second)
	def(&o.MaxPollEvents, 1000)
	defD(&o.KeepAlive, 15*time.Second)
	defD(&o.CommitInterval, time.Second)
	defD(&o.PartitionCheckInterval, 5*time.Second)
	if o.Client == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = 64
		o.Client = &http.Client{Transport: tr}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return nil
}

// Gateway serves the CloudEvents HTTP API and runs push subscriptions.
type Gateway struct {
	opts Options
	b    *broker.Broker
	log  *slog.Logger

	// ctx ends at Close: long-polls, streams and deliveries stop.
	ctx    context.Context
	cancel context.CancelFunc
	closed atomic.Bool

	inflight limiter
	streams  chan struct{}
	rr       sync.Map // topic → *atomic.Uint32, round-robin partition choice
	dedup    *dedup
	pulls    *pullGroups
	subs     *subscriptions
}

// New loads the stored subscriptions and starts delivering them.
func New(opts Options) (*Gateway, error) {
	if err := opts.fill(); err != nil {
		return nil, err
	}
	if opts.Store == nil {
		st, err := OpenBrokerStore(opts.Broker)
		if err != nil {
			return nil, err
		}
		st.Logger = opts.Logger
		opts.Store = st
	}
	g := &Gateway{opts: opts, b: opts.Broker, log: opts.Logger, streams: make(chan struct{}, opts.MaxStreams)}
	g.ctx, g.cancel = context.WithCancel(context.Background())
	g.inflight.max = opts.MaxInflightBytes
	if opts.DedupWindow > 0 {
		g.dedup = newDedup(opts.DedupWindow, opts.DedupMaxEntries)
	}
	g.pulls = newPullGroups()
	g.subs = newSubscriptions(g)
	if err := g.subs.load(); err != nil {
		g.cancel()
		return nil, err
	}
	return g, nil
}

// Close ends long-polls and streams, stops push deliveries and commits
// their progress. Requests after Close answer 503. The broker and group
// service must still be open.
func (g *Gateway) Close() error {
	if !g.closed.CompareAndSwap(false, true) {
		return nil
	}
	g.cancel()
	g.subs.stopAll()
	return nil
}

// ServeHTTP routes /events/... and /subscriptions[/...].
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if g.closed.Load() {
		g.writeError(w, ErrClosed)
		return
	}
	path := r.URL.Path
	switch {
	case path == "/subscriptions" || path == "/subscriptions/":
		g.serveSubscriptions(w, r)
	case strings.HasPrefix(path, "/subscriptions/"):
		name := path[len("/subscriptions/"):]
		if strings.Contains(name, "/") {
			g.writeError(w, notFound("no route for %s", path))
			return
		}
		g.serveSubscription(w, r, name)
	case strings.HasPrefix(path, "/events/"):
		topic, rest, _ := strings.Cut(path[len("/events/"):], "/")
		if topic == "" {
			g.writeError(w, notFound("name a topic: /events/{topic}"))
			return
		}
		switch rest {
		case "":
			g.serveEvents(w, r, topic)
		case "commit":
			if r.Method != http.MethodPost {
				g.writeError(w, methodNotAllowed(r.Method, "POST"))
				return
			}
			g.serveCommit(w, r, topic)
		default:
			g.writeError(w, notFound("no route for %s", path))
		}
	default:
		g.writeError(w, notFound("no route for %s", path))
	}
}

func (g *Gateway) serveEvents(w http.ResponseWriter, r *http.Request, topic string) {
	switch r.Method {
	case http.MethodPost:
		g.serveIngest(w, r, topic)
	case http.MethodGet:
		if acceptsSSE(r) {
			g.serveSSE(w, r, topic)
		} else {
			g.servePull(w, r, topic)
		}
	case http.MethodOptions:
		// CloudEvents HTTP webhook validation (abuse protection).
		w.Header().Set("Allow", "GET, POST, OPTIONS")
		if origin := r.Header.Get("WebHook-Request-Origin"); origin != "" {
			w.Header().Set("WebHook-Allowed-Origin", origin)
			w.Header().Set("WebHook-Allowed-Rate", "*")
		}
		w.WriteHeader(http.StatusOK)
	default:
		g.writeError(w, methodNotAllowed(r.Method, "GET, POST, OPTIONS"))
	}
}

// readTopic resolves a topic a request reads (pull, SSE, commit,
// subscriptions): reads never create topics, so an unknown one is 404, as
// the CLI answers. The node's internal topics are not served over HTTP.
func (g *Gateway) readTopic(name string) (*broker.Topic, error) {
	if err := broker.ValidateTopicName(name); err != nil {
		return nil, err
	}
	if broker.IsReservedTopic(name) {
		return nil, &apiError{Status: http.StatusForbidden, Code: codeForbidden,
			Message: fmt.Sprintf("topic %q is internal", name)}
	}
	t, err := g.b.Topic(name)
	if errors.Is(err, broker.ErrUnknownTopicOrPartition) {
		return nil, &apiError{Status: http.StatusNotFound, Code: codeUnknownTopic,
			Message: fmt.Sprintf("topic %q does not exist", name)}
	}
	return t, err
}

// writeTopic resolves a topic events are written to, creating it when the
// node auto-creates topics (the broker applies its naming, reserved-name
// and topic policies, as for Kafka clients).
func (g *Gateway) writeTopic(name string) (*broker.Topic, error) {
	t, err := g.b.TopicForWrite(name)
	if errors.Is(err, broker.ErrUnknownTopicOrPartition) {
		return nil, &apiError{Status: http.StatusNotFound, Code: codeUnknownTopic,
			Message: fmt.Sprintf("topic %q does not exist and auto-creation is off", name)}
	}
	return t, err
}

// acquireStream takes a long-lived request slot; false means 429.
func (g *Gateway) acquireStream() bool {
	select {
	case g.streams <- struct{}{}:
		return true
	default:
		return false
	}
}

func (g *Gateway) releaseStream() { <-g.streams }

func tooManyStreams() error {
	return &apiError{Status: http.StatusTooManyRequests, Code: codeBackpressure,
		Message: "too many concurrent long-polls and streams", retryAfter: time.Second}
}

// limiter bounds bytes in flight.
type limiter struct {
	mu   sync.Mutex
	used int64
	max  int64
}

func (l *limiter) acquire(n int64) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.used > 0 && l.used+n > l.max {
		return false
	}
	l.used += n
	return true
}

func (l *limiter) release(n int64) {
	l.mu.Lock()
	l.used -= n
	l.mu.Unlock()
}

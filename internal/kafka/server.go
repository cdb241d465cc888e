package kafka

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/weirhq/weir/internal/broker"
	"github.com/weirhq/weir/internal/group"
	"github.com/weirhq/weir/internal/metrics"
	"github.com/weirhq/weir/internal/txn"
)

// Defaults applied by Options.Defaults to zero-valued fields.
const (
	DefaultMaxFrameBytes  = 100 << 20
	DefaultMaxConnections = 10000
	DefaultIdleTimeout    = 10 * time.Minute
)

// defaultMaxInflight bounds the replies outstanding per connection.
const defaultMaxInflight = 64

// Options configures a Server. The zero value of every field means its
// default; negative values are invalid.
type Options struct {
	// Logger receives connection-level events: protocol errors, limits hit,
	// handler panics. Nil means slog.Default().
	Logger *slog.Logger

	// MaxFrameBytes is the largest request frame accepted, excluding the
	// 4-byte size prefix. A larger (or negative) size closes the connection.
	// Zero means DefaultMaxFrameBytes (100 MiB).
	MaxFrameBytes int32

	// MaxConnections caps concurrently open client connections; a
	// connection accepted past it is closed at once. Zero means
	// DefaultMaxConnections.
	MaxConnections int

	// IdleTimeout closes a connection that completes no request frame
	// within it, including one that sends a partial frame and stalls. It
	// also bounds each response write. Zero means DefaultIdleTimeout.
	IdleTimeout time.Duration

	// Broker is the node's core: topics, partitions, produce and fetch.
	// Required.
	Broker *broker.Broker

	// Groups is the consumer-group coordinator. Required.
	Groups *group.Service

	// Txns is the transaction coordinator. Nil refuses transactions:
	// InitProducerId with a transactional id and transactional Produce
	// answer TRANSACTIONAL_ID_AUTHORIZATION_FAILED, and so do the
	// transaction APIs.
	Txns *txn.Service

	// ClusterID is the cluster id returned by Metadata and DescribeCluster.
	ClusterID string

	// NodeID is this broker's node id.
	NodeID int32

	// AdvertisedHost and AdvertisedPort are the address clients are told to
	// connect to in Metadata. Empty or zero means "the address the client
	// connected to".
	AdvertisedHost string
	AdvertisedPort int32

	// Metrics receives request, connection and per-topic traffic metrics;
	// nil records into unregistered metrics.
	Metrics *metrics.Registry
}

// Defaults returns o with every zero-valued field that has a default set to
// it.
func (o Options) Defaults() Options {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.MaxFrameBytes == 0 {
		o.MaxFrameBytes = DefaultMaxFrameBytes
	}
	if o.MaxConnections == 0 {
		o.MaxConnections = DefaultMaxConnections
	}
	if o.IdleTimeout == 0 {
		o.IdleTimeout = DefaultIdleTimeout
	}
	return o
}

// Validate reports the first invalid field of o, which is expected to have
// had Defaults applied.
func (o Options) Validate() error {
	switch {
	case o.Broker == nil:
		return errors.New("kafka: Options.Broker is required")
	case o.Groups == nil:
		return errors.New("kafka: Options.Groups is required")
	case o.MaxFrameBytes < 64:
		return fmt.Errorf("kafka: MaxFrameBytes %d below 64", o.MaxFrameBytes)
	case o.MaxConnections < 1:
		return fmt.Errorf("kafka: MaxConnections %d below 1", o.MaxConnections)
	case o.IdleTimeout < 0:
		return fmt.Errorf("kafka: negative IdleTimeout %v", o.IdleTimeout)
	case o.NodeID < 0:
		return fmt.Errorf("kafka: negative NodeID %d", o.NodeID)
	case o.AdvertisedPort < 0 || o.AdvertisedPort > 65535:
		return fmt.Errorf("kafka: AdvertisedPort %d out of range", o.AdvertisedPort)
	}
	return nil
}

// Server serves the Kafka protocol on the listeners given to Serve. Request
// handlers are methods on *Server and reach the broker through its options.
type Server struct {
	opts Options
	log  *slog.Logger
	m    *serverMetrics

	// extra holds test-only APIs that take precedence over the package
	// table; tests set it before Serve.
	extra map[int16]api
	// maxInflight bounds the replies outstanding per connection.
	maxInflight int

	mu        sync.Mutex
	closed    bool
	listeners map[net.Listener]struct{}
	conns     map[*Conn]struct{}
	wg        sync.WaitGroup // one per open connection
}

// NewServer returns a Server for opts, with defaults applied.
func NewServer(opts Options) (*Server, error) {
	opts = opts.Defaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	return &Server{
		opts:        opts,
		log:         opts.Logger,
		m:           newServerMetrics(opts.Metrics),
		maxInflight: defaultMaxInflight,
		listeners:   make(map[net.Listener]struct{}),
		conns:       make(map[*Conn]struct{}),
	}, nil
}

// Serve accepts connections on ln and serves each on its own goroutines until
// Close is called, then returns nil. It returns a non-nil error if ln fails for
// another reason. Serve closes ln on return. Several listeners may be served at
// once.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = ln.Close()
		return nil
	}
	s.listeners[ln] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, ln)
		s.mu.Unlock()
		_ = ln.Close()
	}()

	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.isClosed() {
				return nil
			}
			if errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("kafka: accept: %w", err)
			}
			// Out of file descriptors and the like: wait, as
			// net/http does, instead of spinning.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.log.Warn("kafka: accept failed; retrying", "err", err, "backoff", backoff)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		s.serveConn(nc)
	}
}

// serveConn starts serving nc, or closes it if the server is closed or at
// MaxConnections.
func (s *Server) serveConn(nc net.Conn) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = nc.Close()
		return
	}
	if len(s.conns) >= s.opts.MaxConnections {
		s.mu.Unlock()
		s.log.Warn("kafka: connection limit reached; closing new connection",
			"remote", nc.RemoteAddr().String(), "max_connections", s.opts.MaxConnections)
		s.m.rejected.Inc()
		_ = nc.Close()
		return
	}
	c := newConn(s, nc)
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	s.m.accepted.Inc()
	s.m.conns.Inc()

	go func() {
		defer s.wg.Done()
		defer s.m.conns.Dec()
		c.run()
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
	}()
}

// Close stops every Serve, closes all connections and waits for their
// goroutines to finish. Deferred replies are abandoned: their wait functions
// see the connection's Context done.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	for ln := range s.listeners {
		_ = ln.Close()
	}
	for c := range s.conns {
		c.close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// numConns returns the number of open connections.
func (s *Server) numConns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

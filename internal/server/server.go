// Package server is Weir's composition root: it builds the broker and the
// protocol adapters from a config.Config, owns the listeners, and starts
// and stops them in order. Only cmd/weir and the public embedded package
// import it.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/weirhq/weir/internal/archive"
	"github.com/weirhq/weir/internal/broker"
	"github.com/weirhq/weir/internal/cloudevents"
	"github.com/weirhq/weir/internal/commitlog"
	"github.com/weirhq/weir/internal/config"
	"github.com/weirhq/weir/internal/group"
	"github.com/weirhq/weir/internal/kafka"
	"github.com/weirhq/weir/internal/metrics"
	"github.com/weirhq/weir/internal/schema"
	"github.com/weirhq/weir/internal/txn"
	"github.com/weirhq/weir/internal/vfs"
)

// Server is a running Weir node.
type Server struct {
	cfg    config.Config
	log    *slog.Logger
	broker *broker.Broker
	groups *group.Service
	// txns is the transaction coordinator, on __transaction_state.
	txns  *txn.Service
	kafka *kafka.Server
	kln   net.Listener
	http  *http.Server
	hln   net.Listener
	// registry is the schema registry and its listener.
	registry *registryServer
	// events is the CloudEvents gateway, served under /events/ and
	// /subscriptions on the HTTP listener.
	events *cloudevents.Gateway
	// archive is the tiered storage, nil without --archive.
	archive *archive.Archive

	metrics    *metrics.Registry
	collectors []prometheus.Collector // scrape-time readers of broker and group state
	kafkaUp    atomic.Bool            // the Kafka listener is accepting
	closing    atomic.Bool

	// started are the stages running, in start order.
	started    []stage
	advertised string // host:port clients are told in Metadata

	wg       sync.WaitGroup
	serveErr chan error
	once     sync.Once
	closeErr error
}

// Options adds what a Config does not hold.
type Options struct {
	// Logger; default slog.Default().
	Logger *slog.Logger
	// FS; default the OS filesystem.
	FS vfs.FS
	// Metrics is the registry /metrics serves; default a new one with
	// the Go runtime and process collectors.
	Metrics *metrics.Registry
	// Environ is the process environment as KEY=VALUE pairs, read for
	// the AWS_* settings of an s3:// archive; only cmd/weir reads the
	// real one.
	Environ []string
	// ArchiveInterval is how often the uploader looks for segments to
	// archive; default broker.DefaultRemoteInterval (tests shorten it).
	ArchiveInterval time.Duration
}

// nodeID is this node's id in Kafka's metadata (Metadata, the partition
// leader metric). A single node is node 0; clusters will assign ids.
const nodeID int32 = 0

// stage is one component of the node: started in order by Start, stopped
// in reverse by Close (or by Start itself when a later stage fails).
type stage struct {
	name  string
	start func() error
	stop  func() error // nil when there is nothing to stop
}

// stages lists the node's components in start order. Each start may use
// what the stages before it built. The internal topics (consumer offsets,
// transaction state, schemas, subscriptions) are created and replayed by their stages before
// any listener accepts a client.
func (s *Server) stages(cfg config.Config, opts Options) []stage {
	var (
		reg    *schema.Registry
		policy broker.TopicPolicy
	)
	var store broker.RemoteStorage
	return []stage{
		{name: "archive", start: func() error {
			if cfg.Archive == "" {
				return nil
			}
			a, err := openArchive(cfg.Archive, opts.Environ, opts.FS, opts.Logger)
			if err != nil {
				return err
			}
			s.archive, store = a, archiveStore{a}
			return nil
		}, stop: func() error {
			if s.archive == nil {
				return nil
			}
			return s.archive.Backend().Close()
		}},

		{name: "broker", start: func() error {
			dur, err := durability(cfg.Durability)
			if err != nil {
				return err
			}
			b, err := broker.Open(broker.Options{
				FS:                      opts.FS,
				Dir:                     cfg.DataDir,
				AutoCreateTopics:        cfg.AutoCreateTopics,
				DefaultPartitions:       cfg.DefaultPartitions,
				Durability:              dur,
				SyncInterval:            cfg.SyncInterval,
				SegmentBytes:            cfg.SegmentBytes,
				RetentionMs:             cfg.RetentionMs,
				RetentionBytes:          cfg.RetentionBytes,
				MaxMessageBytes:         cfg.MaxMessageBytes,
				RetentionCheckInterval:  cfg.LogRetentionCheckInterval,
				CleanerBackoff:          cfg.LogCleanerBackoff,
				CleanerDedupeBufferSize: cfg.LogCleanerDedupeBufferSize,
				CleanerIOBytesPerSecond: cfg.LogCleanerIOMaxBytesPerSecond,
				InternalSegmentBytes:    cfg.InternalSegmentBytes,
				Logger:                  opts.Logger,
				LogMetrics:              newLogMetrics(opts.Metrics),
				Metrics:                 opts.Metrics,
				Remote:                  store,
				RemoteInterval:          opts.ArchiveInterval,
				RemoteCacheBytes:        cfg.RemoteCacheBytes,
			})
			if errors.Is(err, broker.ErrDirLocked) {
				return err // one line that already names the directory and its holder
			}
			if err != nil {
				return fmt.Errorf("server: open data dir %s: %w", cfg.DataDir, err)
			}
			s.broker = b
			return nil
		}, stop: func() error { return s.broker.Close() }},

		{name: "consumer groups", start: func() error {
			store, err := kafka.OpenGroupStore(s.broker)
			if err != nil {
				return err
			}
			s.groups, err = group.NewService(group.ServiceOptions{
				Store:  store,
				Logger: opts.Logger,
				Config: group.Config{
					MinSessionTimeout:     cfg.GroupMinSessionTimeout,
					MaxSessionTimeout:     cfg.GroupMaxSessionTimeout,
					InitialRebalanceDelay: cfg.GroupInitialRebalanceDelay,
					OffsetsRetention:      cfg.OffsetsRetention,
				},
			})
			if err != nil {
				return fmt.Errorf("server: load consumer groups: %w", err)
			}
			return nil
		}, stop: func() error { s.groups.Close(); return nil }},

		// The transaction coordinator: its state replayed from
		// __transaction_state, the markers of transactions prepared but
		// not completed written again. Stopped after the Kafka listener.
		{name: "transactions", start: func() error {
			l, err := s.broker.OpenInternalLog(broker.TransactionStateTopic)
			if err != nil {
				return fmt.Errorf("server: open %s: %w", broker.TransactionStateTopic, err)
			}
			s.txns, err = txn.NewService(txn.ServiceOptions{
				Store:       kafka.NewTxnStore(l),
				ProducerIDs: s.broker,
				Markers:     kafka.TxnMarkers{W: s.broker},
				Offsets:     kafka.TxnOffsets{Groups: s.groups},
				Config: txn.Config{MaxTimeout: cfg.TransactionMaxTimeout, IDExpiration: cfg.TransactionalIDExpiration,
					MaxPartitions: cfg.TransactionMaxPartitions},
				Logger:  opts.Logger,
				Metrics: opts.Metrics,
			})
			if err != nil {
				return fmt.Errorf("server: load transactions: %w", err)
			}
			return nil
		}, stop: func() error { s.txns.Close(); return nil }},

		{name: "schema registry", start: func() error {
			var err error
			if reg, err = openRegistry(s.broker, opts.Logger); err != nil {
				return err
			}
			if policy, err = topicPolicy(cfg, reg); err != nil {
				return err
			}
			// Installed in the broker's write gate: every write path
			// (Kafka, HTTP, future ones) is validated and vetted alike.
			s.broker.SetRecordValidator(reg)
			s.broker.SetTopicPolicy(policy)
			return nil
		}},

		{name: "metrics", start: func() error {
			s.collectors = []prometheus.Collector{newPartitionCollector(s.broker, nodeID), newGroupCollector(s.groups, s.broker)}
			opts.Metrics.Register(s.collectors...)
			return nil
		}, stop: func() error { s.unregister(); return nil }},

		// Stopped after every listener below: their goroutines are done.
		{name: "serve goroutines", start: func() error { return nil }, stop: func() error { s.wg.Wait(); return nil }},

		{name: "http", start: func() error {
			events, err := cloudevents.New(cloudevents.Options{Broker: s.broker, Groups: s.groups, Logger: opts.Logger, Schemas: reg})
			if err != nil {
				return err
			}
			s.events = events
			mux := s.newHTTPMux()
			s.addArchiveRoutes(mux)
			mux.Handle("/events/", events)
			mux.Handle("/subscriptions", events)
			mux.Handle("/subscriptions/", events)
			if err := s.startHTTP(cfg.HTTPAddr, mux); err != nil {
				_ = events.Close()
				return err
			}
			return nil
		}, stop: func() error {
			// The gateway first: it ends long-polls and SSE streams, which
			// would hold up the HTTP shutdown, and commits push progress
			// while the group coordinator is still up.
			return errors.Join(s.events.Close(), s.stopHTTP())
		}},

		{name: "registry listener", start: func() error { return s.startRegistry(cfg.RegistryAddr, reg) }, stop: s.stopRegistry},

		{name: "kafka", start: func() error { return s.startKafka(cfg, opts) }, stop: func() error { return s.kafka.Close() }},
	}
}

// Start validates cfg, opens the data directory, binds the listeners and
// starts serving, stage by stage; when a stage fails, the ones started
// are stopped in reverse. Close stops it.
func Start(cfg config.Config, opts Options) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.FS == nil {
		opts.FS = vfs.OS()
	}
	if opts.Metrics == nil {
		opts.Metrics = metrics.New()
	}
	s := &Server{cfg: cfg, log: opts.Logger, metrics: opts.Metrics, serveErr: make(chan error, 2)}
	for _, st := range s.stages(cfg, opts) {
		if err := st.start(); err != nil {
			return nil, errors.Join(err, s.stop())
		}
		s.started = append(s.started, st)
	}
	b := s.broker
	s.log.Info("weir: serving", "kafka", s.kln.Addr().String(), "advertised", s.advertised,
		"http", s.hln.Addr().String(), "registry", s.RegistryAddr(), "data_dir", cfg.DataDir, "durability", cfg.Durability, "topics", len(b.Topics()))
	return s, nil
}

// stop stops the started stages in reverse order, joining their errors.
func (s *Server) stop() error {
	var errs []error
	for i := len(s.started) - 1; i >= 0; i-- {
		if st := s.started[i]; st.stop != nil {
			if err := st.stop(); err != nil {
				errs = append(errs, fmt.Errorf("server: stop %s: %w", st.name, err))
			}
		}
	}
	s.started = nil
	return errors.Join(errs...)
}

// startKafka binds the Kafka listener and serves the protocol on it.
func (s *Server) startKafka(cfg config.Config, opts Options) error {
	ln, err := net.Listen("tcp", cfg.KafkaAddr)
	if err != nil {
		return fmt.Errorf("server: listen on kafka address %s: %w", cfg.KafkaAddr, err)
	}
	host, port, err := advertised(cfg.AdvertisedKafkaAddr, ln.Addr())
	if err != nil {
		_ = ln.Close()
		return err
	}
	ks, err := kafka.NewServer(kafka.Options{
		Logger:         opts.Logger,
		Broker:         s.broker,
		Groups:         s.groups,
		Txns:           s.txns,
		ClusterID:      s.broker.ClusterID(),
		NodeID:         nodeID,
		AdvertisedHost: host,
		AdvertisedPort: port,
		Metrics:        opts.Metrics,
	})
	if err != nil {
		_ = ln.Close()
		return err
	}
	s.kln, s.kafka = ln, ks
	s.advertised = net.JoinHostPort(host, strconv.Itoa(int(port)))
	s.kafkaUp.Store(true)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		err := ks.Serve(ln)
		s.kafkaUp.Store(false)
		if err != nil {
			s.reportServeErr(err)
		}
	}()
	return nil
}

// HTTPAddr returns the bound HTTP listener address (/metrics, /healthz,
// /readyz).
func (s *Server) HTTPAddr() string { return s.hln.Addr().String() }

// unregister removes the scrape-time collectors, which read the broker
// and groups, from the registry.
func (s *Server) unregister() {
	for _, c := range s.collectors {
		s.metrics.Unregister(c)
	}
}

// Broker returns the node's broker (for in-process use and tests).
func (s *Server) Broker() *broker.Broker { return s.broker }

// KafkaAddr returns the bound Kafka listener address.
func (s *Server) KafkaAddr() string { return s.kln.Addr().String() }

// Wait blocks until ctx ends or a listener fails, then closes the server.
func (s *Server) Wait(ctx context.Context) error {
	var err error
	select {
	case <-ctx.Done():
	case err = <-s.serveErr:
		s.log.Error("weir: listener failed", "err", err)
	}
	return errors.Join(err, s.Close())
}

// Close stops the listeners, waits for connections to finish and closes
// the broker cleanly (so the next start is fast): the stages in reverse.
func (s *Server) Close() error {
	s.once.Do(func() {
		start := time.Now()
		s.closing.Store(true) // /readyz fails from now on
		s.closeErr = s.stop()
		s.log.Info("weir: stopped", "took", time.Since(start).Round(time.Millisecond))
	})
	return s.closeErr
}

func durability(d config.Durability) (commitlog.Durability, error) {
	switch d {
	case config.DurabilityAlways:
		return commitlog.Always, nil
	case config.DurabilityInterval:
		return commitlog.Interval, nil
	case config.DurabilityNever:
		return commitlog.Never, nil
	}
	return 0, fmt.Errorf("server: unknown durability %q", d)
}

// advertised derives the address put in Metadata: the configured one, or
// the bound listener (with 0.0.0.0/:: replaced by loopback).
func advertised(cfgAddr string, bound net.Addr) (string, int32, error) {
	addr := cfgAddr
	if addr == "" {
		addr = bound.String()
	}
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("server: advertised address %q: %w", addr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port <= 0 || port > 65535 {
		return "", 0, fmt.Errorf("server: advertised address %q: bad port", addr)
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return host, int32(port), nil
}

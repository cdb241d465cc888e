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

	"github.com/weirhq/weir/internal/broker"
	"github.com/weirhq/weir/internal/cloudevents"
	"github.com/weirhq/weir/internal/commitlog"
	"github.com/weirhq/weir/internal/config"
	"github.com/weirhq/weir/internal/group"
	"github.com/weirhq/weir/internal/kafka"
	"github.com/weirhq/weir/internal/metrics"
	"github.com/weirhq/weir/internal/vfs"
)

// Server is a running Weir node.
type Server struct {
	cfg    config.Config
	log    *slog.Logger
	broker *broker.Broker
	groups *group.Service
	kafka  *kafka.Server
	kln    net.Listener
	http   *http.Server
	hln    net.Listener
	// registry is the schema registry and its listener.
	registry *registryServer
	// events is the CloudEvents gateway, served under /events/ and
	// /subscriptions on the HTTP listener.
	events *cloudevents.Gateway

	metrics    *metrics.Registry
	collectors []prometheus.Collector // scrape-time readers of broker and group state
	kafkaUp    atomic.Bool            // the Kafka listener is accepting
	closing    atomic.Bool

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
}

// Start validates cfg, opens the data directory, binds the listeners and
// starts serving. Close stops it.
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
	dur, err := durability(cfg.Durability)
	if err != nil {
		return nil, err
	}
	b, err := broker.Open(broker.Options{
		FS:                opts.FS,
		Dir:               cfg.DataDir,
		AutoCreateTopics:  cfg.AutoCreateTopics,
		DefaultPartitions: cfg.DefaultPartitions,
		Durability:        dur,
		SyncInterval:      cfg.SyncInterval,
		SegmentBytes:      cfg.SegmentBytes,
		RetentionMs:       cfg.RetentionMs,
		RetentionBytes:    cfg.RetentionBytes,
		MaxMessageBytes:   cfg.MaxMessageBytes,
		Logger:            opts.Logger,
		LogMetrics:        newLogMetrics(opts.Metrics),
	})
	if errors.Is(err, broker.ErrDirLocked) {
		return nil, err // one line that already names the directory and its holder
	}
	if err != nil {
		return nil, fmt.Errorf("server: open data dir %s: %w", cfg.DataDir, err)
	}
	s := &Server{cfg: cfg, log: opts.Logger, broker: b, metrics: opts.Metrics, serveErr: make(chan error, 2)}
	store, err := kafka.OpenGroupStore(b)
	if err != nil {
		_ = b.Close()
		return nil, err
	}
	delay := cfg.GroupInitialRebalanceDelay
	if delay == 0 {
		delay = -1 // group.Config reads 0 as "default"
	}
	groups, err := group.NewService(group.ServiceOptions{
		Store:  store,
		Logger: opts.Logger,
		Config: group.Config{
			MinSessionTimeout:     cfg.GroupMinSessionTimeout,
			MaxSessionTimeout:     cfg.GroupMaxSessionTimeout,
			InitialRebalanceDelay: delay,
			OffsetsRetention:      cfg.OffsetsRetention,
		},
	})
	if err != nil {
		_ = b.Close()
		return nil, fmt.Errorf("server: load consumer groups: %w", err)
	}
	s.groups = groups
	reg, err := openRegistry(b, opts.Logger)
	if err != nil {
		groups.Close()
		_ = b.Close()
		return nil, err
	}
	policy, err := topicPolicy(cfg, reg)
	if err != nil {
		groups.Close()
		_ = b.Close()
		return nil, err
	}

	ln, err := net.Listen("tcp", cfg.KafkaAddr)
	if err != nil {
		groups.Close()
		_ = b.Close()
		return nil, fmt.Errorf("server: listen on kafka address %s: %w", cfg.KafkaAddr, err)
	}
	s.kln = ln
	host, port, err := advertised(cfg.AdvertisedKafkaAddr, ln.Addr())
	if err != nil {
		_ = ln.Close()
		groups.Close()
		_ = b.Close()
		return nil, err
	}
	ks, err := kafka.NewServer(kafka.Options{
		Logger:         opts.Logger,
		Broker:         b,
		Groups:         groups,
		ClusterID:      b.ClusterID(),
		NodeID:         0,
		AdvertisedHost: host,
		AdvertisedPort: port,
		Metrics:        opts.Metrics,
		Schemas:        reg,
		TopicPolicy:    policy,
		InternalTopics: []string{SchemasTopic, cloudevents.SubscriptionsTopic},
	})
	if err != nil {
		_ = ln.Close()
		groups.Close()
		_ = b.Close()
		return nil, err
	}
	s.kafka = ks
	s.collectors = []prometheus.Collector{newPartitionCollector(b, 0), newGroupCollector(groups, b)}
	opts.Metrics.Register(s.collectors...)
	events, err := cloudevents.New(cloudevents.Options{Broker: b, Groups: groups, Logger: opts.Logger, TopicPolicy: policy})
	if err != nil {
		s.unregister()
		_ = ln.Close()
		groups.Close()
		_ = b.Close()
		return nil, err
	}
	s.events = events
	mux := s.newHTTPMux()
	mux.Handle("/events/", events)
	mux.Handle("/subscriptions", events)
	mux.Handle("/subscriptions/", events)
	if err := s.startHTTP(cfg.HTTPAddr, mux); err != nil {
		_ = events.Close()
		s.unregister()
		_ = ln.Close()
		groups.Close()
		_ = b.Close()
		return nil, err
	}
	if err := s.startRegistry(cfg.RegistryAddr, reg); err != nil {
		_ = events.Close()
		_ = s.stopHTTP()
		s.unregister()
		_ = ln.Close()
		groups.Close()
		_ = b.Close()
		return nil, err
	}
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
	s.log.Info("weir: serving", "kafka", ln.Addr().String(), "advertised", net.JoinHostPort(host, strconv.Itoa(int(port))),
		"http", s.hln.Addr().String(), "registry", s.RegistryAddr(), "data_dir", cfg.DataDir, "durability", cfg.Durability, "topics", len(b.Topics()))
	return s, nil
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
// the broker cleanly (so the next start is fast).
func (s *Server) Close() error {
	s.once.Do(func() {
		start := time.Now()
		s.closing.Store(true) // /readyz fails from now on
		err1 := s.kafka.Close()
		// The gateway first: it ends long-polls and SSE streams, which
		// would hold up the HTTP shutdown, and commits push progress
		// while the group coordinator is still up.
		errEvents := s.events.Close()
		errHTTP := s.stopHTTP()
		errRegistry := s.stopRegistry()
		s.wg.Wait()
		s.unregister()
		s.groups.Close()
		err2 := s.broker.Close()
		s.closeErr = errors.Join(err1, errEvents, errHTTP, errRegistry, err2)
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

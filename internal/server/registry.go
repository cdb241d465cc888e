package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"time"

	"github.com/weirhq/weir/internal/broker"
	"github.com/weirhq/weir/internal/config"
	"github.com/weirhq/weir/internal/schema"
)

// registryServer is the schema registry and its own HTTP listener
// (Confluent clients expect the API at the root of its address).
type registryServer struct {
	reg  *schema.Registry
	ln   net.Listener
	http *http.Server
}

// openRegistry replays _schemas into a registry.
func openRegistry(b *broker.Broker, log *slog.Logger) (*schema.Registry, error) {
	store, err := openSchemaStore(b)
	if err != nil {
		return nil, err
	}
	reg, err := schema.Open(schema.Options{Store: store, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("server: load schema registry: %w", err)
	}
	return reg, nil
}

// startRegistry binds the registry listener on addr and serves the REST
// API on it.
func (s *Server) startRegistry(addr string, reg *schema.Registry) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("server: listen on registry address %s: %w", addr, err)
	}
	srv := &http.Server{
		Handler:           schema.Handler(reg, schema.HandlerOptions{Logger: s.log}),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute, // bodies are bounded in size, and so in time
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	s.registry = &registryServer{reg: reg, ln: ln, http: srv}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.reportServeErr(fmt.Errorf("server: schema registry: %w", err))
		}
	}()
	return nil
}

// stopRegistry lets in-flight registry requests finish (up to
// httpShutdownTimeout), then closes the listener.
func (s *Server) stopRegistry() error {
	if s.registry == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), httpShutdownTimeout)
	defer cancel()
	if err := s.registry.http.Shutdown(ctx); err != nil {
		return errors.Join(err, s.registry.http.Close())
	}
	return nil
}

// RegistryAddr returns the bound schema registry listener address.
func (s *Server) RegistryAddr() string { return s.registry.ln.Addr().String() }

// Registry returns the node's schema registry (for in-process use and
// tests).
func (s *Server) Registry() *schema.Registry { return s.registry.reg }

// topicPolicy builds the broker-level topic policy from cfg: a naming
// pattern and a required value schema. It returns nil when neither is set.
func topicPolicy(cfg config.Config, reg *schema.Registry) (broker.TopicPolicy, error) {
	var pattern *regexp.Regexp
	if cfg.TopicNamePattern != "" {
		re, err := regexp.Compile(`^(?:` + cfg.TopicNamePattern + `)$`)
		if err != nil {
			return nil, fmt.Errorf("server: topic-name-pattern: %w", err)
		}
		pattern = re
	}
	if pattern == nil && !cfg.RequireTopicSchema {
		return nil, nil
	}
	return func(name string, _ map[string]string) error {
		if pattern != nil && !pattern.MatchString(name) {
			return fmt.Errorf("%w: topic name %q does not match the pattern %q", broker.ErrPolicyViolation, name, cfg.TopicNamePattern)
		}
		if cfg.RequireTopicSchema {
			if _, err := reg.GetVersion(name+"-value", "latest", false); err != nil {
				return fmt.Errorf("%w: topic %q needs a schema registered under subject %q before it is created", broker.ErrPolicyViolation, name, name+"-value")
			}
		}
		return nil
	}, nil
}

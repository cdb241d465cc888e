package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"
)

// httpShutdownTimeout bounds how long Close waits for in-flight HTTP
// requests (a scrape, a health check) before cutting them off.
const httpShutdownTimeout = 5 * time.Second

// newHTTPMux returns the node's HTTP routes: /metrics, /healthz, /readyz.
// Later components (CloudEvents, console) add theirs to the same mux.
func (s *Server) newHTTPMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", s.metrics.Handler())
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", s.serveReadyz)
	mux.HandleFunc("GET /readyz/{check}", s.serveReadyz)
	return mux
}

// serveReadyz answers 200 when the node can serve clients (storage open
// and healthy, Kafka listener accepting, archive uploads not lagging) and
// 503 otherwise, listing each check in the style of Kubernetes' own
// /readyz: /readyz/NAME runs one check, ?exclude=NAME (repeatable) leaves
// one out.
func (s *Server) serveReadyz(w http.ResponseWriter, r *http.Request) {
	checks := s.readiness()
	only := r.PathValue("check")
	excluded := map[string]bool{}
	for _, name := range r.URL.Query()["exclude"] {
		excluded[name] = true
	}
	ok, found := true, only == ""
	var b strings.Builder
	for _, c := range checks {
		switch {
		case only != "" && c.name != only:
			continue
		case excluded[c.name]:
			fmt.Fprintf(&b, "[+]%s excluded: ok\n", c.name)
		case c.err != nil:
			ok = false
			fmt.Fprintf(&b, "[-]%s failed: %v\n", c.name, c.err)
		default:
			fmt.Fprintf(&b, "[+]%s ok\n", c.name)
		}
		found = true
	}
	if !found {
		http.Error(w, fmt.Sprintf("no readiness check %q", only), http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if ok {
		b.WriteString("readyz check passed\n")
	} else {
		w.WriteHeader(http.StatusServiceUnavailable)
		b.WriteString("readyz check failed\n")
	}
	_, _ = w.Write([]byte(b.String()))
}

type readyCheck struct {
	name string
	err  error
}

// maxFailedPartitions bounds the failed partitions named in a readiness
// answer.
const maxFailedPartitions = 5

// readiness runs the readiness checks.
func (s *Server) readiness() []readyCheck {
	storage := readyCheck{name: "storage"}
	if s.closing.Load() {
		storage.err = errors.New("shutting down")
	} else {
		var failed []string
		n := 0
		for _, t := range s.broker.Topics() {
			for _, p := range t.Partitions() {
				if err := p.Err(); err != nil {
					if n < maxFailedPartitions {
						failed = append(failed, fmt.Sprintf("%s-%d: %v", t.Name, p.Index(), err))
					}
					n++
				}
			}
		}
		if n > maxFailedPartitions {
			failed = append(failed, fmt.Sprintf("and %d more", n-maxFailedPartitions))
		}
		if n > 0 {
			storage.err = fmt.Errorf("%d partition logs failed: %s", n, strings.Join(failed, "; "))
		}
	}
	kafka := readyCheck{name: "kafka-listener"}
	if !s.kafkaUp.Load() {
		kafka.err = errors.New("not accepting connections")
	}
	checks := []readyCheck{storage, kafka}
	if s.archive != nil && s.cfg.ArchiveMaxLag > 0 {
		checks = append(checks, s.archiveReadiness(s.cfg.ArchiveMaxLag))
	}
	return checks
}

// archiveReadiness fails when a sealed segment of a tiered topic has
// waited longer than maxLag for upload: the object store is down or too
// slow, and local disk keeps segments past local retention meanwhile.
func (s *Server) archiveReadiness(maxLag time.Duration) readyCheck {
	c := readyCheck{name: "archive"}
	n, waited, lastErr := s.broker.ArchiveHealth()
	if n == 0 || waited <= maxLag {
		return c
	}
	msg := fmt.Sprintf("%d sealed segments wait for upload, the oldest for %v (more than %v)", n, waited.Round(time.Second), maxLag)
	if lastErr != nil {
		msg += "; last error: " + strings.ReplaceAll(lastErr.Error(), "\n", " ")
	}
	c.err = errors.New(msg)
	return c
}

// startHTTP binds the HTTP listener and starts serving mux on it.
func (s *Server) startHTTP(addr string, mux http.Handler) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("server: listen on http address %s: %w", addr, err)
	}
	s.hln = ln
	s.http = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := s.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.reportServeErr(fmt.Errorf("server: http: %w", err))
		}
	}()
	return nil
}

// stopHTTP lets in-flight requests finish (up to httpShutdownTimeout),
// then closes the HTTP server.
func (s *Server) stopHTTP() error {
	if s.http == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), httpShutdownTimeout)
	defer cancel()
	if err := s.http.Shutdown(ctx); err != nil {
		return errors.Join(err, s.http.Close())
	}
	return nil
}

// reportServeErr hands a listener failure to Wait without blocking: the
// first failure is enough to stop the node.
func (s *Server) reportServeErr(err error) {
	select {
	case s.serveErr <- err:
	default:
		s.log.Error("weir: listener failed", "err", err)
	}
}

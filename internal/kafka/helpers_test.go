package kafka

import (
	"bytes"
	"encoding/binary"
	"errors"
	"github.com/weirhq/weir/internal/broker"
	"github.com/weirhq/weir/internal/group"
	"github.com/weirhq/weir/internal/vfs"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// logSink collects a test server's log output and mirrors it to the test.
type logSink struct {
	t   testing.TB
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logSink) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Write(p)
	return l.t.Output().Write(p)
}

// contains reports whether the log so far holds substr.
func (l *logSink) contains(substr string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Contains(l.buf.String(), substr)
}

// testServer is a Server serving on 127.0.0.1:0.
type testServer struct {
	*Server
	addr string
	logs *logSink
	done chan error // Serve's result
}

// newTestServer returns an unstarted Server logging to a logSink.
func newTestServer(t testing.TB, opts Options) (*Server, *logSink) {
	t.Helper()
	logs := &logSink{t: t}
	opts.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if opts.Broker == nil {
		opts.Broker, opts.Groups = testBackend(t)
	}
	s, err := NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	return s, logs
}

// startServer starts a Server for opts on 127.0.0.1:0, after letting setup
// adjust it (test-only APIs, limits). It is closed when the test ends.
func startServer(t testing.TB, opts Options, setup ...func(*Server)) *testServer {
	t.Helper()
	s, logs := newTestServer(t, opts)
	for _, f := range setup {
		f(s)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{Server: s, addr: ln.Addr().String(), logs: logs, done: make(chan error, 1)}
	go func() { ts.done <- s.Serve(ln) }()
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if err := <-ts.done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return ts
}

// waitFor polls cond until it holds, failing the test after 10s.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// rawClient speaks the framing by hand over one TCP connection.
type rawClient struct {
	t    testing.TB
	nc   net.Conn
	corr int32
}

func dial(t testing.TB, addr string) *rawClient {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = nc.Close() })
	return &rawClient{t: t, nc: nc}
}

// encodeRequest returns req as a size-prefixed frame with client id "test".
func encodeRequest(req kmsg.Request, corr int32) []byte {
	return kmsg.NewRequestFormatter(kmsg.FormatterClientID("test")).AppendRequest(nil, req, corr)
}

// send writes req with the next correlation id and returns that id.
func (c *rawClient) send(req kmsg.Request) int32 {
	c.t.Helper()
	c.corr++
	c.write(encodeRequest(req, c.corr))
	return c.corr
}

func (c *rawClient) write(b []byte) {
	c.t.Helper()
	if _, err := c.nc.Write(b); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// writeFrame writes body behind a size prefix of its length.
func (c *rawClient) writeFrame(body []byte) {
	c.t.Helper()
	c.write(binary.BigEndian.AppendUint32(nil, uint32(len(body))))
	c.write(body)
}

// readFrame reads one response frame, without its size prefix.
func (c *rawClient) readFrame() []byte {
	c.t.Helper()
	_ = c.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	var size [4]byte
	if _, err := io.ReadFull(c.nc, size[:]); err != nil {
		c.t.Fatalf("read size: %v", err)
	}
	frame := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(c.nc, frame); err != nil {
		c.t.Fatalf("read frame: %v", err)
	}
	return frame
}

// readResponse reads the response to req sent with correlation id corr,
// checking the header exactly: a tag byte only for flexible non-ApiVersions
// versions. resp receives the body at req's version.
func (c *rawClient) readResponse(req kmsg.Request, corr int32) kmsg.Response {
	c.t.Helper()
	frame := c.readFrame()
	if len(frame) < 4 {
		c.t.Fatalf("frame of %d bytes", len(frame))
	}
	if got := int32(binary.BigEndian.Uint32(frame)); got != corr {
		c.t.Fatalf("correlation id %d, want %d", got, corr)
	}
	body := frame[4:]
	if req.IsFlexible() && req.Key() != 18 {
		if len(body) == 0 || body[0] != 0 {
			c.t.Fatalf("missing empty response header tags: % x", body)
		}
		body = body[1:]
	}
	resp := req.ResponseKind()
	if err := resp.ReadFrom(body); err != nil {
		c.t.Fatalf("decode %T v%d: %v", resp, req.GetVersion(), err)
	}
	// ReadFrom ignores trailing bytes: re-encoding must give the body back.
	if again := resp.AppendTo(nil); !bytes.Equal(again, body) {
		c.t.Fatalf("%T v%d body is not exact:\n got % x\nwant % x", resp, req.GetVersion(), body, again)
	}
	return resp
}

// roundTrip sends req and returns its response.
func (c *rawClient) roundTrip(req kmsg.Request) kmsg.Response {
	c.t.Helper()
	return c.readResponse(req, c.send(req))
}

// expectClosed fails unless the server closes the connection (EOF or reset)
// without sending anything more.
func (c *rawClient) expectClosed() {
	c.t.Helper()
	_ = c.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	var b [1]byte
	n, err := c.nc.Read(b[:])
	switch {
	case n > 0:
		c.t.Fatalf("read %d byte(s), want the connection closed", n)
	case errors.Is(err, io.EOF), isReset(err):
	default:
		c.t.Fatalf("read: %v, want EOF or reset", err)
	}
}

func isReset(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && !op.Timeout() && strings.Contains(op.Err.Error(), "reset")
}

// testBackend is a real broker on an in-memory filesystem and a group
// coordinator on it (no initial rebalance delay), closed with the test.
func testBackend(t testing.TB) (*broker.Broker, *group.Service) {
	t.Helper()
	b, err := broker.Open(broker.Options{FS: vfs.NewMem(), Dir: "/data", AutoCreateTopics: true, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	store, err := OpenGroupStore(b)
	if err != nil {
		t.Fatal(err)
	}
	g, err := group.NewService(group.ServiceOptions{Store: store, Config: group.Config{}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close(); _ = b.Close() })
	return b, g
}

// testOptions returns Options with a test backend.
func testOptions(t testing.TB) Options {
	b, g := testBackend(t)
	return Options{Logger: slog.New(slog.DiscardHandler), Broker: b, Groups: g}
}

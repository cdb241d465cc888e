package kafka

import (
	"encoding/binary"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// apiVersionsOK checks a fresh connection to ts is served.
func apiVersionsOK(t *testing.T, ts *testServer) {
	t.Helper()
	c := dial(t, ts.addr)
	checkApiVersions(t, ts.Server, c.roundTrip(kmsg.NewPtrApiVersionsRequest()).(*kmsg.ApiVersionsResponse))
}

// waitNoConns waits until the server has closed every connection by itself.
func waitNoConns(t *testing.T, ts *testServer) {
	t.Helper()
	waitFor(t, "connections to close", func() bool { return ts.numConns() == 0 })
}

func TestBadFramesCloseConnection(t *testing.T) {
	apiVersions := encodeRequest(kmsg.NewPtrApiVersionsRequest(), 1)
	for _, tc := range []struct {
		name  string
		bytes []byte
		log   string
	}{
		{"negative size", []byte{0xff, 0xff, 0xff, 0xfe}, "bad frame size"},
		{"oversize", binary.BigEndian.AppendUint32(nil, 1<<20+1), "bad frame size"},
		{"unknown api key", func() []byte {
			b := append([]byte(nil), apiVersions...)
			binary.BigEndian.PutUint16(b[4:], 9999)
			return b
		}(), "unknown api key"},
		// Known to kmsg, never served by Weir (inter-broker).
		{"unregistered api key", encodeRequest(kmsg.NewPtrLeaderAndISRRequest(), 1), "unknown api key"},
		{"garbage body", func() []byte {
			req := kmsg.NewPtrApiVersionsRequest()
			req.Version = 3
			b := encodeRequest(req, 1)
			b = b[:len(b)-3] // cut the compact strings and tags short
			binary.BigEndian.PutUint32(b, uint32(len(b)-4))
			return b
		}(), "malformed request"},
		{"short header", []byte{0, 0, 0, 3, 0, 18, 0}, "malformed request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := startServer(t, Options{MaxFrameBytes: 1 << 20})
			c := dial(t, ts.addr)
			c.write(tc.bytes)
			c.expectClosed()
			if !ts.logs.contains(tc.log) {
				t.Errorf("log lacks %q", tc.log)
			}
			apiVersionsOK(t, ts) // still serving
		})
	}
}

// TestUnsupportedVersionClosesConnection sends a version outside a test
// API's range: not ApiVersions, so the connection closes as Kafka's does.
func TestUnsupportedVersionClosesConnection(t *testing.T) {
	ts := startServer(t, Options{}, func(s *Server) {
		s.extra = map[int16]api{12: {Key: 12, MinVersion: 1, MaxVersion: 2,
			Handle: func(*Server, *Conn, kmsg.Request) Reply { panic("unreachable") }}}
	})
	for _, v := range []int16{0, 3, 4} {
		c := dial(t, ts.addr)
		req := kmsg.NewPtrHeartbeatRequest()
		req.Version = v
		c.send(req)
		c.expectClosed()
	}
	if !ts.logs.contains("unsupported api version") {
		t.Error("no log line")
	}
}

func TestTruncatedFrameNoLeak(t *testing.T) {
	ts := startServer(t, Options{})
	c := dial(t, ts.addr)
	c.write([]byte{0, 0, 0, 100, 0, 18, 0, 0, 0, 0}) // 6 of 100 bytes
	waitFor(t, "connection accepted", func() bool { return ts.numConns() == 1 })
	_ = c.nc.Close()
	waitNoConns(t, ts) // both goroutines ended without Close
	if err := ts.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestIdleTimeout(t *testing.T) {
	ts := startServer(t, Options{IdleTimeout: 200 * time.Millisecond})
	t.Run("silent", func(t *testing.T) {
		c := dial(t, ts.addr)
		c.expectClosed()
	})
	t.Run("slow loris", func(t *testing.T) {
		c := dial(t, ts.addr)
		c.write([]byte{0, 0, 0, 20, 0, 18})
		c.expectClosed()
	})
	t.Run("after a request", func(t *testing.T) {
		c := dial(t, ts.addr)
		c.roundTrip(kmsg.NewPtrApiVersionsRequest())
		c.expectClosed()
	})
	if !ts.logs.contains("closing idle connection") {
		t.Error("no log line")
	}
}

func TestMaxConnections(t *testing.T) {
	ts := startServer(t, Options{MaxConnections: 2})
	c1, c2 := dial(t, ts.addr), dial(t, ts.addr)
	c1.roundTrip(kmsg.NewPtrApiVersionsRequest()) // both accepted and counted
	c2.roundTrip(kmsg.NewPtrApiVersionsRequest())

	c3 := dial(t, ts.addr)
	c3.expectClosed()
	if !ts.logs.contains("connection limit reached") {
		t.Error("no log line")
	}

	_ = c1.nc.Close()
	waitFor(t, "a slot to free", func() bool { return ts.numConns() == 1 })
	apiVersionsOK(t, ts)
}

// orderingAPI is a test API on key 12 (Heartbeat) whose even requests reply
// deferred, each released by the test, and odd ones at once. Every response
// carries its request's sequence number in ThrottleMillis.
type orderingAPI struct {
	mu      sync.Mutex
	handled int32
	release []chan struct{}
}

func newOrderingAPI(n int) *orderingAPI {
	o := &orderingAPI{release: make([]chan struct{}, n)}
	for i := range o.release {
		o.release[i] = make(chan struct{})
	}
	return o
}

func (o *orderingAPI) count() int32 {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.handled
}

func (o *orderingAPI) install(s *Server) {
	s.extra = map[int16]api{12: {Key: 12, MinVersion: 0, MaxVersion: 4, Handle: o.handle}}
}

func (o *orderingAPI) handle(_ *Server, c *Conn, req kmsg.Request) Reply {
	o.mu.Lock()
	seq := o.handled
	o.handled++
	o.mu.Unlock()
	resp := req.ResponseKind().(*kmsg.HeartbeatResponse)
	resp.ThrottleMillis = seq
	if seq%2 == 1 {
		return Respond(resp)
	}
	return Defer(func() kmsg.Response {
		select {
		case <-o.release[seq]:
			return resp
		case <-c.Context().Done():
			return nil
		}
	})
}

func TestRepliesInRequestOrder(t *testing.T) {
	const n = 20
	o := newOrderingAPI(n)
	ts := startServer(t, Options{}, o.install)
	c := dial(t, ts.addr)

	req := kmsg.NewPtrHeartbeatRequest()
	req.Version = 4 // flexible: header tags on the response too
	var corrs []int32
	for range n {
		corrs = append(corrs, c.send(req))
	}
	// Every request is handled although the first reply is still waiting.
	waitFor(t, "all requests handled", func() bool { return o.count() == n })
	for i := n - 1; i >= 0; i-- { // release in reverse
		if i%2 == 0 {
			close(o.release[i])
		}
	}
	for i, corr := range corrs {
		resp := c.readResponse(req, corr).(*kmsg.HeartbeatResponse)
		if resp.ThrottleMillis != int32(i) {
			t.Fatalf("response %d carries sequence %d", i, resp.ThrottleMillis)
		}
	}
}

// TestOutstandingRepliesBounded runs one connection over net.Pipe in a
// synctest bubble, so "the reader is blocked" is a fact, not a timing guess.
func TestOutstandingRepliesBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const n, inflight = 10, 2
		o := newOrderingAPI(n)
		s, _ := newTestServer(t, Options{})
		s.maxInflight = inflight
		o.install(s)
		// Every request deferred: odd ones too.
		s.extra[12] = api{Key: 12, MinVersion: 0, MaxVersion: 4, Handle: func(s *Server, c *Conn, req kmsg.Request) Reply {
			r := o.handle(s, c, req)
			if r.resp != nil {
				resp := r.resp
				seq := resp.(*kmsg.HeartbeatResponse).ThrottleMillis
				r = Defer(func() kmsg.Response { <-o.release[seq]; return resp })
			}
			return r
		}}
		client, server := net.Pipe()
		s.serveConn(server)

		go func() {
			for i := range n {
				req := kmsg.NewPtrHeartbeatRequest()
				if _, err := client.Write(encodeRequest(req, int32(i))); err != nil {
					return
				}
			}
		}()
		var read atomic.Int32
		go func() {
			rc := &rawClient{t: t, nc: client}
			for range n {
				rc.readFrame()
				read.Add(1)
			}
		}()

		// The writer waits on reply 0, the queue holds inflight more, and
		// the reader has handled one beyond and blocks queueing it.
		synctest.Wait()
		if got, want := o.count(), int32(1+inflight+1); got != want {
			t.Fatalf("handled %d requests with none answered, want %d", got, want)
		}
		close(o.release[0])
		synctest.Wait()
		if got, want := o.count(), int32(1+inflight+2); got != want || read.Load() != 1 {
			t.Fatalf("handled %d, read %d after one answer, want %d, 1", got, read.Load(), want)
		}
		for i := 1; i < n; i++ {
			close(o.release[i])
		}
		synctest.Wait()
		if o.count() != n || read.Load() != n {
			t.Fatalf("handled %d, read %d, want %d", o.count(), read.Load(), n)
		}
		_ = s.Close()
		_ = client.Close()
	})
}

func TestHandlerPanicClosesConnection(t *testing.T) {
	for _, deferred := range []bool{false, true} {
		ts := startServer(t, Options{}, func(s *Server) {
			s.extra = map[int16]api{12: {Key: 12, MinVersion: 0, MaxVersion: 4,
				Handle: func(*Server, *Conn, kmsg.Request) Reply {
					if deferred {
						return Defer(func() kmsg.Response { panic("boom in wait") })
					}
					panic("boom")
				}}}
		})
		c := dial(t, ts.addr)
		c.send(kmsg.NewPtrHeartbeatRequest())
		c.expectClosed()
		if !ts.logs.contains("panicked") || !ts.logs.contains("api_key=12") {
			t.Errorf("deferred=%v: panic not logged with its api key", deferred)
		}
		apiVersionsOK(t, ts)
	}
}

func TestBadRepliesCloseConnection(t *testing.T) {
	for name, reply := range map[string]Reply{
		"zero":       {},
		"nil":        Respond(nil),
		"wrong kind": Respond(kmsg.NewPtrMetadataResponse()),
		"nil wait":   Defer(func() kmsg.Response { return nil }),
	} {
		t.Run(name, func(t *testing.T) {
			ts := startServer(t, Options{}, func(s *Server) {
				s.extra = map[int16]api{12: {Key: 12, MinVersion: 0, MaxVersion: 4,
					Handle: func(*Server, *Conn, kmsg.Request) Reply { return reply }}}
			})
			c := dial(t, ts.addr)
			c.send(kmsg.NewPtrHeartbeatRequest())
			c.expectClosed()
		})
	}
}

func TestNoReply(t *testing.T) {
	ts := startServer(t, Options{}, func(s *Server) {
		s.extra = map[int16]api{12: {Key: 12, MinVersion: 0, MaxVersion: 4,
			Handle: func(*Server, *Conn, kmsg.Request) Reply { return NoReply() }}}
	})
	c := dial(t, ts.addr)
	c.send(kmsg.NewPtrHeartbeatRequest())
	// The next response on the connection is ApiVersions'.
	checkApiVersions(t, ts.Server, c.roundTrip(kmsg.NewPtrApiVersionsRequest()).(*kmsg.ApiVersionsResponse))
}

// TestCloseCancelsDeferredReplies closes the server while a deferred reply
// waits on the connection's context.
func TestCloseCancelsDeferredReplies(t *testing.T) {
	o := newOrderingAPI(1)
	ts := startServer(t, Options{}, o.install)
	c := dial(t, ts.addr)
	c.send(kmsg.NewPtrHeartbeatRequest())
	waitFor(t, "request handled", func() bool { return o.count() == 1 })
	if err := ts.Close(); err != nil {
		t.Fatal(err)
	}
	c.expectClosed()
	if err := <-ts.done; err != nil {
		t.Fatalf("Serve returned %v after Close", err)
	}
	ts.done <- nil // for the cleanup
}

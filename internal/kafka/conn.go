package kafka

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime/debug"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Conn is one client connection. Handlers receive it to learn who is asking
// and to tie long waits to the connection's life.
type Conn struct {
	s      *Server
	nc     net.Conn
	log    *slog.Logger
	ctx    context.Context
	cancel context.CancelFunc

	// replies carries replies from the reader to the writer in request
	// order; its capacity bounds the replies outstanding.
	replies   chan pending
	closeOnce sync.Once

	// Owned by the reader goroutine, on which handlers run.
	clientID        string
	softwareName    string
	softwareVersion string
}

// pending is a reply queued for the writer with the header it answers.
type pending struct {
	h     requestHeader
	reply Reply
	start time.Time // when the request frame was read
}

func newConn(s *Server, nc net.Conn) *Conn {
	ctx, cancel := context.WithCancel(context.Background())
	return &Conn{
		s:       s,
		nc:      nc,
		log:     s.log.With("remote", nc.RemoteAddr().String()),
		ctx:     ctx,
		cancel:  cancel,
		replies: make(chan pending, s.maxInflight),
	}
}

// RemoteAddr returns the client's network address.
func (c *Conn) RemoteAddr() net.Addr { return c.nc.RemoteAddr() }

// LocalAddr is the server address the client connected to.
func (c *Conn) LocalAddr() net.Addr { return c.nc.LocalAddr() }

// ClientID returns the client id of the request being handled, or "" if the
// client sent none. Call it only from a handler.
func (c *Conn) ClientID() string { return c.clientID }

// ClientSoftware returns the client software name and version the client
// declared in ApiVersions v3+, or empty strings. Call it only from a handler.
func (c *Conn) ClientSoftware() (name, version string) {
	return c.softwareName, c.softwareVersion
}

// Context returns a context cancelled when the connection closes. Deferred
// replies and other long waits select on it.
func (c *Conn) Context() context.Context { return c.ctx }

// close closes the connection; the reader and writer goroutines then exit.
// It is safe to call more than once and from any goroutine.
func (c *Conn) close() {
	c.closeOnce.Do(func() {
		c.cancel()
		_ = c.nc.Close()
	})
}

// run serves the connection until it closes: the reader loop on the calling
// goroutine, the writer on another. It returns once both have exited.
func (c *Conn) run() {
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		defer c.close()
		c.writeLoop()
	}()
	c.readLoop()
	c.close()
	<-writerDone
}

// readLoop reads, parses and handles requests in order until the connection
// fails or a request requires closing it.
func (c *Conn) readLoop() {
	br := bufio.NewReaderSize(c.nc, 8<<10)
	// Produce frames are pooled: their records are appended (copied to
	// the log) before the handler returns and nothing keeps them after.
	fr := frameReader{r: br, br: br, inq: socketInq(c.nc), max: c.s.opts.MaxFrameBytes, pool: true}
	for {
		if err := c.nc.SetReadDeadline(time.Now().Add(c.s.opts.IdleTimeout)); err != nil {
			c.logReadError(err)
			return
		}
		frame, pooled, err := fr.next()
		if err != nil {
			c.logReadError(err)
			return
		}
		start := time.Now()
		p, ok := c.handle(frame)
		if pooled {
			putBuf(frame)
		}
		if !ok {
			return
		}
		p.start = start
		if p.reply.none {
			c.s.m.done(p.h.key, start, nil)
			continue
		}
		select {
		case c.replies <- p:
		case <-c.ctx.Done():
			return
		}
	}
}

// handle parses one frame and runs its handler. It reports false if the
// connection must close; the reason has been logged.
func (c *Conn) handle(frame []byte) (p pending, ok bool) {
	h, req, err := c.s.parseRequest(frame)
	p.h = h
	switch {
	case errors.Is(err, errUnsupportedVersion) && h.key == 18:
		// KIP-511: a v0 body naming the ApiVersions range we support,
		// so the client retries with a version we speak.
		c.log.Debug("kafka: unsupported ApiVersions version; answering with ours", "version", h.version)
		p.h.version, p.h.flexible = 0, false
		p.reply = Respond(c.s.unsupportedApiVersions())
		return p, true
	case err != nil:
		c.log.Warn("kafka: closing connection on bad request",
			"api_key", h.key, "api_version", h.version, "correlation_id", h.correlationID, "err", err)
		return p, false
	}

	c.clientID = ""
	if h.clientID != nil {
		c.clientID = *h.clientID
	}
	a, _ := c.s.lookup(h.key) // parseRequest checked it exists
	defer func() {
		if v := recover(); v != nil {
			c.log.Error("kafka: handler panicked; closing connection",
				"api_key", h.key, "api", kmsg.NameForKey(h.key), "api_version", h.version,
				"panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			ok = false
		}
	}()
	p.reply = a.Handle(c.s, c, req)
	if !p.reply.valid() {
		c.log.Error("kafka: handler returned an empty Reply; closing connection",
			"api_key", h.key, "api", kmsg.NameForKey(h.key))
		return p, false
	}
	return p, true
}

// logReadError logs why reading stopped, at a level matching its cause.
func (c *Conn) logReadError(err error) {
	var sizeErr *frameSizeError
	switch {
	case c.ctx.Err() != nil:
		// Closed by us (server Close, writer failure): already explained.
	case errors.Is(err, io.EOF):
		c.log.Debug("kafka: client closed connection")
	case errors.Is(err, os.ErrDeadlineExceeded):
		c.log.Info("kafka: closing idle connection", "idle_timeout", c.s.opts.IdleTimeout)
	case errors.As(err, &sizeErr):
		c.log.Warn("kafka: closing connection on bad frame size", "err", err)
	default:
		c.log.Info("kafka: connection read failed", "err", err)
	}
}

// writeLoop writes replies in request order, waiting for deferred ones,
// until the connection closes or a write fails.
func (c *Conn) writeLoop() {
	var buf []byte
	var fv fetchVec
	for {
		var p pending
		select {
		case p = <-c.replies:
		case <-c.ctx.Done():
			return
		}
		resp, ok := c.resolve(p)
		if !ok {
			return
		}
		// Large fetch responses go out in one writev with their record
		// data by reference; everything else is encoded into buf.
		var vec net.Buffers
		if f, isFetch := resp.(*kmsg.FetchResponse); isFetch {
			buf, vec, _ = fv.encode(buf, p.h, f)
		}
		if vec == nil {
			// Size the buffer once for large responses rather than
			// growing it by copies, from the pool rather than zeroed
			// memory.
			if need := responseSizeHint(resp); need > cap(buf) {
				putBuf(buf)
				buf = getBuf(need)
			}
			buf = appendResponse(buf[:0], p.h, resp)
		}
		// Count before writing: a client that has read the response may
		// scrape the metrics at once and must see it counted.
		c.s.m.done(p.h.key, p.start, resp)
		err := c.nc.SetWriteDeadline(time.Now().Add(c.s.opts.IdleTimeout))
		if err == nil {
			if vec != nil {
				_, err = vec.WriteTo(c.nc)
			} else {
				_, err = c.nc.Write(buf)
			}
		}
		// The record data may be recycled only once written.
		if p.reply.release != nil {
			p.reply.release()
		}
		if err != nil {
			if c.ctx.Err() == nil {
				c.log.Info("kafka: connection write failed", "err", err)
			}
			return
		}
		if cap(buf) > 1<<20 {
			// Do not pin one large fetch response's buffer to an idle
			// connection: back to the pool.
			putBuf(buf)
			buf = nil
		}
	}
}

// responseSizeHint estimates the encoded size of a fetch response (its
// record data plus a margin for the fixed fields), 0 for other responses.
func responseSizeHint(resp kmsg.Response) int {
	f, ok := resp.(*kmsg.FetchResponse)
	if !ok {
		return 0
	}
	n := 64
	for i := range f.Topics {
		t := &f.Topics[i]
		n += 32 + len(t.Topic)
		for j := range t.Partitions {
			p := &t.Partitions[j]
			n += 96 + len(p.RecordBatches) + 32*len(p.AbortedTransactions)
		}
	}
	return n
}

// resolve returns p's response, waiting for it if deferred. It reports false
// if the connection must close; the reason has been logged.
func (c *Conn) resolve(p pending) (resp kmsg.Response, ok bool) {
	defer func() {
		if v := recover(); v != nil {
			c.log.Error("kafka: deferred reply panicked; closing connection",
				"api_key", p.h.key, "api", kmsg.NameForKey(p.h.key), "api_version", p.h.version,
				"panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			resp, ok = nil, false
		}
	}()
	resp = p.reply.resp
	if p.reply.wait != nil {
		resp = p.reply.wait()
		if resp == nil {
			if c.ctx.Err() == nil {
				c.log.Error("kafka: deferred reply returned no response; closing connection",
					"api_key", p.h.key, "api", kmsg.NameForKey(p.h.key))
			}
			return nil, false
		}
	}
	if resp.Key() != p.h.key {
		c.log.Error("kafka: handler replied with the wrong response kind; closing connection",
			"api_key", p.h.key, "response_key", resp.Key())
		return nil, false
	}
	return resp, true
}

// unsupportedApiVersions is the KIP-511 answer to an ApiVersions request of a
// version we do not support: error UNSUPPORTED_VERSION and, as Kafka does,
// only the ApiVersions entry, from which the client picks its retry version.
func (s *Server) unsupportedApiVersions() *kmsg.ApiVersionsResponse {
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.ErrorCode = kerr.UnsupportedVersion.Code
	a, _ := s.lookup(18)
	k := kmsg.NewApiVersionsResponseApiKey()
	k.ApiKey, k.MinVersion, k.MaxVersion = a.Key, a.MinVersion, a.MaxVersion
	resp.ApiKeys = []kmsg.ApiVersionsResponseApiKey{k}
	return resp
}

package main

import (
	"context"
	"encoding/binary"
	"net"
	"sync"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// reasonTap keeps the reason a broker gave for refusing a partition's
// records. Produce responses carry it (ErrorMessage, and RecordErrors in
// v8+), but franz-go's producer reports only the error code, whose text is
// generic ("This record has failed the validation on the broker"). The tap
// wraps the client's connections, notes the correlation id and version of
// every Produce request written, and decodes (with kmsg) the matching
// responses read, remembering the last message per partition.
//
// Request and response frames on the wire:
//
//	request:  | size int32 | api key int16 | version int16 | correlation id int32 | ...
//	response: | size int32 | correlation id int32 | [tagged fields, flexible] | body ...
type reasonTap struct {
	mu      sync.Mutex
	reasons map[tapTP]string
}

type tapTP struct {
	topic     string
	partition int32
}

// maxTapFrame bounds the response frames the tap buffers to decode; a
// Produce response is small, anything larger is skipped.
const maxTapFrame = 1 << 20

// maxTapPending bounds the Produce requests awaiting an answer per
// connection.
const maxTapPending = 4096

func newReasonTap() *reasonTap { return &reasonTap{reasons: map[tapTP]string{}} }

// reason returns the broker's last message for a partition, "" if none.
func (t *reasonTap) reason(topic string, partition int32) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.reasons[tapTP{topic, partition}]
}

// dial is a kgo.Dialer: a plain TCP dial whose connection is tapped.
func (t *reasonTap) dial(ctx context.Context, network, host string) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, network, host)
	if err != nil {
		return nil, err
	}
	return &tapConn{Conn: c, tap: t, produce: map[int32]int16{}}, nil
}

// tapConn parses the frames passing through one connection. kgo writes
// from one goroutine and reads from another; each side keeps its own
// parse state, and produce (shared) has its own lock.
type tapConn struct {
	net.Conn
	tap *reasonTap

	pmu     sync.Mutex
	produce map[int32]int16 // correlation id → Produce version, until answered

	wbuf  []byte // a request frame's first bytes, until its header is whole
	wskip int    // bytes of the current request frame left to pass

	rbuf  []byte // a response frame being read
	rskip int    // bytes of the current response frame left to pass
	rneed int    // bytes of the current response frame still to collect
}

func (c *tapConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.sawWrite(p[:n])
	return n, err
}

func (c *tapConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.sawRead(p[:n])
	return n, err
}

func (c *tapConn) sawWrite(p []byte) {
	for len(p) > 0 {
		if c.wskip > 0 {
			k := min(c.wskip, len(p))
			c.wskip -= k
			p = p[k:]
			continue
		}
		need := 12 - len(c.wbuf)
		k := min(need, len(p))
		c.wbuf = append(c.wbuf, p[:k]...)
		p = p[k:]
		if len(c.wbuf) < 12 {
			return
		}
		size := int(int32(binary.BigEndian.Uint32(c.wbuf)))
		key := int16(binary.BigEndian.Uint16(c.wbuf[4:]))
		version := int16(binary.BigEndian.Uint16(c.wbuf[6:]))
		corr := int32(binary.BigEndian.Uint32(c.wbuf[8:]))
		if key == 0 {
			c.pmu.Lock()
			if len(c.produce) >= maxTapPending {
				// acks=0 requests are never answered: forget them all
				// rather than grow.
				clear(c.produce)
			}
			c.produce[corr] = version
			c.pmu.Unlock()
		}
		c.wbuf = c.wbuf[:0]
		c.wskip = max(size-8, 0)
	}
}

func (c *tapConn) sawRead(p []byte) {
	for len(p) > 0 {
		switch {
		case c.rskip > 0:
			k := min(c.rskip, len(p))
			c.rskip -= k
			p = p[k:]
		case c.rneed > 0:
			k := min(c.rneed, len(p))
			c.rbuf = append(c.rbuf, p[:k]...)
			c.rneed -= k
			p = p[k:]
			if c.rneed == 0 {
				c.decode(c.rbuf[4:])
				c.rbuf = c.rbuf[:0]
			}
		default:
			k := min(8-len(c.rbuf), len(p))
			c.rbuf = append(c.rbuf, p[:k]...)
			p = p[k:]
			if len(c.rbuf) < 8 {
				return
			}
			size := int(int32(binary.BigEndian.Uint32(c.rbuf)))
			corr := int32(binary.BigEndian.Uint32(c.rbuf[4:]))
			c.pmu.Lock()
			_, isProduce := c.produce[corr]
			c.pmu.Unlock()
			if rest := size - 4; isProduce && rest >= 0 && rest <= maxTapFrame {
				c.rneed = rest
				if rest == 0 {
					c.rbuf = c.rbuf[:0]
				}
			} else {
				c.rbuf = c.rbuf[:0]
				c.rskip = max(size-4, 0)
			}
		}
	}
}

// decode reads one Produce response (frame after the size: correlation id,
// header tags when flexible, body) and records its partitions' messages.
func (c *tapConn) decode(frame []byte) {
	corr := int32(binary.BigEndian.Uint32(frame))
	c.pmu.Lock()
	version, ok := c.produce[corr]
	delete(c.produce, corr)
	c.pmu.Unlock()
	if !ok {
		return
	}
	resp := kmsg.NewPtrProduceResponse()
	resp.SetVersion(version)
	body := frame[4:]
	if resp.IsFlexible() {
		// The response header's tagged fields: a count, then tag, size
		// and data each.
		n, w := binary.Uvarint(body)
		if w <= 0 {
			return
		}
		body = body[w:]
		for range n {
			_, w1 := binary.Uvarint(body)
			if w1 <= 0 {
				return
			}
			size, w2 := binary.Uvarint(body[w1:])
			if w2 <= 0 || uint64(len(body)-w1-w2) < size {
				return
			}
			body = body[w1+w2+int(size):]
		}
	}
	if resp.ReadFrom(body) != nil {
		return
	}
	c.tap.mu.Lock()
	defer c.tap.mu.Unlock()
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if p.ErrorCode == 0 {
				continue
			}
			msg := ""
			if p.ErrorMessage != nil {
				msg = *p.ErrorMessage
			}
			for _, r := range p.ErrorRecords {
				if r.ErrorMessage != nil && msg == "" {
					msg = *r.ErrorMessage
				}
			}
			if msg != "" {
				c.tap.reasons[tapTP{t.Topic, p.Partition}] = msg
			}
		}
	}
}

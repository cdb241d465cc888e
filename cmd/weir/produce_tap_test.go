package main

import (
	"encoding/binary"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// produceFrames returns a Produce request frame and its response frame at
// version refusing partition 2 of t with msg.
func produceFrames(version int16, corr int32, msg string) (req, resp []byte) {
	r := kmsg.NewPtrProduceRequest()
	r.Version = version
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = "t"
	rt.Partitions = append(rt.Partitions, kmsg.NewProduceRequestTopicPartition())
	r.Topics = append(r.Topics, rt)
	body := r.AppendTo(nil)
	hdr := binary.BigEndian.AppendUint16(nil, 0)
	hdr = binary.BigEndian.AppendUint16(hdr, uint16(version))
	hdr = binary.BigEndian.AppendUint32(hdr, uint32(corr))
	hdr = append(hdr, 0, 3, 'c', 'l', 'i') // client id
	if r.IsFlexible() {
		hdr = append(hdr, 0) // no header tags
	}
	req = binary.BigEndian.AppendUint32(nil, uint32(len(hdr)+len(body)))
	req = append(append(req, hdr...), body...)

	p := kmsg.NewPtrProduceResponse()
	p.Version = version
	pt := kmsg.NewProduceResponseTopic()
	pt.Topic = "t"
	pp := kmsg.NewProduceResponseTopicPartition()
	pp.Partition, pp.ErrorCode, pp.ErrorMessage = 2, 87, &msg
	pt.Partitions = append(pt.Partitions, pp)
	p.Topics = append(p.Topics, pt)
	rb := p.AppendTo(nil)
	rh := binary.BigEndian.AppendUint32(nil, uint32(corr))
	if p.IsFlexible() {
		rh = append(rh, 0)
	}
	resp = binary.BigEndian.AppendUint32(nil, uint32(len(rh)+len(rb)))
	resp = append(append(resp, rh...), rb...)
	return req, resp
}

// TestReasonTap: the tap finds the message of a refused partition however
// the frames are cut into reads and writes, skips other APIs' frames, and
// forgets answered requests.
func TestReasonTap(t *testing.T) {
	// v7 has no ErrorMessage field (v8 added it): nothing to find.
	for _, version := range []int16{7, 8, 9, 11} {
		for _, chunk := range []int{1, 3, 7, 1 << 20} {
			tap := newReasonTap()
			c := &tapConn{tap: tap, produce: map[int32]int16{}}
			// A Metadata exchange first: not decoded, just passed over.
			other := []byte{0, 0, 0, 8, 0, 3, 0, 1, 0, 0, 0, 9}
			otherResp := []byte{0, 0, 0, 6, 0, 0, 0, 9, 1, 2}
			req, resp := produceFrames(version, 10, "orders-0 record 0: bad")
			feed := func(f func([]byte), b []byte) {
				for len(b) > 0 {
					k := min(chunk, len(b))
					f(b[:k])
					b = b[k:]
				}
			}
			feed(c.sawWrite, append(append([]byte(nil), other...), req...))
			feed(c.sawRead, append(append([]byte(nil), otherResp...), resp...))
			want := "orders-0 record 0: bad"
			if version < 8 {
				want = ""
			}
			if got := tap.reason("t", 2); got != want {
				t.Errorf("v%d chunks of %d: reason %q", version, chunk, got)
			}
			if len(c.produce) != 0 {
				t.Errorf("v%d chunks of %d: %d requests still pending", version, chunk, len(c.produce))
			}
		}
	}
}

// FuzzReasonTap feeds arbitrary bytes as both directions of a connection:
// the tap never panics and never buffers past its bound.
func FuzzReasonTap(f *testing.F) {
	req, resp := produceFrames(9, 1, "x")
	f.Add(req, resp)
	f.Add([]byte{0, 0, 0, 8, 0, 0, 0, 9, 0, 0, 0, 1}, []byte{0, 0, 0, 5, 0, 0, 0, 1, 0xff})
	f.Fuzz(func(t *testing.T, w, r []byte) {
		c := &tapConn{tap: newReasonTap(), produce: map[int32]int16{}}
		c.sawWrite(w)
		c.sawRead(r)
		if len(c.rbuf) > maxTapFrame+8 {
			t.Fatalf("buffered %d bytes", len(c.rbuf))
		}
	})
}

package kafka

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Errors from parseRequest. Each closes the connection, except
// errUnsupportedVersion for ApiVersions, which is answered (KIP-511).
var (
	errMalformed          = errors.New("kafka: malformed request")
	errUnknownKey         = errors.New("kafka: unknown api key")
	errUnsupportedVersion = errors.New("kafka: unsupported api version")
)

// requestHeader is a parsed request header (v1, or v2 for flexible versions).
type requestHeader struct {
	key           int16
	version       int16
	correlationID int32
	clientID      *string
	// flexible is whether the request version is flexible (KIP-482): the
	// request header was v2 and the response header is v1, except for
	// ApiVersions, whose response header is always v0.
	flexible bool
}

// parseRequest parses one request frame (the bytes after the size prefix):
// the header, then the body with kmsg at the header's version.
//
// The header is returned whenever its fixed part (key, version, correlation
// id) could be read, even with an error, so the caller can answer an
// unsupported ApiVersions version. The key and version are checked against
// the APIs s supports. The request aliases frame for its byte-slice fields,
// so frame must not be reused while the request is live.
func (s *Server) parseRequest(frame []byte) (requestHeader, kmsg.Request, error) {
	var h requestHeader
	if len(frame) < 8 {
		return h, nil, fmt.Errorf("%w: %d-byte frame shorter than a header", errMalformed, len(frame))
	}
	h.key = int16(binary.BigEndian.Uint16(frame[0:]))
	h.version = int16(binary.BigEndian.Uint16(frame[2:]))
	h.correlationID = int32(binary.BigEndian.Uint32(frame[4:]))

	a, ok := s.lookup(h.key)
	if !ok {
		return h, nil, fmt.Errorf("%w %d", errUnknownKey, h.key)
	}
	if h.version < a.MinVersion || h.version > a.MaxVersion {
		return h, nil, fmt.Errorf("%w: %s v%d (supported %d-%d)",
			errUnsupportedVersion, kmsg.NameForKey(h.key), h.version, a.MinVersion, a.MaxVersion)
	}
	req := kmsg.RequestForKey(h.key)
	req.SetVersion(h.version)
	h.flexible = req.IsFlexible()

	r := kbin.Reader{Src: frame[8:]}
	if h.key != 7 || h.version != 0 { // ControlledShutdown v0 has header v0: no client id
		h.clientID = r.NullableString()
	}
	if h.flexible {
		kmsg.SkipTags(&r)
	}
	if err := r.Complete(); err != nil {
		return h, nil, fmt.Errorf("%w: %s v%d header: %v", errMalformed, kmsg.NameForKey(h.key), h.version, err)
	}
	if err := req.ReadFrom(r.Src); err != nil {
		return h, nil, fmt.Errorf("%w: %s v%d body: %v", errMalformed, kmsg.NameForKey(h.key), h.version, err)
	}
	return h, req, nil
}

// readFrame reads one size-prefixed frame from r and returns its body, at
// most maxBytes long, freshly allocated (see frameReader.next).
func readFrame(r io.Reader, maxBytes int32) ([]byte, error) {
	fr := frameReader{r: r, max: maxBytes}
	frame, _, err := fr.next()
	return frame, err
}

// frameReader reads request frames from a connection.
//
// A frame's size prefix is a claim, not an allocation: memory grows with
// the bytes that arrive, so a client that claims a large frame and stalls
// holds about what it sent (at most twice that plus 4 KiB, rounded up to a
// power of two for pooled frames), not what it claimed. Bytes that have
// arrived count whether they sit in r's buffer or still in the kernel's
// socket queue (inq): on loopback a whole produce request has usually
// arrived when its size is read, and the frame is then allocated once, at
// its size, and read without copies.
type frameReader struct {
	r   io.Reader
	br  *bufio.Reader // r, when buffered: its Buffered bytes have arrived
	inq func() int    // bytes queued in the socket, or -1 when unknown
	max int32
	// pool takes Produce frames from the buffer pool (bufpool.go): the
	// caller returns them with putBuf once the handler is done.
	pool bool
}

// firstFrameCap is the capacity a frame starts with when little of it has arrived.
const firstFrameCap = minPooledBuf

// arrived returns the bytes known to have arrived beyond those read.
func (fr *frameReader) arrived() int {
	n := 0
	if fr.br != nil {
		n = fr.br.Buffered()
	}
	if fr.inq != nil {
		if q := fr.inq(); q > 0 {
			n += q
		}
	}
	return n
}

// next reads one frame. pooled reports that it came from the buffer pool:
// the caller returns it with putBuf once nothing refers to it any more. A
// frame that is not pooled is the caller's to keep: kmsg aliases byte-slice
// fields (group metadata, records) into it and handlers may keep them.
func (fr *frameReader) next() (frame []byte, pooled bool, err error) {
	var size [4]byte
	if _, err := io.ReadFull(fr.r, size[:]); err != nil {
		return nil, false, err
	}
	n := int32(binary.BigEndian.Uint32(size[:]))
	if n < 0 || n > fr.max {
		return nil, false, &frameSizeError{size: n, max: fr.max}
	}
	if fr.pool && fr.br != nil && n >= 2 {
		// Produce frames (api key 0) are pooled; the key is in the first
		// two bytes, which arrive with the rest of the header.
		if key, err := fr.br.Peek(2); err == nil && key[0] == 0 && key[1] == 0 {
			pooled = true
		}
	}
	alloc := func(c int) []byte {
		if pooled {
			return getBuf(c)
		}
		return make([]byte, 0, c)
	}
	frame = alloc(min(int(n), max(firstFrameCap, 2*fr.arrived())))
	for len(frame) < int(n) {
		if len(frame) == cap(frame) {
			// Grow to twice what has arrived (at least doubling): one step
			// when the rest is already queued.
			c := min(int(n), max(2*cap(frame), 2*(len(frame)+fr.arrived())))
			grown := append(alloc(c), frame...)
			if pooled {
				putBuf(frame)
			}
			frame = grown
		}
		end := min(cap(frame), int(n))
		k, err := io.ReadFull(fr.r, frame[len(frame):end])
		frame = frame[:len(frame)+k]
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			if pooled {
				putBuf(frame)
			}
			return nil, false, err
		}
	}
	return frame, pooled, nil
}

// frameSizeError reports a frame size prefix out of bounds.
type frameSizeError struct{ size, max int32 }

func (e *frameSizeError) Error() string {
	return fmt.Sprintf("kafka: frame size %d outside [0, %d]", e.size, e.max)
}

// appendResponse appends resp as a complete size-prefixed response frame for
// the request h to dst. resp's version is set to the request's.
func appendResponse(dst []byte, h requestHeader, resp kmsg.Response) []byte {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0) // size, filled in below
	dst = kbin.AppendInt32(dst, h.correlationID)
	if h.flexible && h.key != 18 { // ApiVersions' response header is always v0
		dst = append(dst, 0) // no tagged fields
	}
	resp.SetVersion(h.version)
	dst = resp.AppendTo(dst)
	binary.BigEndian.PutUint32(dst[start:], uint32(len(dst)-start-4))
	return dst
}

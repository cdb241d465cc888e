package kafka

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"

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
// most maxBytes long. The body is freshly allocated: kmsg aliases byte-slice
// fields (produce records, group metadata) into it and handlers may keep them.
// Memory grows with the bytes that arrive, not with the size a client claims.
func readFrame(r io.Reader, maxBytes int32) ([]byte, error) {
	var size [4]byte
	if _, err := io.ReadFull(r, size[:]); err != nil {
		return nil, err
	}
	n := int32(binary.BigEndian.Uint32(size[:]))
	if n < 0 || n > maxBytes {
		return nil, &frameSizeError{size: n, max: maxBytes}
	}
	// Start small and double as bytes arrive, so a client that claims a
	// large frame and stalls holds about what it sent (at most twice that
	// plus 4 KiB), not what it claimed.
	const first = 4 << 10
	frame := make([]byte, 0, min(int(n), first))
	for len(frame) < int(n) {
		if len(frame) == cap(frame) {
			frame = slices.Grow(frame, min(int(n)-len(frame), cap(frame)))
		}
		end := min(cap(frame), int(n))
		k, err := io.ReadFull(r, frame[len(frame):end])
		frame = frame[:len(frame)+k]
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
	return frame, nil
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

package kafka

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// allKeysServer returns a Server that accepts every request kmsg knows at
// every version kmsg knows, so parseRequest reaches every kmsg decoder.
func allKeysServer(t testing.TB) *Server {
	s, err := NewServer(testOptions(t))
	if err != nil {
		t.Fatal(err)
	}
	s.extra = map[int16]api{}
	for key := int16(0); key < 1000; key++ {
		if req := kmsg.RequestForKey(key); req != nil {
			s.extra[key] = api{Key: key, MaxVersion: req.MaxVersion(),
				Handle: func(*Server, *Conn, kmsg.Request) Reply { return NoReply() }}
		}
	}
	return s
}

// frameOf returns req encoded at version v with client id "test", without
// the size prefix.
func frameOf(req kmsg.Request, v int16, corr int32) []byte {
	req.SetVersion(v)
	return encodeRequest(req, corr)[4:]
}

func TestParseRequestHeader(t *testing.T) {
	s := allKeysServer(t)

	t.Run("v1 header", func(t *testing.T) {
		req := kmsg.NewPtrMetadataRequest()
		topic := kmsg.NewMetadataRequestTopic()
		topic.Topic = kmsg.StringPtr("orders")
		req.Topics = append(req.Topics, topic)
		h, got, err := s.parseRequest(frameOf(req, 4, 42))
		if err != nil {
			t.Fatal(err)
		}
		if h.key != 3 || h.version != 4 || h.correlationID != 42 || h.clientID == nil || *h.clientID != "test" || h.flexible {
			t.Fatalf("header %+v", h)
		}
		if m := got.(*kmsg.MetadataRequest); m.Version != 4 || len(m.Topics) != 1 || *m.Topics[0].Topic != "orders" {
			t.Fatalf("body %+v", m)
		}
	})

	t.Run("v2 header with tags and null client id", func(t *testing.T) {
		req := kmsg.NewPtrMetadataRequest()
		req.SetVersion(12)
		frame := binary.BigEndian.AppendUint16(nil, 3)
		frame = binary.BigEndian.AppendUint16(frame, 12)
		frame = binary.BigEndian.AppendUint32(frame, 7)
		frame = append(frame, 0xff, 0xff)          // null client id
		frame = append(frame, 1, 5, 2, 0xaa, 0xbb) // one unknown tag, 2 bytes
		frame = req.AppendTo(frame)
		h, _, err := s.parseRequest(frame)
		if err != nil {
			t.Fatal(err)
		}
		if h.clientID != nil || !h.flexible || h.correlationID != 7 {
			t.Fatalf("header %+v", h)
		}
	})

	t.Run("errors", func(t *testing.T) {
		av := frameOf(kmsg.NewPtrApiVersionsRequest(), 3, 9)
		for _, tc := range []struct {
			name  string
			frame []byte
			want  error
		}{
			{"empty", nil, errMalformed},
			{"short", av[:7], errMalformed},
			{"unknown key", append([]byte{0x7f, 0x7f}, av[2:]...), errUnknownKey},
			{"version above kmsg", append([]byte{0, 18, 0, 99}, av[4:]...), errUnsupportedVersion},
			{"negative version", append([]byte{0, 18, 0xff, 0xff}, av[4:]...), errUnsupportedVersion},
			{"client id cut", av[:9], errMalformed},
			{"tags cut", av[:8+2+4], errMalformed},
			{"body cut", av[:len(av)-1], errMalformed},
		} {
			h, req, err := s.parseRequest(tc.frame)
			if !errors.Is(err, tc.want) || req != nil {
				t.Errorf("%s: err %v req %v, want %v", tc.name, err, req, tc.want)
			}
			if len(tc.frame) >= 8 && h.correlationID != 9 {
				t.Errorf("%s: header not returned: %+v", tc.name, h)
			}
		}
	})
}

func TestReadFrame(t *testing.T) {
	big := bytes.Repeat([]byte{7}, 3<<20+5) // grows past the first step
	for _, tc := range []struct {
		name    string
		in      []byte
		want    []byte
		wantErr error
	}{
		{"empty", []byte{0, 0, 0, 0}, []byte{}, nil},
		{"small", []byte{0, 0, 0, 2, 1, 2, 3}, []byte{1, 2}, nil},
		{"big", append(binary.BigEndian.AppendUint32(nil, uint32(len(big))), big...), big, nil},
		{"eof", nil, nil, io.EOF},
		{"short size", []byte{0, 0}, nil, io.ErrUnexpectedEOF},
		{"short body", []byte{0, 0, 0, 3, 1}, nil, io.ErrUnexpectedEOF},
		{"short big body", append(binary.BigEndian.AppendUint32(nil, uint32(len(big)+1)), big...), nil, io.ErrUnexpectedEOF},
	} {
		got, err := readFrame(bytes.NewReader(tc.in), 4<<20)
		if !errors.Is(err, tc.wantErr) || !bytes.Equal(got, tc.want) {
			t.Errorf("%s: got %d bytes, %v; want %d bytes, %v", tc.name, len(got), err, len(tc.want), tc.wantErr)
		}
	}
	for _, size := range []uint32{0x80000000, 0xffffffff, 4<<20 + 1} {
		_, err := readFrame(bytes.NewReader(binary.BigEndian.AppendUint32(nil, size)), 4<<20)
		if _, ok := errors.AsType[*frameSizeError](err); !ok {
			t.Errorf("size %#x: err %v", size, err)
		}
	}
}

func TestAppendResponseHeader(t *testing.T) {
	for _, tc := range []struct {
		h       requestHeader
		resp    kmsg.Response
		tagByte bool
	}{
		{requestHeader{key: 3, version: 8, correlationID: 5}, kmsg.NewPtrMetadataResponse(), false},
		{requestHeader{key: 3, version: 12, correlationID: 5, flexible: true}, kmsg.NewPtrMetadataResponse(), true},
		{requestHeader{key: 18, version: 3, correlationID: 5, flexible: true}, kmsg.NewPtrApiVersionsResponse(), false},
	} {
		prefix := []byte("junk")
		frame := appendResponse(prefix, tc.h, tc.resp)
		if !bytes.HasPrefix(frame, []byte("junk")) {
			t.Fatal("dst prefix lost")
		}
		frame = frame[4:]
		if size := binary.BigEndian.Uint32(frame); int(size) != len(frame)-4 {
			t.Fatalf("size %d for %d bytes", size, len(frame)-4)
		}
		if tc.resp.GetVersion() != tc.h.version {
			t.Errorf("response version %d, want %d", tc.resp.GetVersion(), tc.h.version)
		}
		want := binary.BigEndian.AppendUint32(nil, 5)
		if tc.tagByte {
			want = append(want, 0)
		}
		want = tc.resp.AppendTo(want)
		if !bytes.Equal(frame[4:], want) {
			t.Errorf("key %d v%d:\n got % x\nwant % x", tc.h.key, tc.h.version, frame[4:], want)
		}
	}
}

// FuzzRequest feeds arbitrary frames through parseRequest, which conn.go
// uses, on a server accepting every kmsg key and version: it must never
// panic, and a request it returns matches its header.
func FuzzRequest(f *testing.F) {
	seed := func(req kmsg.Request, versions ...int16) {
		for _, v := range versions {
			f.Add(frameOf(req, v, int32(v)))
		}
	}
	av := kmsg.NewPtrApiVersionsRequest()
	av.ClientSoftwareName, av.ClientSoftwareVersion = "franz-go", "1.22.3"
	seed(av, 0, 1, 2, 3, 4)

	produce := kmsg.NewPtrProduceRequest()
	produce.Acks, produce.TimeoutMillis = -1, 5000
	pt := kmsg.NewProduceRequestTopic()
	pt.Topic = "orders"
	pp := kmsg.NewProduceRequestTopicPartition()
	pp.Records = []byte("not really a record batch")
	pt.Partitions = append(pt.Partitions, pp)
	produce.Topics = append(produce.Topics, pt)
	seed(produce, 3, 7, 9)

	fetch := kmsg.NewPtrFetchRequest()
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic = "orders"
	ft.Partitions = append(ft.Partitions, kmsg.NewFetchRequestTopicPartition())
	fetch.Topics = append(fetch.Topics, ft)
	seed(fetch, 4, 11, 12)

	meta := kmsg.NewPtrMetadataRequest()
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr("orders")
	meta.Topics = append(meta.Topics, mt)
	seed(meta, 1, 7, 9, 12)

	join := kmsg.NewPtrJoinGroupRequest()
	join.Group, join.ProtocolType = "g", "consumer"
	jp := kmsg.NewJoinGroupRequestProtocol()
	jp.Name, jp.Metadata = "range", []byte{0, 1, 2}
	join.Protocols = append(join.Protocols, jp)
	seed(join, 0, 5, 6)

	seed(kmsg.NewPtrHeartbeatRequest(), 0, 4)
	seed(kmsg.NewPtrListOffsetsRequest(), 1, 6)
	seed(kmsg.NewPtrOffsetCommitRequest(), 2, 8)
	seed(kmsg.NewPtrSASLAuthenticateRequest(), 0, 2)
	f.Add([]byte{0, 18, 0, 99, 0, 0, 0, 1, 0xff, 0xff})

	s := allKeysServer(f)
	f.Fuzz(func(t *testing.T, frame []byte) {
		h, req, err := s.parseRequest(frame)
		if err != nil {
			if req != nil {
				t.Fatalf("request %T with error %v", req, err)
			}
			if !strings.HasPrefix(err.Error(), "kafka: ") {
				t.Fatalf("unprefixed error %v", err)
			}
			return
		}
		if req.Key() != h.key || req.GetVersion() != h.version || req.IsFlexible() != h.flexible {
			t.Fatalf("request %T v%d for header %+v", req, req.GetVersion(), h)
		}
		// The handler path encodes a response at the request's version.
		resp := req.ResponseKind()
		appendResponse(nil, h, resp)
	})
}

package kafka

import (
	"context"
	"encoding/binary"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
)

// checkApiVersions checks resp is a successful ApiVersions response listing
// exactly the APIs s serves: the package table and s's test-only ones.
func checkApiVersions(t *testing.T, s *Server, resp *kmsg.ApiVersionsResponse) {
	t.Helper()
	if resp.ErrorCode != 0 {
		t.Fatalf("error code %d", resp.ErrorCode)
	}
	if resp.ThrottleMillis != 0 {
		t.Errorf("throttle %d", resp.ThrottleMillis)
	}
	served := map[int16]bool{}
	for k := range apis {
		served[k] = true
	}
	for k := range s.extra {
		served[k] = true
	}
	if want := len(served); len(resp.ApiKeys) != want {
		t.Fatalf("%d api keys, want %d", len(resp.ApiKeys), want)
	}
	for i, k := range resp.ApiKeys {
		if i > 0 && resp.ApiKeys[i-1].ApiKey >= k.ApiKey {
			t.Errorf("api keys not sorted at %d", i)
		}
		a, ok := s.lookup(k.ApiKey)
		if !ok || a.MinVersion != k.MinVersion || a.MaxVersion != k.MaxVersion {
			t.Errorf("key %d: advertised %d-%d, table %+v", k.ApiKey, k.MinVersion, k.MaxVersion, a)
		}
	}
	if a, _ := s.lookup(18); a.MinVersion != 0 || a.MaxVersion != 3 {
		t.Errorf("ApiVersions range %d-%d, want 0-3", a.MinVersion, a.MaxVersion)
	}
}

func TestApiVersionsRaw(t *testing.T) {
	ts := startServer(t, Options{})
	c := dial(t, ts.addr)
	// All versions on one connection, in turn: each answer is exact.
	for v := int16(0); v <= 3; v++ {
		req := kmsg.NewPtrApiVersionsRequest()
		req.Version = v
		req.ClientSoftwareName, req.ClientSoftwareVersion = "weir-test", "1.0"
		resp := c.roundTrip(req).(*kmsg.ApiVersionsResponse)
		if resp.Version != v {
			t.Fatalf("decoded at v%d", resp.Version)
		}
		checkApiVersions(t, ts.Server, resp)
	}
}

// TestApiVersionsV3HeaderHasNoTags parses a v3 response byte by byte: the
// response header is v0 (no tag byte) although the body is flexible.
func TestApiVersionsV3HeaderHasNoTags(t *testing.T) {
	ts := startServer(t, Options{})
	c := dial(t, ts.addr)
	req := kmsg.NewPtrApiVersionsRequest()
	req.Version = 3
	corr := c.send(req)
	frame := c.readFrame()

	if got := int32(binary.BigEndian.Uint32(frame)); got != corr {
		t.Fatalf("correlation id %d, want %d", got, corr)
	}
	body := frame[4:]
	// A v3 body starts with the int16 error code, then a compact array
	// length (count+1) of api keys. A stray header tag byte (0) would shift
	// this: the error code would read as 0x00<count+1>... and fail here.
	if ec := int16(binary.BigEndian.Uint16(body)); ec != 0 {
		t.Fatalf("error code %d; header tag byte present? % x", ec, frame[:8])
	}
	if n := int(body[2]) - 1; n != len(apis) {
		t.Fatalf("compact array of %d keys, want %d", n, len(apis))
	}
	want := kmsg.NewPtrApiVersionsResponse()
	want.Version = 3
	want.ApiKeys = ts.apiVersionsKeys()
	if got, exp := fmt.Sprintf("% x", body), fmt.Sprintf("% x", want.AppendTo(nil)); got != exp {
		t.Fatalf("body\n got %s\nwant %s", got, exp)
	}
}

func TestApiVersionsUnsupportedVersion(t *testing.T) {
	ts := startServer(t, Options{})
	c := dial(t, ts.addr)

	// Version 99 of a body nobody can decode: only the header is read.
	frame := binary.BigEndian.AppendUint16(nil, 18)
	frame = binary.BigEndian.AppendUint16(frame, 99)
	frame = binary.BigEndian.AppendUint32(frame, 7)
	frame = append(frame, 0xff, 0xff, 0xde, 0xad) // null client id, junk
	c.writeFrame(frame)
	v0 := kmsg.NewPtrApiVersionsRequest() // the reply is a v0 body
	resp := c.readResponse(v0, 7).(*kmsg.ApiVersionsResponse)
	if resp.ErrorCode != kerr.UnsupportedVersion.Code {
		t.Fatalf("error code %d, want %d", resp.ErrorCode, kerr.UnsupportedVersion.Code)
	}
	if len(resp.ApiKeys) != 1 || resp.ApiKeys[0].ApiKey != 18 || resp.ApiKeys[0].MinVersion != 0 || resp.ApiKeys[0].MaxVersion != 3 {
		t.Fatalf("api keys %+v, want only ApiVersions 0-3", resp.ApiKeys)
	}

	// v4 is known to kmsg but above our table; also answered, and the
	// connection stays usable for the retry.
	req := kmsg.NewPtrApiVersionsRequest()
	req.Version = 4
	corr := c.send(req)
	if resp := c.readResponse(v0, corr).(*kmsg.ApiVersionsResponse); resp.ErrorCode != kerr.UnsupportedVersion.Code {
		t.Fatalf("v4: error code %d", resp.ErrorCode)
	}
	req.Version = 3
	checkApiVersions(t, ts.Server, c.roundTrip(req).(*kmsg.ApiVersionsResponse))
}

func TestApiVersionsKgo(t *testing.T) {
	ts := startServer(t, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	request := func(t *testing.T, opts ...kgo.Opt) *kmsg.ApiVersionsResponse {
		t.Helper()
		cl, err := kgo.NewClient(append(opts, kgo.SeedBrokers(ts.addr))...)
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		resp, err := cl.Request(ctx, kmsg.NewPtrApiVersionsRequest())
		if err != nil {
			t.Fatal(err)
		}
		return resp.(*kmsg.ApiVersionsResponse)
	}

	for v := int16(0); v <= 3; v++ {
		t.Run(fmt.Sprintf("v%d", v), func(t *testing.T) {
			vs := kversion.Stable()
			vs.SetMaxKeyVersion(18, v)
			resp := request(t, kgo.MaxVersions(vs))
			if resp.Version != v {
				t.Fatalf("kgo used v%d", resp.Version)
			}
			checkApiVersions(t, ts.Server, resp)
		})
	}
	// Unpinned, kgo opens with a version above ours and must downgrade
	// through our KIP-511 answer.
	t.Run("downgrade", func(t *testing.T) {
		resp := request(t)
		if resp.Version != 3 {
			t.Fatalf("kgo used v%d, want 3", resp.Version)
		}
		checkApiVersions(t, ts.Server, resp)
		if !ts.logs.contains("unsupported ApiVersions version") {
			t.Error("no KIP-511 downgrade seen")
		}
	})
}

// TestApiVersionsClientSoftware checks a v3 request's software name reaches
// the connection.
func TestApiVersionsClientSoftware(t *testing.T) {
	got := make(chan [3]string, 1)
	ts := startServer(t, Options{}, func(s *Server) {
		s.extra = map[int16]api{12: {Key: 12, MinVersion: 0, MaxVersion: 4,
			Handle: func(s *Server, c *Conn, req kmsg.Request) Reply {
				name, version := c.ClientSoftware()
				got <- [3]string{c.ClientID(), name, version}
				return Respond(req.ResponseKind())
			}}}
	})
	c := dial(t, ts.addr)
	av := kmsg.NewPtrApiVersionsRequest()
	av.Version = 3
	av.ClientSoftwareName, av.ClientSoftwareVersion = "weir-test", "1.2.3"
	c.roundTrip(av)
	c.roundTrip(kmsg.NewPtrHeartbeatRequest())
	if g := <-got; g != [3]string{"test", "weir-test", "1.2.3"} {
		t.Fatalf("client id, software = %q", g)
	}
}

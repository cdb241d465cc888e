package kafka

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weirhq/weir/internal/batch"
)

// Hostile input on the Kafka port. For each kind the broker must answer
// with an error or close that one connection, keep serving other clients,
// and keep its memory bounded by what it is configured to accept, not by
// what a client claims.

// memSnapshot is heap plus goroutine stacks after a full collection.
func memSnapshot() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse + m.StackInuse
}

func totalAlloc() uint64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.TotalAlloc
}

// rawFrame is a request frame with a correct size prefix around body, whose
// header is built by hand: key, version, correlation id 1, client id "h".
func rawFrame(key, version int16, body []byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, 0)
	b = binary.BigEndian.AppendUint16(b, uint16(key))
	b = binary.BigEndian.AppendUint16(b, uint16(version))
	b = binary.BigEndian.AppendUint32(b, 1)
	b = kbin.AppendNullableString(b, kmsg.StringPtr("h"))
	b = append(b, body...)
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	return b
}

// flexFrame is rawFrame for a flexible version: header tags after the
// client id.
func flexFrame(key, version int16, body []byte) []byte {
	return rawFrame(key, version, append([]byte{0}, body...))
}

// produceV7Head is the start of a Produce v7 body: no transactional id,
// acks -1, timeout 5000 ms; the topics array follows.
func produceV7Head() []byte { return []byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0x13, 0x88} }

// TestHostileFrames sends malformed frames, one connection each: every one
// closes only its connection (or is answered), and a well-behaved client
// is served after each.
func TestHostileFrames(t *testing.T) {
	const limit = 1 << 20
	ts := startServer(t, Options{MaxFrameBytes: limit})
	be32 := func(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }
	for _, tc := range []struct {
		name   string
		bytes  []byte
		answer bool // answered with an error response instead of closing
	}{
		{"size over the limit", be32(limit + 1), false},
		{"size max int32", be32(0x7fffffff), false},
		{"size negative", be32(0x80000000), false},
		{"size -1", be32(0xffffffff), false},
		{"empty frame", be32(0), false},
		{"header cut short", append(be32(6), 0, 0, 0, 9, 0, 0), false},
		{"client id longer than the frame", append(be32(10), 0, 18, 0, 0, 0, 0, 0, 1, 0x7f, 0xff), false},
		{"unknown api key", rawFrame(999, 0, nil), false},
		{"negative api key", rawFrame(-1, 0, nil), false},
		{"unsupported version", rawFrame(0, 99, nil), false},
		{"negative version", rawFrame(3, -1, nil), false},
		{"ApiVersions of a future version", rawFrame(18, 99, nil), true},
		// Produce v7: transactional id (null), acks, timeout, then a topics
		// array claiming 2^31-1 entries in a few bytes.
		{"array length far beyond the frame", rawFrame(0, 7, append(produceV7Head(), be32(0x7fffffff)...)), false},
		// Metadata v12 (flexible): a compact topics array of ~2^31.
		{"compact array length far beyond the frame", flexFrame(3, 12, []byte{0xff, 0xff, 0xff, 0xff, 0x07}), false},
		// Produce v7 with one topic whose name claims 32767 bytes.
		{"string length far beyond the frame", rawFrame(0, 7, append(produceV7Head(), 0, 0, 0, 1, 0x7f, 0xff, 'a', 'b', 'c')), false},
		// Produce v7, topic "t", one partition whose records claim 1 GiB.
		{"bytes length far beyond the frame", rawFrame(0, 7, append(produceV7Head(),
			0, 0, 0, 1, 0, 1, 't', 0, 0, 0, 1, 0, 0, 0, 0, 0x40, 0, 0, 0, 'x', 'y', 'z')), false},
		{"array of negative length", rawFrame(0, 7, append(produceV7Head(), be32(0x80000000)...)), true}, // read as null: an empty answer
		{"trailing garbage after the body", rawFrame(18, 0, []byte{1, 2, 3}), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, ts.addr)
			c.write(tc.bytes)
			if tc.answer {
				frame := c.readFrame()
				if binary.BigEndian.Uint32(frame) != 1 {
					t.Fatalf("answer with correlation id %d", binary.BigEndian.Uint32(frame))
				}
			} else {
				c.expectClosed()
			}
			apiVersionsOK(t, ts)
		})
	}
	waitNoConns(t, ts)
}

// TestHostileFrameMemory: a frame size is a claim, not an allocation:
// clients that announce frames at the limit and send a few bytes cost
// about what they sent; a frame's decoding allocates within a small
// multiple of its size however large the counts inside claim to be; and
// truncated frames leave nothing behind.
func TestHostileFrameMemory(t *testing.T) {
	const limit = 8 << 20
	ts := startServer(t, Options{MaxFrameBytes: limit, IdleTimeout: time.Minute})

	const conns = 100
	before := memSnapshot()
	var cs []*rawClient
	for i := 0; i < conns; i++ {
		c := dial(t, ts.addr)
		c.write(binary.BigEndian.AppendUint32(nil, limit)) // an 8 MiB frame...
		c.write(rawFrame(0, 7, nil)[4:])                   // ...of which a few bytes arrive
		cs = append(cs, c)
	}
	waitFor(t, "connections accepted", func() bool { return ts.numConns() == conns })
	time.Sleep(100 * time.Millisecond) // let every reader take in its bytes
	grown := int64(memSnapshot()) - int64(before)
	t.Logf("%d connections each announcing an %d MiB frame: memory grew %d KiB (%d KiB each)",
		conns, limit>>20, grown>>10, grown/conns>>10)
	if grown > conns*256<<10 {
		t.Errorf("memory grew %d MiB for %d stalled %d MiB frames: claims are being allocated", grown>>20, conns, limit>>20)
	}
	for _, c := range cs {
		_ = c.nc.Close() // truncated frames
	}
	waitNoConns(t, ts)

	// Counts inside a full frame claiming as many elements as there are
	// bytes left: the decoder allocates per element, never past the frame.
	// Fetch v12: fixed fields, then a topics array whose every element is
	// 3 bytes (empty name, no partitions, no tags), claiming one element
	// per byte left.
	elems := bytes.Repeat([]byte{1, 1, 0}, 1<<20/3)
	body := append(make([]byte, 25), binary.AppendUvarint(nil, uint64(len(elems)+1))...)
	frame := flexFrame(1, 12, append(body, elems...))
	c := dial(t, ts.addr)
	start := totalAlloc()
	c.write(frame)
	c.expectClosed()
	waitNoConns(t, ts)
	alloc := totalAlloc() - start
	t.Logf("a %d KiB frame of maximal counts allocated %d KiB to reject", len(frame)>>10, alloc>>10)
	if alloc > 64*uint64(len(frame)) {
		t.Errorf("rejecting a %d KiB frame allocated %d MiB", len(frame)>>10, alloc>>20)
	}
	apiVersionsOK(t, ts)
}

// reCRC recomputes a batch's CRC after an edit.
func reCRC(b []byte) []byte {
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli)))
	return b
}

// TestHostileRecordBatches produces malformed record batches: each is
// answered with an error for its partition, nothing is appended, and the
// connection goes on serving.
func TestHostileRecordBatches(t *testing.T) {
	ts := startServer(t, Options{})
	b := ts.opts.Broker
	if _, err := b.CreateTopic("t", 1, nil, false); err != nil {
		t.Fatal(err)
	}
	good := func() []byte { return buildBatch(t, 3, batch.BuildOptions{}) }
	edit := func(f func([]byte) []byte) []byte { return f(good()) }
	bomb := func() []byte {
		enc, _ := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest))
		payload := enc.EncodeAll(make([]byte, 256<<20), nil) // 256 MiB of zeros in a few KiB
		raw := buildBatch(t, 1, batch.BuildOptions{Codec: batch.CodecZstd})
		raw = append(raw[:batch.HeaderSize:batch.HeaderSize], payload...)
		binary.BigEndian.PutUint32(raw[8:], uint32(len(raw)-12))
		return reCRC(raw)
	}()
	corruptCode, invalidCode := kerr.CorruptMessage.Code, kerr.InvalidRecord.Code
	for _, tc := range []struct {
		name  string
		batch []byte
		codes []int16 // acceptable answers
	}{
		{"bad crc", edit(func(b []byte) []byte { b[len(b)-1] ^= 1; return b }), []int16{corruptCode}},
		{"record count too high", edit(func(b []byte) []byte { binary.BigEndian.PutUint32(b[57:], 5); return reCRC(b) }), []int16{corruptCode}},
		{"record count negative", edit(func(b []byte) []byte { binary.BigEndian.PutUint32(b[57:], 0xffffffff); return reCRC(b) }), []int16{corruptCode}},
		{"last offset delta negative", edit(func(b []byte) []byte { binary.BigEndian.PutUint32(b[23:], 0xfffffffe); return reCRC(b) }), []int16{corruptCode}},
		{"batch length negative", edit(func(b []byte) []byte { binary.BigEndian.PutUint32(b[8:], 0xfffffff0); return b }), []int16{corruptCode}},
		{"batch length past the data", edit(func(b []byte) []byte { binary.BigEndian.PutUint32(b[8:], uint32(len(b)+100)); return b }), []int16{corruptCode}},
		{"batch length below a header", edit(func(b []byte) []byte { binary.BigEndian.PutUint32(b[8:], 10); return b }), []int16{corruptCode}},
		{"record length negative", edit(func(b []byte) []byte { b[61] = 0x01; return reCRC(b) }), []int16{corruptCode}}, // zigzag 1 = -1
		{"record length huge", edit(func(b []byte) []byte {
			return reCRC(append(b[:61:61], append([]byte{0xfe, 0xff, 0xff, 0xff, 0x0f}, b[62:]...)...))
		}), []int16{corruptCode}},
		{"truncated batch", good()[:70], []int16{corruptCode}},
		{"only part of a header", good()[:30], []int16{corruptCode}},
		{"garbage after the batch", append(good(), 1, 2, 3, 4, 5), []int16{corruptCode}},
		{"magic 1", edit(func(b []byte) []byte { b[16] = 1; return b }), []int16{corruptCode}},
		{"unknown codec", edit(func(b []byte) []byte { b[22] |= 7; return reCRC(b) }), []int16{corruptCode, kerr.UnsupportedCompressionType.Code}},
		{"no records", func() []byte { return buildBatch(t, 0, batch.BuildOptions{}) }(), []int16{corruptCode}},
		{"control batch", func() []byte {
			return buildBatch(t, 1, batch.BuildOptions{HasProducer: true, ProducerID: 1, Control: true, Transactional: true, BaseSequence: -1})
		}(), []int16{invalidCode}},
		{"empty", []byte{}, []int16{corruptCode}},
		// Produce decompresses to check the records, within 64 MiB: a
		// bomb is refused as too large without memory growing past it.
		{"zstd bomb", bomb, []int16{kerr.MessageTooLarge.Code}},
		{"compressed records miscounted", func() []byte {
			b := buildBatch(t, 3, batch.BuildOptions{Codec: batch.CodecGzip})
			binary.BigEndian.PutUint32(b[23:], 3) // last offset delta
			binary.BigEndian.PutUint32(b[57:], 4) // record count
			return reCRC(b)
		}(), []int16{corruptCode}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, ts.addr)
			p, _ := b.Partition("t", 0)
			hw := p.HighWatermark()
			before := memSnapshot()
			resp := c.roundTrip(produceReq(9, -1, "t", 0, tc.batch)).(*kmsg.ProduceResponse)
			code := resp.Topics[0].Partitions[0].ErrorCode
			ok := false
			for _, want := range tc.codes {
				ok = ok || code == want
			}
			if !ok {
				t.Fatalf("answer %v, want one of %v", kerr.ErrorForCode(code), tc.codes)
			}
			if code != 0 && p.HighWatermark() != hw {
				t.Fatalf("refused batch moved the high watermark from %d to %d", hw, p.HighWatermark())
			}
			if grown := int64(memSnapshot()) - int64(before); grown > 32<<20 {
				t.Errorf("memory grew %d MiB", grown>>20)
			}
			// The same connection goes on serving.
			checkApiVersions(t, ts.Server, c.roundTrip(kmsg.NewPtrApiVersionsRequest()).(*kmsg.ApiVersionsResponse))
		})
	}
	// A timestamp lookup decompresses stored batches within its bound (the
	// bomb was refused, so this only checks the lookup stays bounded).
	c := dial(t, ts.addr)
	before := memSnapshot()
	lo := kmsg.NewPtrListOffsetsRequest()
	lo.Version = 4
	lt := kmsg.NewListOffsetsRequestTopic()
	lt.Topic = "t"
	lp := kmsg.NewListOffsetsRequestTopicPartition()
	lp.Timestamp, lp.CurrentLeaderEpoch = 0, -1
	lt.Partitions = append(lt.Partitions, lp)
	lo.Topics = append(lo.Topics, lt)
	resp := c.roundTrip(lo).(*kmsg.ListOffsetsResponse)
	t.Logf("ListOffsets by timestamp over a stored zstd bomb: %v", kerr.ErrorForCode(resp.Topics[0].Partitions[0].ErrorCode))
	if grown := int64(memSnapshot()) - int64(before); grown > 32<<20 {
		t.Errorf("memory grew %d MiB after a timestamp lookup over a bomb", grown>>20)
	}
	apiVersionsOK(t, ts)
}

// raiseFDLimit tries to allow want open files and returns how many are
// allowed.
func raiseFDLimit(t *testing.T, want uint64) uint64 {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if lim.Cur >= want {
		return lim.Cur
	}
	orig := lim
	next := syscall.Rlimit{Cur: want, Max: max(lim.Max, want)}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &next); err != nil {
		next = syscall.Rlimit{Cur: lim.Max, Max: lim.Max}
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &next); err != nil {
			return lim.Cur
		}
	}
	t.Cleanup(func() { _ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &orig) })
	_ = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim)
	return lim.Cur
}

// dialMany opens n connections to addr with a few dialers at a time, so
// the listen backlog never overflows.
func dialMany(t *testing.T, addr string, n int) []net.Conn {
	t.Helper()
	out := make([]net.Conn, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				nc, err := net.DialTimeout("tcp", addr, 10*time.Second)
				if err != nil {
					errs <- err
					return
				}
				out[i] = nc
			}
		}()
	}
	wg.Wait()
	close(errs)
	t.Cleanup(func() {
		for _, nc := range out {
			if nc != nil {
				_ = nc.Close()
			}
		}
	})
	for err := range errs {
		t.Fatalf("dial: %v", err)
	}
	return out
}

// TestIdleConnections: 10,000 idle connections (2,500 under the race
// detector, or with -short), opened by a helper
// process so that only the server's ends count against this process's
// file limit, are accepted up to MaxConnections, cost a bounded amount of
// server memory each, do not stop another client from being served, the
// next one past the limit is refused, and the idle timeout closes them.
func TestIdleConnections(t *testing.T) {
	n := 10000
	if testing.Short() || raceDetector {
		n = 2500
	}
	if fds := raiseFDLimit(t, uint64(n+1024)); fds < uint64(n+1024) {
		n = int(fds - 1024)
		t.Logf("file descriptor limit %d: scaled down to %d idle connections", fds, n)
	}
	// Long enough for all of them to be accepted (seconds under -race)
	// before the first times out.
	idle := 10 * time.Second
	ts := startServer(t, Options{MaxConnections: n + 1, IdleTimeout: idle})
	goroutines := runtime.NumGoroutine()
	before := memSnapshot()
	start := time.Now()

	helper := exec.Command(os.Args[0], "-test.run=^TestIdleConnectionsHelper$")
	helper.Env = append(os.Environ(), "WEIR_IDLE_HELPER_ADDR="+ts.addr, "WEIR_IDLE_HELPER_N="+strconv.Itoa(n))
	stdin, err := helper.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := helper.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	helper.Stderr = os.Stderr
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = stdin.Close(); _ = helper.Wait() })
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		ok := false
		for sc.Scan() {
			if sc.Text() == "idle-helper: ready" {
				ok = true
				ready <- true
			}
		}
		if !ok {
			ready <- false
		}
	}()
	select {
	case ok := <-ready:
		if !ok {
			t.Fatal("the helper process failed to open its connections")
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the helper process did not open its connections within 60s")
	}
	for ts.numConns() < n {
		if time.Since(start) > idle {
			t.Fatalf("only %d of %d connections accepted within %v", ts.numConns(), n, idle)
		}
		time.Sleep(10 * time.Millisecond)
	}
	opened := time.Since(start)
	per := (int64(memSnapshot()) - int64(before)) / int64(n)
	t.Logf("%d idle connections opened in %v; %d KiB of server memory each, %d goroutines",
		n, opened.Round(time.Millisecond), per>>10, runtime.NumGoroutine()-goroutines)
	if per > 40<<10 {
		t.Errorf("an idle connection costs %d KiB", per>>10)
	}

	// One more client is served; the one after it is refused.
	served := dial(t, ts.addr)
	checkApiVersions(t, ts.Server, served.roundTrip(kmsg.NewPtrApiVersionsRequest()).(*kmsg.ApiVersionsResponse))
	refused := dial(t, ts.addr)
	refused.expectClosed()
	if !ts.logs.contains("connection limit reached") {
		t.Error("the refusal is not in the log")
	}

	// The idle timeout closes them all (the served client is idle too).
	for ts.numConns() > 0 {
		if time.Since(start) > idle+30*time.Second {
			t.Fatalf("%d connections still open %v after the start", ts.numConns(), time.Since(start))
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("idle timeout %v: all %d closed %v after the start", idle, n+1, time.Since(start).Round(time.Millisecond))
	waitFor(t, "connection goroutines to exit", func() bool { return runtime.NumGoroutine() <= goroutines+5 })
	apiVersionsOK(t, ts)
}

// TestIdleConnectionsHelper is the client side of TestIdleConnections,
// run in a child process: it opens the connections, says so, and holds
// them, idle, until its stdin closes.
func TestIdleConnectionsHelper(t *testing.T) {
	addr := os.Getenv("WEIR_IDLE_HELPER_ADDR")
	if addr == "" {
		t.Skip("the client process of TestIdleConnections")
	}
	n, err := strconv.Atoi(os.Getenv("WEIR_IDLE_HELPER_N"))
	if err != nil {
		t.Fatal(err)
	}
	raiseFDLimit(t, uint64(n+256))
	dialMany(t, addr, n)
	fmt.Println("idle-helper: ready")
	_, _ = io.Copy(io.Discard, os.Stdin)
}

// TestSlowLoris: writers that trickle a frame a byte at a time never
// complete it within the idle timeout and are closed, while a normal
// client is served promptly throughout.
func TestSlowLoris(t *testing.T) {
	idle := 500 * time.Millisecond
	ts := startServer(t, Options{IdleTimeout: idle})
	const writers = 200
	frame := encodeRequest(kmsg.NewPtrApiVersionsRequest(), 1)
	var closed atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for _, nc := range dialMany(t, ts.addr, writers) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i = (i + 1) % len(frame) {
				if _, err := nc.Write(frame[i : i+1]); err != nil {
					closed.Add(1)
					return
				}
				time.Sleep(100 * time.Millisecond)
				if time.Since(start) > 20*time.Second {
					return
				}
			}
		}()
	}
	var worst time.Duration
	for time.Since(start) < 2*idle {
		t0 := time.Now()
		apiVersionsOK(t, ts)
		worst = max(worst, time.Since(t0))
		time.Sleep(50 * time.Millisecond)
	}
	wg.Wait()
	t.Logf("%d slow-loris writers closed after %v; slowest normal request meanwhile %v",
		closed.Load(), time.Since(start).Round(time.Millisecond), worst.Round(time.Millisecond))
	if closed.Load() != writers {
		t.Fatalf("%d of %d slow writers closed", closed.Load(), writers)
	}
	if worst > time.Second {
		t.Errorf("a normal request took %v during the attack", worst)
	}
	waitNoConns(t, ts)
}

// TestConnectFlood: thousands of connections opened and dropped at once,
// some mid-frame, leave no connections or goroutines behind and do not
// disturb a client that stays connected.
func TestConnectFlood(t *testing.T) {
	ts := startServer(t, Options{})
	steady := dial(t, ts.addr)
	steady.roundTrip(kmsg.NewPtrApiVersionsRequest())
	goroutines := runtime.NumGoroutine()
	const total = 3000
	partial := encodeRequest(kmsg.NewPtrMetadataRequest(), 1)[:9]
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > total {
					return
				}
				nc, err := net.Dial("tcp", ts.addr)
				if err != nil {
					t.Errorf("dial %d: %v", i, err)
					return
				}
				switch i % 3 {
				case 1:
					_, _ = nc.Write(partial)
				case 2:
					if tc, ok := nc.(*net.TCPConn); ok {
						_ = tc.SetLinger(0) // RST instead of FIN
					}
				}
				_ = nc.Close()
			}
		}()
	}
	for range 20 { // the steady client is served throughout
		steady.roundTrip(kmsg.NewPtrApiVersionsRequest())
	}
	wg.Wait()
	waitFor(t, "flood connections to close", func() bool { return ts.numConns() == 1 })
	waitFor(t, "goroutines to exit", func() bool { return runtime.NumGoroutine() <= goroutines+5 })
	t.Logf("%d connect/disconnect cycles in %v", total, time.Since(start).Round(time.Millisecond))
	steady.roundTrip(kmsg.NewPtrApiVersionsRequest())
}

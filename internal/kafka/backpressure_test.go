package kafka

import (
	"encoding/binary"
	"io"
	"log/slog"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weirhq/weir/internal/batch"
	"github.com/weirhq/weir/internal/broker"
	"github.com/weirhq/weir/internal/group"
	"github.com/weirhq/weir/internal/vfs"
)

// Backpressure: a slow or stopped consumer costs the broker a bounded
// amount of memory and does not slow producers; producers faster than the
// disk see their latency rise while the broker's memory stays bounded,
// because each connection has at most a fixed number of requests in
// flight and the rest waits in the client's socket.

// latencies returns p50 and max of ds.
func latencies(ds []time.Duration) (p50, p99, worst time.Duration) {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2], s[len(s)*99/100], s[len(s)-1]
}

// produceLatencies runs n acks=all produces of one small batch, one at a
// time, and returns their latencies.
func produceLatencies(t *testing.T, addr, topic string, n int) []time.Duration {
	t.Helper()
	c := dial(t, addr)
	out := make([]time.Duration, 0, n)
	for i := 0; i < n; i++ {
		start := time.Now()
		resp := c.roundTrip(produceReq(9, -1, topic, 0, buildBatch(t, 1, batch.BuildOptions{}))).(*kmsg.ProduceResponse)
		if code := resp.Topics[0].Partitions[0].ErrorCode; code != 0 {
			t.Fatalf("produce: %v", kerr.ErrorForCode(code))
		}
		out = append(out, time.Since(start))
	}
	return out
}

// TestStoppedConsumer: consumers that pipeline large fetches and then stop
// reading (or read a trickle) hold at most a response or two each in
// broker memory, and producers on other connections are not slowed.
func TestStoppedConsumer(t *testing.T) {
	ts := startServer(t, Options{})
	b := ts.opts.Broker
	for _, name := range []string{"data", "p"} {
		if _, err := b.CreateTopic(name, 1, nil, false); err != nil {
			t.Fatal(err)
		}
	}
	// 16 MiB to fetch.
	value := make([]byte, 64<<10)
	c := dial(t, ts.addr)
	for i := 0; i < 256; i++ {
		raw, err := batch.Build(batch.BuildOptions{BaseTimestamp: time.Now().UnixMilli()}, []batch.Record{{Value: value}})
		if err != nil {
			t.Fatal(err)
		}
		if code := c.roundTrip(produceReq(9, -1, "data", 0, raw)).(*kmsg.ProduceResponse).Topics[0].Partitions[0].ErrorCode; code != 0 {
			t.Fatal(kerr.ErrorForCode(code))
		}
	}
	base := produceLatencies(t, ts.addr, "p", 200)
	before := memSnapshot()

	const consumers = 6
	const pipelined = 64
	var stop atomic.Bool
	var wg sync.WaitGroup
	for i := 0; i < consumers; i++ {
		nc, err := net.Dial("tcp", ts.addr)
		if err != nil {
			t.Fatal(err)
		}
		_ = nc.(*net.TCPConn).SetReadBuffer(4 << 10)
		t.Cleanup(func() { _ = nc.Close() })
		for j := 0; j < pipelined; j++ {
			req := fetchReq(11, "data", 0, int64(j%16)*16, 0, 0)
			req.MaxBytes, req.Topics[0].Partitions[0].PartitionMaxBytes = 4<<20, 4<<20
			if _, err := nc.Write(encodeRequest(req, int32(j))); err != nil {
				t.Fatal(err)
			}
		}
		if i%2 == 1 { // a slow consumer: 1 KiB every 20 ms
			wg.Add(1)
			go func() {
				defer wg.Done()
				buf := make([]byte, 1<<10)
				for !stop.Load() {
					_ = nc.SetReadDeadline(time.Now().Add(time.Second))
					if _, err := io.ReadFull(nc, buf); err != nil {
						return
					}
					time.Sleep(20 * time.Millisecond)
				}
			}()
		} // the others never read
	}
	time.Sleep(time.Second) // let the broker do all it will for them
	grown := int64(memSnapshot()) - int64(before)
	loaded := produceLatencies(t, ts.addr, "p", 200)
	stop.Store(true)
	wg.Wait()

	b50, b99, bmax := latencies(base)
	l50, l99, lmax := latencies(loaded)
	t.Logf("%d stopped or slow consumers with %d pipelined 4 MiB fetches each: broker memory grew %d MiB",
		consumers, pipelined, grown>>20)
	t.Logf("acks=all produce latency p50/p99/max: alone %v/%v/%v, beside them %v/%v/%v",
		b50, b99, bmax, l50, l99, lmax)
	// Each holds the response being written (<= 4 MiB) and its buffer.
	if limit := int64(consumers * 12 << 20); grown > limit {
		t.Errorf("memory grew %d MiB for %d stalled consumers (limit %d MiB): fetch responses pile up", grown>>20, consumers, limit>>20)
	}
	if l50 > 5*b50+20*time.Millisecond || lmax > 2*time.Second {
		t.Errorf("producers slowed down by stopped consumers: p50 %v (alone %v), max %v", l50, b50, lmax)
	}
}

// slowSyncFS makes every fsync take d, as a disk slower than the
// producers does.
func slowSyncFS(inner vfs.FS, d time.Duration) vfs.FS {
	return vfs.NewErrorFS(inner, vfs.InjectorFunc(func(op vfs.Op, _ string) error {
		if op == vfs.OpSync {
			time.Sleep(d)
		}
		return nil
	}))
}

// TestProducersFasterThanDisk: producers that pipeline acks=all requests
// as fast as they can onto a disk whose fsyncs are slow see higher
// latency, every request succeeds, and broker memory (beyond the data
// written) stays bounded: what the disk cannot absorb waits in the
// producers' sockets, not in the broker.
func TestProducersFasterThanDisk(t *testing.T) {
	// The real filesystem, so that written data sits in the page cache,
	// not in this process's heap where it would blur the measurement.
	b, err := broker.Open(broker.Options{FS: slowSyncFS(vfs.OS(), 10*time.Millisecond), Dir: t.TempDir(), Logger: slog.New(slog.DiscardHandler)})
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
	const partitions = 4
	if _, err := b.CreateTopic("fast", partitions, nil, false); err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, Options{Broker: b, Groups: g})

	alone := produceLatencies(t, ts.addr, "fast", 20)
	logSize := func() int64 {
		var n int64
		tp, _ := b.Topic("fast")
		for _, p := range tp.Partitions() {
			n += p.Size()
		}
		return n
	}
	const producers = 32
	// The clients' own state, allocated before the baseline.
	ncs := make([]net.Conn, producers)
	sents := make([]chan time.Time, producers)
	for i := range ncs {
		nc, err := net.Dial("tcp", ts.addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = nc.Close() })
		ncs[i], sents[i] = nc, make(chan time.Time, 512) // at most 512 outstanding per producer
	}
	before, size0 := memSnapshot(), logSize()
	run := 1500 * time.Millisecond
	value := make([]byte, 1<<10)
	var (
		mu       sync.Mutex
		lats     []time.Duration
		failures int
		maxOut   int64
	)
	var wg sync.WaitGroup
	start := time.Now()
	for i := 0; i < producers; i++ {
		nc, sent := ncs[i], sents[i]
		var outstanding atomic.Int64
		wg.Add(2)
		go func() { // writer: as fast as the socket takes them
			defer wg.Done()
			defer close(sent)
			raw, err := batch.Build(batch.BuildOptions{BaseTimestamp: time.Now().UnixMilli()}, []batch.Record{{Value: value}})
			if err != nil {
				t.Error(err)
				return
			}
			for corr := int32(0); time.Since(start) < run; corr++ {
				frame := encodeRequest(produceReq(9, -1, "fast", corr%partitions, raw), corr)
				sent <- time.Now()
				if _, err := nc.Write(frame); err != nil {
					t.Error(err)
					return
				}
				outstanding.Add(1)
			}
		}()
		go func() { // reader: latency of every response
			defer wg.Done()
			var size [4]byte
			for at := range sent {
				_ = nc.SetReadDeadline(time.Now().Add(30 * time.Second))
				if _, err := io.ReadFull(nc, size[:]); err != nil {
					t.Error(err)
					return
				}
				body := make([]byte, binary.BigEndian.Uint32(size[:]))
				if _, err := io.ReadFull(nc, body); err != nil {
					t.Error(err)
					return
				}
				n := outstanding.Add(-1)
				resp := kmsg.NewPtrProduceResponse()
				resp.Version = 9
				err := resp.ReadFrom(body[5:]) // correlation id, header tags
				mu.Lock()
				lats = append(lats, time.Since(at))
				maxOut = max(maxOut, n+1)
				if err != nil || resp.Topics[0].Partitions[0].ErrorCode != 0 {
					failures++
				}
				mu.Unlock()
			}
		}()
	}
	var peak int64
	for time.Since(start) < run {
		time.Sleep(200 * time.Millisecond)
		peak = max(peak, int64(memSnapshot())-int64(before)-(logSize()-size0))
	}
	wg.Wait()
	elapsed := time.Since(start)

	a50, _, _ := latencies(alone)
	l50, l99, lmax := latencies(lats)
	written := logSize() - size0
	t.Logf("%d producers pipelining acks=all onto 10 ms fsyncs: %d requests (%d MiB) in %v, %d failed; peak broker memory beyond the data %d MiB",
		producers, len(lats), written>>20, elapsed.Round(time.Millisecond), failures, peak>>20)
	t.Logf("latency p50/p99/max %v/%v/%v (alone p50 %v); at most %d requests outstanding on one connection, counting the client's socket",
		l50, l99, lmax, a50, maxOut)
	if failures > 0 {
		t.Errorf("%d produce requests failed", failures)
	}
	if l50 <= a50 {
		t.Errorf("latency did not rise under load: p50 %v, alone %v", l50, a50)
	}
	if maxOut <= defaultMaxInflight {
		t.Errorf("producers never had more than %d requests outstanding: the test did not outrun the broker", maxOut)
	}
	if peak > 32<<20 {
		t.Errorf("broker memory beyond the data grew by %d MiB: requests are being buffered", peak>>20)
	}
}

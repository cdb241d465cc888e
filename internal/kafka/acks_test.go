package kafka

import (
	"errors"
	"log/slog"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weirhq/weir/internal/batch"
	"github.com/weirhq/weir/internal/broker"
	"github.com/weirhq/weir/internal/group"
	"github.com/weirhq/weir/internal/vfs"
)

// TestAcksAndDurability pins down what "acknowledged" means per acks level
// under durability always, by stalling the disk's fsyncs:
//
//   - acks=all: no response until the fsync covering the batch returns;
//   - acks=1: answered once the batch is written, before it is fsynced, so
//     a power loss can take it back; consumers do not see it (the high
//     watermark stays put) until the fsync returns;
//   - acks=0: no response at all;
//
// and a power loss while the fsync is stalled keeps exactly what was
// acknowledged with acks=all.
func TestAcksAndDurability(t *testing.T) {
	mem := vfs.NewMem()
	var stall atomic.Bool
	release := make(chan struct{})
	fsys := vfs.NewErrorFS(mem, vfs.InjectorFunc(func(op vfs.Op, _ string) error {
		if op == vfs.OpSync && stall.Load() {
			<-release
		}
		return nil
	}))
	b, err := broker.Open(broker.Options{FS: fsys, Dir: "/data", Logger: slog.New(slog.DiscardHandler)})
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
	if _, err := b.CreateTopic("t", 1, nil, false); err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, Options{Broker: b, Groups: g})
	p, _ := b.Partition("t", 0)
	c := dial(t, ts.addr)
	if code, _ := produceCode(t, c, -1, "t", buildBatch(t, 2, batch.BuildOptions{})); code != 0 {
		t.Fatal(code)
	}

	stall.Store(true)
	released := false
	defer func() {
		if !released {
			close(release)
		}
	}()

	// acks=1: answered although its fsync cannot happen.
	if code, off := produceCode(t, c, 1, "t", buildBatch(t, 3, batch.BuildOptions{})); code != 0 || off != 2 {
		t.Fatalf("acks=1 with fsync stalled: code %d offset %d", code, off)
	}
	if hw := p.HighWatermark(); hw != 2 {
		t.Fatalf("high watermark %d: an unsynced acks=1 batch is visible", hw)
	}
	resp := c.roundTrip(fetchReq(11, "t", 0, 0, 0, 0)).(*kmsg.FetchResponse).Topics[0].Partitions[0]
	if resp.HighWatermark != 2 || countRecords(t, resp.RecordBatches) != 2 {
		t.Fatalf("fetch shows high watermark %d: consumers see unsynced data", resp.HighWatermark)
	}
	// A power loss now loses the acks=1 batch and keeps the acks=all one.
	img := mem.CrashStrict()

	// acks=all: no answer while the fsync is stalled.
	req := produceReq(9, -1, "t", 0, buildBatch(t, 1, batch.BuildOptions{}))
	corr := c.send(req)
	_ = c.nc.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	var one [1]byte
	if n, err := c.nc.Read(one[:]); n > 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("acks=all answered before its fsync (read %d bytes, %v)", n, err)
	}
	released = true
	close(release)
	if code := c.readResponse(req, corr).(*kmsg.ProduceResponse).Topics[0].Partitions[0].ErrorCode; code != 0 {
		t.Fatalf("acks=all after the fsync: code %d", code)
	}
	if hw := p.HighWatermark(); hw != 6 {
		t.Fatalf("high watermark %d after the fsync, want 6", hw)
	}

	// acks=0: no response; the next request's answer comes first.
	c.send(produceReq(9, 0, "t", 0, buildBatch(t, 1, batch.BuildOptions{})))
	checkApiVersions(t, ts.Server, c.roundTrip(kmsg.NewPtrApiVersionsRequest()).(*kmsg.ApiVersionsResponse))

	b2, err := broker.Open(broker.Options{FS: img, Dir: "/data", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = b2.Close() }()
	q, _ := b2.Partition("t", 0)
	if hw := q.HighWatermark(); hw != 2 {
		t.Fatalf("after a power loss with the fsync stalled: %d records, want the 2 acknowledged with acks=all", hw)
	}
}

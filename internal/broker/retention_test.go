package broker

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/weirhq/weir/internal/batch"
	"github.com/weirhq/weir/internal/commitlog"
	"github.com/weirhq/weir/internal/vfs"
)

// manualClock is an injectable Options.Now.
type manualClock struct{ ms atomic.Int64 }

func (c *manualClock) now() time.Time   { return time.UnixMilli(c.ms.Load()) }
func (c *manualClock) advance(ms int64) { c.ms.Add(ms) }

// segmentFiles counts p's segments (.log files) and sealed ones (with an
// offset index).
func segmentFiles(t *testing.T, b *Broker, p *Partition) (segs, sealed int) {
	t.Helper()
	names, err := b.opts.FS.List(p.log.Dir())
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		switch {
		case strings.HasSuffix(n, ".log"):
			segs++
		case strings.HasSuffix(n, ".index"):
			sealed++
		}
	}
	return segs, sealed
}

func produceAt(t *testing.T, p *Partition, n int, ts int64) Appended {
	t.Helper()
	a, err := p.Produce(mkBatch(t, n, batch.BuildOptions{BaseTimestamp: ts}))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.WaitDurable(context.Background(), a.LastOffset+1); err != nil {
		t.Fatal(err)
	}
	return a
}

// Each retention check rolls an idle partition past segment.ms, whatever
// its cleanup.policy, and deletes by time and size only where the policy
// includes delete (compact,delete too).
func TestRetentionCheckRollsIdleSegments(t *testing.T) {
	clock := &manualClock{}
	clock.ms.Store(1_700_000_000_000)
	b, err := Open(Options{FS: vfs.NewMem(), Dir: "/data", Logger: quiet(), Now: clock.now,
		RetentionCheckInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	policies := []string{"delete", "compact", "compact,delete"}
	parts := map[string]*Partition{}
	for _, pol := range policies {
		name := strings.ReplaceAll(pol, ",", "-")
		if _, err := b.CreateTopic(name, 1, map[string]string{
			"cleanup.policy": pol, "retention.ms": "2000", "segment.ms": "500"}, false); err != nil {
			t.Fatalf("create %s: %v", pol, err)
		}
		parts[pol], _ = b.Partition(name, 0)
		produceAt(t, parts[pol], 3, clock.now().UnixMilli())
	}

	clock.advance(499)
	b.EnforceRetention()
	for pol, p := range parts {
		if segs, sealed := segmentFiles(t, b, p); segs != 1 || sealed != 0 {
			t.Fatalf("%s before segment.ms: %d segments, %d sealed; want 1, 0", pol, segs, sealed)
		}
	}
	clock.advance(1)
	b.EnforceRetention()
	for pol, p := range parts {
		if segs, sealed := segmentFiles(t, b, p); segs != 2 || sealed != 1 {
			t.Fatalf("%s at segment.ms: %d segments, %d sealed; want 2, 1", pol, segs, sealed)
		}
		if s, hw := p.LogStartOffset(), p.HighWatermark(); s != 0 || hw != 3 {
			t.Fatalf("%s: log start %d high watermark %d, want 0 3", pol, s, hw)
		}
	}

	clock.advance(1503) // the newest record (ts +2) is now 2001 ms old
	b.EnforceRetention()
	for pol, p := range parts {
		wantStart := int64(3)
		if pol == "compact" {
			wantStart = 0
		}
		if s := p.LogStartOffset(); s != wantStart {
			t.Fatalf("%s: log start %d after retention.ms, want %d", pol, s, wantStart)
		}
		if _, err := p.Read(0, 1<<20); (wantStart > 0) != errors.Is(err, commitlog.ErrOffsetOutOfRange) {
			t.Fatalf("%s: Read(0) after retention: %v", pol, err)
		}
	}
}

// The retention loop runs every RetentionCheckInterval, 5 s by default, so
// a topic with retention.ms=2000 and segment.ms=500 loses records written
// once and never followed within 10 s (the scenario, in a bubble).
func TestRetentionLoopIsPrompt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, err := Open(Options{FS: vfs.NewMem(), Dir: "/data", Logger: quiet()})
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		if b.opts.RetentionCheckInterval != 5*time.Second || b.opts.CleanerBackoff != 5*time.Second {
			t.Fatalf("defaults: retention check %v, cleaner backoff %v; want 5s 5s",
				b.opts.RetentionCheckInterval, b.opts.CleanerBackoff)
		}
		if _, err := b.CreateTopic("t", 1, map[string]string{"retention.ms": "2000", "segment.ms": "500"}, false); err != nil {
			t.Fatal(err)
		}
		p, _ := b.Partition("t", 0)
		start := time.Now()
		a := produceAt(t, p, 5, start.UnixMilli())
		for p.LogStartOffset() <= a.LastOffset {
			if time.Since(start) > 10*time.Second {
				t.Fatalf("log start %d after %v, want past %d", p.LogStartOffset(), time.Since(start), a.LastOffset)
			}
			time.Sleep(100 * time.Millisecond) // fake time in the bubble
		}
		if _, err := p.Read(0, 1<<20); !errors.Is(err, commitlog.ErrOffsetOutOfRange) {
			t.Fatalf("Read(0) after retention: %v", err)
		}
	})
}

package e2e

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestGroupsFranzGo runs the group scenario (groups_helpers_test.go) with
// franz-go members, eager (range) and cooperative (cooperative-sticky).
//
// The members follow franz-go's commit-before-release pattern:
// BlockRebalanceOnPoll keeps a rebalance from running between a poll and
// AllowRebalance, each poll is processed and committed
// (CommitUncommittedOffsets) before AllowRebalance, and
// OnPartitionsRevoked commits again, so a partition is never handed over
// with processed records uncommitted: every record is consumed exactly
// once.
func TestGroupsFranzGo(t *testing.T) {
	t.Parallel()
	for _, b := range []struct {
		name string
		bal  kgo.GroupBalancer
	}{
		{"range", kgo.RangeBalancer()},
		{"cooperative-sticky", kgo.CooperativeStickyBalancer()},
	} {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			runGroupScenario(t, "kgo-"+b.name, grpClient{exact: true, crash: true,
				start: func(sc *grpScenario, name string, l *grpLedger) grpMember {
					return startKgoMember(sc, name, l, b.bal)
				}})
		})
	}
}

// kgoMember is a franz-go group member polling on its own goroutine.
type kgoMember struct {
	name   string
	cl     *kgo.Client
	net    *grpNet
	cancel context.CancelFunc
	done   chan struct{}

	// mu is held while a poll is processed and committed, and by the
	// revoke callback; crashed stops processing.
	mu      sync.Mutex
	crashed bool
}

func startKgoMember(sc *grpScenario, name string, l *grpLedger, bal kgo.GroupBalancer) *kgoMember {
	t := sc.t
	m := &kgoMember{name: name, net: newGrpNet(), done: make(chan struct{})}
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(sc.w.Addr),
		kgo.ClientID(name),
		kgo.Dialer(m.net.DialContext),
		kgo.ConsumerGroup(sc.group),
		kgo.ConsumeTopics(sc.topic),
		kgo.Balancers(bal),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.SessionTimeout(grpSession),
		kgo.HeartbeatInterval(grpHeartbeat),
		kgo.RebalanceTimeout(grpRebalance),
		kgo.FetchMaxWait(250*time.Millisecond),
		kgo.RetryTimeout(10*time.Second),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.OnPartitionsRevoked(func(ctx context.Context, cl *kgo.Client, revoked map[string][]int32) {
			m.mu.Lock()
			defer m.mu.Unlock()
			if m.crashed {
				return // a crashed process runs no callbacks
			}
			if err := cl.CommitUncommittedOffsets(ctx); err != nil {
				l.note("%s: commit on revoke of %v: %v", name, revoked, err)
			}
		}),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
			if !m.isCrashed() {
				l.note("%s: partitions lost: %v", name, lost)
			}
		}),
	)
	if err != nil {
		t.Fatal(err)
	}
	m.cl = cl
	ctx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	go func() {
		defer close(m.done)
		for {
			fs := cl.PollFetches(ctx)
			if ctx.Err() != nil || fs.IsClientClosed() {
				cl.AllowRebalance()
				return
			}
			m.mu.Lock()
			if m.crashed {
				m.mu.Unlock()
				cl.AllowRebalance()
				return
			}
			fs.EachError(func(topic string, p int32, err error) {
				l.note("%s: fetch %s[%d]: %v", name, topic, p, err)
			})
			fs.EachRecord(func(r *kgo.Record) {
				l.add(name, r.Partition, r.Offset, string(r.Value))
			})
			if err := cl.CommitUncommittedOffsets(ctx); err != nil && ctx.Err() == nil {
				l.note("%s: commit: %v", name, err)
			}
			m.mu.Unlock()
			cl.AllowRebalance()
		}
	}()
	return m
}

func (m *kgoMember) isCrashed() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.crashed
}

// stop ends the poll loop and closes the client: Close leaves the group,
// and the revoke callback commits first.
func (m *kgoMember) stop(t *testing.T) {
	m.cancel()
	grpWaitDone(t, m.name+" poll loop", m.done, 15*time.Second)
	closed := make(chan struct{})
	go func() { m.cl.CloseAllowingRebalance(); close(closed) }()
	grpWaitDone(t, m.name+" Close", closed, 20*time.Second)
}

// crash stops processing (everything processed so far was committed with
// its poll), cuts the member's connections and closes the client without
// a LeaveGroup (a leave with a cancelled context never reaches the wire).
func (m *kgoMember) crash(t *testing.T) {
	m.mu.Lock()
	m.crashed = true
	m.mu.Unlock()
	m.net.Cut()
	m.cancel()
	grpWaitDone(t, m.name+" poll loop", m.done, 15*time.Second)
	dead, cancel := context.WithCancel(context.Background())
	cancel()
	_ = m.cl.LeaveGroupContext(dead)
	closed := make(chan struct{})
	go func() { m.cl.CloseAllowingRebalance(); close(closed) }()
	grpWaitDone(t, m.name+" Close after crash", closed, 20*time.Second)
}

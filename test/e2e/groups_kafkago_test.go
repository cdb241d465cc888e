package e2e

import (
	"context"
	"sync"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"
)

// TestGroupsKafkaGo runs the group scenario (groups_helpers_test.go) with
// segmentio/kafka-go Readers sharing a GroupID (JoinGroup v1/v2, SyncGroup,
// Heartbeat and LeaveGroup v0, OffsetCommit v2, OffsetFetch v1).
//
// Each member fetches a message, records it and commits it synchronously
// (FetchMessage + CommitMessages, CommitInterval 0) before fetching the
// next. kafka-go is still only at-least-once across rebalances: the
// Reader has no revoke hook, and a CommitMessages issued just after its
// generation ended waits for the next generation's commit loop, while
// that generation's partition readers already started from the offsets
// committed before it (seen: m1 fetched p1/59, its commit waited 21 ms
// for generation 3, whose reader for p1 started at 59 and delivered it
// again, to m1 or another member). The scenario therefore requires no
// loss and counts duplicates; after the broker restarts, with everything
// committed by graceful stops, the new member must resume exactly.
func TestGroupsKafkaGo(t *testing.T) {
	t.Parallel()
	runGroupScenario(t, "kafkago", grpClient{exact: false, crash: true, start: startKafkagoMember})
}

type kafkagoMember struct {
	name   string
	r      *kafkago.Reader
	net    *grpNet
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	crashed bool
}

func startKafkagoMember(sc *grpScenario, name string, l *grpLedger) grpMember {
	m := &kafkagoMember{name: name, net: newGrpNet(), done: make(chan struct{})}
	m.r = kafkago.NewReader(kafkago.ReaderConfig{
		Brokers: []string{sc.w.Addr},
		GroupID: sc.group,
		Topic:   sc.topic,
		Dialer:  &kafkago.Dialer{ClientID: name, Timeout: 5 * time.Second, DialFunc: m.net.DialContext},
		// See kafkagoConsume for MaxWait on a loaded machine.
		MinBytes:          1,
		MaxBytes:          1 << 20,
		MaxWait:           500 * time.Millisecond,
		StartOffset:       kafkago.FirstOffset,
		CommitInterval:    0, // CommitMessages commits synchronously
		HeartbeatInterval: grpHeartbeat,
		SessionTimeout:    grpSession,
		RebalanceTimeout:  grpRebalance,
		JoinGroupBackoff:  200 * time.Millisecond,
		ReadBackoffMin:    20 * time.Millisecond,
		ReadBackoffMax:    200 * time.Millisecond,
		ErrorLogger: kafkago.LoggerFunc(func(format string, args ...any) {
			if !m.isCrashed() {
				l.note(name+": "+format, args...)
			}
		}),
	})
	ctx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	go func() {
		defer close(m.done)
		for {
			msg, err := m.r.FetchMessage(ctx)
			if err != nil {
				if ctx.Err() == nil {
					l.note("%s: FetchMessage: %v", name, err)
				}
				return
			}
			m.mu.Lock()
			if m.crashed {
				m.mu.Unlock()
				return
			}
			l.add(name, int32(msg.Partition), msg.Offset, string(msg.Value))
			if err := m.r.CommitMessages(ctx, msg); err != nil && ctx.Err() == nil {
				l.note("%s: CommitMessages: %v", name, err)
			}
			m.mu.Unlock()
		}
	}()
	return m
}

func (m *kafkagoMember) isCrashed() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.crashed
}

// stop ends the fetch loop and closes the Reader, which commits what is
// pending and sends LeaveGroup.
func (m *kafkagoMember) stop(t *testing.T) {
	m.cancel()
	grpWaitDone(t, m.name+" fetch loop", m.done, 15*time.Second)
	closed := make(chan struct{})
	go func() { _ = m.r.Close(); close(closed) }()
	grpWaitDone(t, m.name+" Close", closed, 20*time.Second)
}

// crash stops processing (each processed message was committed before the
// next fetch), cuts the member's connections and closes the Reader, whose
// LeaveGroup cannot reach the broker.
func (m *kafkagoMember) crash(t *testing.T) {
	m.mu.Lock()
	m.crashed = true
	m.mu.Unlock()
	m.net.Cut()
	m.cancel()
	grpWaitDone(t, m.name+" fetch loop", m.done, 15*time.Second)
	closed := make(chan struct{})
	go func() { _ = m.r.Close(); close(closed) }()
	grpWaitDone(t, m.name+" Close after crash", closed, 20*time.Second)
}

package e2e

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
)

// TestGroupsSarama runs the group scenario (groups_helpers_test.go) with
// sarama ConsumerGroup members: eager (range, protocol of Kafka 2.8:
// JoinGroup v7, SyncGroup v5, OffsetCommit v8) and cooperative
// (cooperative-sticky, Kafka 3.6: LeaveGroup v5).
//
// The handler marks each message once it is processed (MarkMessage) and
// auto-commit runs every 200 ms; a session's release commits what was
// marked before the member rejoins (eager: Cleanup commits, then the
// offset manager's final flush; cooperative: revoked partitions are
// flushed before they are given up), so every record is consumed exactly
// once.
func TestGroupsSarama(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name     string
		version  sarama.KafkaVersion
		strategy sarama.BalanceStrategy
	}{
		{"range", sarama.V2_8_0_0, sarama.NewBalanceStrategyRange()},
		{"cooperative-sticky", sarama.V3_6_0_0, sarama.NewBalanceStrategyCooperativeSticky()},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			runGroupScenario(t, "sarama-"+c.name, grpClient{exact: true, crash: true,
				start: func(sc *grpScenario, name string, l *grpLedger) grpMember {
					return startSaramaMember(sc, name, l, c.version, c.strategy)
				}})
		})
	}
}

// saramaMember is a sarama ConsumerGroup running Consume in a loop.
type saramaMember struct {
	name   string
	cg     sarama.ConsumerGroup
	net    *grpNet
	l      *grpLedger
	cancel context.CancelFunc
	done   chan struct{}

	// mu serialises processing with crash; sess is the current session
	// (nil between sessions).
	mu      sync.Mutex
	crashed bool
	sess    sarama.ConsumerGroupSession
}

func startSaramaMember(sc *grpScenario, name string, l *grpLedger, v sarama.KafkaVersion, strategy sarama.BalanceStrategy) *saramaMember {
	t := sc.t
	m := &saramaMember{name: name, net: newGrpNet(), l: l, done: make(chan struct{})}
	cfg := saramaConfig(v)
	cfg.ClientID = name
	cfg.Net.Proxy.Enable = true
	cfg.Net.Proxy.Dialer = m.net
	cfg.Metadata.Retry.Max = 2
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	cfg.Consumer.Offsets.AutoCommit.Enable = true
	cfg.Consumer.Offsets.AutoCommit.Interval = 200 * time.Millisecond
	cfg.Consumer.Group.Session.Timeout = grpSession
	cfg.Consumer.Group.Heartbeat.Interval = grpHeartbeat
	cfg.Consumer.Group.Rebalance.Timeout = grpRebalance
	cfg.Consumer.Group.Rebalance.Retry.Backoff = 200 * time.Millisecond
	cfg.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{strategy}
	cg, err := sarama.NewConsumerGroup([]string{sc.w.Addr}, sc.group, cfg)
	if err != nil {
		t.Fatalf("sarama NewConsumerGroup: %v", err)
	}
	m.cg = cg
	ctx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	go func() {
		for err := range cg.Errors() {
			if !m.isCrashed() && ctx.Err() == nil {
				l.note("%s: %v", name, err)
			}
		}
	}()
	go func() {
		defer close(m.done)
		for ctx.Err() == nil && !m.isCrashed() {
			err := cg.Consume(ctx, []string{sc.topic}, saramaHandler{m})
			if errors.Is(err, sarama.ErrClosedConsumerGroup) {
				return
			}
			if err != nil && ctx.Err() == nil && !m.isCrashed() {
				l.note("%s: Consume: %v", name, err)
			}
		}
	}()
	return m
}

func (m *saramaMember) isCrashed() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.crashed
}

// stop ends Consume (its session release commits) and closes the group,
// which sends LeaveGroup.
func (m *saramaMember) stop(t *testing.T) {
	m.cancel()
	grpWaitDone(t, m.name+" Consume", m.done, 20*time.Second)
	closed := make(chan struct{})
	go func() {
		if err := m.cg.Close(); err != nil {
			m.l.note("%s: Close: %v", m.name, err)
		}
		close(closed)
	}()
	grpWaitDone(t, m.name+" Close", closed, 20*time.Second)
}

// crash commits what was processed, stops processing and cuts the
// member's connections; Close then cannot reach the broker to leave.
func (m *saramaMember) crash(t *testing.T) {
	m.mu.Lock()
	m.crashed = true
	if m.sess != nil {
		m.sess.Commit()
	}
	m.mu.Unlock()
	m.net.Cut()
	m.cancel()
	closed := make(chan struct{})
	go func() { _ = m.cg.Close(); close(closed) }()
	grpWaitDone(t, m.name+" Close after crash", closed, 20*time.Second)
	grpWaitDone(t, m.name+" Consume after crash", m.done, 20*time.Second)
}

type saramaHandler struct{ m *saramaMember }

func (h saramaHandler) Setup(s sarama.ConsumerGroupSession) error {
	h.m.mu.Lock()
	defer h.m.mu.Unlock()
	h.m.sess = s
	return nil
}

// Cleanup commits what the session marked before its partitions go.
func (h saramaHandler) Cleanup(s sarama.ConsumerGroupSession) error {
	h.m.mu.Lock()
	defer h.m.mu.Unlock()
	if !h.m.crashed {
		s.Commit()
	}
	h.m.sess = nil
	return nil
}

func (h saramaHandler) ConsumeClaim(s sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for {
		select {
		case msg, ok := <-claim.Messages():
			if !ok {
				return nil
			}
			h.m.mu.Lock()
			if h.m.crashed {
				h.m.mu.Unlock()
				return nil
			}
			h.m.l.add(h.m.name, msg.Partition, msg.Offset, string(msg.Value))
			s.MarkMessage(msg, "")
			h.m.mu.Unlock()
		case <-s.Context().Done():
			return nil
		}
	}
}

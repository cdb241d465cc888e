package cloudevents

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/weirhq/weir/internal/batch"
	"github.com/weirhq/weir/internal/broker"
)

// Store persists subscriptions. Put and Delete return once the change is
// durable; Load returns every stored subscription.
type Store interface {
	Put(ctx context.Context, s Subscription) error
	Delete(ctx context.Context, name string) error
	Load() ([]Subscription, error)
}

// SubscriptionsTopic is the internal, compacted topic BrokerStore keeps
// subscriptions in: key the name, value the stored JSON, null a deletion.
const SubscriptionsTopic = "__weir_subscriptions"

// storedSubscription is the value of a subscription record.
type storedSubscription struct {
	Version      int          `json:"version"`
	Subscription Subscription `json:"subscription"`
}

const storedVersion = 1

// BrokerStore keeps subscriptions in partition 0 of SubscriptionsTopic,
// which it creates with the first subscription (a node without any lists
// no extra topic).
type BrokerStore struct {
	b *broker.Broker
	// Logger reports records Load skips; default slog.Default().
	Logger *slog.Logger

	mu sync.Mutex // serialises creating the topic
}

// OpenBrokerStore returns a store on b.
func OpenBrokerStore(b *broker.Broker) (*BrokerStore, error) {
	return &BrokerStore{b: b}, nil
}

// partition returns the store's partition, creating the topic if create.
func (st *BrokerStore) partition(create bool) (*broker.Partition, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if _, err := st.b.Topic(SubscriptionsTopic); err != nil {
		if !create || !errors.Is(err, broker.ErrUnknownTopicOrPartition) {
			return nil, err
		}
		if _, err := st.b.CreateTopic(SubscriptionsTopic, 1, map[string]string{"cleanup.policy": "compact"}, false); err != nil &&
			!errors.Is(err, broker.ErrTopicExists) {
			return nil, fmt.Errorf("cloudevents: create %s: %w", SubscriptionsTopic, err)
		}
	}
	return st.b.Partition(SubscriptionsTopic, 0)
}

// Put stores s durably.
func (st *BrokerStore) Put(ctx context.Context, s Subscription) error {
	v, err := json.Marshal(storedSubscription{Version: storedVersion, Subscription: s})
	if err != nil {
		return err
	}
	return st.append(ctx, []byte(s.Name), v)
}

// Delete stores a tombstone for name durably.
func (st *BrokerStore) Delete(ctx context.Context, name string) error {
	return st.append(ctx, []byte(name), nil)
}

func (st *BrokerStore) append(ctx context.Context, key, value []byte) error {
	p, err := st.partition(true)
	if err != nil {
		return err
	}
	raw, err := batch.Build(batch.BuildOptions{BaseTimestamp: time.Now().UnixMilli()}, []batch.Record{{Key: key, Value: value}})
	if err != nil {
		return err
	}
	a, err := p.Append(raw)
	if err != nil {
		return err
	}
	return p.WaitDurable(ctx, a.LastOffset+1)
}

// Load replays the topic; the last record of a name wins.
func (st *BrokerStore) Load() ([]Subscription, error) {
	p, err := st.partition(false)
	if errors.Is(err, broker.ErrUnknownTopicOrPartition) {
		return nil, nil // no subscription was ever stored
	}
	if err != nil {
		return nil, err
	}
	subs := map[string]Subscription{}
	log := st.Logger
	if log == nil {
		log = slog.Default()
	}
	_, err = readRecords(p, p.LogStartOffset(), p.HighWatermark(), 1<<20, func(off, _ int64, r batch.Record) bool {
		name := string(r.Key)
		if r.Value == nil {
			delete(subs, name)
			return true
		}
		var v storedSubscription
		if err := json.Unmarshal(r.Value, &v); err != nil || v.Version != storedVersion || v.Subscription.Name != name {
			// A record this version cannot read (damaged, or written by a
			// newer one) must not keep the node from starting.
			log.Warn("cloudevents: skipping unreadable subscription record", "topic", SubscriptionsTopic,
				"offset", off, "name", name, "version", v.Version, "err", err)
			return true
		}
		subs[name] = v.Subscription
		return true
	})
	if err != nil {
		return nil, fmt.Errorf("cloudevents: read %s: %w", SubscriptionsTopic, err)
	}
	out := make([]Subscription, 0, len(subs))
	for _, s := range subs {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

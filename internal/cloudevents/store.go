package cloudevents

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sort"
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

// BrokerStore keeps subscriptions in partition 0 of SubscriptionsTopic.
type BrokerStore struct {
	p *broker.Partition
	// Logger reports records Load skips; default slog.Default().
	Logger *slog.Logger
}

// OpenBrokerStore creates (if needed) the subscriptions topic and returns
// a store on it.
func OpenBrokerStore(b *broker.Broker) (*BrokerStore, error) {
	if _, err := b.Topic(SubscriptionsTopic); err != nil {
		if _, err := b.CreateTopic(SubscriptionsTopic, 1, map[string]string{"cleanup.policy": "compact"}, false); err != nil {
			return nil, fmt.Errorf("cloudevents: create %s: %w", SubscriptionsTopic, err)
		}
	}
	p, err := b.Partition(SubscriptionsTopic, 0)
	if err != nil {
		return nil, err
	}
	return &BrokerStore{p: p}, nil
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
	raw, err := batch.Build(batch.BuildOptions{BaseTimestamp: time.Now().UnixMilli()}, []batch.Record{{Key: key, Value: value}})
	if err != nil {
		return err
	}
	a, err := st.p.Append(raw)
	if err != nil {
		return err
	}
	return st.p.WaitDurable(ctx, a.LastOffset+1)
}

// Load replays the topic; the last record of a name wins.
func (st *BrokerStore) Load() ([]Subscription, error) {
	subs := map[string]Subscription{}
	log := st.Logger
	if log == nil {
		log = slog.Default()
	}
	_, err := readRecords(st.p, st.p.LogStartOffset(), st.p.HighWatermark(), 1<<20, func(off, _ int64, r batch.Record) bool {
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

package cloudevents

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sort"

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
const SubscriptionsTopic = broker.SubscriptionsTopic

// storedSubscription is the value of a subscription record.
type storedSubscription struct {
	Version      int          `json:"version"`
	Subscription Subscription `json:"subscription"`
}

const storedVersion = 1

// BrokerStore keeps subscriptions in the broker's internal log of
// SubscriptionsTopic.
type BrokerStore struct {
	log *broker.InternalLog
	// Logger reports records Load skips; default slog.Default().
	Logger *slog.Logger
}

// OpenBrokerStore opens (creating it if needed) the subscriptions topic's
// internal log of b and returns a store on it.
func OpenBrokerStore(b *broker.Broker) (*BrokerStore, error) {
	l, err := b.OpenInternalLog(SubscriptionsTopic)
	if err != nil {
		return nil, err
	}
	return &BrokerStore{log: l}, nil
}

// Put stores s durably.
func (st *BrokerStore) Put(ctx context.Context, s Subscription) error {
	v, err := json.Marshal(storedSubscription{Version: storedVersion, Subscription: s})
	if err != nil {
		return err
	}
	return st.log.AppendWait(ctx, []batch.Record{{Key: []byte(s.Name), Value: v}})
}

// Delete stores a tombstone for name durably.
func (st *BrokerStore) Delete(ctx context.Context, name string) error {
	return st.log.AppendWait(ctx, []batch.Record{{Key: []byte(name)}})
}

// Load replays the topic; the last record of a name wins.
func (st *BrokerStore) Load() ([]Subscription, error) {
	subs := map[string]Subscription{}
	log := st.Logger
	if log == nil {
		log = slog.Default()
	}
	err := st.log.Replay(func(off int64, r batch.Record) error {
		name := string(r.Key)
		if r.Value == nil {
			delete(subs, name)
			return nil
		}
		var v storedSubscription
		if err := json.Unmarshal(r.Value, &v); err != nil || v.Version != storedVersion || v.Subscription.Name != name {
			// A record this version cannot read (damaged, or written by a
			// newer one) must not keep the node from starting.
			log.Warn("cloudevents: skipping unreadable subscription record", "topic", SubscriptionsTopic,
				"offset", off, "name", name, "version", v.Version, "err", err)
			return nil
		}
		subs[name] = v.Subscription
		return nil
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

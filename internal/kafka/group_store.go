package kafka

import (
	"context"
	"encoding/binary"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weirhq/weir/internal/batch"
	"github.com/weirhq/weir/internal/broker"
	"github.com/weirhq/weir/internal/group"
)

// OffsetsTopic is Kafka's internal topic for group metadata and committed
// offsets; Weir stores them there in Kafka's own record format, so tools
// that read __consumer_offsets understand it.
const OffsetsTopic = broker.OffsetsTopic

// GroupStore persists the group coordinator's records through the
// broker's internal log of __consumer_offsets. Appends come from the
// coordinator goroutine only.
type GroupStore struct {
	log *broker.InternalLog
}

// OpenGroupStore opens (creating it if needed) the offsets topic's
// internal log and returns a store on it.
func OpenGroupStore(b *broker.Broker) (*GroupStore, error) {
	l, err := b.OpenInternalLog(OffsetsTopic)
	if err != nil {
		return nil, err
	}
	return &GroupStore{log: l}, nil
}

// Append writes the records in order and returns a wait that blocks
// until all are durable. Records go in runs, as Kafka lays them out in
// __consumer_offsets: plain offsets and group metadata in a plain batch,
// a transaction's staged offsets (Txn) in a transactional batch of its
// producer, a transaction's end (TxnEnd) as a commit or abort control
// batch of the producer.
func (s *GroupStore) Append(recs []group.Record) (func(context.Context) error, error) {
	var wait func(context.Context) error
	for len(recs) > 0 {
		var err error
		if end := recs[0].TxnEnd; end != nil {
			wait, err = s.log.AppendMarker(end.ProducerID, end.Epoch, end.Commit)
			recs = recs[1:]
		} else {
			n := 1
			for n < len(recs) && recs[n].TxnEnd == nil && sameProducer(recs[n].Txn, recs[0].Txn) {
				n++
			}
			out := make([]batch.Record, 0, n)
			for _, r := range recs[:n] {
				k, v := encodeGroupRecord(r)
				out = append(out, batch.Record{Key: k, Value: v})
			}
			if p := recs[0].Txn; p != nil {
				wait, err = s.log.AppendTxn(p.ProducerID, p.Epoch, out)
			} else {
				wait, err = s.log.Append(out)
			}
			recs = recs[n:]
		}
		if err != nil {
			return nil, err
		}
	}
	if wait == nil {
		return func(context.Context) error { return nil }, nil
	}
	return wait, nil
}

func sameProducer(a, b *group.TxnProducer) bool {
	return a == nil && b == nil || a != nil && b != nil && *a == *b
}

// Load replays every record from the log start to the high watermark:
// records of a transactional batch come back with Txn set, a commit or
// abort marker as a TxnEnd record.
func (s *GroupStore) Load(fn func(group.Record)) error {
	return s.log.ReplayBatches(func(h batch.Header, recs []batch.Record) error {
		if h.Control() {
			if len(recs) == 0 {
				return nil
			}
			k, err := batch.ParseControlKey(recs[0].Key)
			if err != nil || k.Type != batch.ControlCommit && k.Type != batch.ControlAbort {
				return nil // not a transaction marker Weir knows: skipped, as consumers do
			}
			fn(group.Record{TxnEnd: &group.TxnEnd{TxnProducer: group.TxnProducer{ProducerID: h.ProducerID, Epoch: h.ProducerEpoch},
				Commit: k.Type == batch.ControlCommit}})
			return nil
		}
		var producer *group.TxnProducer
		if h.Transactional() {
			producer = &group.TxnProducer{ProducerID: h.ProducerID, Epoch: h.ProducerEpoch}
		}
		for _, r := range recs {
			if gr, ok := decodeGroupRecord(r.Key, r.Value); ok {
				if gr.IsOffset {
					gr.Txn = producer
				}
				fn(gr)
			}
		}
		return nil
	})
}

func encodeGroupRecord(r group.Record) (key, value []byte) {
	if r.IsOffset {
		k := kmsg.OffsetCommitKey{Version: 1, Group: r.Group, Topic: r.Topic, Partition: r.Partition}
		key = k.AppendTo(nil)
		if r.Offset != nil {
			v := kmsg.NewOffsetCommitValue()
			v.Version = 3
			v.Offset, v.LeaderEpoch, v.Metadata = r.Offset.Offset, r.Offset.LeaderEpoch, r.Offset.Metadata
			v.CommitTimestamp = r.Offset.CommitTime.UnixMilli()
			value = v.AppendTo(nil)
		}
		return key, value
	}
	k := kmsg.GroupMetadataKey{Version: 2, Group: r.Group}
	key = k.AppendTo(nil)
	if m := r.Meta; m != nil {
		v := kmsg.NewGroupMetadataValue()
		v.Version = 3
		v.ProtocolType, v.Generation = m.ProtocolType, m.Generation
		if m.Protocol != "" {
			v.Protocol = &m.Protocol
		}
		if m.Leader != "" {
			v.Leader = &m.Leader
		}
		v.CurrentStateTimestamp = m.StateTime.UnixMilli()
		for _, ms := range m.Members {
			vm := kmsg.NewGroupMetadataValueMember()
			vm.MemberID, vm.InstanceID, vm.ClientID, vm.ClientHost = ms.MemberID, ms.InstanceID, ms.ClientID, ms.ClientHost
			vm.RebalanceTimeoutMillis = int32(ms.RebalanceTimeout.Milliseconds())
			vm.SessionTimeoutMillis = int32(ms.SessionTimeout.Milliseconds())
			vm.Subscription, vm.Assignment = ms.Subscription, ms.Assignment
			v.Members = append(v.Members, vm)
		}
		value = v.AppendTo(nil)
	}
	return key, value
}

// decodeGroupRecord parses a __consumer_offsets record; ok is false for
// record kinds Weir does not use (they are skipped, not fatal).
func decodeGroupRecord(key, value []byte) (group.Record, bool) {
	if len(key) < 2 {
		return group.Record{}, false
	}
	switch binary.BigEndian.Uint16(key) {
	case 0, 1:
		var k kmsg.OffsetCommitKey
		if k.ReadFrom(key) != nil {
			return group.Record{}, false
		}
		r := group.Record{Group: k.Group, IsOffset: true, TopicPartition: group.TopicPartition{Topic: k.Topic, Partition: k.Partition}}
		if value != nil {
			var v kmsg.OffsetCommitValue
			if v.ReadFrom(value) != nil {
				return group.Record{}, false
			}
			r.Offset = &group.Offset{Offset: v.Offset, LeaderEpoch: v.LeaderEpoch, Metadata: v.Metadata, CommitTime: time.UnixMilli(v.CommitTimestamp)}
		}
		return r, true
	case 2:
		var k kmsg.GroupMetadataKey
		if k.ReadFrom(key) != nil {
			return group.Record{}, false
		}
		r := group.Record{Group: k.Group}
		if value != nil {
			var v kmsg.GroupMetadataValue
			if v.ReadFrom(value) != nil {
				return group.Record{}, false
			}
			m := &group.Snapshot{ProtocolType: v.ProtocolType, Generation: v.Generation, StateTime: time.UnixMilli(v.CurrentStateTimestamp)}
			if v.Protocol != nil {
				m.Protocol = *v.Protocol
			}
			if v.Leader != nil {
				m.Leader = *v.Leader
			}
			for _, vm := range v.Members {
				m.Members = append(m.Members, group.MemberSnapshot{MemberID: vm.MemberID, InstanceID: vm.InstanceID, ClientID: vm.ClientID,
					ClientHost: vm.ClientHost, RebalanceTimeout: time.Duration(vm.RebalanceTimeoutMillis) * time.Millisecond,
					SessionTimeout: time.Duration(vm.SessionTimeoutMillis) * time.Millisecond, Subscription: vm.Subscription, Assignment: vm.Assignment})
			}
			r.Meta = m
		}
		return r, true
	}
	return group.Record{}, false
}

package kafka

import (
	"context"
	"encoding/binary"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weirhq/weir/internal/batch"
	"github.com/weirhq/weir/internal/broker"
	"github.com/weirhq/weir/internal/txn"
)

// TransactionStateTopic is Kafka's internal topic for the transaction
// coordinator's state; Weir writes it in Kafka's own record format
// (TxnMetadataKey v0, TxnMetadataValue v1), so tools that read
// __transaction_state understand it.
const TransactionStateTopic = broker.TransactionStateTopic

// Weir's own tagged fields of TxnMetadataValue v1. Kafka's readers skip
// tags they do not know; Kafka uses 0-3 so far, so Weir's start far above.
//
//	tag 10000  groups:         compact array of compact strings (AddOffsetsToTxn groups)
//	tag 10001  last producer:  int64 producer id, int16 epoch (KIP-360)
//
// Like Kafka, the record also lists partition 0 of __consumer_offsets
// among the transaction's partitions when it has groups.
const (
	txnTagGroups       = 10000
	txnTagLastProducer = 10001
)

// TxnStore persists the transaction coordinator's records through the
// broker's internal log of __transaction_state. It implements txn.Store.
type TxnStore struct {
	log *broker.InternalLog
}

var _ txn.Store = (*TxnStore)(nil)

// NewTxnStore returns a store on l, the internal log of
// TransactionStateTopic.
func NewTxnStore(l *broker.InternalLog) *TxnStore { return &TxnStore{log: l} }

// Append writes the records as one batch; the returned wait blocks until
// the batch is durable.
func (s *TxnStore) Append(recs []txn.Record) (func(context.Context) error, error) {
	out := make([]batch.Record, 0, len(recs))
	for _, r := range recs {
		k, v := encodeTxnRecord(r)
		out = append(out, batch.Record{Key: k, Value: v})
	}
	return s.log.Append(out)
}

// Load replays every record from the log start to the high watermark;
// records it cannot decode are skipped.
func (s *TxnStore) Load(fn func(txn.Record)) error {
	return s.log.Replay(func(_ int64, r batch.Record) error {
		if tr, ok := decodeTxnRecord(r.Key, r.Value); ok {
			fn(tr)
		}
		return nil
	})
}

// millis is a time as Kafka stores it, -1 for none.
func millis(t time.Time) int64 {
	if t.IsZero() {
		return -1
	}
	return t.UnixMilli()
}

func fromMillis(ms int64) time.Time {
	if ms == -1 {
		return time.Time{}
	}
	return time.UnixMilli(ms)
}

func encodeTxnRecord(r txn.Record) (key, value []byte) {
	k := kmsg.TxnMetadataKey{Version: 0, TransactionalID: r.TxnID}
	key = k.AppendTo(nil)
	m := r.Meta
	if m == nil {
		return key, nil
	}
	v := kmsg.NewTxnMetadataValue()
	v.Version = 1
	v.ProducerID, v.ProducerEpoch = m.ProducerID, m.Epoch
	v.TimeoutMillis = int32(m.Timeout.Milliseconds())
	v.State = kmsg.TransactionState(m.State)
	v.StartTimestamp, v.LastUpdateTimestamp = millis(m.StartTime), millis(m.UpdateTime)
	v.Topics = []kmsg.TxnMetadataValueTopic{}
	topic := map[string]int{}
	for _, tp := range m.Partitions {
		if tp.Topic == OffsetsTopic {
			continue // stands for the groups, written from them below
		}
		i, ok := topic[tp.Topic]
		if !ok {
			i = len(v.Topics)
			topic[tp.Topic] = i
			v.Topics = append(v.Topics, kmsg.TxnMetadataValueTopic{Topic: tp.Topic, Partitions: []int32{}})
		}
		v.Topics[i].Partitions = append(v.Topics[i].Partitions, tp.Partition)
	}
	if len(m.Groups) > 0 {
		v.Topics = append(v.Topics, kmsg.TxnMetadataValueTopic{Topic: OffsetsTopic, Partitions: []int32{0}})
		b := kbin.AppendCompactArrayLen(nil, len(m.Groups))
		for _, g := range m.Groups {
			b = kbin.AppendCompactString(b, g)
		}
		v.UnknownTags.Set(txnTagGroups, b)
	}
	if m.LastProducerID != -1 || m.LastEpoch != -1 {
		v.UnknownTags.Set(txnTagLastProducer, kbin.AppendInt16(kbin.AppendInt64(nil, m.LastProducerID), m.LastEpoch))
	}
	return key, v.AppendTo(nil)
}

// decodeTxnRecord parses a __transaction_state record; ok is false for
// records it cannot read (they are skipped, not fatal).
func decodeTxnRecord(key, value []byte) (txn.Record, bool) {
	if len(key) < 2 || binary.BigEndian.Uint16(key) != 0 {
		return txn.Record{}, false
	}
	var k kmsg.TxnMetadataKey
	if k.ReadFrom(key) != nil {
		return txn.Record{}, false
	}
	r := txn.Record{TxnID: k.TransactionalID}
	if value == nil {
		return r, true
	}
	var v kmsg.TxnMetadataValue
	if v.ReadFrom(value) != nil || v.Version < 0 || v.Version > 1 || v.State < 0 || v.State > 7 {
		return txn.Record{}, false
	}
	m := &txn.Metadata{ProducerID: v.ProducerID, Epoch: v.ProducerEpoch, LastProducerID: -1, LastEpoch: -1,
		Timeout: time.Duration(v.TimeoutMillis) * time.Millisecond, State: txn.State(v.State),
		StartTime: fromMillis(v.StartTimestamp), UpdateTime: fromMillis(v.LastUpdateTimestamp)}
	for _, t := range v.Topics {
		if t.Topic == OffsetsTopic {
			continue
		}
		for _, p := range t.Partitions {
			m.Partitions = append(m.Partitions, txn.TopicPartition{Topic: t.Topic, Partition: p})
		}
	}
	ok := true
	v.UnknownTags.Each(func(tag uint32, b []byte) {
		rd := kbin.Reader{Src: b}
		switch tag {
		case txnTagGroups:
			n := rd.CompactArrayLen()
			if n < 0 || int(n) > len(b) {
				ok = false
				return
			}
			for range n {
				m.Groups = append(m.Groups, rd.CompactString())
			}
		case txnTagLastProducer:
			m.LastProducerID, m.LastEpoch = rd.Int64(), rd.Int16()
		default:
			return
		}
		if rd.Complete() != nil {
			ok = false
		}
	})
	if !ok {
		return txn.Record{}, false
	}
	r.Meta = m
	return r, true
}

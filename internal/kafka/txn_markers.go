package kafka

import (
	"context"

	"github.com/weirhq/weir/internal/broker"
	"github.com/weirhq/weir/internal/txn"
)

// TxnMarkers writes the transaction coordinator's markers through a
// broker.MarkerWriter (on one node the Broker itself, whose
// WriteTxnMarkers appends them through the gate). It implements
// txn.Markers. The coordinator epoch is 0: one coordinator, never moved.
type TxnMarkers struct {
	W broker.MarkerWriter
}

var _ txn.Markers = TxnMarkers{}

// WriteMarkers writes the markers and returns one error per marker and
// partition, in order, nil once that marker is durable.
func (m TxnMarkers) WriteMarkers(ctx context.Context, markers []txn.MarkerWrite) []error {
	out := make([]broker.TxnMarker, len(markers))
	n := 0
	for i, mw := range markers {
		tps := make([]broker.TopicPartition, len(mw.Partitions))
		for j, tp := range mw.Partitions {
			tps[j] = broker.TopicPartition{Topic: tp.Topic, Partition: tp.Partition}
		}
		out[i] = broker.TxnMarker{ProducerID: mw.ProducerID, ProducerEpoch: mw.Epoch, Commit: mw.Commit, Partitions: tps}
		n += len(tps)
	}
	res := m.W.WriteTxnMarkers(ctx, out)
	errs := make([]error, n)
	for i := range errs {
		if i < len(res) {
			errs[i] = res[i].Err
		} else {
			errs[i] = ctx.Err()
			if errs[i] == nil {
				errs[i] = broker.ErrUnknownTopicOrPartition
			}
		}
	}
	return errs
}

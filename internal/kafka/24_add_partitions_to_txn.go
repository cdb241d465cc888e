package kafka

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weirhq/weir/internal/txn"
)

// AddPartitionsToTxn v0-3, the clients' form: one transaction per
// request. v4+ (KIP-890) batches transactions for brokers verifying a
// produce, which a single node does not need; it is not advertised.
func init() {
	register(api{Key: 24, MinVersion: 0, MaxVersion: 3, Handle: (*Server).handleAddPartitionsToTxn})
}

// txnTimeout bounds one call into the transaction coordinator: an append
// to __transaction_state and its fsync.
const txnTimeout = 30 * time.Second

// txnContext is the context of one call into the transaction coordinator
// for a request on c.
func txnContext(c *Conn) (context.Context, context.CancelFunc) {
	return context.WithTimeout(c.Context(), txnTimeout)
}

func (s *Server) handleAddPartitionsToTxn(c *Conn, r kmsg.Request) Reply {
	req := r.(*kmsg.AddPartitionsToTxnRequest)
	resp := req.ResponseKind().(*kmsg.AddPartitionsToTxnResponse)
	// codes holds one error per requested partition, in request order.
	var parts []txn.TopicPartition
	codes := make([]int16, 0)
	unknown := false
	for _, rt := range req.Topics {
		for _, p := range rt.Partitions {
			code := int16(0)
			if _, err := s.opts.Broker.Partition(rt.Topic, p); err != nil {
				code, unknown = kerr.UnknownTopicOrPartition.Code, true
			}
			codes = append(codes, code)
			parts = append(parts, txn.TopicPartition{Topic: rt.Topic, Partition: p})
		}
	}
	var all int16
	switch {
	case s.opts.Txns == nil:
		all = kerr.TransactionalIDAuthorizationFailed.Code
	case unknown:
		// As Kafka: the partitions that failed say why, the others were
		// not attempted, and the transaction is unchanged.
		for i := range codes {
			if codes[i] == 0 {
				codes[i] = kerr.OperationNotAttempted.Code
			}
		}
	default:
		ctx, cancel := txnContext(c)
		defer cancel()
		all = errorCode(s.opts.Txns.AddPartitions(ctx, txn.AddPartitionsRequest{TxnID: req.TransactionalID,
			ProducerID: req.ProducerID, Epoch: req.ProducerEpoch, Partitions: parts, Version: req.Version}))
	}
	i := 0
	for _, rt := range req.Topics {
		t := kmsg.NewAddPartitionsToTxnResponseTopic()
		t.Topic = rt.Topic
		for _, p := range rt.Partitions {
			rp := kmsg.NewAddPartitionsToTxnResponseTopicPartition()
			rp.Partition, rp.ErrorCode = p, codes[i]
			if all != 0 {
				rp.ErrorCode = all
			}
			t.Partitions = append(t.Partitions, rp)
			i++
		}
		resp.Topics = append(resp.Topics, t)
	}
	return Respond(resp)
}

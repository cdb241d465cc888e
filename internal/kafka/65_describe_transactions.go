package kafka

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weirhq/weir/internal/txn"
)

// DescribeTransactions v0 (KIP-664): each transactional id's state,
// producer, timeout and the partitions of its transaction. Groups added
// with AddOffsetsToTxn are not listed, as in Kafka.
func init() {
	register(api{Key: 65, MinVersion: 0, MaxVersion: 0, Handle: (*Server).handleDescribeTransactions})
}

func (s *Server) handleDescribeTransactions(c *Conn, r kmsg.Request) Reply {
	req := r.(*kmsg.DescribeTransactionsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeTransactionsResponse)
	ctx, cancel := txnContext(c)
	defer cancel()
	for _, id := range req.TransactionalIDs {
		st := kmsg.NewDescribeTransactionsResponseTransactionState()
		st.TransactionalID = id
		st.ProducerID, st.ProducerEpoch, st.StartTimestamp = -1, -1, -1
		if s.opts.Txns == nil {
			st.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
			resp.TransactionStates = append(resp.TransactionStates, st)
			continue
		}
		d, err := s.opts.Txns.Describe(ctx, id)
		if err != nil {
			st.ErrorCode = errorCode(err)
			resp.TransactionStates = append(resp.TransactionStates, st)
			continue
		}
		st.State = d.State.String()
		st.TimeoutMillis = int32(d.Timeout.Milliseconds())
		st.StartTimestamp = millis(d.StartTime)
		st.ProducerID, st.ProducerEpoch = d.ProducerID, d.Epoch
		st.Topics = describeTxnTopics(d.Partitions)
		resp.TransactionStates = append(resp.TransactionStates, st)
	}
	return Respond(resp)
}

// describeTxnTopics groups sorted partitions by topic.
func describeTxnTopics(parts []txn.TopicPartition) []kmsg.DescribeTransactionsResponseTransactionStateTopic {
	var out []kmsg.DescribeTransactionsResponseTransactionStateTopic
	for _, tp := range parts {
		if n := len(out); n == 0 || out[n-1].Topic != tp.Topic {
			t := kmsg.NewDescribeTransactionsResponseTransactionStateTopic()
			t.Topic = tp.Topic
			out = append(out, t)
		}
		t := &out[len(out)-1]
		t.Partitions = append(t.Partitions, tp.Partition)
	}
	return out
}

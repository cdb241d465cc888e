package kafka

import (
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weirhq/weir/internal/txn"
)

// ListTransactions v0-1 (KIP-664; v1 adds the duration filter, KIP-994):
// the transactional ids matching the state and producer id filters. v2's
// transactional id pattern is not advertised.
func init() {
	register(api{Key: 66, MinVersion: 0, MaxVersion: 1, Handle: (*Server).handleListTransactions})
}

func (s *Server) handleListTransactions(c *Conn, r kmsg.Request) Reply {
	req := r.(*kmsg.ListTransactionsRequest)
	resp := req.ResponseKind().(*kmsg.ListTransactionsResponse)
	if s.opts.Txns == nil {
		resp.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
		return Respond(resp)
	}
	// As Kafka: unknown state names are reported and ignored; the known
	// ones filter.
	var f txn.ListFilter
	for _, name := range req.StateFilters {
		if st, ok := txn.ParseState(name); ok {
			f.States = append(f.States, st)
		} else {
			resp.UnknownStateFilters = append(resp.UnknownStateFilters, name)
		}
	}
	f.ProducerIDs = req.ProducerIDFilters
	ctx, cancel := txnContext(c)
	defer cancel()
	list, err := s.opts.Txns.List(ctx, f)
	if err != nil {
		resp.ErrorCode = errorCode(err)
		return Respond(resp)
	}
	now := time.Now().UnixMilli()
	for _, d := range list {
		// As Kafka: with a duration filter only transactions that started
		// longer ago than it (an id with none under way has start -1).
		if req.Version >= 1 && req.DurationFilterMillis >= 0 && now-millis(d.StartTime) <= req.DurationFilterMillis {
			continue
		}
		st := kmsg.NewListTransactionsResponseTransactionState()
		st.TransactionalID, st.ProducerID, st.TransactionState = d.TxnID, d.ProducerID, d.State.String()
		resp.TransactionStates = append(resp.TransactionStates, st)
	}
	return Respond(resp)
}

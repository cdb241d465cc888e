package kafka

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weirhq/weir/internal/txn"
)

// EndTxn v0-3 commits or aborts the producer's transaction. It is answered
// once PrepareCommit or PrepareAbort is durable, as Kafka does; the
// markers follow. v4 (TRANSACTION_ABORTABLE) and v5 (transactions v2,
// KIP-890) are not advertised.
func init() {
	register(api{Key: 26, MinVersion: 0, MaxVersion: 3, Handle: (*Server).handleEndTxn})
}

func (s *Server) handleEndTxn(c *Conn, r kmsg.Request) Reply {
	req := r.(*kmsg.EndTxnRequest)
	resp := req.ResponseKind().(*kmsg.EndTxnResponse)
	if s.opts.Txns == nil {
		resp.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
		return Respond(resp)
	}
	ctx, cancel := txnContext(c)
	defer cancel()
	resp.ErrorCode = errorCode(s.opts.Txns.EndTxn(ctx, txn.EndTxnRequest{TxnID: req.TransactionalID,
		ProducerID: req.ProducerID, Epoch: req.ProducerEpoch, Commit: req.Commit, Version: req.Version}))
	return Respond(resp)
}

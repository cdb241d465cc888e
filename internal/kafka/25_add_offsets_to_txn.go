package kafka

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weirhq/weir/internal/txn"
)

// AddOffsetsToTxn v0-3 adds a consumer group to the producer's
// transaction: its offsets committed with TxnOffsetCommit are made
// visible or dropped when the transaction ends. v4 (transactions v2) is
// not advertised.
func init() {
	register(api{Key: 25, MinVersion: 0, MaxVersion: 3, Handle: (*Server).handleAddOffsetsToTxn})
}

func (s *Server) handleAddOffsetsToTxn(c *Conn, r kmsg.Request) Reply {
	req := r.(*kmsg.AddOffsetsToTxnRequest)
	resp := req.ResponseKind().(*kmsg.AddOffsetsToTxnResponse)
	if s.opts.Txns == nil {
		resp.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
		return Respond(resp)
	}
	ctx, cancel := txnContext(c)
	defer cancel()
	resp.ErrorCode = errorCode(s.opts.Txns.AddOffsets(ctx, txn.AddOffsetsRequest{TxnID: req.TransactionalID,
		ProducerID: req.ProducerID, Epoch: req.ProducerEpoch, Group: req.Group, Version: req.Version}))
	return Respond(resp)
}

package kafka

import (
	"math"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weirhq/weir/internal/txn"
)

// InitProducerId v0-4: idempotent producers get an id from the broker; a
// transactional id goes to the transaction coordinator (Options.Txns),
// which fences the id's older producers. v3+ carries the producer's
// current id and epoch (KIP-360). Without a coordinator transactional ids
// are refused.
func init() {
	register(api{Key: 22, MinVersion: 0, MaxVersion: 4, Handle: (*Server).handleInitProducerID})
}

func (s *Server) handleInitProducerID(c *Conn, r kmsg.Request) Reply {
	req := r.(*kmsg.InitProducerIDRequest)
	resp := req.ResponseKind().(*kmsg.InitProducerIDResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	if req.TransactionalID != nil {
		if s.opts.Txns == nil {
			resp.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
			return Respond(resp)
		}
		pid, pepoch := req.ProducerID, req.ProducerEpoch
		if req.Version < 3 {
			pid, pepoch = -1, -1
		}
		ctx, cancel := txnContext(c)
		defer cancel()
		id, epoch, err := s.opts.Txns.InitProducerID(ctx, txn.InitProducerIDRequest{
			TxnID:      *req.TransactionalID,
			Timeout:    time.Duration(req.TransactionTimeoutMillis) * time.Millisecond,
			ProducerID: pid,
			Epoch:      pepoch,
			Version:    req.Version,
		})
		resp.ErrorCode = errorCode(err)
		if err == nil {
			resp.ProducerID, resp.ProducerEpoch = id, epoch
		}
		return Respond(resp)
	}
	// KIP-360: an idempotent producer may ask to bump its epoch after an
	// error, keeping its id; the new epoch restarts sequences at 0.
	if req.ProducerID >= 0 && req.ProducerEpoch >= 0 && req.ProducerEpoch < math.MaxInt16 {
		resp.ProducerID, resp.ProducerEpoch = req.ProducerID, req.ProducerEpoch+1
		return Respond(resp)
	}
	id, epoch, err := s.opts.Broker.InitProducerID()
	if err != nil {
		resp.ErrorCode = errorCode(err)
		return Respond(resp)
	}
	resp.ProducerID, resp.ProducerEpoch = id, epoch
	return Respond(resp)
}

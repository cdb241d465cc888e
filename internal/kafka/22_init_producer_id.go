package kafka

import (
	"math"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// InitProducerId v0-4 for idempotent producers; transactional ids are
// refused until transactions land.
func init() {
	register(api{Key: 22, MinVersion: 0, MaxVersion: 4, Handle: (*Server).handleInitProducerID})
}

func (s *Server) handleInitProducerID(_ *Conn, r kmsg.Request) Reply {
	req := r.(*kmsg.InitProducerIDRequest)
	resp := req.ResponseKind().(*kmsg.InitProducerIDResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	if req.TransactionalID != nil {
		resp.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
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

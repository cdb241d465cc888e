package kafka

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// FindCoordinator v0-4 (v4 batches keys, KIP-699): this node coordinates
// every group and transactional id.
func init() {
	register(api{Key: 10, MinVersion: 0, MaxVersion: 4, Handle: (*Server).handleFindCoordinator})
}

func (s *Server) handleFindCoordinator(c *Conn, r kmsg.Request) Reply {
	req := r.(*kmsg.FindCoordinatorRequest)
	resp := req.ResponseKind().(*kmsg.FindCoordinatorResponse)
	host, port := s.advertisedFor(c)
	code := int16(0)
	if req.CoordinatorType != 0 && req.CoordinatorType != 1 {
		code = kerr.InvalidRequest.Code
	}
	if req.Version >= 4 {
		for _, key := range req.CoordinatorKeys {
			k := kmsg.NewFindCoordinatorResponseCoordinator()
			k.Key, k.NodeID, k.Host, k.Port, k.ErrorCode = key, s.opts.NodeID, host, port, code
			resp.Coordinators = append(resp.Coordinators, k)
		}
		return Respond(resp)
	}
	resp.NodeID, resp.Host, resp.Port, resp.ErrorCode = s.opts.NodeID, host, port, code
	if code != 0 {
		resp.NodeID, resp.Host, resp.Port = -1, "", -1
	}
	return Respond(resp)
}

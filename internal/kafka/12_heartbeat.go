package kafka

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weirhq/weir/internal/group"
)

// Heartbeat v0-4.
func init() {
	register(api{Key: 12, MinVersion: 0, MaxVersion: 4, Handle: (*Server).handleHeartbeat})
}

func (s *Server) handleHeartbeat(c *Conn, r kmsg.Request) Reply {
	req := r.(*kmsg.HeartbeatRequest)
	resp := req.ResponseKind().(*kmsg.HeartbeatResponse)
	err := s.opts.Groups.Heartbeat(c.Context(), group.HeartbeatRequest{Group: req.Group, Generation: req.Generation,
		MemberID: req.MemberID, InstanceID: req.InstanceID})
	resp.ErrorCode = errorCode(err)
	return Respond(resp)
}

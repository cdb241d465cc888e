package kafka

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weirhq/weir/internal/group"
)

// SyncGroup v0-5.
func init() {
	register(api{Key: 14, MinVersion: 0, MaxVersion: 5, Handle: (*Server).handleSyncGroup})
}

// emptyConsumerAssignment is a valid, empty ConsumerMemberAssignment:
// franz-go and others cannot parse zero bytes for the consumer protocol.
var emptyConsumerAssignment = func() []byte {
	a := kmsg.NewConsumerMemberAssignment()
	return a.AppendTo(nil)
}()

func (s *Server) handleSyncGroup(c *Conn, r kmsg.Request) Reply {
	req := r.(*kmsg.SyncGroupRequest)
	sr := group.SyncRequest{Group: req.Group, Generation: req.Generation, MemberID: req.MemberID, InstanceID: req.InstanceID,
		ProtocolType: req.ProtocolType, Protocol: req.Protocol}
	if len(req.GroupAssignment) > 0 {
		sr.Assignments = make(map[string][]byte, len(req.GroupAssignment))
		for _, a := range req.GroupAssignment {
			sr.Assignments[a.MemberID] = a.MemberAssignment
		}
	}
	ch := s.opts.Groups.Sync(sr)
	ctx := c.Context()
	return Defer(func() kmsg.Response {
		resp := req.ResponseKind().(*kmsg.SyncGroupResponse)
		var sres group.SyncResponse
		select {
		case sres = <-ch:
		case <-ctx.Done():
			return nil
		}
		resp.ErrorCode = errorCode(sres.Err)
		if sres.Err != nil {
			return resp
		}
		pt, p := sres.ProtocolType, sres.Protocol
		resp.ProtocolType, resp.Protocol = &pt, &p
		resp.MemberAssignment = sres.Assignment
		if len(resp.MemberAssignment) == 0 && sres.ProtocolType == "consumer" {
			resp.MemberAssignment = emptyConsumerAssignment
		}
		return resp
	})
}

package kafka

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weirhq/weir/internal/group"
)

// LeaveGroup v0-5 (v3+ batched by member and instance id).
func init() {
	register(api{Key: 13, MinVersion: 0, MaxVersion: 5, Handle: (*Server).handleLeaveGroup})
}

func (s *Server) handleLeaveGroup(c *Conn, r kmsg.Request) Reply {
	req := r.(*kmsg.LeaveGroupRequest)
	resp := req.ResponseKind().(*kmsg.LeaveGroupResponse)
	var members []group.LeaveMember
	if req.Version < 3 {
		members = []group.LeaveMember{{MemberID: req.MemberID}}
	} else {
		for _, m := range req.Members {
			members = append(members, group.LeaveMember{MemberID: m.MemberID, InstanceID: m.InstanceID})
		}
	}
	errs, err := s.opts.Groups.Leave(c.Context(), req.Group, members)
	if err != nil {
		resp.ErrorCode = errorCode(err)
		return Respond(resp)
	}
	if req.Version < 3 {
		resp.ErrorCode = errorCode(errs[0])
		return Respond(resp)
	}
	for i, m := range req.Members {
		rm := kmsg.NewLeaveGroupResponseMember()
		rm.MemberID, rm.InstanceID, rm.ErrorCode = m.MemberID, m.InstanceID, errorCode(errs[i])
		resp.Members = append(resp.Members, rm)
	}
	return Respond(resp)
}

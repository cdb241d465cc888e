package kafka

import (
	"net"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weirhq/weir/internal/group"
)

// JoinGroup v0-9: v4+ the two-step MEMBER_ID_REQUIRED join (KIP-394), v5+
// static membership (KIP-345); SkipAssignment (v9) is always false.
func init() {
	register(api{Key: 11, MinVersion: 0, MaxVersion: 9, Handle: (*Server).handleJoinGroup})
}

func clientHost(c *Conn) string {
	if h, _, err := net.SplitHostPort(c.RemoteAddr().String()); err == nil {
		return "/" + h
	}
	return c.RemoteAddr().String()
}

func (s *Server) handleJoinGroup(c *Conn, r kmsg.Request) Reply {
	req := r.(*kmsg.JoinGroupRequest)
	jr := group.JoinRequest{
		Group: req.Group, MemberID: req.MemberID, InstanceID: req.InstanceID,
		ClientID: c.ClientID(), ClientHost: clientHost(c), ProtocolType: req.ProtocolType,
		SessionTimeout:       time.Duration(req.SessionTimeoutMillis) * time.Millisecond,
		RebalanceTimeout:     time.Duration(req.RebalanceTimeoutMillis) * time.Millisecond,
		RequireKnownMemberID: req.Version >= 4,
	}
	if req.Version == 0 {
		jr.RebalanceTimeout = jr.SessionTimeout
	}
	for _, p := range req.Protocols {
		jr.Protocols = append(jr.Protocols, group.Protocol{Name: p.Name, Metadata: p.Metadata})
	}
	ch := s.opts.Groups.Join(jr)
	ctx := c.Context()
	return Defer(func() kmsg.Response {
		resp := req.ResponseKind().(*kmsg.JoinGroupResponse)
		var jresp group.JoinResponse
		select {
		case jresp = <-ch:
		case <-ctx.Done():
			return nil
		}
		resp.ErrorCode = errorCode(jresp.Err)
		resp.Generation = jresp.Generation
		resp.MemberID = jresp.MemberID
		if jresp.Err != nil {
			if req.Version < 4 && resp.ErrorCode == kerr.MemberIDRequired.Code {
				resp.ErrorCode = kerr.UnknownMemberID.Code
			}
			return resp
		}
		if req.Version >= 7 {
			pt, p := jresp.ProtocolType, jresp.Protocol
			resp.ProtocolType, resp.Protocol = &pt, &p
		} else {
			p := jresp.Protocol
			resp.Protocol = &p
		}
		resp.LeaderID = jresp.Leader
		for _, m := range jresp.Members {
			jm := kmsg.NewJoinGroupResponseMember()
			jm.MemberID, jm.InstanceID, jm.ProtocolMetadata = m.MemberID, m.InstanceID, m.Metadata
			resp.Members = append(resp.Members, jm)
		}
		return resp
	})
}

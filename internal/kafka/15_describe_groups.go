package kafka

import (
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeGroups v0-5. Unknown groups are reported as Dead with no error,
// as Kafka's classic coordinator does.
func init() {
	register(api{Key: 15, MinVersion: 0, MaxVersion: 5, Handle: (*Server).handleDescribeGroups})
}

func (s *Server) handleDescribeGroups(c *Conn, r kmsg.Request) Reply {
	req := r.(*kmsg.DescribeGroupsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeGroupsResponse)
	descs, err := s.opts.Groups.Describe(c.Context(), req.Groups)
	for i, id := range req.Groups {
		g := kmsg.NewDescribeGroupsResponseGroup()
		g.Group = id
		g.AuthorizedOperations = authorizedOpsUnset
		if err != nil {
			g.ErrorCode = errorCode(err)
			resp.Groups = append(resp.Groups, g)
			continue
		}
		d := descs[i]
		g.State, g.ProtocolType, g.Protocol = d.State.String(), d.ProtocolType, d.Protocol
		for _, m := range d.Members {
			gm := kmsg.NewDescribeGroupsResponseGroupMember()
			gm.MemberID, gm.InstanceID, gm.ClientID, gm.ClientHost = m.MemberID, m.InstanceID, m.ClientID, m.ClientHost
			gm.ProtocolMetadata, gm.MemberAssignment = m.Metadata, m.Assignment
			if gm.MemberAssignment == nil {
				gm.MemberAssignment = []byte{}
			}
			g.Members = append(g.Members, gm)
		}
		resp.Groups = append(resp.Groups, g)
	}
	return Respond(resp)
}

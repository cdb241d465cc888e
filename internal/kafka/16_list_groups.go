package kafka

import (
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weirhq/weir/internal/group"
)

// ListGroups v0-4 (v4 filters by state).
func init() {
	register(api{Key: 16, MinVersion: 0, MaxVersion: 4, Handle: (*Server).handleListGroups})
}

func (s *Server) handleListGroups(c *Conn, r kmsg.Request) Reply {
	req := r.(*kmsg.ListGroupsRequest)
	resp := req.ResponseKind().(*kmsg.ListGroupsResponse)
	var states []group.State
	for _, name := range req.StatesFilter {
		for st := group.Empty; st <= group.Dead; st++ {
			if strings.EqualFold(st.String(), name) {
				states = append(states, st)
			}
		}
	}
	if len(req.StatesFilter) > 0 && len(states) == 0 {
		return Respond(resp) // only unknown states asked for: none match
	}
	list, err := s.opts.Groups.List(c.Context(), states)
	if err != nil {
		resp.ErrorCode = errorCode(err)
		return Respond(resp)
	}
	for _, l := range list {
		g := kmsg.NewListGroupsResponseGroup()
		g.Group, g.ProtocolType, g.GroupState = l.Group, l.ProtocolType, l.State.String()
		resp.Groups = append(resp.Groups, g)
	}
	return Respond(resp)
}

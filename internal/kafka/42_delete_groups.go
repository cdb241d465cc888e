package kafka

import (
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DeleteGroups v0-2: only empty groups can be deleted.
func init() {
	register(api{Key: 42, MinVersion: 0, MaxVersion: 2, Handle: (*Server).handleDeleteGroups})
}

func (s *Server) handleDeleteGroups(c *Conn, r kmsg.Request) Reply {
	req := r.(*kmsg.DeleteGroupsRequest)
	resp := req.ResponseKind().(*kmsg.DeleteGroupsResponse)
	errs, err := s.opts.Groups.Delete(c.Context(), req.Groups)
	for i, id := range req.Groups {
		g := kmsg.NewDeleteGroupsResponseGroup()
		g.Group = id
		if err != nil {
			g.ErrorCode = errorCode(err)
		} else {
			g.ErrorCode = errorCode(errs[i])
		}
		resp.Groups = append(resp.Groups, g)
	}
	return Respond(resp)
}

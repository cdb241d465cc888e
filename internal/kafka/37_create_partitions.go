package kafka

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// CreatePartitions v0-3 (v2 is flexible; v3 changes nothing on the wire).
// Count is the new total; partitions are only ever added.
func init() {
	register(api{Key: 37, MinVersion: 0, MaxVersion: 3, Handle: (*Server).handleCreatePartitions})
}

func (s *Server) handleCreatePartitions(_ *Conn, r kmsg.Request) Reply {
	req := r.(*kmsg.CreatePartitionsRequest)
	resp := req.ResponseKind().(*kmsg.CreatePartitionsResponse)
	dups := duplicates(req.Topics, func(t kmsg.CreatePartitionsRequestTopic) string { return t.Topic })
	for _, rt := range req.Topics {
		t := kmsg.NewCreatePartitionsResponseTopic()
		t.Topic = rt.Topic
		var err error
		if dups[rt.Topic] {
			err = errDuplicate("topic", rt.Topic)
		} else {
			err = s.createPartitions(rt, req.ValidateOnly)
		}
		t.ErrorCode = errorCode(err)
		t.ErrorMessage = s.errorMessage(err)
		resp.Topics = append(resp.Topics, t)
	}
	return Respond(resp)
}

func (s *Server) createPartitions(rt kmsg.CreatePartitionsRequestTopic, validateOnly bool) error {
	b := s.opts.Broker
	t, err := b.Topic(rt.Topic)
	if err != nil {
		return err
	}
	// A manual assignment lists the replicas of each new partition; the
	// broker reports a count that adds none.
	if cur := int32(len(t.Partitions())); rt.Assignment != nil && rt.Count > cur {
		if len(rt.Assignment) != int(rt.Count-cur) {
			return fmt.Errorf("%w: adding %d partition(s) but %d assignment(s) given",
				errInvalidReplicaAssignment, rt.Count-cur, len(rt.Assignment))
		}
		for _, a := range rt.Assignment {
			if !s.onThisNode(a.Replicas) {
				return s.errManualAssignment(a.Replicas)
			}
		}
	}
	return b.CreatePartitions(rt.Topic, rt.Count, validateOnly)
}

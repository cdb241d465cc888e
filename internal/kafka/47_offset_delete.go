package kafka

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weirhq/weir/internal/group"
)

// OffsetDelete v0: offsets of topics the group's live consumers subscribe
// to are refused with GROUP_SUBSCRIBED_TO_TOPIC.
func init() {
	register(api{Key: 47, MinVersion: 0, MaxVersion: 0, Handle: (*Server).handleOffsetDelete})
}

func (s *Server) handleOffsetDelete(c *Conn, r kmsg.Request) Reply {
	req := r.(*kmsg.OffsetDeleteRequest)
	resp := req.ResponseKind().(*kmsg.OffsetDeleteResponse)
	var tps []group.TopicPartition
	for _, t := range req.Topics {
		for _, p := range t.Partitions {
			tps = append(tps, group.TopicPartition{Topic: t.Topic, Partition: p.Partition})
		}
	}
	subscribed := map[string]bool{}
	if descs, err := s.opts.Groups.Describe(c.Context(), []string{req.Group}); err == nil && descs[0].ProtocolType == "consumer" {
		for _, m := range descs[0].Members {
			var md kmsg.ConsumerMemberMetadata
			if md.ReadFrom(m.Metadata) == nil {
				for _, t := range md.Topics {
					subscribed[t] = true
				}
			}
		}
	}
	errs, err := s.opts.Groups.DeleteOffsets(c.Context(), req.Group, tps, func(t string) bool { return subscribed[t] })
	if err != nil {
		resp.ErrorCode = errorCode(err)
		return Respond(resp)
	}
	i := 0
	for _, t := range req.Topics {
		rt := kmsg.NewOffsetDeleteResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewOffsetDeleteResponseTopicPartition()
			rp.Partition, rp.ErrorCode = p.Partition, errorCode(errs[i])
			i++
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return Respond(resp)
}

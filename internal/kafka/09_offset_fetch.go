package kafka

import (
	"sort"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weirhq/weir/internal/group"
)

// OffsetFetch v0-8 (v8 fetches several groups at once). An unknown group
// answers offset -1 without error, as Kafka does.
func init() {
	register(api{Key: 9, MinVersion: 0, MaxVersion: 8, Handle: (*Server).handleOffsetFetch})
}

func (s *Server) handleOffsetFetch(c *Conn, r kmsg.Request) Reply {
	req := r.(*kmsg.OffsetFetchRequest)
	resp := req.ResponseKind().(*kmsg.OffsetFetchResponse)
	if req.Version >= 8 {
		for _, g := range req.Groups {
			var topics []kmsg.OffsetFetchRequestTopic
			if g.Topics != nil {
				topics = make([]kmsg.OffsetFetchRequestTopic, 0, len(g.Topics))
				for _, t := range g.Topics {
					topics = append(topics, kmsg.OffsetFetchRequestTopic{Topic: t.Topic, Partitions: t.Partitions})
				}
			}
			rts, code := s.fetchOffsets(c, g.Group, topics, req.RequireStable)
			rg := kmsg.NewOffsetFetchResponseGroup()
			rg.Group, rg.ErrorCode = g.Group, code
			for _, t := range rts {
				gt := kmsg.NewOffsetFetchResponseGroupTopic()
				gt.Topic = t.Topic
				for _, p := range t.Partitions {
					gp := kmsg.NewOffsetFetchResponseGroupTopicPartition()
					gp.Partition, gp.Offset, gp.LeaderEpoch, gp.Metadata, gp.ErrorCode = p.Partition, p.Offset, p.LeaderEpoch, p.Metadata, p.ErrorCode
					gt.Partitions = append(gt.Partitions, gp)
				}
				rg.Topics = append(rg.Topics, gt)
			}
			resp.Groups = append(resp.Groups, rg)
		}
		return Respond(resp)
	}
	resp.Topics, resp.ErrorCode = s.fetchOffsets(c, req.Group, req.Topics, req.RequireStable)
	return Respond(resp)
}

// fetchOffsets answers one group: the requested partitions, or every
// committed one when topics is nil. With requireStable (v7+), a partition
// with offsets staged in a transaction not yet resolved answers offset -1
// and UNSTABLE_OFFSET_COMMIT, for the client to retry, as Kafka does.
func (s *Server) fetchOffsets(c *Conn, groupID string, topics []kmsg.OffsetFetchRequestTopic, requireStable bool) ([]kmsg.OffsetFetchResponseTopic, int16) {
	var tps []group.TopicPartition
	if topics != nil {
		tps = []group.TopicPartition{}
		for _, t := range topics {
			for _, p := range t.Partitions {
				tps = append(tps, group.TopicPartition{Topic: t.Topic, Partition: p})
			}
		}
	}
	got, unstable, err := s.opts.Groups.CommittedStable(c.Context(), groupID, tps)
	if !requireStable {
		unstable = nil
	}
	if err != nil {
		return nil, errorCode(err)
	}
	if topics == nil {
		byTopic := map[string][]int32{}
		for tp := range got {
			byTopic[tp.Topic] = append(byTopic[tp.Topic], tp.Partition)
		}
		for t, ps := range byTopic {
			sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
			topics = append(topics, kmsg.OffsetFetchRequestTopic{Topic: t, Partitions: ps})
		}
		sort.Slice(topics, func(i, j int) bool { return topics[i].Topic < topics[j].Topic })
	}
	var out []kmsg.OffsetFetchResponseTopic
	for _, t := range topics {
		rt := kmsg.NewOffsetFetchResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewOffsetFetchResponseTopicPartition()
			rp.Partition, rp.Offset, rp.LeaderEpoch = p, -1, -1
			empty := ""
			rp.Metadata = &empty
			tp := group.TopicPartition{Topic: t.Topic, Partition: p}
			if unstable[tp] {
				rp.ErrorCode = kerr.UnstableOffsetCommit.Code
			} else if o, ok := got[tp]; ok {
				md := o.Metadata
				rp.Offset, rp.LeaderEpoch, rp.Metadata = o.Offset, o.LeaderEpoch, &md
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		out = append(out, rt)
	}
	return out, 0
}

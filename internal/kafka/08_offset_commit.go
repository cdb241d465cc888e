package kafka

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weirhq/weir/internal/group"
)

// OffsetCommit v0-8 (v9+ belongs to the KIP-848 protocol; v10 uses topic
// ids). A commit is acknowledged once durable in __consumer_offsets.
func init() {
	register(api{Key: 8, MinVersion: 0, MaxVersion: 8, Handle: (*Server).handleOffsetCommit})
}

func (s *Server) handleOffsetCommit(c *Conn, r kmsg.Request) Reply {
	req := r.(*kmsg.OffsetCommitRequest)
	resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
	cr := group.CommitRequest{Group: req.Group, Generation: req.Generation, MemberID: req.MemberID, InstanceID: req.InstanceID}
	// codes holds each requested partition's result, in request order;
	// idx maps the committed ones to their slot.
	codes := make([][]int16, len(req.Topics))
	var idx [][2]int
	for ti, t := range req.Topics {
		codes[ti] = make([]int16, len(t.Partitions))
		for pi, p := range t.Partitions {
			if _, err := s.opts.Broker.Partition(t.Topic, p.Partition); err != nil {
				codes[ti][pi] = kerr.UnknownTopicOrPartition.Code
				continue
			}
			md := ""
			if p.Metadata != nil {
				md = *p.Metadata
			}
			cr.Offsets = append(cr.Offsets, group.OffsetCommit{
				TopicPartition: group.TopicPartition{Topic: t.Topic, Partition: p.Partition},
				Offset:         group.Offset{Offset: p.Offset, LeaderEpoch: p.LeaderEpoch, Metadata: md},
			})
			idx = append(idx, [2]int{ti, pi})
		}
	}
	ctx := c.Context()
	wait := s.opts.Groups.StartCommit(ctx, cr)
	return Defer(func() kmsg.Response {
		errs, err := wait(ctx)
		for i, at := range idx {
			switch {
			case err != nil:
				codes[at[0]][at[1]] = errorCode(err)
			case errs[i] != nil:
				codes[at[0]][at[1]] = errorCode(errs[i])
			}
		}
		for ti, t := range req.Topics {
			rt := kmsg.NewOffsetCommitResponseTopic()
			rt.Topic = t.Topic
			for pi, p := range t.Partitions {
				rp := kmsg.NewOffsetCommitResponseTopicPartition()
				rp.Partition, rp.ErrorCode = p.Partition, codes[ti][pi]
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp
	})
}

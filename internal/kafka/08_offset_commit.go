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
	parts := make([][]commitPartition, len(req.Topics))
	for ti, t := range req.Topics {
		for _, p := range t.Partitions {
			parts[ti] = append(parts[ti], commitPartition{t.Topic, p.Partition, p.Offset, p.LeaderEpoch, p.Metadata})
		}
	}
	var codes [][]int16
	var idx [][2]int
	cr.Offsets, codes, idx = s.offsetsToCommit(parts)
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

// commitPartition is one partition of an OffsetCommit or TxnOffsetCommit
// request.
type commitPartition struct {
	topic       string
	partition   int32
	offset      int64
	leaderEpoch int32
	metadata    *string
}

// offsetsToCommit returns the offsets of the partitions that exist, a
// result code per requested partition in request order (set for the ones
// that do not: UNKNOWN_TOPIC_OR_PARTITION), and for each offset returned
// the slot of its code.
func (s *Server) offsetsToCommit(topics [][]commitPartition) (offsets []group.OffsetCommit, codes [][]int16, idx [][2]int) {
	codes = make([][]int16, len(topics))
	for ti, parts := range topics {
		codes[ti] = make([]int16, len(parts))
		for pi, p := range parts {
			if _, err := s.opts.Broker.Partition(p.topic, p.partition); err != nil {
				codes[ti][pi] = kerr.UnknownTopicOrPartition.Code
				continue
			}
			md := ""
			if p.metadata != nil {
				md = *p.metadata
			}
			offsets = append(offsets, group.OffsetCommit{
				TopicPartition: group.TopicPartition{Topic: p.topic, Partition: p.partition},
				Offset:         group.Offset{Offset: p.offset, LeaderEpoch: p.leaderEpoch, Metadata: md},
			})
			idx = append(idx, [2]int{ti, pi})
		}
	}
	return offsets, codes, idx
}

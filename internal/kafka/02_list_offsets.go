package kafka

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weirhq/weir/internal/broker"
)

// ListOffsets v1-9 (v0's old-style multi-offset reply is not served;
// kafka-go, the oldest caller, uses v1). From v2 the isolation level is
// honoured: read_committed LATEST is the last stable offset. v8 and v9
// change no field: they mark support for -4 (earliest local, KIP-405) and
// -5 (latest tiered, KIP-1005), which the broker answers at any version.
func init() {
	register(api{Key: 2, MinVersion: 1, MaxVersion: 9, Handle: (*Server).handleListOffsets})
}

func (s *Server) handleListOffsets(_ *Conn, r kmsg.Request) Reply {
	req := r.(*kmsg.ListOffsetsRequest)
	resp := req.ResponseKind().(*kmsg.ListOffsetsResponse)
	iso := broker.ReadUncommitted
	if req.Version >= 2 && req.IsolationLevel == int8(broker.ReadCommitted) {
		iso = broker.ReadCommitted
	}
	for _, rt := range req.Topics {
		t := kmsg.NewListOffsetsResponseTopic()
		t.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			pr := kmsg.NewListOffsetsResponseTopicPartition()
			pr.Partition = rp.Partition
			pr.LeaderEpoch = -1
			pr.Offset, pr.Timestamp = -1, -1
			p, err := s.opts.Broker.Partition(rt.Topic, rp.Partition)
			if err == nil {
				pr.Offset, pr.Timestamp, err = p.ListOffsetAt(rp.Timestamp, iso)
			}
			if err != nil {
				pr.ErrorCode = errorCode(err)
				pr.Offset, pr.Timestamp = -1, -1
			}
			t.Partitions = append(t.Partitions, pr)
		}
		resp.Topics = append(resp.Topics, t)
	}
	return Respond(resp)
}

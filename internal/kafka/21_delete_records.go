package kafka

import (
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DeleteRecords v0-2: raises each partition's log start offset (-1 = the
// high watermark). The new start is checkpointed durably before the
// response, so TimeoutMillis has nothing to wait for. Records of internal
// topics cannot be deleted (INVALID_TOPIC_EXCEPTION, as in Kafka).
func init() {
	register(api{Key: 21, MinVersion: 0, MaxVersion: 2, Handle: (*Server).handleDeleteRecords})
}

func (s *Server) handleDeleteRecords(_ *Conn, r kmsg.Request) Reply {
	req := r.(*kmsg.DeleteRecordsRequest)
	resp := req.ResponseKind().(*kmsg.DeleteRecordsResponse)
	for _, rt := range req.Topics {
		t := kmsg.NewDeleteRecordsResponseTopic()
		t.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			pr := kmsg.NewDeleteRecordsResponseTopicPartition()
			pr.Partition = rp.Partition
			pr.LowWatermark = -1
			p, err := s.opts.Broker.Partition(rt.Topic, rp.Partition)
			if err == nil {
				var low int64
				if low, err = p.DeleteRecords(rp.Offset); err == nil {
					pr.LowWatermark = low
				}
			}
			pr.ErrorCode = errorCode(err)
			t.Partitions = append(t.Partitions, pr)
		}
		resp.Topics = append(resp.Topics, t)
	}
	return Respond(resp)
}

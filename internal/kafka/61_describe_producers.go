package kafka

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weirhq/weir/internal/broker"
)

// maxDescribeProducersPartitions bounds the partitions of one
// DescribeProducers request (Kafka has no bound); past it every partition
// is answered INVALID_REQUEST. kadm asks for every partition of the
// cluster at once, so the bound is generous.
const maxDescribeProducersPartitions = 100_000

// DescribeProducers v0 (KIP-664): the producers each partition knows,
// with their epoch, last sequence and timestamp, the coordinator epoch of
// their last marker and the first offset of their open transaction (-1
// when none), as `kafka-transactions.sh describe-producers` and its
// `abort --start-offset` read them. Unknown topics and partitions →
// UNKNOWN_TOPIC_OR_PARTITION per partition.
func init() {
	register(api{Key: 61, MinVersion: 0, MaxVersion: 0, Handle: (*Server).handleDescribeProducers})
}

func (s *Server) handleDescribeProducers(_ *Conn, r kmsg.Request) Reply {
	req := r.(*kmsg.DescribeProducersRequest)
	resp := req.ResponseKind().(*kmsg.DescribeProducersResponse)
	n := 0
	for _, rt := range req.Topics {
		n += len(rt.Partitions)
	}
	var tooMany error
	if n > maxDescribeProducersPartitions {
		tooMany = fmt.Errorf("%w: %d partitions in one request, at most %d", broker.ErrInvalidRequest, n, maxDescribeProducersPartitions)
	}
	for _, rt := range req.Topics {
		t := kmsg.NewDescribeProducersResponseTopic()
		t.Topic = rt.Topic
		for _, idx := range rt.Partitions {
			pr := kmsg.NewDescribeProducersResponseTopicPartition()
			pr.Partition = idx
			err := tooMany
			var p *broker.Partition
			if err == nil {
				p, err = s.opts.Broker.Partition(rt.Topic, idx)
			}
			if err != nil {
				pr.ErrorCode = errorCode(err)
				if pr.ErrorCode != kerr.UnknownTopicOrPartition.Code {
					pr.ErrorMessage = s.errorMessage(err)
				}
				t.Partitions = append(t.Partitions, pr)
				continue
			}
			for _, info := range p.Producers() {
				ap := kmsg.NewDescribeProducersResponseTopicPartitionActiveProducer()
				ap.ProducerID, ap.ProducerEpoch = info.ProducerID, int32(info.Epoch)
				ap.LastSequence, ap.LastTimestamp = info.LastSequence, info.LastTimestamp
				ap.CoordinatorEpoch, ap.CurrentTxnStartOffset = info.CoordinatorEpoch, info.TxnStartOffset
				pr.ActiveProducers = append(pr.ActiveProducers, ap)
			}
			t.Partitions = append(t.Partitions, pr)
		}
		resp.Topics = append(resp.Topics, t)
	}
	return Respond(resp)
}

package kafka

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weirhq/weir/internal/broker"
)

// maxTxnMarkerPartitions bounds the marker-partition pairs of one
// WriteTxnMarkers request; past it every one is answered INVALID_REQUEST.
const maxTxnMarkerPartitions = 10_000

// WriteTxnMarkers v0-1: writes commit or abort markers for producers on
// partitions of this node, through the broker's marker path (the leader
// side of broker.MarkerWriter). In Kafka the transaction coordinator sends
// it to partition leaders; operators send it to end a hanging transaction
// (KIP-664, `kafka-transactions.sh abort`, `weir txn abort`). The markers
// are appended while the request is handled, and answered once durable.
// A marker of an older producer epoch → INVALID_PRODUCER_EPOCH, of an
// older coordinator epoch → TRANSACTION_COORDINATOR_FENCED; unknown
// partitions → UNKNOWN_TOPIC_OR_PARTITION. Unlike Kafka, the node's
// internal topics refuse markers (INVALID_TOPIC_EXCEPTION): the markers
// of __consumer_offsets are written by the group coordinator, which
// applies them to the staged offsets as it writes them; one appended
// past it would not be. v2 (transaction version) is not advertised.
func init() {
	register(api{Key: 27, MinVersion: 0, MaxVersion: 1, Handle: (*Server).handleWriteTxnMarkers})
}

func (s *Server) handleWriteTxnMarkers(c *Conn, r kmsg.Request) Reply {
	req := r.(*kmsg.WriteTxnMarkersRequest)
	resp := req.ResponseKind().(*kmsg.WriteTxnMarkersResponse)
	n := 0
	for _, m := range req.Markers {
		for _, rt := range m.Topics {
			n += len(rt.Partitions)
		}
	}
	var tooMany error
	if n > maxTxnMarkerPartitions {
		tooMany = fmt.Errorf("%w: %d marker partitions in one request, at most %d", broker.ErrInvalidRequest, n, maxTxnMarkerPartitions)
	}
	// The response mirrors the request; codes[i] answers its i-th
	// partition, written now or later from the broker's results.
	var (
		markers []broker.TxnMarker
		codes   []*int16 // per written marker partition, in broker order
	)
	for _, m := range req.Markers {
		rm := kmsg.NewWriteTxnMarkersResponseMarker()
		rm.ProducerID = m.ProducerID
		bm := broker.TxnMarker{ProducerID: m.ProducerID, ProducerEpoch: m.ProducerEpoch, Commit: m.Committed,
			CoordinatorEpoch: m.CoordinatorEpoch}
		for _, rt := range m.Topics {
			t := kmsg.NewWriteTxnMarkersResponseMarkerTopic()
			t.Topic = rt.Topic
			t.Partitions = make([]kmsg.WriteTxnMarkersResponseMarkerTopicPartition, len(rt.Partitions))
			for i, idx := range rt.Partitions {
				t.Partitions[i] = kmsg.NewWriteTxnMarkersResponseMarkerTopicPartition()
				t.Partitions[i].Partition = idx
			}
			rm.Topics = append(rm.Topics, t)
		}
		resp.Markers = append(resp.Markers, rm)
		last := &resp.Markers[len(resp.Markers)-1]
		for ti, rt := range m.Topics {
			for pi, idx := range rt.Partitions {
				code := &last.Topics[ti].Partitions[pi].ErrorCode
				switch {
				case tooMany != nil:
					*code = errorCode(tooMany)
				case broker.IsReservedTopic(rt.Topic):
					*code = errorCode(fmt.Errorf("%w: %s", broker.ErrInvalidTopic, rt.Topic))
				default:
					bm.Partitions = append(bm.Partitions, broker.TopicPartition{Topic: rt.Topic, Partition: idx})
					codes = append(codes, code)
				}
			}
		}
		if len(bm.Partitions) > 0 {
			markers = append(markers, bm)
		}
	}
	if len(markers) == 0 {
		return Respond(resp)
	}
	wait := s.opts.Broker.AppendTxnMarkers(markers)
	ctx := c.Context()
	return Defer(func() kmsg.Response {
		res := wait(ctx)
		for i, code := range codes {
			if i < len(res) {
				*code = errorCode(res[i].Err)
			}
		}
		return resp
	})
}

package kafka

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weirhq/weir/internal/group"
	"github.com/weirhq/weir/internal/txn"
)

// TxnOffsetCommit v0-3 stages a consumer group's offsets in the
// producer's transaction: they become the group's committed offsets when
// it commits and are dropped when it aborts. The transaction coordinator
// checks first that the group was added (AddOffsetsToTxn) to the
// producer's Ongoing transaction; otherwise every partition gets its
// error (INVALID_TXN_STATE, INVALID_PRODUCER_EPOCH, ...). v3+ member
// fields are checked as an OffsetCommit's. v4+ is not advertised.
func init() {
	register(api{Key: 28, MinVersion: 0, MaxVersion: 3, Handle: (*Server).handleTxnOffsetCommit})
}

func (s *Server) handleTxnOffsetCommit(c *Conn, r kmsg.Request) Reply {
	req := r.(*kmsg.TxnOffsetCommitRequest)
	resp := req.ResponseKind().(*kmsg.TxnOffsetCommitResponse)
	tr := group.TxnCommitRequest{Group: req.Group, ProducerID: req.ProducerID, Epoch: req.ProducerEpoch, Generation: -1}
	if req.Version >= 3 {
		tr.Generation, tr.MemberID, tr.InstanceID = req.Generation, req.MemberID, req.InstanceID
	}
	parts := make([][]commitPartition, len(req.Topics))
	for ti, t := range req.Topics {
		for _, p := range t.Partitions {
			parts[ti] = append(parts[ti], commitPartition{t.Topic, p.Partition, p.Offset, p.LeaderEpoch, p.Metadata})
		}
	}
	var codes [][]int16
	var idx [][2]int
	tr.Offsets, codes, idx = s.offsetsToCommit(parts)
	var all int16
	if s.opts.Txns == nil {
		all = kerr.TransactionalIDAuthorizationFailed.Code
	} else {
		ctx, cancel := txnContext(c)
		defer cancel()
		all = errorCode(s.opts.Txns.CheckOffsets(ctx, req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Group))
		if all == 0 && len(tr.Offsets) > 0 {
			errs, err := s.opts.Groups.TxnCommit(ctx, tr)
			all = errorCode(err)
			for i, at := range idx {
				if err == nil && errs[i] != nil {
					codes[at[0]][at[1]] = errorCode(errs[i])
				}
			}
		}
	}
	for ti, t := range req.Topics {
		rt := kmsg.NewTxnOffsetCommitResponseTopic()
		rt.Topic = t.Topic
		for pi, p := range t.Partitions {
			rp := kmsg.NewTxnOffsetCommitResponseTopicPartition()
			rp.Partition, rp.ErrorCode = p.Partition, codes[ti][pi]
			if all != 0 {
				rp.ErrorCode = all
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return Respond(resp)
}

// TxnOffsets resolves the transaction coordinator's offset outcomes on
// the group coordinator (txn.Offsets): a commit makes the producer's
// staged offsets the group's committed ones, an abort drops them; either
// way a commit or abort marker in __consumer_offsets is durable before
// ResolveOffsets returns (the staged offsets are there already, in the
// producer's transactional batches, as Kafka writes them).
type TxnOffsets struct {
	Groups *group.Service
}

// ResolveOffsets implements txn.Offsets.
func (o TxnOffsets) ResolveOffsets(ctx context.Context, outcomes []txn.OffsetOutcome) []error {
	errs := make([]error, len(outcomes))
	for i, oc := range outcomes {
		errs[i] = o.Groups.ResolveTxnOffsets(ctx, oc.ProducerID, oc.Epoch, oc.Commit)
	}
	return errs
}

var _ txn.Offsets = TxnOffsets{}

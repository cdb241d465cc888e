package group

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"
)

// TxnCommit handles TxnOffsetCommit: it stages the offsets in the
// producer's transaction, invisible to Committed until ResolveTxn commits
// them, and returns them as records to persist (Txn set) before the
// answer, so a restart mid-transaction still knows them. The transaction
// coordinator has checked the producer; the member checks follow Kafka's
// (fenced instance, unknown member, generation), made only for the fields
// given. errs holds one entry per offset.
func (m *Machine) TxnCommit(now time.Time, req TxnCommitRequest) (errs []error, recs []Record, err error) {
	if req.Group == "" {
		return nil, nil, ErrInvalidGroupID
	}
	g := m.group(req.Group, now, true)
	if req.InstanceID != nil {
		if cur, ok := g.static[*req.InstanceID]; ok && cur != req.MemberID {
			return nil, nil, ErrFencedInstanceID
		}
	}
	if req.MemberID != "" && g.members[req.MemberID] == nil {
		return nil, nil, ErrUnknownMemberID
	}
	if req.Generation >= 0 && req.Generation != g.generation {
		return nil, nil, ErrIllegalGeneration
	}
	producer := &TxnProducer{ProducerID: req.ProducerID, Epoch: req.Epoch}
	errs = make([]error, len(req.Offsets))
	for i, o := range req.Offsets {
		if len(o.Metadata) > m.cfg.MaxMetadataBytes {
			errs[i] = fmt.Errorf("%w: %d bytes > %d", ErrOffsetMetadataTooLarge, len(o.Metadata), m.cfg.MaxMetadataBytes)
			continue
		}
		off := o.Offset
		off.CommitTime = now
		g.stage(req.ProducerID, o.TopicPartition, off)
		recs = append(recs, Record{Group: g.id, IsOffset: true, TopicPartition: o.TopicPartition, Offset: &off, Txn: producer})
	}
	return errs, recs, nil
}

// stage holds off for tp in the producer's transaction.
func (g *group) stage(producerID int64, tp TopicPartition, off Offset) {
	staged := g.txnOffsets[producerID]
	if staged == nil {
		staged = map[TopicPartition]Offset{}
		g.txnOffsets[producerID] = staged
	}
	staged[tp] = off
}

// ResolveTxn ends the producer's transaction for the offsets it staged,
// in every group, as a commit marker in __consumer_offsets does in Kafka:
// on commit the staged offsets become the groups' committed offsets (with
// the time they were staged), on abort they are dropped. It returns the
// TxnEnd record to persist, or nothing when the producer has nothing
// staged (a retry, or a transaction without offsets).
func (m *Machine) ResolveTxn(now time.Time, producerID int64, epoch int16, commit bool) []Record {
	if !m.resolve(producerID, commit) {
		return nil
	}
	return []Record{{TxnEnd: &TxnEnd{TxnProducer: TxnProducer{ProducerID: producerID, Epoch: epoch}, Commit: commit}}}
}

// resolve applies a transaction's outcome to every group the producer
// staged offsets in, reporting whether there was any.
func (m *Machine) resolve(producerID int64, commit bool) bool {
	found := false
	for _, id := range slices.Sorted(maps.Keys(m.groups)) {
		g := m.groups[id]
		staged, ok := g.txnOffsets[producerID]
		if !ok {
			continue
		}
		found = true
		delete(g.txnOffsets, producerID)
		if commit {
			for tp, off := range staged {
				g.offsets[tp] = off
			}
		}
	}
	return found
}

// Unstable returns, of tps (all staged ones when tps is nil), the
// partitions with offsets staged in a transaction not yet resolved:
// OffsetFetch with RequireStable answers UNSTABLE_OFFSET_COMMIT for them.
func (m *Machine) Unstable(groupID string, tps []TopicPartition) map[TopicPartition]bool {
	out := map[TopicPartition]bool{}
	g := m.groups[groupID]
	if g == nil {
		return out
	}
	for _, staged := range g.txnOffsets {
		for tp := range staged {
			out[tp] = true
		}
	}
	if tps != nil {
		want := make(map[TopicPartition]bool, len(tps))
		for _, tp := range tps {
			want[tp] = out[tp]
		}
		for tp := range out {
			if !want[tp] {
				delete(out, tp)
			}
		}
	}
	return out
}

// TxnCommit stages a TxnOffsetCommit (Machine.TxnCommit) and returns
// once the staged offsets are durable; errs holds one entry per offset.
func (s *Service) TxnCommit(ctx context.Context, req TxnCommitRequest) ([]error, error) {
	return s.persistThen(ctx, func(now time.Time) ([]error, []Record, error) {
		return s.m.TxnCommit(now, req)
	})(ctx)
}

// ResolveTxnOffsets commits or drops the producer's staged offsets in
// every group (Machine.ResolveTxn) and returns once the outcome is
// durable in the Store. It may be called again for the same outcome.
func (s *Service) ResolveTxnOffsets(ctx context.Context, producerID int64, epoch int16, commit bool) error {
	_, err := s.persistThen(ctx, func(now time.Time) ([]error, []Record, error) {
		return nil, s.m.ResolveTxn(now, producerID, epoch, commit), nil
	})(ctx)
	return err
}

// CommittedStable returns the committed offsets as Committed does, and
// the requested partitions with transactional offsets not yet resolved.
func (s *Service) CommittedStable(ctx context.Context, groupID string, tps []TopicPartition) (map[TopicPartition]Offset, map[TopicPartition]bool, error) {
	type res struct {
		offs     map[TopicPartition]Offset
		unstable map[TopicPartition]bool
	}
	r, err := call(s, ctx, func(time.Time) res {
		return res{s.m.Committed(groupID, tps), s.m.Unstable(groupID, tps)}
	})
	return r.offs, r.unstable, err
}

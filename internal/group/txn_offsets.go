package group

import (
	"context"
	"fmt"
	"sort"
	"time"
)

// TxnCommit handles TxnOffsetCommit: it stages the offsets in the
// producer's transaction, invisible to Committed until ResolveTxn commits
// them. The transaction coordinator has checked the producer; the member
// checks follow Kafka's (fenced instance, unknown member, generation),
// made only for the fields given. errs holds one entry per offset.
func (m *Machine) TxnCommit(now time.Time, req TxnCommitRequest) (errs []error, err error) {
	if req.Group == "" {
		return nil, ErrInvalidGroupID
	}
	g := m.group(req.Group, now, true)
	if req.InstanceID != nil {
		if cur, ok := g.static[*req.InstanceID]; ok && cur != req.MemberID {
			return nil, ErrFencedInstanceID
		}
	}
	if req.MemberID != "" && g.members[req.MemberID] == nil {
		return nil, ErrUnknownMemberID
	}
	if req.Generation >= 0 && req.Generation != g.generation {
		return nil, ErrIllegalGeneration
	}
	staged := g.txnOffsets[req.ProducerID]
	if staged == nil {
		staged = map[TopicPartition]Offset{}
		g.txnOffsets[req.ProducerID] = staged
	}
	errs = make([]error, len(req.Offsets))
	for i, o := range req.Offsets {
		if len(o.Metadata) > m.cfg.MaxMetadataBytes {
			errs[i] = fmt.Errorf("%w: %d bytes > %d", ErrOffsetMetadataTooLarge, len(o.Metadata), m.cfg.MaxMetadataBytes)
			continue
		}
		off := o.Offset
		off.CommitTime = now
		staged[o.TopicPartition] = off
	}
	if len(staged) == 0 {
		delete(g.txnOffsets, req.ProducerID)
	}
	return errs, nil
}

// ResolveTxn ends the producer's transaction for the group: on commit its
// staged offsets become the group's committed offsets, and the records to
// persist are returned; on abort they are dropped. Resolving a group or
// producer with nothing staged does nothing (a retry, or offsets lost in
// a restart: staged offsets are not persisted).
func (m *Machine) ResolveTxn(now time.Time, groupID string, producerID int64, commit bool) []Record {
	g := m.groups[groupID]
	if g == nil {
		return nil
	}
	staged := g.txnOffsets[producerID]
	delete(g.txnOffsets, producerID)
	if !commit || len(staged) == 0 {
		return nil
	}
	var recs []Record
	for _, tp := range sortedTopicPartitions(staged) {
		off := staged[tp]
		off.CommitTime = now
		g.offsets[tp] = off
		recs = append(recs, Record{Group: g.id, IsOffset: true, TopicPartition: tp, Offset: &off})
	}
	return recs
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

func sortedTopicPartitions(offs map[TopicPartition]Offset) []TopicPartition {
	tps := make([]TopicPartition, 0, len(offs))
	for tp := range offs {
		tps = append(tps, tp)
	}
	sort.Slice(tps, func(i, j int) bool {
		return tps[i].Topic < tps[j].Topic || tps[i].Topic == tps[j].Topic && tps[i].Partition < tps[j].Partition
	})
	return tps
}

// TxnCommit stages a TxnOffsetCommit (Machine.TxnCommit); errs holds one
// entry per offset. Nothing is persisted until the transaction resolves.
func (s *Service) TxnCommit(ctx context.Context, req TxnCommitRequest) ([]error, error) {
	type res struct {
		errs []error
		err  error
	}
	r, err := call(s, ctx, func(now time.Time) res {
		errs, err := s.m.TxnCommit(now, req)
		return res{errs, err}
	})
	if err != nil {
		return nil, err
	}
	return r.errs, r.err
}

// ResolveTxnOffsets commits or drops the producer's staged offsets for
// the group (Machine.ResolveTxn) and returns once the committed ones are
// durable in the Store. It may be called again for the same outcome.
func (s *Service) ResolveTxnOffsets(ctx context.Context, groupID string, producerID int64, commit bool) error {
	_, err := s.persistThen(ctx, func(now time.Time) ([]error, []Record, error) {
		return nil, s.m.ResolveTxn(now, groupID, producerID, commit), nil
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

package group

import (
	"fmt"
	"sort"
	"time"
)

// Commit handles OffsetCommit. On success it applies the offsets and
// returns the records to persist; the caller acknowledges the commit only
// once they are durable. errs holds one entry per requested offset.
func (m *Machine) Commit(now time.Time, req CommitRequest) (errs []error, recs []Record, err error) {
	if req.Group == "" {
		return nil, nil, ErrInvalidGroupID
	}
	g := m.groups[req.Group]
	switch {
	case g == nil && req.Generation < 0:
		g = m.group(req.Group, now, true)
	case g == nil:
		return nil, nil, ErrIllegalGeneration
	case req.Generation < 0 && g.state == Empty:
		// A "simple" commit by a client managing its own partitions.
	default:
		// Kafka's order: member, then generation, then state (a commit
		// is allowed while PreparingRebalance; the heartbeat tells the
		// member to rejoin).
		if err := checkMember(g, req.MemberID, req.InstanceID); err != nil {
			return nil, nil, err
		}
		if req.Generation != g.generation {
			return nil, nil, ErrIllegalGeneration
		}
		if g.state == CompletingRebalance {
			return nil, nil, ErrRebalanceInProgress
		}
		g.members[req.MemberID].lastSeen = now
	}
	errs = make([]error, len(req.Offsets))
	for i, o := range req.Offsets {
		if len(o.Metadata) > m.cfg.MaxMetadataBytes {
			errs[i] = fmt.Errorf("%w: %d bytes > %d", ErrOffsetMetadataTooLarge, len(o.Metadata), m.cfg.MaxMetadataBytes)
			continue
		}
		off := o.Offset
		off.CommitTime = now
		g.offsets[o.TopicPartition] = off
		recs = append(recs, Record{Group: g.id, IsOffset: true, TopicPartition: o.TopicPartition, Offset: &off})
	}
	return errs, recs, nil
}

// Committed returns the group's committed offsets for tps (all when tps
// is nil). An unknown group has none.
func (m *Machine) Committed(groupID string, tps []TopicPartition) map[TopicPartition]Offset {
	g := m.groups[groupID]
	out := map[TopicPartition]Offset{}
	if g == nil {
		return out
	}
	if tps == nil {
		for tp, o := range g.offsets {
			out[tp] = o
		}
		return out
	}
	for _, tp := range tps {
		if o, ok := g.offsets[tp]; ok {
			out[tp] = o
		}
	}
	return out
}

// Describe returns a group's description; ok is false for unknown groups.
func (m *Machine) Describe(groupID string) (Description, bool) {
	g := m.groups[groupID]
	if g == nil {
		return Description{Group: groupID, State: Dead}, false
	}
	d := Description{Group: g.id, State: g.state, ProtocolType: g.protocolType, Protocol: g.protocol, Generation: g.generation}
	for _, mem := range g.sortedMembers() {
		d.Members = append(d.Members, MemberDescription{MemberID: mem.id, InstanceID: mem.instanceID, ClientID: mem.clientID,
			ClientHost: mem.clientHost, Metadata: mem.metadataFor(g.protocol), Assignment: mem.assignment})
	}
	return d, true
}

// List returns the groups, sorted, optionally only those in states.
func (m *Machine) List(states []State) []Listing {
	var out []Listing
	for _, g := range m.groups {
		if len(states) > 0 {
			keep := false
			for _, s := range states {
				keep = keep || s == g.state
			}
			if !keep {
				continue
			}
		}
		out = append(out, Listing{Group: g.id, ProtocolType: g.protocolType, State: g.state})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Group < out[j].Group })
	return out
}

// Delete removes empty groups and their offsets (DeleteGroups).
func (m *Machine) Delete(groupID string) ([]Record, error) {
	g := m.groups[groupID]
	switch {
	case groupID == "":
		return nil, ErrInvalidGroupID
	case g == nil:
		return nil, ErrGroupNotFound
	case g.state != Empty || len(g.members) > 0:
		return nil, ErrNonEmptyGroup
	}
	recs := m.tombstones(g, nil)
	recs = append(recs, Record{Group: g.id})
	delete(m.groups, groupID)
	return recs, nil
}

// DeleteOffsets removes committed offsets (OffsetDelete). subscribed
// reports topics the group's live members consume; their offsets are
// refused with ErrGroupSubscribedToTopic. As in Kafka, a non-empty group
// whose protocol type is not "consumer" is refused with ErrNonEmptyGroup.
func (m *Machine) DeleteOffsets(groupID string, tps []TopicPartition, subscribed func(topic string) bool) ([]error, []Record, error) {
	g := m.groups[groupID]
	if g == nil {
		return nil, nil, ErrGroupNotFound
	}
	if g.state != Empty && g.protocolType != "consumer" {
		// Only consumer groups' subscriptions are known (Kafka).
		return nil, nil, ErrNonEmptyGroup
	}
	errs := make([]error, len(tps))
	var del []TopicPartition
	for i, tp := range tps {
		if g.state != Empty && subscribed != nil && subscribed(tp.Topic) {
			errs[i] = ErrGroupSubscribedToTopic
			continue
		}
		del = append(del, tp)
	}
	return errs, m.tombstones(g, del), nil
}

// tombstones deletes offsets (all when tps is nil) and returns their
// tombstone records.
func (m *Machine) tombstones(g *group, tps []TopicPartition) []Record {
	if tps == nil {
		for tp := range g.offsets {
			tps = append(tps, tp)
		}
		sort.Slice(tps, func(i, j int) bool {
			return tps[i].Topic < tps[j].Topic || tps[i].Topic == tps[j].Topic && tps[i].Partition < tps[j].Partition
		})
	}
	var recs []Record
	for _, tp := range tps {
		if _, ok := g.offsets[tp]; !ok {
			continue
		}
		delete(g.offsets, tp)
		recs = append(recs, Record{Group: g.id, IsOffset: true, TopicPartition: tp})
	}
	return recs
}

// expireOffsets drops offsets of an empty group once the group has been
// empty, and the offset unchanged, for the retention period (KIP-211);
// an empty group with no offsets left is removed.
func (m *Machine) expireOffsets(now time.Time, g *group) {
	if g.state != Empty {
		return
	}
	var expired []TopicPartition
	for tp, o := range g.offsets {
		base := o.CommitTime
		if g.protocolType != "" && g.emptySince.After(base) {
			base = g.emptySince
		}
		if !now.Before(base.Add(m.cfg.OffsetsRetention)) {
			expired = append(expired, tp)
		}
	}
	var recs []Record
	if len(expired) > 0 {
		sort.Slice(expired, func(i, j int) bool {
			return expired[i].Topic < expired[j].Topic || expired[i].Topic == expired[j].Topic && expired[i].Partition < expired[j].Partition
		})
		recs = m.tombstones(g, expired)
	}
	if len(g.offsets) == 0 && len(g.members) == 0 && len(g.pending) == 0 && len(g.txnOffsets) == 0 &&
		!now.Before(g.emptySince.Add(m.cfg.OffsetsRetention)) {
		recs = append(recs, Record{Group: g.id})
		delete(m.groups, g.id)
	}
	if len(recs) > 0 {
		m.persist(recs)
	}
}

func (m *Machine) snapshotRecord(g *group, now time.Time) Record {
	s := &Snapshot{ProtocolType: g.protocolType, Protocol: g.protocol, Leader: g.leader, Generation: g.generation, StateTime: now}
	for _, mem := range g.sortedMembers() {
		s.Members = append(s.Members, MemberSnapshot{MemberID: mem.id, InstanceID: mem.instanceID, ClientID: mem.clientID,
			ClientHost: mem.clientHost, RebalanceTimeout: mem.rebalanceTimeout, SessionTimeout: mem.sessionTimeout,
			Subscription: mem.metadataFor(g.protocol), Assignment: mem.assignment})
	}
	return Record{Group: g.id, Meta: s}
}

// Restore replays one persisted record at startup, in log order. Groups
// restored with members are Stable (members keep their generation and
// must heartbeat within their session timeout, counted from now).
func (m *Machine) Restore(now time.Time, r Record) {
	if r.TxnEnd != nil {
		m.resolve(r.TxnEnd.ProducerID, r.TxnEnd.Commit)
		return
	}
	if r.IsOffset && r.Txn != nil {
		if r.Offset != nil {
			m.group(r.Group, now, true).stage(r.Txn.ProducerID, r.TopicPartition, *r.Offset)
		}
		return
	}
	if r.IsOffset {
		if r.Offset == nil {
			if g := m.groups[r.Group]; g != nil {
				delete(g.offsets, r.TopicPartition)
			}
			return
		}
		m.group(r.Group, now, true).offsets[r.TopicPartition] = *r.Offset
		return
	}
	if r.Meta == nil {
		delete(m.groups, r.Group)
		return
	}
	g := m.group(r.Group, now, true)
	s := r.Meta
	g.protocolType, g.protocol, g.leader, g.generation = s.ProtocolType, s.Protocol, s.Leader, s.Generation
	clear(g.members)
	clear(g.static)
	for _, ms := range s.Members {
		m.seq++
		g.members[ms.MemberID] = &member{id: ms.MemberID, instanceID: ms.InstanceID, clientID: ms.ClientID, clientHost: ms.ClientHost,
			sessionTimeout: ms.SessionTimeout, rebalanceTimeout: ms.RebalanceTimeout,
			protocols: []Protocol{{Name: s.Protocol, Metadata: ms.Subscription}}, assignment: ms.Assignment,
			lastSeen: now, joinSeq: m.seq}
		if ms.InstanceID != nil {
			g.static[*ms.InstanceID] = ms.MemberID
		}
	}
	if len(g.members) > 0 {
		g.state, g.stateSince = Stable, now
	} else {
		g.state, g.stateSince, g.emptySince = Empty, now, s.StateTime
	}
}

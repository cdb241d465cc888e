package broker_test

import (
	"context"
	"fmt"
	"strings"

	"github.com/weirhq/weir/internal/batch"
	"github.com/weirhq/weir/internal/broker"
	"github.com/weirhq/weir/internal/group"
	"github.com/weirhq/weir/internal/kafka"
)

// The checker of the power-loss test (powerloss_test.go): what a crash may
// and may not have lost.

func checkCrash(c plCrash, model *plModel, clock *plClock) (err error) {
	v := c.view
	opts := plOptions(c.fs, clock)
	b, err := broker.Open(opts)
	if err != nil {
		return fmt.Errorf("recovery failed: %w", err)
	}
	defer func() {
		if cerr := b.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close after recovery: %w", cerr)
		}
	}()

	// Topics: nothing acknowledged lost, nothing deleted resurrected,
	// nothing unexpected.
	found := map[string]*broker.Topic{}
	for _, tp := range b.Topics() {
		found[tp.Name] = tp
	}
	for name, id := range v.live {
		tp := found[name]
		switch {
		case tp == nil && !v.pending[name]:
			return fmt.Errorf("acknowledged topic %s (%x) lost", name, id[:4])
		case tp != nil && tp.ID != id && !v.pending[name]:
			return fmt.Errorf("topic %s has id %x, acknowledged %x", name, tp.ID[:4], id[:4])
		}
	}
	for name, tp := range found {
		if name == kafka.OffsetsTopic {
			continue
		}
		if dn, ok := v.deleted[tp.ID]; ok {
			return fmt.Errorf("deleted topic %s (%x) resurrected", dn, tp.ID[:4])
		}
		if id, ok := v.live[name]; (!ok || id != tp.ID) && !v.pending[name] {
			return fmt.Errorf("topic %s (%x) appeared without being created", name, tp.ID[:4])
		}
	}
	if _, ok := found[kafka.OffsetsTopic]; v.groupsReady && !ok {
		return fmt.Errorf("%s lost", kafka.OffsetsTopic)
	}

	// Data of every topic incarnation that is there.
	for name, tp := range found {
		if name == kafka.OffsetsTopic {
			continue
		}
		got := len(tp.Partitions())
		if want, ok := v.parts[tp.ID]; ok && v.live[name] == tp.ID && got != want && !(v.pending[name] && got == v.growTo[name]) {
			return fmt.Errorf("topic %s has %d partitions, acknowledged %d", name, got, want)
		}
		model.mu.Lock()
		pt := model.byID[tp.ID]
		model.mu.Unlock()
		for _, p := range tp.Partitions() {
			var ackedEnd, hwSeen int64
			if ends := v.ackedEnd[tp.ID]; int(p.Index()) < len(ends) {
				ackedEnd, hwSeen = ends[p.Index()], v.hwSeen[tp.ID][p.Index()]
			}
			var pm *plPartition
			if pt != nil {
				model.mu.Lock()
				if int(p.Index()) < len(pt.parts) {
					pm = pt.parts[p.Index()]
				}
				model.mu.Unlock()
			}
			if err := checkPartition(b, name, p, pm, ackedEnd, hwSeen, v.retentionNow, model); err != nil {
				return err
			}
		}
	}

	// Group offsets never behind an acknowledged commit.
	if v.groupsReady {
		g, err := plGroups(b, clock)
		if err != nil {
			return fmt.Errorf("group coordinator recovery: %w", err)
		}
		defer g.Close()
		var tps []group.TopicPartition
		for p := range int32(3) {
			tps = append(tps, group.TopicPartition{Topic: plCommitTopic, Partition: p})
		}
		got, err := g.Committed(context.Background(), plGroup, tps)
		if err != nil {
			return err
		}
		for p := range int32(3) {
			o, ok := got[group.TopicPartition{Topic: plCommitTopic, Partition: p}]
			acked, tried := v.ackedCommit[p], v.triedCommit[p]
			switch {
			case acked > 0 && !ok:
				return fmt.Errorf("committed offset of partition %d lost (acknowledged %d)", p, acked)
			case ok && o.Offset < acked:
				return fmt.Errorf("committed offset of partition %d went back to %d (acknowledged %d)", p, o.Offset, acked)
			case ok && o.Offset > tried:
				// tried is from the view; a later attempt may have been in flight.
				model.mu.Lock()
				later := model.triedCommit[p]
				model.mu.Unlock()
				if o.Offset > later {
					return fmt.Errorf("committed offset of partition %d is %d, never committed", p, o.Offset)
				}
			}
		}
	}

	// Producer ids are never handed out twice.
	if id, _, err := b.InitProducerID(); err != nil {
		return fmt.Errorf("init producer id after recovery: %w", err)
	} else if id <= v.maxPID {
		return fmt.Errorf("producer id %d handed out again (acknowledged up to %d)", id, v.maxPID)
	}
	return nil
}

// checkPartition reads a recovered partition from its log start to its
// high watermark and checks it against the model.
func checkPartition(b *broker.Broker, name string, p *broker.Partition, pm *plPartition, ackedEnd, hwSeen, retentionNow int64, model *plModel) error {
	where := fmt.Sprintf("%s-%d", name, p.Index())
	start, end := p.LogStartOffset(), p.HighWatermark()
	if end < ackedEnd {
		return fmt.Errorf("%s: recovered end %d < acknowledged end %d: acknowledged records lost", where, end, ackedEnd)
	}
	if end < hwSeen {
		return fmt.Errorf("%s: recovered end %d < high watermark %d a reader saw", where, end, hwSeen)
	}
	if start > 0 {
		// Everything below the log start must have been retention's to
		// delete: older than retention.ms when retention last ran.
		limit := retentionNow - plRetentionMs
		if pm == nil {
			return fmt.Errorf("%s: log start %d of a topic without records", where, start)
		}
		model.mu.Lock()
		for o, r := range pm.written {
			if o < start && r.ts >= limit {
				model.mu.Unlock()
				return fmt.Errorf("%s: offset %d below the log start %d is gone, but retention could not delete it (ts %d, limit %d)", where, o, start, r.ts, limit)
			}
		}
		model.mu.Unlock()
	}
	next := start
	for next < end {
		data, err := p.Read(next, 1<<20)
		if err != nil {
			return fmt.Errorf("%s: read %d: %w", where, next, err)
		}
		if len(data) == 0 {
			return fmt.Errorf("%s: nothing at %d below the high watermark %d", where, next, end)
		}
		for len(data) > 0 {
			one, rest, err := batch.Split(data)
			if err != nil {
				return fmt.Errorf("%s: %w", where, err)
			}
			data = rest
			h, recs, err := batch.Records(one, 1<<20)
			if err != nil {
				return fmt.Errorf("%s: batch at %d: %w", where, h.BaseOffset, err)
			}
			for _, r := range recs {
				o := r.Offset(h)
				if o != next {
					return fmt.Errorf("%s: record at offset %d, want %d (gap or reuse)", where, o, next)
				}
				next++
				if pm == nil {
					return fmt.Errorf("%s: record at %d in a topic never written", where, o)
				}
				model.mu.Lock()
				want, ok := pm.written[o]
				model.mu.Unlock()
				switch {
				case ok && want.value != string(r.Value):
					return fmt.Errorf("%s: offset %d holds %.20q, was given %.20q", where, o, r.Value, want.value)
				case !ok && o < ackedEnd:
					return fmt.Errorf("%s: acknowledged offset %d has no record in the model", where, o)
				case !ok:
					// Appended when the image was taken but not yet noted:
					// it must at least be this partition's.
					prefix := fmt.Sprintf("/%d/", p.Index())
					if !strings.Contains(string(r.Value), prefix) {
						return fmt.Errorf("%s: offset %d holds a foreign record %.30q", where, o, r.Value)
					}
				}
			}
		}
	}
	return nil
}

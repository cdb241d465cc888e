package main

import (
	"encoding/binary"
	"sort"
	"time"
)

// A bench record's value starts with a stamp, so that a consumer can tell
// which run, producer and sequence number it carries and when it was sent:
//
//	0      2    3    4        8          12                 20                 28
//	+------+----+----+--------+----------+------------------+------------------+---------
//	| "WB" | v1 | 0  | run id | producer | sequence         | send time (ns)   | payload
//	+------+----+----+--------+----------+------------------+------------------+---------
//
// All integers are big-endian. The send time is the Unix time in
// nanoseconds at which the record was due to be sent (at a fixed rate, its
// slot in the schedule, so that a stalled producer does not hide latency).
const (
	stampSize    = 28
	stampVersion = 1
)

// benchStamp is the decoded head of a bench record.
type benchStamp struct {
	run      uint32
	producer uint32
	seq      uint64
	sentNs   int64
}

func (s benchStamp) put(b []byte) {
	b[0], b[1], b[2], b[3] = 'W', 'B', stampVersion, 0
	binary.BigEndian.PutUint32(b[4:], s.run)
	binary.BigEndian.PutUint32(b[8:], s.producer)
	binary.BigEndian.PutUint64(b[12:], s.seq)
	binary.BigEndian.PutUint64(b[20:], uint64(s.sentNs))
}

// parseStamp decodes a value's stamp; ok is false for a value that does
// not carry one (a record some other producer wrote).
func parseStamp(b []byte) (s benchStamp, ok bool) {
	if len(b) < stampSize || b[0] != 'W' || b[1] != 'B' || b[2] != stampVersion {
		return s, false
	}
	return benchStamp{
		run:      binary.BigEndian.Uint32(b[4:]),
		producer: binary.BigEndian.Uint32(b[8:]),
		seq:      binary.BigEndian.Uint64(b[12:]),
		sentNs:   int64(binary.BigEndian.Uint64(b[20:])),
	}, true
}

func (s benchStamp) sent() time.Time { return time.Unix(0, s.sentNs) }

// ledger is the delivery accounting of an end-to-end run: which records
// each producer sent and had acknowledged, and how often and in what order
// each was consumed. It is a pure value (no clock, no I/O, no locking) so
// that loss, duplication and reordering can be planted in tests; the
// runner serialises calls to it.
//
// A record is identified by (producer, sequence); sequences count from 0
// per producer. Order is judged per partition and producer: a record
// consumed after a higher sequence of the same producer on the same
// partition is out of order (unless it is a duplicate).
type ledger struct {
	producers []producerLedger
	parts     map[int32]*partitionLedger
	foreign   int64 // consumed records of another run, or unstamped
}

// Record states in producerLedger.state.
const (
	recUnknown uint8 = iota // never reported sent
	recSent
	recAcked
	recFailed
)

type producerLedger struct {
	state []uint8 // by sequence
	part  []int32 // acknowledged partition, by sequence
	seen  []uint8 // times consumed (saturating), by sequence
}

type partitionLedger struct {
	lastSeq                                     map[uint32]uint64 // highest sequence consumed, by producer
	acked, consumed, lost, duplicates, reorders int64
}

func newLedger(producers int) *ledger {
	return &ledger{producers: make([]producerLedger, producers), parts: map[int32]*partitionLedger{}}
}

// at returns producer p's ledger grown to hold seq, or nil for an unknown
// producer.
func (l *ledger) at(p uint32, seq uint64) *producerLedger {
	if int(p) >= len(l.producers) || seq > 1<<40 {
		return nil
	}
	pl := &l.producers[p]
	for uint64(len(pl.state)) <= seq {
		pl.state = append(pl.state, recUnknown)
		pl.part = append(pl.part, -1)
		pl.seen = append(pl.seen, 0)
	}
	return pl
}

func (l *ledger) partition(p int32) *partitionLedger {
	pl := l.parts[p]
	if pl == nil {
		pl = &partitionLedger{lastSeq: map[uint32]uint64{}}
		l.parts[p] = pl
	}
	return pl
}

// sent records that producer p handed sequence seq to its client.
func (l *ledger) sent(p uint32, seq uint64) {
	if pl := l.at(p, seq); pl != nil && pl.state[seq] == recUnknown {
		pl.state[seq] = recSent
	}
}

// acked records the broker's acknowledgement of (p, seq) on partition.
func (l *ledger) acked(p uint32, seq uint64, partition int32) {
	if pl := l.at(p, seq); pl != nil {
		pl.state[seq] = recAcked
		pl.part[seq] = partition
	}
}

// failed records that (p, seq) was not acknowledged (an error or timeout).
func (l *ledger) failed(p uint32, seq uint64) {
	if pl := l.at(p, seq); pl != nil && pl.state[seq] != recAcked {
		pl.state[seq] = recFailed
	}
}

// consumed records one consumption of (p, seq) from partition. It returns
// whether it was the first.
func (l *ledger) consumed(p uint32, seq uint64, partition int32) bool {
	pl := l.at(p, seq)
	if pl == nil {
		l.foreign++
		return false
	}
	part := l.partition(partition)
	if pl.seen[seq] < 255 {
		pl.seen[seq]++
	}
	if pl.seen[seq] > 1 {
		part.duplicates++
		return false
	}
	part.consumed++
	if last, ok := part.lastSeq[p]; ok && seq < last {
		part.reorders++
	} else {
		part.lastSeq[p] = seq
	}
	return true
}

// consumedForeign counts a record that is not this run's.
func (l *ledger) consumedForeign() { l.foreign++ }

// deliveryReport is the outcome of an end-to-end run.
type deliveryReport struct {
	Sent       int64 `json:"sent"`
	Acked      int64 `json:"acknowledged"`
	Failed     int64 `json:"failed"`
	Consumed   int64 `json:"consumed"` // distinct records of this run
	Lost       int64 `json:"lost"`     // acknowledged, never consumed
	Duplicates int64 `json:"duplicated"`
	Reordered  int64 `json:"out_of_order"`
	Unacked    int64 `json:"consumed_unacknowledged"` // consumed although not acknowledged (not an error)
	Foreign    int64 `json:"foreign"`                 // other runs' or unstamped records, ignored
	// Partitions lists the partitions with a loss, duplicate or reorder.
	Partitions []partitionDelivery `json:"partitions"`
}

type partitionDelivery struct {
	Partition  int32 `json:"partition"`
	Acked      int64 `json:"acknowledged"`
	Consumed   int64 `json:"consumed"`
	Lost       int64 `json:"lost"`
	Duplicates int64 `json:"duplicated"`
	Reordered  int64 `json:"out_of_order"`
}

// ok reports a clean run: nothing acknowledged went missing, nothing came
// twice or out of order.
func (r deliveryReport) ok() bool { return r.Lost == 0 && r.Duplicates == 0 && r.Reordered == 0 }

// report tallies the ledger.
func (l *ledger) report() deliveryReport {
	var r deliveryReport
	parts := map[int32]*partitionLedger{}
	for p, pl := range l.parts {
		c := *pl
		c.acked, c.lost = 0, 0
		parts[p] = &c
	}
	part := func(p int32) *partitionLedger {
		if parts[p] == nil {
			parts[p] = &partitionLedger{}
		}
		return parts[p]
	}
	for i := range l.producers {
		pl := &l.producers[i]
		for seq, st := range pl.state {
			seen := pl.seen[seq] > 0
			switch st {
			case recUnknown:
				if seen {
					r.Unacked++ // consumed before its send was recorded: not expected
				}
				continue
			case recAcked:
				r.Acked++
				part(pl.part[seq]).acked++
				if !seen {
					part(pl.part[seq]).lost++
				}
			case recFailed:
				r.Failed++
				if seen {
					r.Unacked++
				}
			case recSent:
				if seen {
					r.Unacked++
				}
			}
			r.Sent++
		}
	}
	for p, pl := range parts {
		r.Consumed += pl.consumed
		r.Lost += pl.lost
		r.Duplicates += pl.duplicates
		r.Reordered += pl.reorders
		if pl.lost > 0 || pl.duplicates > 0 || pl.reorders > 0 {
			r.Partitions = append(r.Partitions, partitionDelivery{Partition: p, Acked: pl.acked, Consumed: pl.consumed,
				Lost: pl.lost, Duplicates: pl.duplicates, Reordered: pl.reorders})
		}
	}
	r.Foreign = l.foreign
	sort.Slice(r.Partitions, func(i, j int) bool { return r.Partitions[i].Partition < r.Partitions[j].Partition })
	if r.Partitions == nil {
		r.Partitions = []partitionDelivery{}
	}
	return r
}

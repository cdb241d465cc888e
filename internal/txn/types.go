package txn

import (
	"cmp"
	"context"
	"fmt"
	"time"
)

// State is a transactional id's state, numbered as Kafka's TransactionState
// is in __transaction_state records.
type State int8

// The states, with Kafka's numbers.
const (
	Empty             State = 0
	Ongoing           State = 1
	PrepareCommit     State = 2
	PrepareAbort      State = 3
	CompleteCommit    State = 4
	CompleteAbort     State = 5
	Dead              State = 6
	PrepareEpochFence State = 7
)

var stateNames = [...]string{"Empty", "Ongoing", "PrepareCommit", "PrepareAbort", "CompleteCommit", "CompleteAbort",
	"Dead", "PrepareEpochFence"}

// String returns Kafka's name of the state (as DescribeTransactions and
// ListTransactions report it).
func (s State) String() string {
	if s >= 0 && int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("State(%d)", int8(s))
}

// ParseState returns the state with Kafka's name s.
func ParseState(s string) (State, bool) {
	for i, n := range stateNames {
		if n == s {
			return State(i), true
		}
	}
	return 0, false
}

// TopicPartition names one partition.
type TopicPartition struct {
	Topic     string
	Partition int32
}

// String returns topic/partition.
func (tp TopicPartition) String() string { return fmt.Sprintf("%s/%d", tp.Topic, tp.Partition) }

func compareTP(a, b TopicPartition) int {
	if c := cmp.Compare(a.Topic, b.Topic); c != 0 {
		return c
	}
	return cmp.Compare(a.Partition, b.Partition)
}

// Config holds the coordinator's limits; the zero value of each field
// means its default.
type Config struct {
	// MaxTimeout is transaction.max.timeout.ms: InitProducerId with a
	// longer timeout fails with ErrInvalidTransactionTimeout. Default 15m.
	MaxTimeout time.Duration
	// IDExpiration is transactional.id.expiration.ms: an id idle (Empty
	// or Complete*) this long is removed by Tick. Default 7 days.
	IDExpiration time.Duration
	// MaxPartitions bounds the partitions (and groups) of one
	// transaction. Default 10,000.
	MaxPartitions int
}

// Defaults for Config.
const (
	DefaultMaxTimeout    = 15 * time.Minute
	DefaultIDExpiration  = 7 * 24 * time.Hour
	DefaultMaxPartitions = 10000
)

func (c *Config) fill() {
	if c.MaxTimeout <= 0 {
		c.MaxTimeout = DefaultMaxTimeout
	}
	if c.IDExpiration <= 0 {
		c.IDExpiration = DefaultIDExpiration
	}
	if c.MaxPartitions <= 0 {
		c.MaxPartitions = DefaultMaxPartitions
	}
}

// ProducerIDs hands out producer ids; the broker owns them (its
// InitProducerID satisfies this). The epoch it returns is ignored: a
// transactional id's epochs are the coordinator's.
type ProducerIDs interface {
	InitProducerID() (id int64, epoch int16, err error)
}

// Metadata is one transactional id's state: what is persisted, and what
// Describe and List report.
type Metadata struct {
	ProducerID int64
	Epoch      int16
	// LastProducerID and LastEpoch are what the producer held before the
	// last bump (KIP-360), so a producer that lost the response of an
	// InitProducerId can retry it with them. -1 when unknown.
	LastProducerID int64
	LastEpoch      int16
	Timeout        time.Duration
	State          State
	// Partitions and Groups are the partitions and the consumer groups
	// (AddOffsetsToTxn) of the transaction, sorted.
	Partitions []TopicPartition
	Groups     []string
	// StartTime is when the transaction began (its first partition or
	// group); zero when none is under way.
	StartTime  time.Time
	UpdateTime time.Time
}

// Record is one persisted change: a transactional id's metadata, or a
// tombstone (Meta nil) when the id expired.
type Record struct {
	TxnID string
	Meta  *Metadata
}

// Description is a transactional id with its metadata.
type Description struct {
	TxnID string
	Metadata
}

// MarkerWrite asks the owner to write a commit or abort control batch for
// the producer to each partition.
type MarkerWrite struct {
	TxnID      string
	ProducerID int64
	Epoch      int16
	Commit     bool
	Partitions []TopicPartition
}

// OffsetOutcome asks the owner to make the group's transactional offsets
// from the producer visible (Commit) or drop them.
type OffsetOutcome struct {
	TxnID      string
	Group      string
	ProducerID int64
	Epoch      int16
	Commit     bool
}

// Actions is what the owner must do after an input, in this order:
// persist the records (durably, before answering the request), then write
// the markers and resolve the offsets; once all of a transaction's
// markers and offsets are durable it reports MarkersWritten.
type Actions struct {
	Persist []Record
	Markers []MarkerWrite
	Offsets []OffsetOutcome
}

func (a *Actions) add(b Actions) {
	a.Persist = append(a.Persist, b.Persist...)
	a.Markers = append(a.Markers, b.Markers...)
	a.Offsets = append(a.Offsets, b.Offsets...)
}

// Result answers one request: Err (nil on success) is the error to
// return, ProducerID and Epoch the producer's (InitProducerID only), and
// Actions what the owner must do before and after answering.
type Result struct {
	Err        error
	ProducerID int64
	Epoch      int16
	Actions
}

// InitProducerIDRequest is InitProducerId with a transactional id.
type InitProducerIDRequest struct {
	TxnID   string
	Timeout time.Duration
	// ProducerID and Epoch are -1, or the producer's current ones
	// (KIP-360, v3+): the coordinator then bumps that epoch, or answers a
	// retry with what it answered before.
	ProducerID int64
	Epoch      int16
	// Version is the request version: below 4, fencing answers
	// ErrInvalidProducerEpoch instead of ErrProducerFenced.
	Version int16
}

// AddPartitionsRequest is AddPartitionsToTxn for one transaction.
type AddPartitionsRequest struct {
	TxnID      string
	ProducerID int64
	Epoch      int16
	Partitions []TopicPartition
	// Version: below 2, fencing answers ErrInvalidProducerEpoch.
	Version int16
}

// AddOffsetsRequest is AddOffsetsToTxn.
type AddOffsetsRequest struct {
	TxnID      string
	ProducerID int64
	Epoch      int16
	Group      string
	// Version: below 2, fencing answers ErrInvalidProducerEpoch.
	Version int16
}

// EndTxnRequest is EndTxn.
type EndTxnRequest struct {
	TxnID      string
	ProducerID int64
	Epoch      int16
	Commit     bool
	// Version: below 2, fencing answers ErrInvalidProducerEpoch.
	Version int16
}

// ListFilter selects transactions for List; empty fields match all.
type ListFilter struct {
	States      []State
	ProducerIDs []int64
}

// Store persists the coordinator's records durably. It is declared here
// and implemented by the Kafka adapter on __transaction_state.
type Store interface {
	// Append writes the records in order, as one batch; the returned
	// wait blocks until they are durable.
	Append(recs []Record) (wait func(context.Context) error, err error)
	// Load calls fn for every persisted record, oldest first.
	Load(fn func(Record)) error
}

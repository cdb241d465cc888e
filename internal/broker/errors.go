package broker

import (
	"errors"

	"github.com/weirhq/weir/internal/commitlog"
)

// Sentinel errors. The kafka adapter maps each to its Kafka error code in
// one place (internal/kafka/errors.go).
var (
	ErrUnknownTopicOrPartition = errors.New("broker: unknown topic or partition")
	ErrTopicExists             = errors.New("broker: topic already exists")
	ErrInvalidTopic            = errors.New("broker: invalid topic name")
	ErrInvalidPartitions       = errors.New("broker: invalid partition count")
	ErrInvalidReplication      = errors.New("broker: invalid replication factor")
	ErrInvalidConfig           = errors.New("broker: invalid config")
	ErrRecordTooLarge          = errors.New("broker: record batch too large")
	ErrCorruptMessage          = errors.New("broker: corrupt record batch")
	ErrInvalidRecord           = errors.New("broker: invalid record")
	ErrInvalidTimestamp        = errors.New("broker: record timestamp out of range")
	ErrOutOfOrderSequence      = errors.New("broker: out of order sequence number")
	ErrInvalidProducerEpoch    = errors.New("broker: producer epoch fenced")
	ErrUnknownProducerID       = errors.New("broker: unknown producer id")
	ErrPolicyViolation         = errors.New("broker: policy violation")
	ErrInvalidRequest          = errors.New("broker: invalid request")
	ErrUnsupportedCompression  = errors.New("broker: unsupported compression type")
	ErrClosed                  = errors.New("broker: closed")
	// ErrInvalidTxnState refuses a non-transactional batch from a
	// producer with a transaction open on the partition.
	ErrInvalidTxnState = errors.New("broker: invalid transaction state")
	// ErrTransactionCoordinatorFenced refuses a marker from a
	// coordinator epoch older than one the partition has seen.
	ErrTransactionCoordinatorFenced = errors.New("broker: transaction coordinator fenced")
	// ErrReservedTopic marks a client operation refused because the topic
	// is one of the node's internal topics; it is joined with the
	// sentinel the operation's protocol answers with (ErrInvalidTopic for
	// writes, ErrPolicyViolation for creation and configs).
	ErrReservedTopic = errors.New("broker: reserved topic")

	// The log's own errors, re-exported so adapters classify them
	// without reaching past the broker into the storage layer.
	ErrOffsetOutOfRange   = commitlog.ErrOffsetOutOfRange
	ErrStorage            = commitlog.ErrStorage
	ErrRecordListTooLarge = commitlog.ErrTooLarge
	ErrInvalidBatch       = commitlog.ErrInvalidBatch
	ErrLogCorrupt         = commitlog.ErrCorrupt
	ErrLogClosed          = commitlog.ErrClosed
)

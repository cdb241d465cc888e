package txn

import "errors"

// Sentinel errors; the Kafka adapter maps each to the error code named in
// its comment.
var (
	// ErrInvalidRequest: INVALID_REQUEST (an empty transactional id or
	// group, a producer id without an epoch).
	ErrInvalidRequest = errors.New("txn: invalid request")
	// ErrInvalidTransactionTimeout: INVALID_TRANSACTION_TIMEOUT.
	ErrInvalidTransactionTimeout = errors.New("txn: invalid transaction timeout")
	// ErrConcurrentTransactions: CONCURRENT_TRANSACTIONS, retriable; the
	// previous transaction is still completing.
	ErrConcurrentTransactions = errors.New("txn: concurrent transactions")
	// ErrProducerFenced: PRODUCER_FENCED, for request versions that
	// know it (KIP-588).
	ErrProducerFenced = errors.New("txn: producer fenced")
	// ErrInvalidProducerEpoch: INVALID_PRODUCER_EPOCH, what older request
	// versions get instead of ErrProducerFenced.
	ErrInvalidProducerEpoch = errors.New("txn: invalid producer epoch")
	// ErrInvalidProducerIDMapping: INVALID_PRODUCER_ID_MAPPING (unknown
	// transactional id, or another producer id holds it).
	ErrInvalidProducerIDMapping = errors.New("txn: invalid producer id mapping")
	// ErrInvalidTxnState: INVALID_TXN_STATE.
	ErrInvalidTxnState = errors.New("txn: invalid transaction state")
	// ErrTransactionalIDNotFound: TRANSACTIONAL_ID_NOT_FOUND
	// (DescribeTransactions).
	ErrTransactionalIDNotFound = errors.New("txn: transactional id not found")
	// ErrTooManyPartitions: a transaction would span more than
	// Config.MaxPartitions partitions and groups. Kafka has no such
	// bound; the adapter answers INVALID_REQUEST with this message.
	ErrTooManyPartitions = errors.New("txn: too many partitions in one transaction")
)

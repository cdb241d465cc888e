package kafka

import (
	"context"
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/weirhq/weir/internal/broker"
	"github.com/weirhq/weir/internal/group"
	"github.com/weirhq/weir/internal/txn"
)

// errorCodes maps domain errors to Kafka error codes, first match wins. It is
// the one place that knows the mapping: files adding domain sentinels (say
// broker.ErrUnknownTopicOrPartition) append to it, from an init function or
// here, and handlers call errorCode.
var errorCodes = []struct {
	target error
	code   int16
}{
	// The transaction coordinator's first: its errors may wrap a broker
	// error (the log under __transaction_state) that must not decide.
	{txn.ErrStopped, kerr.CoordinatorNotAvailable.Code},
	{txn.ErrCoordinatorNotAvailable, kerr.CoordinatorNotAvailable.Code},
	{txn.ErrConcurrentTransactions, kerr.ConcurrentTransactions.Code},
	{txn.ErrProducerFenced, kerr.ProducerFenced.Code},
	{txn.ErrInvalidProducerEpoch, kerr.InvalidProducerEpoch.Code},
	{txn.ErrInvalidTxnState, kerr.InvalidTxnState.Code},
	{txn.ErrInvalidProducerIDMapping, kerr.InvalidProducerIDMapping.Code},
	{txn.ErrInvalidTransactionTimeout, kerr.InvalidTransactionTimeout.Code},
	{txn.ErrTransactionalIDNotFound, kerr.TransactionalIDNotFound.Code},
	{txn.ErrTooManyPartitions, kerr.InvalidRequest.Code},
	{txn.ErrInvalidRequest, kerr.InvalidRequest.Code},
	{broker.ErrUnknownTopicOrPartition, kerr.UnknownTopicOrPartition.Code},
	{broker.ErrTopicExists, kerr.TopicAlreadyExists.Code},
	{broker.ErrInvalidTopic, kerr.InvalidTopicException.Code},
	{broker.ErrInvalidPartitions, kerr.InvalidPartitions.Code},
	{broker.ErrInvalidReplication, kerr.InvalidReplicationFactor.Code},
	{broker.ErrInvalidConfig, kerr.InvalidConfig.Code},
	{broker.ErrRecordTooLarge, kerr.MessageTooLarge.Code},
	{broker.ErrRecordListTooLarge, kerr.RecordListTooLarge.Code},
	{broker.ErrCorruptMessage, kerr.CorruptMessage.Code},
	{broker.ErrInvalidBatch, kerr.CorruptMessage.Code},
	{broker.ErrInvalidRecord, kerr.InvalidRecord.Code},
	{broker.ErrInvalidTimestamp, kerr.InvalidTimestamp.Code},
	{broker.ErrOutOfOrderSequence, kerr.OutOfOrderSequenceNumber.Code},
	{broker.ErrInvalidProducerEpoch, kerr.InvalidProducerEpoch.Code},
	{broker.ErrUnknownProducerID, kerr.UnknownProducerID.Code},
	{broker.ErrInvalidTxnState, kerr.InvalidTxnState.Code},
	{broker.ErrTransactionCoordinatorFenced, kerr.TransactionCoordinatorFenced.Code},
	{broker.ErrPolicyViolation, kerr.PolicyViolation.Code},
	{broker.ErrInvalidRequest, kerr.InvalidRequest.Code},
	{broker.ErrUnsupportedCompression, kerr.UnsupportedCompressionType.Code},
	{broker.ErrOffsetOutOfRange, kerr.OffsetOutOfRange.Code},
	{broker.ErrStorage, kerr.KafkaStorageError.Code},
	{broker.ErrLogCorrupt, kerr.KafkaStorageError.Code},
	{broker.ErrClosed, kerr.BrokerNotAvailable.Code},
	{broker.ErrLogClosed, kerr.NotLeaderForPartition.Code},
	{context.DeadlineExceeded, kerr.RequestTimedOut.Code},
	{group.ErrInvalidGroupID, kerr.InvalidGroupID.Code},
	{group.ErrUnknownMemberID, kerr.UnknownMemberID.Code},
	{group.ErrMemberIDRequired, kerr.MemberIDRequired.Code},
	{group.ErrIllegalGeneration, kerr.IllegalGeneration.Code},
	{group.ErrRebalanceInProgress, kerr.RebalanceInProgress.Code},
	{group.ErrInconsistentProtocol, kerr.InconsistentGroupProtocol.Code},
	{group.ErrInvalidSessionTimeout, kerr.InvalidSessionTimeout.Code},
	{group.ErrFencedInstanceID, kerr.FencedInstanceID.Code},
	{group.ErrGroupNotFound, kerr.GroupIDNotFound.Code},
	{group.ErrNonEmptyGroup, kerr.NonEmptyGroup.Code},
	{group.ErrOffsetMetadataTooLarge, kerr.OffsetMetadataTooLarge.Code},
	{group.ErrGroupMaxSizeReached, kerr.GroupMaxSizeReached.Code},
	{group.ErrGroupSubscribedToTopic, kerr.GroupSubscribedToTopic.Code},
	{group.ErrCoordinatorNotAvailable, kerr.CoordinatorNotAvailable.Code},
	{group.ErrStopped, kerr.CoordinatorNotAvailable.Code},
	{errUnknownTopicID, kerr.UnknownTopicID.Code},
	{errInvalidReplicaAssignment, kerr.InvalidReplicaAssignment.Code},
	{errUnsupportedEndpointType, kerr.UnsupportedEndpointType.Code},
}

// errorCode returns the Kafka error code for err: 0 for nil, the code of the
// first errorCodes entry err matches (errors.Is), the code of a *kerr.Error
// found in err's chain, and UNKNOWN_SERVER_ERROR for anything else.
func errorCode(err error) int16 {
	if err == nil {
		return 0
	}
	for _, e := range errorCodes {
		if errors.Is(err, e.target) {
			return e.code
		}
	}
	if ke, ok := errors.AsType[*kerr.Error](err); ok {
		return ke.Code
	}
	return kerr.UnknownServerError.Code
}

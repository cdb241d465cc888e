package group

import "errors"

// Sentinel errors; the Kafka adapter maps each to its error code.
var (
	ErrInvalidGroupID          = errors.New("group: invalid group id")
	ErrUnknownMemberID         = errors.New("group: unknown member id")
	ErrMemberIDRequired        = errors.New("group: member id required")
	ErrIllegalGeneration       = errors.New("group: illegal generation")
	ErrRebalanceInProgress     = errors.New("group: rebalance in progress")
	ErrInconsistentProtocol    = errors.New("group: inconsistent group protocol")
	ErrInvalidSessionTimeout   = errors.New("group: invalid session timeout")
	ErrFencedInstanceID        = errors.New("group: fenced instance id")
	ErrGroupNotFound           = errors.New("group: group id not found")
	ErrNonEmptyGroup           = errors.New("group: group is not empty")
	ErrOffsetMetadataTooLarge  = errors.New("group: offset metadata too large")
	ErrGroupMaxSizeReached     = errors.New("group: group max size reached")
	ErrGroupSubscribedToTopic  = errors.New("group: group is subscribed to the topic")
	ErrCoordinatorNotAvailable = errors.New("group: coordinator not available")
)

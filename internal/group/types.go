package group

import (
	"bytes"
	"time"
)

// Config holds the coordinator settings (Kafka's group.* and offsets.*).
type Config struct {
	// MinSessionTimeout and MaxSessionTimeout bound a member's session
	// timeout (group.min/max.session.timeout.ms). Defaults 6s and 30m.
	MinSessionTimeout time.Duration
	MaxSessionTimeout time.Duration
	// InitialRebalanceDelay holds the first rebalance of an empty group
	// so that members starting together join one generation
	// (group.initial.rebalance.delay.ms). Zero means no delay, as in
	// Kafka and Weir's config (whose default, 3s, is set there); negative
	// is read as zero.
	InitialRebalanceDelay time.Duration
	// MaxGroupSize caps members per group (group.max.size); 0 = no cap.
	MaxGroupSize int
	// OffsetsRetention is how long offsets of an empty group are kept
	// (offsets.retention.minutes). Default 7 days.
	OffsetsRetention time.Duration
	// MaxMetadataBytes bounds an offset's metadata string
	// (offset.metadata.max.bytes). Default 4096.
	MaxMetadataBytes int
}

func (c *Config) fill() {
	if c.MinSessionTimeout <= 0 {
		c.MinSessionTimeout = 6 * time.Second
	}
	if c.MaxSessionTimeout <= 0 {
		c.MaxSessionTimeout = 30 * time.Minute
	}
	c.InitialRebalanceDelay = max(c.InitialRebalanceDelay, 0)
	if c.OffsetsRetention <= 0 {
		c.OffsetsRetention = 7 * 24 * time.Hour
	}
	if c.MaxMetadataBytes <= 0 {
		c.MaxMetadataBytes = 4096
	}
}

// State is a group's state, named as Kafka names it.
type State int

// Group states.
const (
	Empty State = iota
	PreparingRebalance
	CompletingRebalance
	Stable
	Dead
)

// String returns Kafka's name for the state.
func (s State) String() string {
	switch s {
	case Empty:
		return "Empty"
	case PreparingRebalance:
		return "PreparingRebalance"
	case CompletingRebalance:
		return "CompletingRebalance"
	case Stable:
		return "Stable"
	}
	return "Dead"
}

// Protocol is one assignment protocol a member supports, with its opaque
// metadata (for consumers: the subscription).
type Protocol struct {
	Name     string
	Metadata []byte
}

func sameProtocols(a, b []Protocol) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Name != b[i].Name || !bytes.Equal(a[i].Metadata, b[i].Metadata) {
			return false
		}
	}
	return true
}

// JoinRequest is a JoinGroup call.
type JoinRequest struct {
	Group            string
	MemberID         string
	InstanceID       *string
	ClientID         string
	ClientHost       string
	ProtocolType     string
	Protocols        []Protocol
	SessionTimeout   time.Duration
	RebalanceTimeout time.Duration
	// RequireKnownMemberID is set from JoinGroup v4 on (KIP-394): a new
	// dynamic member first gets ErrMemberIDRequired with its id.
	RequireKnownMemberID bool
}

// JoinMember is one member as the leader's JoinGroup response lists it.
type JoinMember struct {
	MemberID   string
	InstanceID *string
	Metadata   []byte
}

// JoinResponse answers a JoinRequest.
type JoinResponse struct {
	Err          error
	Generation   int32
	ProtocolType string
	Protocol     string
	Leader       string
	MemberID     string
	// Members is filled for the leader only.
	Members []JoinMember
}

// SyncRequest is a SyncGroup call; Assignments is the leader's.
type SyncRequest struct {
	Group        string
	Generation   int32
	MemberID     string
	InstanceID   *string
	ProtocolType *string
	Protocol     *string
	Assignments  map[string][]byte
}

// SyncResponse answers a SyncRequest.
type SyncResponse struct {
	Err          error
	ProtocolType string
	Protocol     string
	Assignment   []byte
}

// HeartbeatRequest is a Heartbeat call.
type HeartbeatRequest struct {
	Group      string
	Generation int32
	MemberID   string
	InstanceID *string
}

// LeaveMember names one member leaving (by id, or by instance id).
type LeaveMember struct {
	MemberID   string
	InstanceID *string
}

// TopicPartition names a partition.
type TopicPartition struct {
	Topic     string
	Partition int32
}

// Offset is a committed offset.
type Offset struct {
	Offset      int64
	LeaderEpoch int32
	Metadata    string
	CommitTime  time.Time
}

// OffsetCommit is one partition of a commit.
type OffsetCommit struct {
	TopicPartition
	Offset
}

// CommitRequest is an OffsetCommit call. Generation -1 with an empty
// member id is a "simple" commit from a client not using group management.
type CommitRequest struct {
	Group      string
	Generation int32
	MemberID   string
	InstanceID *string
	Offsets    []OffsetCommit
}

// MemberDescription is one member as DescribeGroups reports it.
type MemberDescription struct {
	MemberID   string
	InstanceID *string
	ClientID   string
	ClientHost string
	Metadata   []byte // for the chosen protocol
	Assignment []byte
}

// Description is a group as DescribeGroups reports it.
type Description struct {
	Group        string
	State        State
	ProtocolType string
	Protocol     string
	Generation   int32
	Members      []MemberDescription
}

// Listing is a group as ListGroups reports it.
type Listing struct {
	Group        string
	ProtocolType string
	State        State
}

// Record is one change the coordinator persists: an offset (Topic set)
// or a group's metadata. A nil Offset or Meta is a tombstone.
//
// Transactions add two kinds, as Kafka stores them in __consumer_offsets:
// an offset with Txn set is staged in that producer's transaction (the
// Store writes it in a transactional batch of the producer), and a
// record with TxnEnd set (no Group) ends the producer's transaction in
// every group, committing or dropping what it staged (the Store writes a
// commit or abort control batch).
type Record struct {
	Group    string
	IsOffset bool
	TopicPartition
	Offset *Offset
	Meta   *Snapshot
	Txn    *TxnProducer
	TxnEnd *TxnEnd
}

// TxnProducer names the transactional producer a staged offset belongs to.
type TxnProducer struct {
	ProducerID int64
	Epoch      int16
}

// TxnEnd is a transaction's outcome for the offsets its producer staged.
type TxnEnd struct {
	TxnProducer
	Commit bool
}

// Snapshot is a group's persisted metadata.
type Snapshot struct {
	ProtocolType string
	Protocol     string
	Leader       string
	Generation   int32
	StateTime    time.Time
	Members      []MemberSnapshot
}

// MemberSnapshot is a member's persisted metadata.
type MemberSnapshot struct {
	MemberID         string
	InstanceID       *string
	ClientID         string
	ClientHost       string
	RebalanceTimeout time.Duration
	SessionTimeout   time.Duration
	Subscription     []byte
	Assignment       []byte
}

// TxnCommitRequest is a TxnOffsetCommit call: offsets staged in the
// producer's transaction. Generation -1 with an empty member id (v0-2)
// skips the member checks.
type TxnCommitRequest struct {
	Group      string
	ProducerID int64
	Epoch      int16
	Generation int32
	MemberID   string
	InstanceID *string
	Offsets    []OffsetCommit
}

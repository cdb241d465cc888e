package broker

import (
	"errors"
	"fmt"
	"strings"
	"sync/atomic"

	"github.com/weirhq/weir/internal/batch"
)

// The write gate. Every append to a partition — Kafka Produce, CloudEvents
// ingest, the schema registry, group commits, subscriptions and every
// later path — enters through Produce (clients) or an InternalLog (the
// node's own state), both of which end in gate. It enforces, in this
// order:
//
//	1. the broker is open
//	2. reserved topics: only the InternalLog that owns one may write it
//	3. the topic exists (Produce never creates; TopicForWrite applies the
//	   auto-create and topic policies first for paths that create)
//	4. the partition exists
//	5. record checks: framing, max.message.bytes, no control batches,
//	   compressed records decoded once, compression.type re-encoding;
//	   transaction markers (WriteMarker, the coordinator's path) are the
//	   only control batches, built here, and skip to step 7
//	   (txn_log.go)
//	6. the installed RecordValidator, for topics with
//	   weir.{key,value}.schema.validation (or confluent.*) on
//	7. idempotent-producer sequence checks (markers: producer and
//	   coordinator epochs), then the log append, then the partition's
//	   transaction state (open transactions, aborted index)
//	8. per-topic records and bytes in, counted once, whatever the path
//	   (markers are not client records and are not counted)
//
// Partition has no exported append: a write path that skips the gate
// cannot be written outside this package.

// Write is one client append: record batches for one partition.
type Write struct {
	Topic     string
	Partition int32
	// Records holds one or more v2 record batches. They are modified in
	// place (the partition leader epoch) and not retained.
	Records []byte
}

// Produced is the result of a successful append through the gate.
type Produced struct {
	Partition *Partition
	Appended
}

// TopicPolicy vets a topic a client is about to create (explicitly or by
// auto-creation); an error wrapping ErrPolicyViolation refuses it.
type TopicPolicy func(name string, configs map[string]string) error

// RecordValidator checks one record key or value of a topic with schema
// validation on: the Confluent wire format, a schema id registered under
// subject and, with full, the payload itself. The schema registry
// installs one with SetRecordValidator.
type RecordValidator interface {
	CheckRecord(subject string, data []byte, full bool) error
}

// gateHooks are the policies installed after Open (the registry that
// provides them is itself built on the broker's internal logs).
type gateHooks struct {
	policy    atomic.Pointer[TopicPolicy]
	validator atomic.Pointer[RecordValidator]
}

// SetTopicPolicy installs the policy every client topic creation passes;
// nil removes it.
func (b *Broker) SetTopicPolicy(p TopicPolicy) {
	if p == nil {
		b.hooks.policy.Store(nil)
		return
	}
	b.hooks.policy.Store(&p)
}

// SetRecordValidator installs the validator of schema-validated topics;
// nil removes it (records of such topics are then refused, since they
// cannot be checked).
func (b *Broker) SetRecordValidator(v RecordValidator) {
	if v == nil {
		b.hooks.validator.Store(nil)
		return
	}
	b.hooks.validator.Store(&v)
}

// Produce appends a client's record batches to one partition through the
// gate. The append is not yet durable: acks=all callers then call
// WaitDurable(ctx, LastOffset+1) on the partition.
func (b *Broker) Produce(w Write) (Produced, error) {
	return b.gate(w, origin{})
}

// CheckWrite runs every check of the gate on a client write without
// appending it: a path that writes one request to several partitions (the
// CloudEvents batch mode) checks them all first, so a refusal leaves none
// written. The records may be modified as Produce modifies them; a
// successful check does not reserve anything (Produce checks again).
func (b *Broker) CheckWrite(w Write) error {
	_, err := b.gate(w, origin{dry: true})
	return err
}

// errChecked ends a dry run of the gate after its checks, before the
// append.
var errChecked = errors.New("broker: checked")

// origin says who writes through the gate: a client (the zero value), the
// InternalLog owning a reserved topic, or the broker's transaction-marker
// path (WriteMarker). Only this package can set log or marker, so clients
// cannot send control batches or write reserved topics.
type origin struct {
	log *InternalLog
	// marker is the transaction marker to append; w.Records is unused.
	// Markers may go to any partition, reserved ones included: Kafka
	// writes them to __consumer_offsets for transactional offset commits.
	marker *Marker
	// dry stops a client write after the checks (CheckWrite).
	dry bool
}

// gate is the one append path.
func (b *Broker) gate(w Write, from origin) (Produced, error) {
	owner, dry := from.log, from.dry
	b.mu.RLock()
	closed := b.closed
	t := b.topics[w.Topic]
	b.mu.RUnlock()
	if closed {
		return Produced{}, ErrClosed
	}
	if owner == nil && from.marker == nil && IsReservedTopic(w.Topic) {
		return Produced{}, fmt.Errorf("%w: %w: %s is written only by the node itself", ErrReservedTopic, ErrInvalidTopic, w.Topic)
	}
	if t == nil {
		if err := ValidateTopicName(w.Topic); err != nil {
			return Produced{}, err
		}
		return Produced{}, fmt.Errorf("%w: %q", ErrUnknownTopicOrPartition, w.Topic)
	}
	if owner != nil && owner.t != t {
		return Produced{}, fmt.Errorf("%w: %w: the internal log of %s may not write %s", ErrReservedTopic, ErrInvalidTopic, owner.t.Name, w.Topic)
	}
	parts := t.Partitions()
	if w.Partition < 0 || int(w.Partition) >= len(parts) {
		return Produced{}, fmt.Errorf("%w: %s-%d", ErrUnknownTopicOrPartition, w.Topic, w.Partition)
	}
	p := parts[w.Partition]
	if from.marker != nil {
		a, err := p.appendMarker(from.marker)
		if err != nil {
			return Produced{}, err
		}
		return Produced{Partition: p, Appended: a}, nil
	}
	var check func([]byte) error
	if owner == nil {
		key, value := t.SchemaValidation()
		compacted := strings.Contains(b.effective(t.Configs(), "cleanup.policy"), "compact")
		if key != SchemaValidationOff || value != SchemaValidationOff || compacted {
			check = func(records []byte) error { return b.validateRecords(t, w.Partition, key, value, compacted, records) }
		}
	}
	if dry {
		validate := check
		check = func(records []byte) error {
			if validate != nil {
				if err := validate(records); err != nil {
					return err
				}
			}
			return errChecked
		}
	}
	a, err := p.appendBatches(w.Records, check, owner != nil)
	if dry && errors.Is(err, errChecked) {
		return Produced{}, nil
	}
	if err != nil {
		return Produced{}, err
	}
	if !a.Duplicate {
		t.metrics.in(a.bytes, a.LastOffset-a.BaseOffset+1)
	}
	return Produced{Partition: p, Appended: a}, nil
}

// TopicForWrite returns the topic a client write path is about to write,
// creating it when the node auto-creates topics: the name must be legal,
// not reserved, and pass the installed TopicPolicy. Kafka Produce does not
// create topics (Kafka clients create them through Metadata); the
// CloudEvents gateway does, on the first event.
func (b *Broker) TopicForWrite(name string) (*Topic, error) {
	if IsReservedTopic(name) {
		return nil, fmt.Errorf("%w: %w: %s is written only by the node itself", ErrReservedTopic, ErrInvalidTopic, name)
	}
	return b.EnsureTopic(name)
}

// checkCreate applies the rules every client-created topic passes:
// Kafka's naming rules, the reserved names and the installed policy.
func (b *Broker) checkCreate(name string, configs map[string]string) error {
	if err := ValidateTopicName(name); err != nil {
		return err
	}
	if IsReservedTopic(name) {
		return fmt.Errorf("%w: %w: topic %q is reserved for the node's own use", ErrReservedTopic, ErrPolicyViolation, name)
	}
	if p := b.hooks.policy.Load(); p != nil {
		if err := (*p)(name, configs); err != nil {
			return err
		}
	}
	return nil
}

// Limits of schema validation on produce.
const (
	// maxRecordErrors bounds the per-record errors one answer lists.
	maxRecordErrors = 100
)

// RecordError is one record a write refused: its index among the records
// of the partition's write, and why.
type RecordError struct {
	Index   int32
	Message string
}

// RecordErrors refuses some records of one partition's write; it matches
// ErrInvalidRecord. Adapters report Records individually where their
// protocol can (Kafka Produce v8+ RecordErrors, HTTP bodies).
type RecordErrors struct {
	Topic     string
	Partition int32
	Records   []RecordError // at most maxRecordErrors
	Total     int
}

func (e *RecordErrors) Error() string {
	first := e.Records[0]
	msg := fmt.Sprintf("%v: %s-%d record %d: %s", ErrInvalidRecord, e.Topic, e.Partition, first.Index, first.Message)
	if e.Total > 1 {
		msg += fmt.Sprintf(" (and %d more records)", e.Total-1)
	}
	return msg
}

// Unwrap makes RecordErrors match ErrInvalidRecord.
func (e *RecordErrors) Unwrap() error { return ErrInvalidRecord }

func (e *RecordErrors) add(index int32, msg string) {
	e.Total++
	if len(e.Records) < maxRecordErrors {
		e.Records = append(e.Records, RecordError{Index: index, Message: msg})
	}
}

// validateRecords applies a topic's key and value schema validation to the
// records of one write (TopicNameStrategy: subjects "<topic>-key" and
// "<topic>-value"). Null keys and values (tombstones) carry no schema and
// pass. The batches have passed the record checks.
func (b *Broker) validateRecords(t *Topic, partition int32, keyMode, valueMode string, compacted bool, records []byte) error {
	var v RecordValidator
	if keyMode != SchemaValidationOff || valueMode != SchemaValidationOff {
		vp := b.hooks.validator.Load()
		if vp == nil {
			return fmt.Errorf("%w: topic %s validates records against the schema registry, which is not running on this node", ErrInvalidRecord, t.Name)
		}
		v = *vp
	}
	rejected := &RecordErrors{Topic: t.Name, Partition: partition}
	var index int32
	for rest := records; len(rest) > 0; {
		one, r, err := batch.Split(rest)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrCorruptMessage, err)
		}
		rest = r
		_, recs, err := batch.Records(one, maxDecompressedBatch)
		if err != nil {
			return recordsError(err)
		}
		for _, rec := range recs {
			if compacted && rec.Key == nil {
				// As Kafka: compaction keeps records by key.
				rejected.add(index, "compacted topic cannot accept a record without a key")
			}
			if keyMode != SchemaValidationOff && rec.Key != nil {
				if err := v.CheckRecord(t.Name+"-key", rec.Key, keyMode == SchemaValidationFull); err != nil {
					rejected.add(index, "key "+err.Error())
				}
			}
			if valueMode != SchemaValidationOff && rec.Value != nil {
				if err := v.CheckRecord(t.Name+"-value", rec.Value, valueMode == SchemaValidationFull); err != nil {
					rejected.add(index, "value "+err.Error())
				}
			}
			index++
		}
	}
	if rejected.Total > 0 {
		return rejected
	}
	return nil
}

// Names of the node's internal topics. Clients may not create, write,
// delete, repartition or reconfigure them; each is owned by one
// InternalLog.
const (
	// OffsetsTopic holds consumer-group metadata and committed offsets in
	// Kafka's record format.
	OffsetsTopic = "__consumer_offsets"
	// TransactionStateTopic is reserved for the transaction coordinator.
	TransactionStateTopic = "__transaction_state"
	// SchemasTopic holds the schema registry's records in Confluent's
	// format.
	SchemasTopic = "_schemas"
	// SubscriptionsTopic holds the CloudEvents gateway's push
	// subscriptions.
	SubscriptionsTopic = "__weir_subscriptions"
	// reservedPrefix reserves every name Weir may use for its own state.
	reservedPrefix = "__weir_"
)

// IsReservedTopic reports whether name belongs to the node itself.
func IsReservedTopic(name string) bool {
	switch name {
	case OffsetsTopic, TransactionStateTopic, SchemasTopic:
		return true
	}
	return strings.HasPrefix(name, reservedPrefix)
}

// errReserved is the error for an administrative change to a reserved
// topic; base is the sentinel the operation's protocol answers with.
func errReserved(base error, name, what string) error {
	return fmt.Errorf("%w: %w: %s is an internal topic; clients may not %s it", ErrReservedTopic, base, name, what)
}

// IsInternal reports whether the topic is one of the node's internal
// topics (Metadata's is_internal).
func (t *Topic) IsInternal() bool { return IsReservedTopic(t.Name) }

package kafka

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weirhq/weir/internal/batch"
	"github.com/weirhq/weir/internal/broker"
)

// SchemaChecker checks one record key or value against the schema
// registry: the Confluent wire format, a schema id registered under
// subject and, with full, the payload itself. *schema.Registry satisfies
// it; kafka declares it because it must not import the registry.
type SchemaChecker interface {
	CheckRecord(subject string, data []byte, full bool) error
}

// TopicPolicy vets a topic a client asks to create (CreateTopics, or
// auto-creation through Metadata) before the broker creates it; an error
// wrapping broker.ErrPolicyViolation answers POLICY_VIOLATION.
type TopicPolicy func(name string, configs map[string]string) error

// Limits of schema validation on produce.
const (
	// maxRecordErrors bounds the per-record errors one answer lists.
	maxRecordErrors = 100
	// maxValidatedBytes bounds a batch's decompressed records.
	maxValidatedBytes = 64 << 20
)

// recordError is one record that failed validation: its index among the
// partition's records in the request, and why.
type recordError struct {
	index int32
	msg   string
}

// recordErrors rejects a partition's records; it matches
// broker.ErrInvalidRecord, so the partition answers INVALID_RECORD.
type recordErrors struct {
	topic     string
	partition int32
	errs      []recordError
	total     int
}

func (e *recordErrors) Error() string {
	first := e.errs[0]
	msg := fmt.Sprintf("%v: %s-%d record %d: %s", broker.ErrInvalidRecord, e.topic, e.partition, first.index, first.msg)
	if e.total > 1 {
		msg += fmt.Sprintf(" (and %d more records)", e.total-1)
	}
	return msg
}

func (e *recordErrors) Unwrap() error { return broker.ErrInvalidRecord }

func (e *recordErrors) add(index int32, msg string) {
	e.total++
	if len(e.errs) < maxRecordErrors {
		e.errs = append(e.errs, recordError{index: index, msg: msg})
	}
}

// errorRecords returns the produce response's per-record errors (v8+) for
// err, nil unless err rejected individual records.
func errorRecords(err error) []kmsg.ProduceResponseTopicPartitionErrorRecord {
	re, ok := err.(*recordErrors)
	if !ok {
		return nil
	}
	out := make([]kmsg.ProduceResponseTopicPartitionErrorRecord, 0, len(re.errs))
	for _, r := range re.errs {
		er := kmsg.NewProduceResponseTopicPartitionErrorRecord()
		er.RelativeOffset = r.index
		msg := r.msg
		er.ErrorMessage = &msg
		out = append(out, er)
	}
	return out
}

// checkSchemas applies the topic's weir.{key,value}.schema.validation to
// the records of one produce partition (TopicNameStrategy: subjects
// "<topic>-key" and "<topic>-value"). Null keys and values (tombstones)
// carry no schema and pass. Batches that do not verify are left for the
// append to reject with its own error.
func (s *Server) checkSchemas(topic string, partition int32, records []byte) error {
	if s.opts.Schemas == nil {
		return nil
	}
	t, err := s.opts.Broker.Topic(topic)
	if err != nil {
		return nil
	}
	keyMode, valueMode := t.SchemaValidation()
	if keyMode == broker.SchemaValidationOff && valueMode == broker.SchemaValidationOff {
		return nil
	}
	rejected := &recordErrors{topic: topic, partition: partition}
	var index int32
	for rest := records; len(rest) > 0; {
		one, r, err := batch.Split(rest)
		if err != nil {
			return nil
		}
		rest = r
		if h, err := batch.Verify(one); err != nil || h.Control() {
			return nil
		}
		_, recs, err := batch.Records(one, maxValidatedBytes)
		if err != nil {
			return fmt.Errorf("%w: records can not be decoded for schema validation: %w", broker.ErrInvalidRecord, err)
		}
		for _, rec := range recs {
			if keyMode != broker.SchemaValidationOff && rec.Key != nil {
				if err := s.opts.Schemas.CheckRecord(topic+"-key", rec.Key, keyMode == broker.SchemaValidationFull); err != nil {
					rejected.add(index, "key "+s.opts.Broker.ClientMessage(err))
				}
			}
			if valueMode != broker.SchemaValidationOff && rec.Value != nil {
				if err := s.opts.Schemas.CheckRecord(topic+"-value", rec.Value, valueMode == broker.SchemaValidationFull); err != nil {
					rejected.add(index, "value "+s.opts.Broker.ClientMessage(err))
				}
			}
			index++
		}
	}
	if rejected.total > 0 {
		return rejected
	}
	return nil
}

// checkTopicPolicy vets a topic a client is about to create: the node's
// internal topics are reserved, and Options.TopicPolicy applies.
func (s *Server) checkTopicPolicy(name string, configs map[string]string) error {
	if s.isInternalTopic(name) {
		return fmt.Errorf("%w: topic %q is reserved for the node's own use", broker.ErrPolicyViolation, name)
	}
	if s.opts.TopicPolicy == nil {
		return nil
	}
	return s.opts.TopicPolicy(name, configs)
}

// ensureTopic is Broker.EnsureTopic with the topic policy applied to a
// topic auto-creation would create.
func (s *Server) ensureTopic(name string) (*broker.Topic, error) {
	b := s.opts.Broker
	if b.AutoCreate() {
		if _, err := b.Topic(name); err != nil {
			if err := s.checkTopicPolicy(name, nil); err != nil {
				return nil, err
			}
		}
	}
	return b.EnsureTopic(name)
}

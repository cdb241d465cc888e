package serde

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/sr"
)

// Errors a registry serde returns, wrapped with detail; classify them with
// errors.Is.
var (
	// ErrBadFrame: the bytes do not start with the Confluent frame (magic
	// byte 0, a 4-byte schema id and, for Protobuf, valid message indexes).
	ErrBadFrame = errors.New("serde: not a schema registry frame")
	// ErrUnknownSchema: the registry has no schema with the frame's id.
	ErrUnknownSchema = errors.New("serde: unknown schema id")
	// ErrSchemaMismatch: the writer schema cannot be read as the serde's
	// type (another format, an incompatible Avro schema, another Protobuf
	// message).
	ErrSchemaMismatch = errors.New("serde: schema mismatch")
	// ErrInvalid: a payload does not match its schema (undecodable bytes,
	// or a value that fails JSON Schema validation).
	ErrInvalid = errors.New("serde: payload does not match the schema")
)

// TopicValue is the subject of a topic's values under Confluent's default
// TopicNameStrategy: "<topic>-value".
func TopicValue(topic string) string { return topic + "-value" }

// TopicKey is the subject of a topic's keys under TopicNameStrategy:
// "<topic>-key".
func TopicKey(topic string) string { return topic + "-key" }

// TopicRecord is the subject under TopicRecordNameStrategy:
// "<topic>-<fully qualified record name>".
func TopicRecord(topic, recordName string) string { return topic + "-" + recordName }

// RecordName is the subject under RecordNameStrategy: the fully qualified
// record name itself, shared by every topic carrying that record.
func RecordName(recordName string) string { return recordName }

// Option configures a registry serde.
type Option func(*options)

type options struct {
	lookup     bool
	timeout    time.Duration
	validateIn bool
}

func buildOptions(opts []Option) options {
	o := options{timeout: 10 * time.Second}
	for _, f := range opts {
		f(&o)
	}
	return o
}

// LookupOnly makes the serde look its schema up under the subject instead
// of registering it: for registries where applications may not register
// (Confluent's auto.register.schemas=false, use.latest.version=false).
// Construction fails if the subject does not hold the schema.
func LookupOnly() Option { return func(o *options) { o.lookup = true } }

// Timeout bounds each registry request (default 10 s). Requests happen at
// construction and the first time a frame names a schema id not seen
// before; after that decoding and encoding never touch the network.
func Timeout(d time.Duration) Option { return func(o *options) { o.timeout = d } }

// ValidateOnDecode makes a JSON Schema serde validate every decoded
// payload against its writer schema (it always validates on encode). Other
// formats ignore it: their decoding is validation.
func ValidateOnDecode() Option { return func(o *options) { o.validateIn = true } }

// format is what one schema type adds to the framing core.
type format[T any] struct {
	typ sr.SchemaType
	// encode marshals a value to its payload (after the frame header).
	encode func(T) ([]byte, error)
	// own decodes payloads written with the serde's own schema.
	own func([]byte) (T, error)
	// writer compiles a writer schema fetched by id into a decoder of
	// payloads written with it (for Protobuf, of the message at index);
	// the error wraps ErrSchemaMismatch when T cannot be read from it.
	writer func(s sr.Schema, index []int) (func([]byte) (T, error), error)
	// index is the own schema's message index of T (Protobuf only).
	index []int
	// indexed: frames carry message indexes (Protobuf).
	indexed bool
}

// maxIndexDepth bounds the Protobuf message-index path a frame may claim
// (nesting depth of messages), so hostile bytes cannot make it allocate.
const maxIndexDepth = 32

// framed is a stream.Serde over franz-go's sr.Serde: one sr.Serde encodes
// with the serde's own schema id; another decodes, learning writer schema
// ids on first sight.
type framed[T any] struct {
	client  *sr.Client
	subject string
	id      int
	f       format[T]
	opts    options
	enc     sr.Serde
	dec     sr.Serde

	mu      sync.Mutex        // serialises learning new ids
	schemas map[int]sr.Schema // writer schemas fetched by id
	header  sr.ConfluentHeader
}

func newFramed[T any](client *sr.Client, subject, schema string, f format[T], o options) (*framed[T], error) {
	if client == nil {
		return nil, errors.New("serde: nil registry client")
	}
	s := &framed[T]{client: client, subject: subject, f: f, opts: o, schemas: map[int]sr.Schema{}}
	want := sr.Schema{Schema: schema, Type: f.typ}
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	var (
		ss  sr.SubjectSchema
		err error
	)
	if o.lookup {
		ss, err = client.LookupSchema(ctx, subject, want)
	} else {
		ss, err = client.CreateSchema(ctx, subject, want)
	}
	if err != nil {
		verb := "register"
		if o.lookup {
			verb = "look up"
		}
		return nil, fmt.Errorf("serde: %s schema under %q: %w", verb, subject, err)
	}
	s.id = ss.ID
	encOpts := []sr.EncodingOpt{sr.EncodeFn(func(v any) ([]byte, error) { return f.encode(v.(T)) })}
	decOpts := []sr.EncodingOpt{sr.DecodeFn(decodeInto(f.own))}
	if f.indexed {
		encOpts = append(encOpts, sr.Index(f.index...))
		decOpts = append(decOpts, sr.Index(f.index...))
	}
	var zero T
	s.enc.Register(s.id, zero, encOpts...)
	s.dec.Register(s.id, zero, decOpts...)
	return s, nil
}

// decodeInto adapts a payload decoder to sr.DecodeFn, which decodes into a
// *T.
func decodeInto[T any](fn func([]byte) (T, error)) func([]byte, any) error {
	return func(b []byte, into any) error {
		v, err := fn(b)
		if err != nil {
			return err
		}
		*into.(*T) = v
		return nil
	}
}

// Encode frames v's payload with the serde's schema id.
func (s *framed[T]) Encode(v T) ([]byte, error) {
	return s.enc.Encode(v)
}

// Decode reads a frame written with any schema the registry knows under
// any subject, as long as T can be read from it. A nil value (a
// tombstone) decodes as T's zero value.
func (s *framed[T]) Decode(b []byte) (T, error) {
	var v T
	if b == nil {
		return v, nil
	}
	err := s.dec.Decode(b, &v)
	if errors.Is(err, sr.ErrNotRegistered) {
		if lerr := s.learn(b); lerr != nil {
			return v, lerr
		}
		err = s.dec.Decode(b, &v)
	}
	if err != nil {
		return v, s.classify(err)
	}
	return v, nil
}

// classify maps sr's framing errors onto the package's.
func (s *framed[T]) classify(err error) error {
	switch {
	case errors.Is(err, sr.ErrBadHeader):
		return fmt.Errorf("%w: %w", ErrBadFrame, err)
	case errors.Is(err, sr.ErrNotRegistered):
		// learn succeeded, yet the index path still misses: the frame
		// names more indexes than any registered path.
		return fmt.Errorf("%w: message index not in the schema", ErrBadFrame)
	case errors.Is(err, ErrInvalid), errors.Is(err, ErrSchemaMismatch), errors.Is(err, ErrUnknownSchema),
		errors.Is(err, ErrBadFrame):
		return err
	}
	// sr's own reading of message indexes (a truncated varint).
	return fmt.Errorf("%w: %w", ErrBadFrame, err)
}

// learn fetches the writer schema of a frame's id, compiles a decoder for
// it (and, for Protobuf, for the frame's message index) and registers it.
func (s *framed[T]) learn(b []byte) error {
	id, rest, err := s.header.DecodeID(b)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBadFrame, err)
	}
	var index []int
	if s.f.indexed {
		index, _, err = decodeIndex(rest)
		if err != nil {
			return err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ws, ok := s.schemas[id]
	if !ok {
		ctx, cancel := context.WithTimeout(context.Background(), s.opts.timeout)
		defer cancel()
		ws, err = s.client.SchemaByID(ctx, id)
		if err != nil {
			if re, ok := errors.AsType[*sr.ResponseError](err); ok && re.StatusCode == http.StatusNotFound {
				return fmt.Errorf("%w %d: %w", ErrUnknownSchema, id, err)
			}
			return fmt.Errorf("serde: fetch schema %d: %w", id, err)
		}
		s.schemas[id] = ws
	}
	if ws.Type != s.f.typ { // sr reads an omitted schemaType as Avro
		return fmt.Errorf("%w: schema %d is %s, this serde reads %s", ErrSchemaMismatch, id, ws.Type, s.f.typ)
	}
	fn, err := s.f.writer(ws, index)
	if err != nil {
		return fmt.Errorf("schema %d: %w", id, err)
	}
	var zero T
	opts := []sr.EncodingOpt{sr.DecodeFn(decodeInto(fn))}
	if s.f.indexed {
		opts = append(opts, sr.Index(index...))
	}
	s.dec.Register(id, zero, opts...)
	return nil
}

// decodeIndex reads the Protobuf message indexes after the schema id:
// zig-zag varints, a count then that many indexes, with a lone 0 meaning
// [0]. It bounds the count and rejects negative indexes.
func decodeIndex(b []byte) ([]int, []byte, error) {
	n, w := binary.Varint(b)
	if w <= 0 {
		return nil, nil, fmt.Errorf("%w: truncated message index count", ErrBadFrame)
	}
	b = b[w:]
	if n == 0 {
		return []int{0}, b, nil
	}
	if n < 0 || n > maxIndexDepth {
		return nil, nil, fmt.Errorf("%w: message index count %d", ErrBadFrame, n)
	}
	index := make([]int, n)
	for i := range index {
		x, w := binary.Varint(b)
		if w <= 0 || x < 0 || x > 1<<30 {
			return nil, nil, fmt.Errorf("%w: bad message index", ErrBadFrame)
		}
		index[i], b = int(x), b[w:]
	}
	return index, b, nil
}

package serde

import (
	"context"
	"fmt"

	"github.com/bufbuild/protocompile"
	"github.com/twmb/franz-go/pkg/sr"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/weirhq/weir/stream"
)

// Protobuf returns a serde of a generated Protobuf message type T (a
// pointer such as *orderpb.Order) framed for the schema registry. schema
// is the .proto source of the file defining T's message; it is registered
// under subject (or looked up, with LookupOnly) and compiled locally to
// find T's message indexes, which every frame carries after the schema id
// as Confluent's wire format requires. Imports of protoc's standard files
// (google/protobuf/*.proto) resolve; other imports (schema references) do
// not yet.
//
// Decoding reads frames of any Protobuf schema id whose indexed message
// has T's full name; Protobuf's own rules make versions compatible
// (unknown fields are kept, missing ones are zero). A frame naming another
// message is ErrSchemaMismatch.
func Protobuf[T proto.Message](client *sr.Client, subject, schema string, opts ...Option) (stream.Serde[T], error) {
	var zero T
	want := zero.ProtoReflect().Descriptor().FullName()
	fd, err := compileProto(schema)
	if err != nil {
		return nil, fmt.Errorf("serde: protobuf schema: %w", err)
	}
	index, ok := messageIndex(fd.Messages(), want)
	if !ok {
		return nil, fmt.Errorf("serde: protobuf schema defines no message %s", want)
	}
	mt := zero.ProtoReflect().Type()
	decode := func(b []byte) (T, error) {
		m := mt.New().Interface()
		if err := proto.Unmarshal(b, m); err != nil {
			return zero, fmt.Errorf("%w: protobuf: %w", ErrInvalid, err)
		}
		return m.(T), nil
	}
	f := format[T]{
		typ:     sr.TypeProtobuf,
		indexed: true,
		index:   index,
		encode: func(v T) ([]byte, error) {
			b, err := proto.MarshalOptions{Deterministic: true}.Marshal(v)
			if err != nil {
				return nil, fmt.Errorf("serde: protobuf encode: %w", err)
			}
			return b, nil
		},
		own: decode,
		writer: func(ws sr.Schema, index []int) (func([]byte) (T, error), error) {
			if len(ws.References) > 0 {
				return nil, fmt.Errorf("%w: protobuf schema references are not supported", ErrSchemaMismatch)
			}
			fd, err := compileProto(ws.Schema)
			if err != nil {
				return nil, fmt.Errorf("%w: writer schema: %w", ErrSchemaMismatch, err)
			}
			md, err := messageAt(fd.Messages(), index)
			if err != nil {
				return nil, err
			}
			if md.FullName() != want {
				return nil, fmt.Errorf("%w: frame holds %s, this serde reads %s", ErrSchemaMismatch, md.FullName(), want)
			}
			return decode, nil
		},
	}
	s, err := newFramed(client, subject, schema, f, buildOptions(opts))
	if err != nil {
		return nil, err
	}
	return s, nil
}

// protoFile is the name a schema compiles under.
const protoFile = "schema.proto"

// compileProto compiles one .proto source; imports resolve only to
// protoc's standard files, never to the filesystem.
func compileProto(text string) (protoreflect.FileDescriptor, error) {
	c := protocompile.Compiler{
		Resolver: protocompile.WithStandardImports(&protocompile.SourceResolver{
			Accessor: protocompile.SourceAccessorFromMap(map[string]string{protoFile: text}),
		}),
		MaxParallelism: 1,
	}
	files, err := c.Compile(context.Background(), protoFile)
	if err != nil {
		return nil, err
	}
	return files[0], nil
}

// messageIndex finds the index path of the message named want: its
// position among the file's top-level messages, then among each nested
// level's messages.
func messageIndex(msgs protoreflect.MessageDescriptors, want protoreflect.FullName) ([]int, bool) {
	for i := range msgs.Len() {
		md := msgs.Get(i)
		if md.FullName() == want {
			return []int{i}, true
		}
		if sub, ok := messageIndex(md.Messages(), want); ok {
			return append([]int{i}, sub...), true
		}
	}
	return nil, false
}

// messageAt follows an index path through the file's messages.
func messageAt(msgs protoreflect.MessageDescriptors, index []int) (protoreflect.MessageDescriptor, error) {
	var md protoreflect.MessageDescriptor
	for _, i := range index {
		if i < 0 || i >= msgs.Len() {
			return nil, fmt.Errorf("%w: message index %v not in the schema", ErrBadFrame, index)
		}
		md = msgs.Get(i)
		msgs = md.Messages()
	}
	if md == nil {
		return nil, fmt.Errorf("%w: empty message index", ErrBadFrame)
	}
	return md, nil
}

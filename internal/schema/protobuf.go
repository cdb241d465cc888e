package schema

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/bufbuild/protocompile"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"
)

// protoRoot is the file name the schema being parsed compiles as; its
// references compile under their reference names, which its imports use.
const protoRoot = "weir_schema.proto"

type protoSchema struct {
	fd    protoreflect.FileDescriptor
	canon string
}

// parseProtobuf compiles text with protocompile. Imports resolve to the
// references and to protoc's standard imports (google/protobuf/...), never
// to the filesystem.
func parseProtobuf(text string, deps []dependency) (*protoSchema, error) {
	files := map[string]string{protoRoot: text}
	for _, d := range deps {
		if _, ok := files[d.name]; !ok {
			files[d.name] = d.schema
		}
	}
	c := protocompile.Compiler{
		Resolver:       protocompile.WithStandardImports(&protocompile.SourceResolver{Accessor: protocompile.SourceAccessorFromMap(files)}),
		MaxParallelism: 1,
	}
	out, err := c.Compile(context.Background(), protoRoot)
	if err != nil {
		return nil, err
	}
	fd := out[0]
	if fd.Messages().Len() == 0 {
		return nil, errors.New("protobuf: the schema defines no message")
	}
	raw, err := proto.MarshalOptions{Deterministic: true}.Marshal(protodesc.ToFileDescriptorProto(fd))
	if err != nil {
		return nil, err
	}
	return &protoSchema{fd: fd, canon: string(raw)}, nil
}

func (p *protoSchema) canonical() string { return p.canon }

func (p *protoSchema) readable(writer parsed) []string {
	w, ok := writer.(*protoSchema)
	if !ok {
		return []string{"schema types differ"}
	}
	return protoReadable(p.fd, w.fd)
}

// evolves checks the rules about history rather than readability: a new
// schema may not use a field number or name old reserved.
func (p *protoSchema) evolves(old parsed) []string {
	if o, ok := old.(*protoSchema); ok {
		return protoReserved(p.fd, o.fd)
	}
	return nil
}

// validate decodes the Confluent message-index prefix, then the message.
func (p *protoSchema) validate(payload []byte) error {
	md, rest, err := p.messageFor(payload)
	if err != nil {
		return err
	}
	m := dynamicpb.NewMessage(md)
	if err := (proto.UnmarshalOptions{RecursionLimit: 100}).Unmarshal(rest, m); err != nil {
		return fmt.Errorf("protobuf: %w", err)
	}
	return nil
}

// messageFor reads the message indexes (a zigzag varint count, then that
// many zigzag varint indexes into nested message lists; a count of 0 means
// the first top-level message) and returns the message they name.
func (p *protoSchema) messageFor(b []byte) (protoreflect.MessageDescriptor, []byte, error) {
	n, k := binary.Varint(b)
	if k <= 0 || n < 0 || n > 64 {
		return nil, nil, errors.New("protobuf: bad message index count")
	}
	b = b[k:]
	msgs := p.fd.Messages()
	if n == 0 {
		return msgs.Get(0), b, nil
	}
	var md protoreflect.MessageDescriptor
	for range n {
		i, k := binary.Varint(b)
		if k <= 0 || i < 0 || int(i) >= msgs.Len() {
			return nil, nil, errors.New("protobuf: message index out of range")
		}
		b = b[k:]
		md = msgs.Get(int(i))
		msgs = md.Messages()
	}
	return md, b, nil
}

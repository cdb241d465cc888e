package serde_test

import (
	"encoding/binary"
	"errors"
	"testing"

	"github.com/twmb/franz-go/pkg/sr"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/weirhq/weir/embedded"
	"github.com/weirhq/weir/stream"
	"github.com/weirhq/weir/stream/serde"
)

// weir starts an embedded Weir and returns it with a client of its
// schema registry.
func weir(t *testing.T) (*embedded.Broker, *sr.Client) {
	t.Helper()
	b, err := embedded.Start(embedded.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	cl, err := sr.NewClient(sr.URLs("http://" + b.RegistryAddr()))
	if err != nil {
		t.Fatal(err)
	}
	return b, cl
}

const (
	orderV1 = `{"type":"record","name":"Order","namespace":"weir.test","fields":[
		{"name":"id","type":"string"},{"name":"cents","type":"long"}]}`
	orderV2 = `{"type":"record","name":"Order","namespace":"weir.test","fields":[
		{"name":"id","type":"string"},{"name":"cents","type":"long"},{"name":"note","type":"string","default":"none"}]}`
	otherRecord = `{"type":"record","name":"Other","namespace":"weir.test","fields":[{"name":"x","type":"int"}]}`
)

type orderV1T struct {
	ID    string `avro:"id" json:"id"`
	Cents int64  `avro:"cents" json:"cents"`
}

type orderV2T struct {
	ID    string `avro:"id"`
	Cents int64  `avro:"cents"`
	Note  string `avro:"note"`
}

// must returns v or panics: setup steps that cannot fail in a passing
// test, written inline.
func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// frameID checks the Confluent header and returns the schema id.
func frameID(t *testing.T, b []byte) int {
	t.Helper()
	if len(b) < 5 || b[0] != 0 {
		t.Fatalf("not a frame: % x", b)
	}
	return int(binary.BigEndian.Uint32(b[1:5]))
}

func TestSubjectNames(t *testing.T) {
	if serde.TopicValue("orders") != "orders-value" || serde.TopicKey("orders") != "orders-key" ||
		serde.TopicRecord("orders", "weir.test.Order") != "orders-weir.test.Order" || serde.RecordName("weir.test.Order") != "weir.test.Order" {
		t.Fatal("subject naming")
	}
}

func TestAvroRoundTripAndFraming(t *testing.T) {
	_, cl := weir(t)
	s := must(serde.Avro[orderV1T](cl, serde.TopicValue("orders"), orderV1))
	b := must(s.Encode(orderV1T{ID: "o1", Cents: 250}))
	ss := must(cl.SchemaByVersion(t.Context(), "orders-value", -1))
	if id := frameID(t, b); id != ss.ID {
		t.Fatalf("frame id %d, registered %d", id, ss.ID)
	}
	if got := must(s.Decode(b)); got != (orderV1T{ID: "o1", Cents: 250}) {
		t.Fatalf("round trip: %+v", got)
	}
	// A nil value (a tombstone) is the zero value.
	if got := must(s.Decode(nil)); got != (orderV1T{}) {
		t.Fatalf("tombstone: %+v", got)
	}
	// LookupOnly finds the same id; a schema never registered fails.
	s2 := must(serde.Avro[orderV1T](cl, "orders-value", orderV1, serde.LookupOnly()))
	if frameID(t, must(s2.Encode(orderV1T{}))) != ss.ID {
		t.Fatal("LookupOnly found another id")
	}
	if _, err := serde.Avro[orderV1T](cl, "nothing-value", orderV1, serde.LookupOnly()); err == nil {
		t.Fatal("LookupOnly of an absent subject succeeded")
	}
	if _, err := serde.Avro[orderV1T](cl, "x-value", `{"type":"record"`); err == nil {
		t.Fatal("a malformed schema was accepted")
	}

	// Frames written by franz-go's sr.Serde from outside decode too.
	raw := must(sr.Encode(orderV1T{ID: "o2", Cents: 7}, new(sr.ConfluentHeader), ss.ID, nil, func(v any) ([]byte, error) {
		fb, err := s.Encode(v.(orderV1T))
		return fb[5:], err
	}))
	if got := must(s.Decode(raw)); got.ID != "o2" || got.Cents != 7 {
		t.Fatalf("sr.Encode frame: %+v", got)
	}
}

// TestAvroEvolution: a v2 reader (a field added with a default) reads v1
// frames, and a v1 reader reads v2 frames, each resolving the frame's
// writer schema fetched by id.
func TestAvroEvolution(t *testing.T) {
	_, cl := weir(t)
	w1 := must(serde.Avro[orderV1T](cl, "orders-value", orderV1))
	b1 := must(w1.Encode(orderV1T{ID: "a", Cents: 1}))
	r2 := must(serde.Avro[orderV2T](cl, "orders-value", orderV2))
	if frameID(t, must(r2.Encode(orderV2T{}))) == frameID(t, b1) {
		t.Fatal("v2 registered with v1's id")
	}
	if got := must(r2.Decode(b1)); got != (orderV2T{ID: "a", Cents: 1, Note: "none"}) {
		t.Fatalf("v2 reading v1: %+v", got)
	}
	b2 := must(r2.Encode(orderV2T{ID: "b", Cents: 2, Note: "gift"}))
	if got := must(w1.Decode(b2)); got != (orderV1T{ID: "b", Cents: 2}) {
		t.Fatalf("v1 reading v2: %+v", got)
	}
	// Again, from the cache.
	if got := must(r2.Decode(b1)); got.Note != "none" {
		t.Fatalf("second read: %+v", got)
	}
}

func TestAvroDecodeErrors(t *testing.T) {
	_, cl := weir(t)
	s := must(serde.Avro[orderV1T](cl, "orders-value", orderV1))
	other := must(serde.Avro[struct {
		X int32 `avro:"x"`
	}](cl, "other-value", otherRecord))
	good := must(s.Encode(orderV1T{ID: "o", Cents: 1}))
	id := frameID(t, good)
	frame := func(id int, payload ...byte) []byte {
		return append([]byte{0, byte(id >> 24), byte(id >> 16), byte(id >> 8), byte(id)}, payload...)
	}
	for _, tc := range []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", []byte{}, serde.ErrBadFrame},
		{"short", []byte{0, 0, 1}, serde.ErrBadFrame},
		{"magic", append([]byte{1}, good[1:]...), serde.ErrBadFrame},
		{"unknown id", frame(987654, 2, 'x', 2), serde.ErrUnknownSchema},
		{"other record", must(other.Encode(struct {
			X int32 `avro:"x"`
		}{5})), serde.ErrSchemaMismatch},
		{"truncated payload", good[:len(good)-1], serde.ErrInvalid},
		{"trailing bytes", append(good[:len(good):len(good)], 0), serde.ErrInvalid},
		{"hostile length", frame(id, 0xfe, 0xff, 0xff, 0xff, 0x0f), serde.ErrInvalid},
	} {
		_, err := s.Decode(tc.b)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, err, tc.want)
		}
	}
}

const orderJSONSchema = `{"type":"object","properties":{
	"id":{"type":"string","minLength":1},"cents":{"type":"integer","minimum":0}},
	"required":["id","cents"],"additionalProperties":false}`

func TestJSONSchema(t *testing.T) {
	_, cl := weir(t)
	s := must(serde.JSONSchema[orderV1T](cl, "jorders-value", orderJSONSchema))
	b := must(s.Encode(orderV1T{ID: "j1", Cents: 3}))
	if string(b[5:]) != `{"id":"j1","cents":3}` {
		t.Fatalf("payload %q", b[5:])
	}
	if got := must(s.Decode(b)); got != (orderV1T{ID: "j1", Cents: 3}) {
		t.Fatalf("round trip %+v", got)
	}
	if _, err := s.Encode(orderV1T{ID: "", Cents: -1}); !errors.Is(err, serde.ErrInvalid) {
		t.Fatalf("invalid value encoded: %v", err)
	}
	// A frame the schema rejects: read as is by default, refused with
	// ValidateOnDecode (against the frame's writer schema).
	bad := append(b[:5:5], `{"id":"","cents":-5}`...)
	if got, err := s.Decode(bad); err != nil || got.Cents != -5 {
		t.Fatalf("lenient decode: %+v %v", got, err)
	}
	strict := must(serde.JSONSchema[orderV1T](cl, "jorders-value", orderJSONSchema, serde.ValidateOnDecode()))
	if _, err := strict.Decode(bad); !errors.Is(err, serde.ErrInvalid) {
		t.Fatalf("strict decode: %v", err)
	}
	if _, err := strict.Decode(append(b[:5:5], `{"id":`...)); !errors.Is(err, serde.ErrInvalid) {
		t.Fatalf("not JSON: %v", err)
	}
	// An Avro frame is not JSON Schema.
	av := must(serde.Avro[orderV1T](cl, "orders-value", orderV1))
	if _, err := s.Decode(must(av.Encode(orderV1T{ID: "a"}))); !errors.Is(err, serde.ErrSchemaMismatch) {
		t.Fatalf("avro frame through json serde: %v", err)
	}
}

// wrappersProto is google/protobuf/wrappers.proto's messages: StringValue
// is the 8th (message index [7]).
const wrappersProto = `syntax = "proto3";
package google.protobuf;
message DoubleValue { double value = 1; }
message FloatValue { float value = 1; }
message Int64Value { int64 value = 1; }
message UInt64Value { uint64 value = 1; }
message Int32Value { int32 value = 1; }
message UInt32Value { uint32 value = 1; }
message BoolValue { bool value = 1; }
message StringValue { string value = 1; }
message BytesValue { bytes value = 1; }
`

func TestProtobuf(t *testing.T) {
	_, cl := weir(t)
	s := must(serde.Protobuf[*wrapperspb.StringValue](cl, "words-value", wrappersProto))
	b := must(s.Encode(wrapperspb.String("hello")))
	id := frameID(t, b)
	// Message indexes [7]: count 1, index 7, as zig-zag varints.
	if b[5] != 2 || b[6] != 14 {
		t.Fatalf("message indexes % x", b[5:7])
	}
	if got := must(s.Decode(b)); got.GetValue() != "hello" {
		t.Fatalf("round trip %v", got)
	}
	if _, err := serde.Protobuf[*wrapperspb.StringValue](cl, "x-value", "syntax = \"proto3\"; message Other { int32 a = 1; }"); err == nil {
		t.Fatal("a schema without the message was accepted")
	}

	// A frame of another message of the same schema (index [0],
	// DoubleValue, written with the first-index shortcut).
	dbl := append([]byte{0, byte(id >> 24), byte(id >> 16), byte(id >> 8), byte(id), 0}, must(proto.Marshal(wrapperspb.Double(1)))...)
	if _, err := s.Decode(dbl); !errors.Is(err, serde.ErrSchemaMismatch) {
		t.Fatalf("DoubleValue frame: %v", err)
	}
	hdr := b[:5:5]
	for name, tail := range map[string][]byte{
		"index out of range":  {2, 40},
		"negative count":      {1},
		"huge count":          {0xfe, 0xff, 0xff, 0xff, 0x0f},
		"truncated index":     {4, 14},
		"deeper than schema":  {4, 14, 0},
		"truncated count":     {0x80},
		"garbage after index": {2, 14, 0xff},
	} {
		if _, err := s.Decode(append(hdr, tail...)); !errors.Is(err, serde.ErrBadFrame) && !errors.Is(err, serde.ErrInvalid) {
			t.Errorf("%s: %v", name, err)
		}
	}

	// A later version (a field added) registered by another producer
	// decodes into the generated type, the new field kept as unknown.
	v2 := wrappersProto + "message Extra { int32 x = 1; }\n"
	v2 = replaceOnce(v2, "message StringValue { string value = 1; }", "message StringValue { string value = 1; int32 extra = 2; }")
	w2 := must(cl.CreateSchema(t.Context(), "words-value", sr.Schema{Schema: v2, Type: sr.TypeProtobuf}))
	payload := append(must(proto.Marshal(wrapperspb.String("later"))), 0x10, 0x05) // field 2 = 5
	f2 := append([]byte{0, byte(w2.ID >> 24), byte(w2.ID >> 16), byte(w2.ID >> 8), byte(w2.ID), 2, 14}, payload...)
	got := must(s.Decode(f2))
	if got.GetValue() != "later" || len(got.ProtoReflect().GetUnknown()) == 0 {
		t.Fatalf("v2 frame: %v", got)
	}
}

func replaceOnce(s, old, new string) string {
	for i := 0; i+len(old) <= len(s); i++ {
		if s[i:i+len(old)] == old {
			return s[:i] + new + s[i+len(old):]
		}
	}
	panic("replaceOnce: not found")
}

// The serdes are stream.Serde values.
var _ = func(cl *sr.Client) stream.Serde[orderV1T] { s, _ := serde.Avro[orderV1T](cl, "", ""); return s }

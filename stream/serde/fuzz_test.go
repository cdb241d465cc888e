package serde_test

import (
	"errors"
	"testing"

	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/weirhq/weir/stream/serde"
)

// FuzzDecodeFrame feeds arbitrary bytes to the three registry serdes
// (against franz-go's in-process fake registry, which holds every schema
// they may name): none may panic, and every failure is one of the
// package's classified errors.
func FuzzDecodeFrame(f *testing.F) {
	reg := srfake.New()
	defer reg.Close()
	cl, err := sr.NewClient(sr.URLs(reg.URL()))
	if err != nil {
		f.Fatal(err)
	}
	av := must(serde.Avro[orderV2T](cl, "a-value", orderV2))
	v1 := must(serde.Avro[orderV1T](cl, "a-value", orderV1))
	js := must(serde.JSONSchema[orderV1T](cl, "j-value", orderJSONSchema, serde.ValidateOnDecode()))
	pb := must(serde.Protobuf[*wrapperspb.StringValue](cl, "p-value", wrappersProto))
	f.Add(must(av.Encode(orderV2T{ID: "x", Cents: 3, Note: "n"})))
	f.Add(must(v1.Encode(orderV1T{ID: "y", Cents: -3})))
	f.Add(must(js.Encode(orderV1T{ID: "z", Cents: 3})))
	f.Add(must(pb.Encode(wrapperspb.String("w"))))
	f.Add([]byte{0, 0, 0, 0, 3, 4, 14, 2})
	f.Add([]byte{0, 0, 0, 0, 1, 0xfe, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, dec := range []func([]byte) error{
			func(b []byte) error { _, err := av.Decode(b); return err },
			func(b []byte) error { _, err := js.Decode(b); return err },
			func(b []byte) error { _, err := pb.Decode(b); return err },
		} {
			err := dec(b)
			if err != nil && !errors.Is(err, serde.ErrBadFrame) && !errors.Is(err, serde.ErrUnknownSchema) &&
				!errors.Is(err, serde.ErrSchemaMismatch) && !errors.Is(err, serde.ErrInvalid) {
				t.Fatalf("unclassified error for % x: %v", b, err)
			}
		}
	})
}

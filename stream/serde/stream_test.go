package serde_test

import (
	"context"
	"testing"
	"time"

	"github.com/hamba/avro/v2"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/weirhq/weir/stream"
	"github.com/weirhq/weir/stream/serde"
	"github.com/weirhq/weir/stream/streamtest"
)

const totalSchema = `{"type":"record","name":"Total","namespace":"weir.test","fields":[
	{"name":"customer","type":"string"},{"name":"cents","type":"long"},{"name":"orders","type":"long"}]}`

type total struct {
	Customer string `avro:"customer" json:"customer"`
	Cents    int64  `avro:"cents" json:"cents"`
	Orders   int64  `avro:"orders" json:"orders"`
}

const totalJSONSchema = `{"type":"object","required":["customer","cents","orders"],"properties":{
	"customer":{"type":"string"},"cents":{"type":"integer"},"orders":{"type":"integer","minimum":1}}}`

// totals sums orders per customer (the record key): Avro in, the running
// total out in the given serde.
func totals(in stream.Serde[orderV2T], out stream.Serde[total]) *stream.Topology {
	topo := stream.NewTopology()
	orders := stream.Source(topo, "orders", stream.String(), in)
	g := stream.GroupByKey(orders, stream.String(), in)
	sums := stream.Aggregate(g, func() total { return total{} }, func(k string, o orderV2T, acc total) total {
		return total{Customer: k, Cents: acc.Cents + o.Cents, Orders: acc.Orders + 1}
	}, out, stream.Named("totals"))
	stream.To(sums.ToStream(), "totals", stream.String(), out)
	return topo
}

// TestStreamtestWithRegistrySerdes runs a topology in streamtest with
// serdes against Weir's registry: Avro v1 and v2 frames in, JSON Schema
// out, the state store's changelog framed too.
func TestStreamtestWithRegistrySerdes(t *testing.T) {
	_, cl := weir(t)
	in := must(serde.Avro[orderV2T](cl, serde.TopicValue("orders"), orderV2))
	out := must(serde.JSONSchema[total](cl, serde.TopicValue("totals"), totalJSONSchema))
	old := must(serde.Avro[orderV1T](cl, "legacy-orders-value", orderV1))

	d, err := streamtest.New(totals(in, out), streamtest.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Unix(1_700_000_000, 0)
	streamtest.Input(d, "orders", stream.String(), in).Pipe("alice", orderV2T{ID: "1", Cents: 100, Note: "x"}, t0)
	// A record written by an older producer with v1 (another subject):
	// the Avro serde resolves it to v2.
	streamtest.Input(d, "orders", stream.String(), old).Pipe("alice", orderV1T{ID: "2", Cents: 50}, t0.Add(time.Second))
	streamtest.Input(d, "orders", stream.String(), in).Pipe("bob", orderV2T{ID: "3", Cents: 7}, t0.Add(2*time.Second))
	got := streamtest.Output(d, "totals", stream.String(), out).Values()
	if err := d.Err(); err != nil {
		t.Fatal(err)
	}
	want := []total{{"alice", 100, 1}, {"alice", 150, 2}, {"bob", 7, 1}}
	if len(got) != len(want) {
		t.Fatalf("got %v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
	// Output values are JSON Schema frames.
	for _, r := range d.Records("totals") {
		if r.Value[0] != 0 || r.Value[5] != '{' {
			t.Fatalf("output not framed JSON: % x", r.Value)
		}
	}
}

// TestEmbeddedAvroEndToEnd: a producer outside the library frames Avro
// with franz-go's sr.Serde and hamba/avro, a stream app on embedded Weir
// aggregates it, and a consumer outside reads the framed Avro output.
func TestEmbeddedAvroEndToEnd(t *testing.T) {
	b, cl := weir(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// The outside producer: register v1, frame with sr.Serde.
	ss, err := cl.CreateSchema(ctx, serde.TopicValue("orders"), sr.Schema{Schema: orderV1})
	if err != nil {
		t.Fatal(err)
	}
	v1 := avro.MustParse(orderV1)
	var prod sr.Serde
	prod.Register(ss.ID, orderV1T{}, sr.EncodeFn(func(v any) ([]byte, error) { return avro.Marshal(v1, v) }))
	kc, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer kc.Close()
	if _, err := kadm.NewClient(kc).CreateTopic(ctx, 3, 1, nil, "orders"); err != nil {
		t.Fatal(err)
	}
	want := map[string]total{}
	var recs []*kgo.Record
	for i := range 60 {
		c := []string{"alice", "bob", "carol", "dave"}[i%4]
		o := orderV1T{ID: string(rune('a' + i%26)), Cents: int64(i)}
		w := want[c]
		want[c] = total{Customer: c, Cents: w.Cents + o.Cents, Orders: w.Orders + 1}
		recs = append(recs, &kgo.Record{Topic: "orders", Key: []byte(c), Value: prod.MustEncode(o)})
	}
	if err := kc.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	// The app reads with v2 (a defaulted field added) and writes Avro.
	in := must(serde.Avro[orderV2T](cl, serde.TopicValue("orders"), orderV2))
	out := must(serde.Avro[total](cl, serde.TopicValue("totals"), totalSchema))
	app, err := stream.New(totals(in, out), stream.Config{Brokers: []string{b.Addr()}, ApplicationID: "totals-app", Bounded: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := app.Run(ctx); err != nil {
		t.Fatal(err)
	}

	// The outside consumer: sr.Serde with the output schema fetched by id.
	var cons sr.Serde
	last := map[string]total{}
	for _, r := range readTopic(t, ctx, b.Addr(), "totals") {
		id, _, err := cons.DecodeID(r.Value)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cons.DecodeNew(r.Value); err != nil {
			s, err := cl.SchemaByID(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			ws := avro.MustParse(s.Schema)
			cons.Register(id, total{}, sr.DecodeFn(func(b []byte, v any) error { return avro.Unmarshal(ws, b, v) }))
		}
		v, err := cons.DecodeNew(r.Value)
		if err != nil {
			t.Fatal(err)
		}
		tot := *v.(*total)
		if prev := last[tot.Customer]; tot.Orders <= prev.Orders {
			t.Fatalf("%s: total went from %v to %v", tot.Customer, prev, tot)
		}
		last[tot.Customer] = tot
	}
	if len(last) != len(want) {
		t.Fatalf("got %v, want %v", last, want)
	}
	for c, w := range want {
		if last[c] != w {
			t.Fatalf("%s: got %v, want %v", c, last[c], w)
		}
	}
}

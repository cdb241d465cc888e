package serde_test

import (
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/sr"

	"github.com/weirhq/weir/embedded"
	"github.com/weirhq/weir/stream"
	"github.com/weirhq/weir/stream/serde"
	"github.com/weirhq/weir/stream/streamtest"
)

// An Avro value serde against the schema registry of an embedded Weir,
// used in a topology tested with streamtest.
func ExampleAvro() {
	b, err := embedded.Start(embedded.Options{NoSync: true})
	if err != nil {
		panic(err)
	}
	defer b.Close()
	cl, err := sr.NewClient(sr.URLs("http://" + b.RegistryAddr()))
	if err != nil {
		panic(err)
	}

	type Order struct {
		ID    string `avro:"id"`
		Cents int64  `avro:"cents"`
	}
	orders, err := serde.Avro[Order](cl, serde.TopicValue("orders"),
		`{"type":"record","name":"Order","fields":[{"name":"id","type":"string"},{"name":"cents","type":"long"}]}`)
	if err != nil {
		panic(err)
	}

	topo := stream.NewTopology()
	in := stream.Source(topo, "orders", stream.String(), orders)
	big := stream.Filter(in, func(_ string, o Order) bool { return o.Cents >= 100 })
	stream.To(big, "big-orders", stream.String(), orders)

	d, err := streamtest.New(topo, streamtest.Config{})
	if err != nil {
		panic(err)
	}
	pipe := streamtest.Input(d, "orders", stream.String(), orders)
	pipe.Pipe("ann", Order{ID: "o1", Cents: 250}, time.Unix(0, 0))
	pipe.Pipe("bob", Order{ID: "o2", Cents: 20}, time.Unix(1, 0))
	for _, r := range streamtest.Output(d, "big-orders", stream.String(), orders).ReadAll() {
		fmt.Println(r.Key, r.Value.ID, r.Value.Cents)
	}
	fmt.Printf("framed: magic byte %d\n", d.Records("big-orders")[0].Value[0])
	// Output:
	// ann o1 250
	// framed: magic byte 0
}

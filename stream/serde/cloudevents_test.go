package serde_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weirhq/weir/stream"
	"github.com/weirhq/weir/stream/serde"
	"github.com/weirhq/weir/stream/streamtest"
)

func sampleEvent() event.Event {
	ev := event.New()
	ev.SetID("e-1")
	ev.SetSource("/shop")
	ev.SetType("order.placed")
	ev.SetSubject("o-1")
	ev.SetTime(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	ev.SetExtension("partitionkey", "alice")
	ev.SetExtension("tenant", "t1")
	_ = ev.SetData("application/json", map[string]any{"cents": 250})
	return ev
}

func sameEvent(t *testing.T, got, want event.Event) {
	t.Helper()
	if got.ID() != want.ID() || got.Source() != want.Source() || got.Type() != want.Type() ||
		got.Subject() != want.Subject() || !got.Time().Equal(want.Time()) ||
		got.DataContentType() != want.DataContentType() || !bytes.Equal(got.Data(), want.Data()) ||
		got.Extensions()["tenant"] != want.Extensions()["tenant"] || got.Extensions()["partitionkey"] != want.Extensions()["partitionkey"] {
		t.Fatalf("got %v\nwant %v", got, want)
	}
}

func TestCloudEventModes(t *testing.T) {
	ev := sampleEvent()
	for _, tc := range []struct {
		name string
		s    stream.Serde[event.Event]
		mode func(v []byte, h []kgo.RecordHeader) bool
	}{
		{"binary", serde.CloudEvent(), func(v []byte, h []kgo.RecordHeader) bool {
			return string(v) == `{"cents":250}` && h[0].Key == "ce_specversion"
		}},
		{"structured", serde.CloudEvent(serde.Structured()), func(v []byte, h []kgo.RecordHeader) bool {
			return len(h) == 1 && string(h[0].Value) == "application/cloudevents+json" && bytes.Contains(v, []byte(`"specversion":"1.0"`))
		}},
	} {
		v, h, err := stream.EncodeValue(tc.s, ev)
		if err != nil {
			t.Fatal(err)
		}
		if !tc.mode(v, h) {
			t.Fatalf("%s: value %s headers %v", tc.name, v, h)
		}
		// Either serde reads either mode.
		for _, r := range []stream.Serde[event.Event]{serde.CloudEvent(), serde.CloudEvent(serde.Structured())} {
			got, err := stream.DecodeValue(r, v, h)
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			sameEvent(t, got, ev)
		}
	}
	// As a plain Serde: structured.
	b, err := serde.CloudEvent().Encode(ev)
	if err != nil {
		t.Fatal(err)
	}
	got, err := serde.CloudEvent().Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	sameEvent(t, got, ev)

	s := serde.CloudEvent()
	for name, h := range map[string][]kgo.RecordHeader{
		"no id":         {{Key: "ce_specversion", Value: []byte("1.0")}, {Key: "ce_source", Value: []byte("/s")}, {Key: "ce_type", Value: []byte("t")}},
		"bad version":   {{Key: "ce_specversion", Value: []byte("0.3")}, {Key: "ce_id", Value: []byte("1")}, {Key: "ce_source", Value: []byte("/s")}, {Key: "ce_type", Value: []byte("t")}},
		"bad time":      {{Key: "ce_specversion", Value: []byte("1.0")}, {Key: "ce_id", Value: []byte("1")}, {Key: "ce_source", Value: []byte("/s")}, {Key: "ce_type", Value: []byte("t")}, {Key: "ce_time", Value: []byte("yesterday")}},
		"bad extension": {{Key: "ce_specversion", Value: []byte("1.0")}, {Key: "ce_id", Value: []byte("1")}, {Key: "ce_source", Value: []byte("/s")}, {Key: "ce_type", Value: []byte("t")}, {Key: "ce_Bad-Name", Value: []byte("x")}},
		"twice":         {{Key: "ce_specversion", Value: []byte("1.0")}, {Key: "ce_id", Value: []byte("1")}, {Key: "ce_id", Value: []byte("2")}, {Key: "ce_source", Value: []byte("/s")}, {Key: "ce_type", Value: []byte("t")}},
		"not json":      nil,
	} {
		if _, err := stream.DecodeValue(s, []byte("{nope"), h); !errors.Is(err, serde.ErrNotCloudEvent) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, _, err := stream.EncodeValue(s, event.New()); err == nil {
		t.Error("an invalid event encoded")
	}
}

// TestCloudEventsFromWeirGateway: events POSTed to Weir's HTTP gateway, in
// binary and structured HTTP modes, are stored in binary Kafka mode; a
// stream app reads them with the CloudEvent serde and writes them on in
// structured mode.
func TestCloudEventsFromWeirGateway(t *testing.T) {
	b, _ := weir(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 2, 1, nil, "shop"); err != nil {
		t.Fatal(err)
	}
	post := func(body string, hdr map[string]string) {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+b.HTTPAddr()+"/events/shop", bytes.NewBufferString(body))
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("POST: %s", resp.Status)
		}
	}
	post(`{"cents":250}`, map[string]string{"ce-specversion": "1.0", "ce-id": "b-1", "ce-source": "/shop",
		"ce-type": "order.placed", "ce-partitionkey": "alice", "Content-Type": "application/json"})
	post(`{"specversion":"1.0","id":"s-1","source":"/shop","type":"order.paid","subject":"o-9","data":{"cents":99}}`,
		map[string]string{"Content-Type": "application/cloudevents+json"})
	post(`hello`, map[string]string{"ce-specversion": "1.0", "ce-id": "b-2", "ce-source": "/shop",
		"ce-type": "note", "Content-Type": "text/plain"})

	topo := stream.NewTopology()
	evs := stream.Source(topo, "shop", stream.Bytes(), serde.CloudEvent())
	paid := stream.Filter(evs, func(_ []byte, ev event.Event) bool { return ev.Type() != "note" })
	stream.To(paid, "shop-structured", stream.Bytes(), serde.CloudEvent(serde.Structured()))
	stream.To(stream.MapValues(evs, func(_ []byte, ev event.Event) string { return ev.Type() + ":" + ev.ID() + ":" + string(ev.Data()) }),
		"shop-types", stream.Bytes(), stream.String())
	app, err := stream.New(topo, stream.Config{Brokers: []string{b.Addr()}, ApplicationID: "ce-app", Bounded: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := app.Run(ctx); err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, r := range readTopic(t, ctx, b.Addr(), "shop-types") {
		types = append(types, string(r.Value))
	}
	slices.Sort(types)
	want := []string{`note:b-2:hello`, `order.paid:s-1:{"cents":99}`, `order.placed:b-1:{"cents":250}`}
	if !slices.Equal(types, want) {
		t.Fatalf("got %q\nwant %q", types, want)
	}
	out := readTopic(t, ctx, b.Addr(), "shop-structured")
	if len(out) != 2 {
		t.Fatalf("%d structured records", len(out))
	}
	for _, r := range out {
		ev, err := serde.CloudEvent().Decode(r.Value)
		if err != nil {
			t.Fatal(err)
		}
		if ev.ID() == "b-1" && (ev.Extensions()["partitionkey"] != "alice" || string(r.Key) != "alice") {
			t.Fatalf("partition key lost: %v key %q", ev, r.Key)
		}
	}
}

// readTopic reads every record of a topic up to its end offsets.
func readTopic(t *testing.T, ctx context.Context, addr, topic string) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	want := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			want[o.Partition] = o.Offset
		}
	})
	var out []*kgo.Record
	for len(want) > 0 {
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatal(err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			out = append(out, r)
			if r.Offset+1 >= want[r.Partition] {
				delete(want, r.Partition)
			}
		})
	}
	return out
}

// TestCloudEventsThroughRepartition: binary-mode events keep their
// attributes through a repartition topic (headers written by the
// repartition sink, read by its source) in streamtest.
func TestCloudEventsThroughRepartition(t *testing.T) {
	topo := stream.NewTopology()
	evs := stream.Source(topo, "in", stream.String(), serde.CloudEvent())
	byType := stream.KeyBy(evs, func(_ string, ev event.Event) string { return ev.Type() })
	last := stream.Reduce(stream.GroupByKey(byType, stream.String(), serde.CloudEvent()),
		func(_, ev event.Event) event.Event { return ev }, stream.Named("last"))
	stream.To(last.ToStream(), "out", stream.String(), serde.CloudEvent())
	d, err := streamtest.New(topo, streamtest.Config{})
	if err != nil {
		t.Fatal(err)
	}
	ev := sampleEvent()
	streamtest.Input(d, "in", stream.String(), serde.CloudEvent()).Pipe("k", ev, time.Unix(0, 0))
	got := streamtest.Output(d, "out", stream.String(), serde.CloudEvent()).ReadAll()
	if err := d.Err(); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Key != "order.placed" {
		t.Fatalf("got %v", got)
	}
	sameEvent(t, got[0].Value, ev)
	if rs := d.Records("out"); len(rs[0].Headers) == 0 || rs[0].Headers[0].Key != "ce_specversion" {
		t.Fatalf("output not in binary mode: %v", rs[0].Headers)
	}
}

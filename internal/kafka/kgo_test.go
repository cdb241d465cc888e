package kafka

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestFranzGoProduceConsume drives the broker with franz-go's kgo: an
// idempotent acks=all producer (kgo's default) and a direct consumer.
func TestFranzGoProduceConsume(t *testing.T) {
	ts := startServer(t, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	for _, tc := range []struct {
		name  string
		codec kgo.CompressionCodec
	}{{"none", kgo.NoCompression()}, {"gzip", kgo.GzipCompression()}, {"snappy", kgo.SnappyCompression()}, {"lz4", kgo.Lz4Compression()}, {"zstd", kgo.ZstdCompression()}} {
		codec := tc.codec
		t.Run(tc.name, func(t *testing.T) {
			topic := "codec-" + tc.name
			if _, err := ts.opts.Broker.CreateTopic(topic, 3, nil, false); err != nil {
				t.Fatal(err)
			}
			cl, err := kgo.NewClient(kgo.SeedBrokers(ts.addr), kgo.ProducerBatchCompression(codec), kgo.DefaultProduceTopic(topic))
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			const n = 200
			want := map[string]string{}
			for i := 0; i < n; i++ {
				r := &kgo.Record{Key: []byte(fmt.Sprintf("key-%d", i)), Value: []byte(fmt.Sprintf("value-%d", i)),
					Headers: []kgo.RecordHeader{{Key: "h", Value: []byte{byte(i)}}}}
				want[string(r.Key)] = string(r.Value)
				cl.Produce(ctx, r, func(_ *kgo.Record, err error) {
					if err != nil {
						t.Errorf("produce: %v", err)
					}
				})
			}
			if err := cl.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			cons, err := kgo.NewClient(kgo.SeedBrokers(ts.addr), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
			if err != nil {
				t.Fatal(err)
			}
			defer cons.Close()
			got := 0
			for got < n {
				fs := cons.PollFetches(ctx)
				if err := fs.Err0(); err != nil {
					t.Fatalf("poll: %v", err)
				}
				fs.EachRecord(func(r *kgo.Record) {
					if want[string(r.Key)] != string(r.Value) {
						t.Errorf("record %s = %q", r.Key, r.Value)
					}
					if len(r.Headers) != 1 || r.Headers[0].Key != "h" {
						t.Errorf("headers %v", r.Headers)
					}
					got++
				})
			}
			if got != n {
				t.Fatalf("consumed %d, want %d", got, n)
			}
		})
	}
}

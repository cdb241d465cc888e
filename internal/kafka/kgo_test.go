package kafka

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weirhq/weir/internal/batch"
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
		// topic's compression.type, and the codec batches must then be
		// stored in
		topicType string
		stored    batch.Codec
	}{
		{"none", kgo.NoCompression(), "", batch.CodecNone},
		{"gzip", kgo.GzipCompression(), "", batch.CodecGzip},
		{"snappy", kgo.SnappyCompression(), "", batch.CodecSnappy},
		{"lz4", kgo.Lz4Compression(), "", batch.CodecLZ4},
		{"zstd", kgo.ZstdCompression(), "", batch.CodecZstd},
		{"none-into-zstd-topic", kgo.NoCompression(), "zstd", batch.CodecZstd},
		{"lz4-into-uncompressed-topic", kgo.Lz4Compression(), "uncompressed", batch.CodecNone},
	} {
		codec := tc.codec
		t.Run(tc.name, func(t *testing.T) {
			topic := "codec-" + tc.name
			var configs map[string]string
			if tc.topicType != "" {
				configs = map[string]string{"compression.type": tc.topicType}
			}
			if _, err := ts.opts.Broker.CreateTopic(topic, 3, configs, false); err != nil {
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
			// kgo sends a batch uncompressed when its codec would not
			// shrink it, so only a topic's compression.type fixes the
			// stored codec.
			for part := range int32(3) {
				if tc.topicType == "" {
					break
				}
				p, _ := ts.opts.Broker.Partition(topic, part)
				data, err := p.Read(0, 1<<20)
				if err != nil {
					t.Fatal(err)
				}
				for len(data) > 0 {
					one, rest, err := batch.Split(data)
					if err != nil {
						t.Fatal(err)
					}
					if h, _ := batch.ParseHeader(one); h.Codec() != tc.stored {
						t.Fatalf("partition %d: batch stored as %s, want %s", part, h.Codec(), tc.stored)
					}
					data = rest
				}
			}
		})
	}
}

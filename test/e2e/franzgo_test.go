package e2e

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestBinaryRestartBetweenProduceAndConsume: records acknowledged by an
// acks=all producer are served after SIGTERM and after SIGKILL restarts.
func TestBinaryRestartBetweenProduceAndConsume(t *testing.T) {
	w := StartWeir(t, "")
	for round, kill := range []bool{false, true} {
		cl, err := kgo.NewClient(kgo.SeedBrokers(w.Addr), kgo.DefaultProduceTopic("restart"), kgo.AllowAutoTopicCreation())
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 50; i++ {
			if err := cl.ProduceSync(ctx(t), kgo.StringRecord("v")).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
		cl.Close()
		w.Restart(kill)
		cons, err := kgo.NewClient(kgo.SeedBrokers(w.Addr), kgo.ConsumeTopics("restart"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
		if err != nil {
			t.Fatal(err)
		}
		want := 50 * (round + 1)
		var got int
		for got < want {
			fs := cons.PollFetches(ctx(t))
			if err := fs.Err0(); err != nil {
				t.Fatalf("round %d: %v after %d records", round, err, got)
			}
			fs.EachRecord(func(r *kgo.Record) {
				if r.Offset != int64(got) {
					t.Fatalf("round %d: offset %d, want %d", round, r.Offset, got)
				}
				got++
			})
		}
		cons.Close()
	}
}

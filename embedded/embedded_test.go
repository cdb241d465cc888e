package embedded_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weirhq/weir/embedded"
)

func TestEmbeddedRoundTripAndRestart(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	b, err := embedded.Start(embedded.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.DefaultProduceTopic("greetings"), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Key: []byte("k"), Value: []byte("hello")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	cl.Close()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}

	// The data is durable: a new broker on the same directory serves it.
	b2, err := embedded.Start(embedded.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer b2.Close()
	cons, err := kgo.NewClient(kgo.SeedBrokers(b2.Addr()), kgo.ConsumeTopics("greetings"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	fs := cons.PollFetches(ctx)
	if err := fs.Err0(); err != nil {
		t.Fatal(err)
	}
	recs := fs.Records()
	if len(recs) != 1 || string(recs[0].Key) != "k" || string(recs[0].Value) != "hello" || recs[0].Offset != 0 {
		t.Fatalf("after restart got %+v", recs)
	}
}

// TestEmbeddedLocksItsDirectory: a second embedded broker on a directory in
// use fails at once, saying so, and starts once the first has closed.
func TestEmbeddedLocksItsDirectory(t *testing.T) {
	dir := t.TempDir()
	b, err := embedded.Start(embedded.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if b2, err := embedded.Start(embedded.Options{Dir: dir}); err == nil {
		b2.Close()
		t.Fatal("a second embedded broker opened a directory in use")
	} else if !strings.Contains(err.Error(), "already open in this process") {
		t.Fatalf("second start: %v", err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b3, err := embedded.Start(embedded.Options{Dir: dir})
	if err != nil {
		t.Fatalf("start after close: %v", err)
	}
	if err := b3.Close(); err != nil {
		t.Fatal(err)
	}
}

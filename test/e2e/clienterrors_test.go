package e2e

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	kafkago "github.com/segmentio/kafka-go"
)

// TestClientErrorsUnknownTopic: with auto-creation off, sarama and
// kafka-go get UNKNOWN_TOPIC_OR_PARTITION for a topic nobody created, and
// their Metadata requests (v7 from sarama, v1 from kafka-go's Conn, which
// has no allow-auto-create field) create nothing.
func TestClientErrorsUnknownTopic(t *testing.T) {
	t.Parallel()
	w := StartWeir(t, "", "--auto-create-topics=false")
	c, cancel := context.WithTimeout(context.Background(), stepTimeout)
	defer cancel()

	cfg := saramaConfig(sarama.V2_1_0_0)
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Retry.Max = 1
	cfg.Metadata.Retry.Max = 1
	p, err := sarama.NewSyncProducer([]string{w.Addr}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	_, _, err = p.SendMessage(&sarama.ProducerMessage{Topic: "nobody-made-me", Value: sarama.StringEncoder("x")})
	if !errors.Is(err, sarama.ErrUnknownTopicOrPartition) {
		t.Errorf("sarama produce to an unknown topic: %v, want %v", err, sarama.ErrUnknownTopicOrPartition)
	}

	// kafka-go's DialLeader and Writer retry UNKNOWN_TOPIC_OR_PARTITION
	// until their context ends, so ask Metadata v1 directly.
	conn, err := kafkago.DialContext(c, "tcp", w.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(stepTimeout)); err != nil {
		t.Fatal(err)
	}
	if parts, err := conn.ReadPartitions("nobody-made-me-either"); !errors.Is(err, kafkago.UnknownTopicOrPartition) {
		t.Errorf("kafka-go ReadPartitions (Metadata v1) of an unknown topic = %+v, %v; want %v", parts, err, kafkago.UnknownTopicOrPartition)
	}
	parts, err := conn.ReadPartitions()
	if err != nil {
		t.Fatalf("ReadPartitions (all topics): %v", err)
	}
	for _, p := range parts {
		if !strings.HasPrefix(p.Topic, "__") && p.Topic != "_schemas" { // the node's internal topics exist from start-up
			t.Errorf("topic %s appeared with auto-creation off", p.Topic)
		}
	}
}

// TestClientErrorsMessageTooLarge: a batch over max.message.bytes is
// refused with MESSAGE_TOO_LARGE, which sarama and kafka-go surface as
// their own error values, and the partition stays usable.
func TestClientErrorsMessageTooLarge(t *testing.T) {
	t.Parallel()
	const limit = 4096
	w := StartWeir(t, "", "--max-message-bytes", "4096")
	topic := "too-large"
	big := make([]byte, 2*limit)
	for i := range big {
		big[i] = byte(i*131 + i>>8)
	}

	cfg := saramaConfig(sarama.V2_1_0_0)
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Retry.Max = 1
	p, err := sarama.NewSyncProducer([]string{w.Addr}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if _, off, err := p.SendMessage(&sarama.ProducerMessage{Topic: topic, Value: sarama.StringEncoder("small")}); err != nil || off != 0 {
		t.Fatalf("small record: offset %d, %v", off, err)
	}
	if _, _, err := p.SendMessage(&sarama.ProducerMessage{Topic: topic, Value: sarama.ByteEncoder(big)}); !errors.Is(err, sarama.ErrMessageSizeTooLarge) {
		t.Errorf("sarama produce of %d bytes over max.message.bytes %d: %v, want %v", len(big), limit, err, sarama.ErrMessageSizeTooLarge)
	}

	c, cancel := context.WithTimeout(context.Background(), stepTimeout)
	defer cancel()
	kw := &kafkago.Writer{
		Addr: kafkago.TCP(w.Addr), Topic: topic, RequiredAcks: kafkago.RequireAll,
		MaxAttempts: 1, BatchTimeout: 5 * time.Millisecond, Transport: newKafkagoTransport(t),
	}
	defer kw.Close()
	err = kw.WriteMessages(c, kafkago.Message{Value: big})
	var werrs kafkago.WriteErrors
	if errors.As(err, &werrs) && len(werrs) == 1 {
		err = werrs[0]
	}
	if !errors.Is(err, kafkago.MessageSizeTooLarge) {
		t.Errorf("kafka-go write of %d bytes over max.message.bytes %d: %v, want %v", len(big), limit, err, kafkago.MessageSizeTooLarge)
	}

	// Nothing of the refused batches was stored; the next record is 1.
	if _, off, err := p.SendMessage(&sarama.ProducerMessage{Topic: topic, Value: sarama.StringEncoder("after")}); err != nil || off != 1 {
		t.Errorf("record after the refused ones: offset %d, %v; want 1", off, err)
	}
}

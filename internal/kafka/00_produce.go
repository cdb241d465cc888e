package kafka

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weirhq/weir/internal/batch"
	"github.com/weirhq/weir/internal/broker"
)

// Produce v0-2 carry message sets (magic 0/1), which Weir does not store;
// they are advertised anyway because librdkafka <= 2.0 disables compression
// unless Produce v0 is listed (KAFKA-18659), and answered per partition with
// UNSUPPORTED_FOR_MESSAGE_FORMAT. v12+ changes transaction semantics
// (KIP-890) and v13 addresses topics by id.
func init() {
	register(api{Key: 0, MinVersion: 0, MaxVersion: 11, Handle: (*Server).handleProduce})
}

// durableWait is one partition of an acks=all produce waiting for fsync.
type durableWait struct {
	p      *broker.Partition
	next   int64
	ti, pi int // indexes of its response partition
}

// handleProduce appends each partition's batches and answers, for
// acks=all, once they are durable. The request's record bytes alias a
// pooled frame that the connection reuses as soon as this returns
// (conn.go): nothing on the produce path may keep them, and none does (the
// log copies them into the segment file, schema checks only read them).
func (s *Server) handleProduce(c *Conn, r kmsg.Request) Reply {
	req := r.(*kmsg.ProduceRequest)
	resp := req.ResponseKind().(*kmsg.ProduceResponse)
	var waits []durableWait

	failAll := func(code int16, msg string) {
		for _, rt := range req.Topics {
			t := kmsg.NewProduceResponseTopic()
			t.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				p := kmsg.NewProduceResponseTopicPartition()
				p.Partition, p.ErrorCode, p.BaseOffset = rp.Partition, code, -1
				p.ErrorMessage = &msg
				t.Partitions = append(t.Partitions, p)
			}
			resp.Topics = append(resp.Topics, t)
		}
	}
	switch {
	case req.Acks != 0 && req.Acks != 1 && req.Acks != -1:
		failAll(kerr.InvalidRequiredAcks.Code, "acks must be -1, 0 or 1")
		return Respond(resp)
	case req.TransactionID != nil:
		failAll(kerr.TransactionalIDAuthorizationFailed.Code, "transactions are not supported yet")
		return Respond(resp)
	}

	for _, rt := range req.Topics {
		t := kmsg.NewProduceResponseTopic()
		t.Topic = rt.Topic
		t.Partitions = make([]kmsg.ProduceResponseTopicPartition, 0, len(rt.Partitions))
		for _, rp := range rt.Partitions {
			pr := kmsg.NewProduceResponseTopicPartition()
			pr.Partition = rp.Partition
			pr.BaseOffset = -1
			p, err := s.produceOne(req, rt.Topic, rp)
			if err != nil {
				pr.ErrorCode = errorCode(err)
				msg := s.opts.Broker.ClientMessage(err)
				pr.ErrorMessage = &msg
				pr.ErrorRecords = errorRecords(err)
			} else {
				pr.BaseOffset = p.BaseOffset
				pr.LogAppendTime = p.LogAppendTime
				pr.LogStartOffset = p.LogStartOffset
			}
			t.Partitions = append(t.Partitions, pr)
			if err == nil && req.Acks == -1 {
				// A duplicate waits too: its original may not be durable yet.
				waits = append(waits, durableWait{p: p.Partition, next: p.LastOffset + 1, ti: len(resp.Topics), pi: len(t.Partitions) - 1})
			}
		}
		resp.Topics = append(resp.Topics, t)
	}
	if req.Acks == 0 {
		return NoReply()
	}
	if len(waits) == 0 {
		return Respond(resp)
	}
	timeout := time.Duration(req.TimeoutMillis) * time.Millisecond
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	ctx := c.Context()
	return Defer(func() kmsg.Response {
		// Often durable already by the time this reply is next to be
		// written (and always under Interval and Never): answer without
		// a timer and a context.
		pending := false
		for _, w := range waits {
			pending = pending || !w.p.IsDurable(w.next)
		}
		if !pending {
			return resp
		}
		wctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		for _, w := range waits {
			if err := w.p.WaitDurable(wctx, w.next); err != nil {
				pr := &resp.Topics[w.ti].Partitions[w.pi]
				pr.BaseOffset = -1
				if wctx.Err() != nil && ctx.Err() == nil {
					pr.ErrorCode = kerr.RequestTimedOut.Code
				} else {
					pr.ErrorCode = errorCode(err)
				}
				msg := s.opts.Broker.ClientMessage(err)
				pr.ErrorMessage = &msg
			}
		}
		return resp
	})
}

// produceOne checks what only the protocol knows (message format and
// codec by request version) and hands the partition's batches to the
// broker's write gate, which applies every other rule.
func (s *Server) produceOne(req *kmsg.ProduceRequest, topic string, rp kmsg.ProduceRequestTopicPartition) (broker.Produced, error) {
	if req.Version < 3 {
		return broker.Produced{}, kerr.UnsupportedForMessageFormat
	}
	if len(rp.Records) >= batch.HeaderSize {
		if h, err := batch.ParseHeader(rp.Records); err == nil && h.Codec() == batch.CodecZstd && req.Version < 7 {
			return broker.Produced{}, kerr.UnsupportedCompressionType
		}
	}
	return s.opts.Broker.Produce(broker.Write{Topic: topic, Partition: rp.Partition, Records: rp.Records})
}

package kafka

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weirhq/weir/internal/batch"
	"github.com/weirhq/weir/internal/broker"
	"github.com/weirhq/weir/internal/txn"
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
	case req.TransactionID != nil && s.opts.Txns == nil:
		failAll(kerr.TransactionalIDAuthorizationFailed.Code, "transactions are not enabled on this broker")
		return Respond(resp)
	}
	var refused map[[2]int]error // transactional: partitions the coordinator refuses
	if req.TransactionID != nil {
		refused = s.checkTxnProduce(c, req)
	}

	for ti, rt := range req.Topics {
		t := kmsg.NewProduceResponseTopic()
		t.Topic = rt.Topic
		t.Partitions = make([]kmsg.ProduceResponseTopicPartition, 0, len(rt.Partitions))
		for pi, rp := range rt.Partitions {
			pr := kmsg.NewProduceResponseTopicPartition()
			pr.Partition = rp.Partition
			pr.BaseOffset = -1
			var p broker.Produced
			err := refused[[2]int{ti, pi}]
			if err == nil {
				p, err = s.produceOne(req, rt.Topic, rp)
			}
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
		h, err := batch.ParseHeader(rp.Records)
		if err == nil && h.Codec() == batch.CodecZstd && req.Version < 7 {
			return broker.Produced{}, kerr.UnsupportedCompressionType
		}
		// A transactional batch outside a transaction the coordinator
		// knows would hold the partition's last stable offset forever
		// (no marker would ever end it), as Kafka's request validation
		// refuses too. The gate refuses mixed producers, so the first
		// batch decides.
		if err == nil && h.Transactional() && req.TransactionID == nil {
			return broker.Produced{}, errTransactionalWithoutID
		}
	}
	return s.opts.Broker.Produce(broker.Write{Topic: topic, Partition: rp.Partition, Records: rp.Records})
}

// errTransactionalWithoutID refuses a transactional batch in a Produce
// request without a transactional id.
var errTransactionalWithoutID = fmt.Errorf("%w: transactional record batches need the producer's transactional id in the request",
	kerr.InvalidRecord)

// errNotTransactional refuses a non-transactional batch in a Produce
// request that names a transactional id.
var errNotTransactional = fmt.Errorf("%w: a produce request with a transactional id must carry transactional batches",
	kerr.InvalidRecord)

// checkTxnProduce asks the transaction coordinator whether each partition
// of a transactional Produce is in the producer's ongoing transaction,
// with one call for the whole request. It returns the refused partitions
// by (topic, partition) index: a batch that is not transactional, or one
// whose producer id, epoch or partition the coordinator does not hold
// (INVALID_PRODUCER_ID_MAPPING, INVALID_PRODUCER_EPOCH, INVALID_TXN_STATE).
// Batches it cannot parse are left to the write gate.
func (s *Server) checkTxnProduce(c *Conn, req *kmsg.ProduceRequest) map[[2]int]error {
	refused := map[[2]int]error{}
	var idx [][2]int
	var parts []txn.ProducePartition
	for ti, rt := range req.Topics {
		for pi, rp := range rt.Partitions {
			if len(rp.Records) < batch.HeaderSize {
				continue
			}
			h, err := batch.ParseHeader(rp.Records)
			if err != nil {
				continue
			}
			if !h.Transactional() {
				refused[[2]int{ti, pi}] = errNotTransactional
				continue
			}
			idx = append(idx, [2]int{ti, pi})
			parts = append(parts, txn.ProducePartition{Partition: txn.TopicPartition{Topic: rt.Topic, Partition: rp.Partition},
				ProducerID: h.ProducerID, Epoch: h.ProducerEpoch})
		}
	}
	if len(parts) == 0 {
		return refused
	}
	ctx, cancel := txnContext(c)
	defer cancel()
	errs, err := s.opts.Txns.CheckProduce(ctx, *req.TransactionID, parts)
	for i, k := range idx {
		switch {
		case err != nil:
			refused[k] = err
		case i < len(errs) && errs[i] != nil:
			refused[k] = errs[i]
		}
	}
	return refused
}

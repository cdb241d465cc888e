package kafka

import (
	"errors"
	"reflect"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weirhq/weir/internal/broker"
)

// Fetch v4 is the first with record batches and isolation levels
// (read_committed is honoured: data below the last stable offset, with the
// aborted transactions of what is returned); v13+
// addresses topics by id (not yet served).
func init() {
	register(api{Key: 1, MinVersion: 4, MaxVersion: 12, Handle: (*Server).handleFetch})
}

// maxFetchWait caps a client's max_wait_ms so a fetch never pins a
// connection's replies for long.
const maxFetchWait = 30 * time.Second

func (s *Server) handleFetch(c *Conn, r kmsg.Request) Reply {
	req := r.(*kmsg.FetchRequest)
	maxBytes := int(req.MaxBytes)
	if req.Version < 3 || maxBytes <= 0 {
		maxBytes = 52428800
	}
	wait := min(time.Duration(req.MaxWaitMillis)*time.Millisecond, maxFetchWait)
	ctx := c.Context()
	// Record data is read into pooled buffers, recycled once the response
	// is encoded (release) or dropped for a newer read (gather).
	var bufs [][]byte
	release := func() {
		for _, b := range bufs {
			putBuf(b)
		}
		bufs = bufs[:0]
	}
	resp := req.ResponseKind().(*kmsg.FetchResponse)
	gather := func() (*kmsg.FetchResponse, int, bool) {
		release()
		total, hasErr := s.gatherFetch(req, maxBytes, &bufs, resp)
		return resp, total, hasErr
	}
	// Read the records only when this reply is next to be written: replies
	// queued behind a consumer that stopped reading then hold no record
	// data, so such a consumer pins at most the response being written.
	return Reply{release: release, wait: func() kmsg.Response {
		resp, total, hasErr := gather()
		if total >= int(req.MinBytes) || total > 0 && req.MinBytes <= 0 || wait <= 0 || hasErr {
			return resp
		}
		deadline := time.NewTimer(wait)
		defer deadline.Stop()
		var cases []reflect.SelectCase
		for {
			// Collect the change channels before re-reading, so an
			// append between the read and the wait is not missed.
			cases = s.fetchWakeups(req, cases[:0])
			resp, total, hasErr = gather()
			if total >= max(int(req.MinBytes), 1) || hasErr {
				return resp
			}
			cases = append(cases,
				reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(deadline.C)},
				reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(ctx.Done())})
			chosen, _, _ := reflect.Select(cases)
			if chosen >= len(cases)-2 {
				resp, _, _ = gather()
				return resp
			}
		}
	}}
}

// fetchWakeups appends to cases a select case per requested partition,
// ready when that partition's high watermark moves.
func (s *Server) fetchWakeups(req *kmsg.FetchRequest, cases []reflect.SelectCase) []reflect.SelectCase {
	for _, rt := range req.Topics {
		for _, rp := range rt.Partitions {
			if p, err := s.opts.Broker.Partition(rt.Topic, rp.Partition); err == nil {
				cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(p.Changed())})
			}
		}
	}
	return cases
}

// gatherFetch reads every requested partition once into resp, within the
// request's byte limits, returning the record bytes in it and whether any
// partition carries an error. resp is reused across the reads of one
// long-poll (its slices are sized on the first). The record data is in
// pooled buffers, appended to bufs for the caller to recycle once done
// with the response.
func (s *Server) gatherFetch(req *kmsg.FetchRequest, maxBytes int, bufs *[][]byte, resp *kmsg.FetchResponse) (int, bool) {
	if len(resp.Topics) != len(req.Topics) {
		resp.Topics = make([]kmsg.FetchResponseTopic, len(req.Topics))
		for i := range req.Topics {
			resp.Topics[i] = kmsg.NewFetchResponseTopic()
			resp.Topics[i].Partitions = make([]kmsg.FetchResponseTopicPartition, len(req.Topics[i].Partitions))
		}
	}
	total := 0
	hasErr := false
	// read_committed: records at or past the last stable offset are
	// withheld, and the aborted transactions of those returned listed.
	committed := req.IsolationLevel == int8(broker.ReadCommitted)
	for i, rt := range req.Topics {
		t := &resp.Topics[i]
		t.Topic = rt.Topic
		t.TopicID = rt.TopicID
		for j, rp := range rt.Partitions {
			pr := &t.Partitions[j]
			*pr = kmsg.NewFetchResponseTopicPartition()
			pr.Partition = rp.Partition
			pr.HighWatermark, pr.LastStableOffset, pr.LogStartOffset = -1, -1, -1
			pr.RecordBatches = []byte{}
			p, err := s.opts.Broker.Partition(rt.Topic, rp.Partition)
			if err == nil {
				// The LSO first: the high watermark read after it is
				// never below it.
				pr.LastStableOffset = p.LastStableOffset()
				pr.HighWatermark = p.HighWatermark()
				pr.LogStartOffset = p.LogStartOffset()
				if committed {
					pr.AbortedTransactions = []kmsg.FetchResponseTopicPartitionAbortedTransaction{}
				}
				limit := min(int(rp.PartitionMaxBytes), maxBytes-total)
				if limit > 0 || total == 0 {
					var data []byte
					// Kafka returns at least one batch of the first
					// non-empty partition even past the limits (KIP-74).
					if committed {
						data, err = s.readCommitted(p, rp.FetchOffset, max(limit, 1), pr)
					} else {
						data, err = p.ReadBuf(rp.FetchOffset, max(limit, 1), getBuf)
					}
					if data != nil {
						*bufs = append(*bufs, data)
					}
					if err == nil && data != nil {
						if total > 0 && len(data) > limit {
							data = nil
						} else {
							pr.RecordBatches = data
							total += len(data)
						}
					}
				}
			}
			if err != nil {
				pr.ErrorCode = errorCode(err)
				if errors.Is(err, broker.ErrOffsetOutOfRange) {
					pr.ErrorCode = kerr.OffsetOutOfRange.Code
				}
				hasErr = true
			}
		}
	}
	return total, hasErr
}

// readCommitted reads for a read_committed fetch into pr: the data below
// the partition's last stable offset and its aborted transactions.
func (s *Server) readCommitted(p *broker.Partition, offset int64, maxBytes int, pr *kmsg.FetchResponseTopicPartition) ([]byte, error) {
	r, err := p.ReadCommittedBuf(offset, maxBytes, getBuf)
	pr.LastStableOffset = r.LastStableOffset
	for _, a := range r.Aborted {
		at := kmsg.NewFetchResponseTopicPartitionAbortedTransaction()
		at.ProducerID, at.FirstOffset = a.ProducerID, a.FirstOffset
		pr.AbortedTransactions = append(pr.AbortedTransactions, at)
	}
	return r.Data, err
}

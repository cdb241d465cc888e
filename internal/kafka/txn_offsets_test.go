package kafka

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func addOffsets(c *rawClient, id string, pid int64, epoch int16, group string) int16 {
	req := kmsg.NewPtrAddOffsetsToTxnRequest()
	req.Version = 3
	req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Group = id, pid, epoch, group
	return c.roundTrip(req).(*kmsg.AddOffsetsToTxnResponse).ErrorCode
}

// txnOffsetCommit commits offset for tx/0 in id's transaction and returns
// the partition's error code.
func txnOffsetCommit(t *testing.T, c *rawClient, id string, pid int64, epoch int16, group string, offset int64) int16 {
	t.Helper()
	req := kmsg.NewPtrTxnOffsetCommitRequest()
	req.Version = 3
	req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Group = id, pid, epoch, group
	rt := kmsg.NewTxnOffsetCommitRequestTopic()
	rt.Topic = "tx"
	rp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
	rp.Partition, rp.Offset = 0, offset
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp := c.roundTrip(req).(*kmsg.TxnOffsetCommitResponse)
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		t.Fatalf("TxnOffsetCommit: response %+v", resp)
	}
	return resp.Topics[0].Partitions[0].ErrorCode
}

// fetchStable fetches the group's offset of tx/0 with RequireStable.
func fetchStable(t *testing.T, c *rawClient, group string) (int64, int16) {
	t.Helper()
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Version = 7
	req.Group, req.RequireStable = group, true
	rt := kmsg.NewOffsetFetchRequestTopic()
	rt.Topic, rt.Partitions = "tx", []int32{0}
	req.Topics = append(req.Topics, rt)
	resp := c.roundTrip(req).(*kmsg.OffsetFetchResponse)
	if resp.ErrorCode != 0 || len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		t.Fatalf("OffsetFetch: response %+v", resp)
	}
	p := resp.Topics[0].Partitions[0]
	return p.Offset, p.ErrorCode
}

func TestTxnOffsetsCommitAndAbort(t *testing.T) {
	ts := startTxnServer(t)
	c := dial(t, ts.addr)
	pid, epoch, code := initTxnProducer(t, c, "eos", 4)
	if code != 0 {
		t.Fatalf("InitProducerId: code %d", code)
	}

	// Offsets for a group not added to the transaction are refused.
	if code := txnOffsetCommit(t, c, "eos", pid, epoch, "g", 5); code != kerr.InvalidTxnState.Code {
		t.Fatalf("TxnOffsetCommit before AddOffsetsToTxn: code %d, want INVALID_TXN_STATE", code)
	}
	if code := addOffsets(c, "eos", pid, epoch, "g"); code != 0 {
		t.Fatalf("AddOffsetsToTxn: code %d", code)
	}
	if code := txnOffsetCommit(t, c, "eos", pid, epoch+1, "g", 5); code != kerr.InvalidProducerEpoch.Code &&
		code != kerr.ProducerFenced.Code {
		t.Fatalf("TxnOffsetCommit with another epoch: code %d", code)
	}
	if code := txnOffsetCommit(t, c, "eos", pid, epoch, "g", 5); code != 0 {
		t.Fatalf("TxnOffsetCommit: code %d", code)
	}
	if off, code := fetchStable(t, c, "g"); code != kerr.UnstableOffsetCommit.Code || off != -1 {
		t.Fatalf("OffsetFetch RequireStable while pending: offset %d code %d, want -1 UNSTABLE_OFFSET_COMMIT", off, code)
	}
	if code := endTxn(c, "eos", pid, epoch, true, 3); code != 0 {
		t.Fatalf("EndTxn commit: code %d", code)
	}
	waitFor(t, "committed offset 5", func() bool {
		off, code := fetchStable(t, c, "g")
		return code == 0 && off == 5
	})

	// Abort: the staged offset is dropped; 5 stays committed.
	waitFor(t, "AddOffsetsToTxn after the commit completes", func() bool {
		return addOffsets(c, "eos", pid, epoch, "g") == 0
	})
	if code := txnOffsetCommit(t, c, "eos", pid, epoch, "g", 9); code != 0 {
		t.Fatalf("TxnOffsetCommit: code %d", code)
	}
	if code := endTxn(c, "eos", pid, epoch, false, 3); code != 0 {
		t.Fatalf("EndTxn abort: code %d", code)
	}
	waitFor(t, "the aborted offsets dropped", func() bool {
		off, code := fetchStable(t, c, "g")
		if code == 0 && off != 5 {
			t.Fatalf("offset %d after the abort, want 5", off)
		}
		return code == 0
	})
}

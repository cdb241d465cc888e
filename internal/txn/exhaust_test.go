package txn

import (
	"math"
	"testing"
	"time"
)

// TestEpochExhaustion walks a producer id to its last usable epoch:
// InitProducerId then rotates to a new producer id at epoch 0, keeping
// the old id (and, for KIP-360 callers, the old epoch) so that a retry of
// the rotating request gets the same answer.
func TestEpochExhaustion(t *testing.T) {
	for _, kip360 := range []bool{false, true} {
		m := NewMachine(Config{}, &counter{next: 1})
		req := InitProducerIDRequest{TxnID: "t", Timeout: time.Minute, ProducerID: -1, Epoch: -1, Version: 4}
		r := m.InitProducerID(epoch, req)
		for r.Epoch < math.MaxInt16-1 {
			if kip360 {
				req.ProducerID, req.Epoch = r.ProducerID, r.Epoch
			}
			if r = m.InitProducerID(epoch, req); r.Err != nil {
				t.Fatalf("kip360=%v: epoch %d: %v", kip360, req.Epoch, r.Err)
			}
		}
		if r.ProducerID != 1 || r.Epoch != math.MaxInt16-1 {
			t.Fatalf("kip360=%v: reached %d/%d", kip360, r.ProducerID, r.Epoch)
		}
		if kip360 {
			req.ProducerID, req.Epoch = r.ProducerID, r.Epoch
		}
		r = m.InitProducerID(epoch, req)
		if r.Err != nil || r.ProducerID != 2 || r.Epoch != 0 {
			t.Fatalf("kip360=%v: rotation gave %d/%d %v, want 2/0", kip360, r.ProducerID, r.Epoch, r.Err)
		}
		d, _ := m.Describe("t")
		wantLast := int16(-1)
		if kip360 {
			wantLast = math.MaxInt16 - 1
		}
		if d.LastProducerID != 1 || d.LastEpoch != wantLast {
			t.Fatalf("kip360=%v: last %d/%d, want 1/%d", kip360, d.LastProducerID, d.LastEpoch, wantLast)
		}
		if !kip360 {
			continue
		}
		// The rotating request, retried, gets the same answer.
		r = m.InitProducerID(epoch, req)
		if r.Err != nil || r.ProducerID != 2 || r.Epoch != 0 {
			t.Fatalf("retry of the rotation gave %d/%d %v, want 2/0", r.ProducerID, r.Epoch, r.Err)
		}
		// The old id with any other epoch is fenced.
		req.Epoch = 5
		if r = m.InitProducerID(epoch, req); r.Err != ErrProducerFenced {
			t.Fatalf("old id, old epoch: %v, want fenced", r.Err)
		}
	}
}

package kafka

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestFetchVecMatchesCopy checks that the vectored encoding of fetch
// responses is byte for byte the copying one, at every served version,
// for responses of many shapes: empty, nil and large record data mixed,
// errors, aborted transactions, unknown tagged fields.
func TestFetchVecMatchesCopy(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var fv fetchVec
	var hdr []byte
	spliced := 0
	for iter := range 2000 {
		version := int16(4 + iter%9)
		h := requestHeader{key: 1, version: version, correlationID: rng.Int32(), flexible: version >= 12}
		resp := randomFetchResponse(rng, version)
		want := appendResponse(nil, h, resp)
		var got []byte
		var vec [][]byte
		var ok bool
		hdr, vec, ok = fv.encode(hdr, h, resp)
		if ok {
			spliced++
			for _, b := range vec {
				got = append(got, b...)
			}
		} else {
			got = appendResponse(nil, h, resp)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("iteration %d (v%d): vectored encoding differs from kmsg's (%d vs %d bytes)", iter, version, len(got), len(want))
		}
		// The response still carries its record data afterwards.
		if again := appendResponse(nil, h, resp); !bytes.Equal(again, want) {
			t.Fatalf("iteration %d: encode changed the response", iter)
		}
	}
	if spliced < 500 {
		t.Fatalf("only %d of 2000 responses took the vectored path", spliced)
	}
}

func randomFetchResponse(rng *rand.Rand, version int16) *kmsg.FetchResponse {
	resp := kmsg.NewPtrFetchResponse()
	resp.SetVersion(version)
	resp.ThrottleMillis = rng.Int32N(100)
	resp.SessionID = rng.Int32()
	for range rng.IntN(4) {
		t := kmsg.NewFetchResponseTopic()
		t.Topic = string(rune('a' + rng.IntN(26)))
		for range rng.IntN(5) {
			p := kmsg.NewFetchResponseTopicPartition()
			p.Partition = rng.Int32N(1000)
			p.HighWatermark = rng.Int64N(1 << 40)
			p.LastStableOffset = p.HighWatermark
			p.ErrorCode = int16(rng.IntN(3))
			if rng.IntN(4) == 0 {
				a := kmsg.NewFetchResponseTopicPartitionAbortedTransaction()
				a.ProducerID = rng.Int64()
				p.AbortedTransactions = append(p.AbortedTransactions, a)
			}
			switch rng.IntN(4) {
			case 0:
				p.RecordBatches = nil
			case 1:
				p.RecordBatches = []byte{}
			case 2:
				p.RecordBatches = make([]byte, 1+rng.IntN(200))
			default:
				p.RecordBatches = make([]byte, 1+rng.IntN(70000))
			}
			for i := range p.RecordBatches {
				p.RecordBatches[i] = byte(rng.Uint32())
			}
			if version >= 12 && rng.IntN(5) == 0 {
				p.UnknownTags.Set(7, []byte{1, 2, 3})
			}
			t.Partitions = append(t.Partitions, p)
		}
		resp.Topics = append(resp.Topics, t)
	}
	return resp
}

package kafka

import (
	"bytes"
	"testing"
)

// FuzzDecodeTxnRecord feeds arbitrary __transaction_state keys and values
// (read back from disk at every start) to decodeTxnRecord: it must never
// panic, and what it accepts must survive a round trip: encoding a decoded
// record and decoding it again gives the same bytes when encoded once more.
func FuzzDecodeTxnRecord(f *testing.F) {
	for _, r := range txnTestRecords() {
		k, v := encodeTxnRecord(r)
		f.Add(k, v)
	}
	f.Add([]byte{0, 0, 0, 1, 't'}, []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0xea, 0x60, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{0, 1, 0, 1, 't'}, []byte(nil)) // a key version Weir does not know
	f.Add([]byte{0}, []byte{})
	f.Add([]byte{}, []byte(nil))

	f.Fuzz(func(t *testing.T, key, value []byte) {
		r, ok := decodeTxnRecord(key, value)
		if !ok {
			return
		}
		k2, v2 := encodeTxnRecord(r)
		r2, ok := decodeTxnRecord(k2, v2)
		if !ok {
			t.Fatalf("re-encoded record does not decode: key % x value % x", k2, v2)
		}
		k3, v3 := encodeTxnRecord(r2)
		if !bytes.Equal(k2, k3) || !bytes.Equal(v2, v3) {
			t.Fatalf("round trip changed the record:\n% x / % x\n% x / % x", k2, v2, k3, v3)
		}
		if (v2 == nil) != (value == nil) {
			t.Fatalf("tombstone-ness changed: value %v, re-encoded %v", value == nil, v2 == nil)
		}
	})
}

package kafka

import (
	"bytes"
	"testing"
	"time"

	"github.com/weirhq/weir/internal/group"
)

// FuzzDecodeGroupRecord feeds arbitrary __consumer_offsets keys and values
// (read back from disk at every start, and writable by anything that can
// write the log) to decodeGroupRecord: it must never panic, and what it
// accepts must survive a round trip: encoding a decoded record and decoding
// it again gives the same bytes when encoded once more.
func FuzzDecodeGroupRecord(f *testing.F) {
	now := time.UnixMilli(1767225600000)
	inst := "instance-1"
	for _, r := range []group.Record{
		{Group: "g", IsOffset: true, TopicPartition: group.TopicPartition{Topic: "orders", Partition: 3},
			Offset: &group.Offset{Offset: 42, LeaderEpoch: -1, Metadata: "meta", CommitTime: now}},
		{Group: "g", IsOffset: true, TopicPartition: group.TopicPartition{Topic: "orders", Partition: 3}}, // tombstone
		{Group: "g", Meta: &group.Snapshot{ProtocolType: "consumer", Protocol: "range", Leader: "m1", Generation: 7, StateTime: now,
			Members: []group.MemberSnapshot{
				{MemberID: "m1", ClientID: "c", ClientHost: "/127.0.0.1", RebalanceTimeout: time.Minute, SessionTimeout: 45 * time.Second,
					Subscription: []byte{0, 1, 0, 0, 0, 1, 0, 6, 'o', 'r', 'd', 'e', 'r', 's'}, Assignment: []byte{0, 1}},
				{MemberID: "m2", InstanceID: &inst, SessionTimeout: time.Second},
			}}},
		{Group: "g", Meta: &group.Snapshot{ProtocolType: "consumer", StateTime: now}}, // empty group
		{Group: "g"}, // group tombstone
	} {
		k, v := encodeGroupRecord(r)
		f.Add(k, v)
	}
	f.Add([]byte{0, 0, 0, 1, 'g', 0, 1, 't', 0, 0, 0, 0}, []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{0, 3, 0, 1, 'g'}, []byte(nil)) // a record kind Weir does not use
	f.Add([]byte{0}, []byte{})
	f.Add([]byte{}, []byte(nil))

	f.Fuzz(func(t *testing.T, key, value []byte) {
		r, ok := decodeGroupRecord(key, value)
		if !ok {
			return
		}
		if r.IsOffset && r.Meta != nil || !r.IsOffset && r.Offset != nil {
			t.Fatalf("record of mixed kinds: %+v", r)
		}
		k2, v2 := encodeGroupRecord(r)
		r2, ok := decodeGroupRecord(k2, v2)
		if !ok {
			t.Fatalf("re-encoded record does not decode: key % x value % x", k2, v2)
		}
		k3, v3 := encodeGroupRecord(r2)
		if !bytes.Equal(k2, k3) || !bytes.Equal(v2, v3) {
			t.Fatalf("round trip changed the record:\n% x / % x\n% x / % x", k2, v2, k3, v3)
		}
		if (v2 == nil) != (value == nil) {
			t.Fatalf("tombstone-ness changed: value %v, re-encoded %v", value == nil, v2 == nil)
		}
	})
}

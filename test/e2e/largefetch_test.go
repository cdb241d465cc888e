package e2e

import (
	"bytes"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestLargeFetches: fetch responses that carry hundreds of KiB of record
// data go out as one vectored write with the records by reference
// (internal/kafka/fetch_vec.go). franz-go produces 1.2 MB of uncompressed
// 4 KiB records into three partitions; sarama, kafka-go, franz-go and
// librdkafka (kcat) each read every byte back.
func TestLargeFetches(t *testing.T) {
	t.Parallel()
	w := StartWeir(t, "", "--default-partitions", "3")
	const topic = "large-fetches"
	want := makeRecs(topic, 300, 3)
	for i := range want {
		v := make([]byte, 4096)
		for j := range v {
			v[j] = byte(i*31 + j*7)
		}
		want[i].Value = v
	}
	kgoProduce(t, w.Addr, topic, want, kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.ProducerLinger(0))
	checkContiguous(t, want)
	for _, c := range crossClients {
		t.Run(c.name, func(t *testing.T) {
			checkTopic(t, c.name, c.consume, w.Addr, topic, want, nullness(c.readsNull))
		})
	}
	t.Run("kcat", func(t *testing.T) {
		kcatBin(t)
		got := parseKcatBinary(t, runKcat(t, w, nil, "-C", "-t", topic, "-e", "-o", "beginning", "-f", kcatBinaryFormat))
		byPart := byPartition(want)
		n := 0
		for _, g := range got {
			ws := byPart[g.partition]
			if g.offset < 0 || g.offset >= int64(len(ws)) {
				t.Fatalf("kcat read partition %d offset %d, beyond what was produced", g.partition, g.offset)
			}
			if wr := ws[g.offset]; !bytes.Equal(g.value, wr.Value) {
				t.Fatalf("kcat: partition %d offset %d: %d value bytes differ from the %d produced", g.partition, g.offset, len(g.value), len(wr.Value))
			}
			n++
		}
		if n != len(want) {
			t.Fatalf("kcat read %d records, want %d", n, len(want))
		}
	})
}

package e2e

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// kafkajs 2.2.4 (test/kafkajs) against the real binary. kafkajs has no
// consumer without a group, so test/kafkajs/roundtrip.js prints what it
// produced and franz-go reads it back.

// kafkajsDir returns test/kafkajs and the node executable, skipping (or, in
// CI, failing) when node or the installed kafkajs is missing.
func kafkajsDir(t *testing.T) (dir, node string) {
	t.Helper()
	dir = filepath.Join(repoRoot(), "test", "kafkajs")
	node, err := exec.LookPath("node")
	if err != nil {
		extRequireTool(t, "node", "install Node.js >= 14")
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "kafkajs", "package.json")); err != nil {
		extRequireTool(t, "kafkajs", "run scripts/setup-test-deps or `npm ci` in test/kafkajs")
	}
	return dir, node
}

// kafkajsResult is what roundtrip.js prints on stdout.
type kafkajsResult struct {
	Topic        string `json:"topic"`
	IdemTopic    string `json:"idemTopic"`
	Created      bool   `json:"created"`
	CreatedAgain bool   `json:"createdAgain"`
	Metadata     []struct {
		Name       string `json:"name"`
		Partitions []struct {
			PartitionID int32   `json:"partitionId"`
			Leader      int32   `json:"leader"`
			Replicas    []int32 `json:"replicas"`
			ISR         []int32 `json:"isr"`
			ErrorCode   int16   `json:"partitionErrorCode"`
		} `json:"partitions"`
	} `json:"metadata"`
	Records []struct {
		Topic      string  `json:"topic"`
		Partition  int32   `json:"partition"`
		Offset     int64   `json:"offset"`
		Key        *string `json:"key"`   // base64, null for NULL
		Value      *string `json:"value"` // base64, null for NULL
		Timestamp  int64   `json:"timestamp"`
		Codec      uint8   `json:"codec"`
		Idempotent bool    `json:"idempotent"`
		Headers    []struct {
			Key   string  `json:"key"`
			Value *string `json:"value"`
		} `json:"headers"`
	} `json:"records"`
	Offsets map[string][]struct {
		Partition int32 `json:"partition"`
		High      int64 `json:"high"`
		Low       int64 `json:"low"`
	} `json:"offsets"`
	ByTimestamp []struct {
		Timestamp int64 `json:"timestamp"`
		Offsets   []struct {
			Partition int32 `json:"partition"`
			Offset    int64 `json:"offset"`
		} `json:"offsets"`
	} `json:"byTimestamp"`
}

func kafkajsB64(t *testing.T, s *string) []byte {
	t.Helper()
	if s == nil {
		return nil
	}
	b, err := base64.StdEncoding.DecodeString(*s)
	if err != nil {
		t.Fatalf("bad base64 %q from roundtrip.js: %v", *s, err)
	}
	return b
}

// TestKafkajsRoundTrip: kafkajs Admin creates topics and reads metadata and
// offsets, its producer (acks -1, gzip, headers, explicit timestamps) and
// its idempotent producer (maxInFlightRequests 1) write records, and
// franz-go reads every record back byte-exact at the acknowledged offset.
func TestKafkajsRoundTrip(t *testing.T) {
	dir, node := kafkajsDir(t)
	w := StartWeir(t, "")
	const topic = "kafkajs-roundtrip"

	level := os.Getenv("KAFKAJS_LOG_LEVEL")
	if level == "" {
		level = "INFO"
	}
	start := time.Now()
	env := []string{"KAFKAJS_LOG_LEVEL=" + level, "KAFKAJS_NO_PARTITIONER_WARNING=1", "ROUNDTRIP_TIMEOUT_MS=25000"}
	out, errb, err := extRunTool(35*time.Second, nil, dir, env, node, "roundtrip.js", w.Addr, topic)
	defer func() {
		if t.Failed() {
			t.Logf("kafkajs stderr (%s):\n%s", time.Since(start).Round(time.Millisecond), errb)
			t.Logf("weir log tail:\n%s", extLogTail(w, 80))
		}
	}()
	if err != nil {
		t.Fatalf("node roundtrip.js %s %s: %v\nstdout:\n%s", w.Addr, topic, err, out)
	}
	var res kafkajsResult
	if err := json.Unmarshal(bytes.TrimSpace(out), &res); err != nil {
		t.Fatalf("parse roundtrip.js output: %v\n%s", err, out)
	}
	if res.Topic != topic || res.IdemTopic != topic+"-idem" || !res.Created || res.CreatedAgain {
		t.Errorf("topics %q/%q created=%v createdAgain=%v", res.Topic, res.IdemTopic, res.Created, res.CreatedAgain)
	}

	// Metadata as kafkajs saw it.
	wantParts := map[string]int{topic: 3, res.IdemTopic: 1}
	if len(res.Metadata) != 2 {
		t.Errorf("fetchTopicMetadata returned %d topics, want 2", len(res.Metadata))
	}
	for _, m := range res.Metadata {
		if len(m.Partitions) != wantParts[m.Name] {
			t.Errorf("fetchTopicMetadata %s: %d partitions, want %d", m.Name, len(m.Partitions), wantParts[m.Name])
		}
		for i, p := range m.Partitions {
			if p.PartitionID != int32(i) || p.Leader != 0 || p.ErrorCode != 0 ||
				len(p.Replicas) != 1 || p.Replicas[0] != 0 || len(p.ISR) != 1 || p.ISR[0] != 0 {
				t.Errorf("fetchTopicMetadata %s partition %d: %+v", m.Name, i, p)
			}
		}
	}

	// Group what kafkajs sent by partition, in offset order.
	type tp struct {
		topic string
		part  int32
	}
	sent := map[tp][]int{}
	for i, r := range res.Records {
		k := tp{r.Topic, r.Partition}
		if want := int64(len(sent[k])); r.Offset != want {
			t.Fatalf("kafkajs record %d (%s[%d]) acknowledged at offset %d, want %d", i, r.Topic, r.Partition, r.Offset, want)
		}
		sent[k] = append(sent[k], i)
	}
	if len(sent) != 4 {
		t.Fatalf("kafkajs sent to %d partitions, want 4: %v", len(sent), sent)
	}

	// fetchTopicOffsets.
	for name, offs := range res.Offsets {
		for _, o := range offs {
			if n := int64(len(sent[tp{name, o.Partition}])); o.High != n || o.Low != 0 {
				t.Errorf("fetchTopicOffsets %s[%d]: high %d low %d, want %d and 0", name, o.Partition, o.High, o.Low, n)
			}
		}
	}

	// fetchTopicOffsetsByTimestamp: first offset with timestamp >= ts, or
	// the high watermark when there is none (kafkajs' substitution for -1).
	for _, q := range res.ByTimestamp {
		for _, o := range q.Offsets {
			idx := sent[tp{topic, o.Partition}]
			want := int64(len(idx))
			for off, i := range idx {
				if res.Records[i].Timestamp >= q.Timestamp {
					want = int64(off)
					break
				}
			}
			if o.Offset != want {
				t.Errorf("fetchTopicOffsetsByTimestamp(%d) partition %d = %d, want %d", q.Timestamp, o.Partition, o.Offset, want)
			}
		}
	}

	// Read everything back with franz-go.
	for k, idx := range sent {
		recs := extKgoRead(t, w, k.topic, k.part, len(idx))
		for j, r := range recs {
			s := res.Records[idx[j]]
			key, val := kafkajsB64(t, s.Key), kafkajsB64(t, s.Value)
			var hdrs []kgo.RecordHeader
			for _, h := range s.Headers {
				hdrs = append(hdrs, kgo.RecordHeader{Key: h.Key, Value: kafkajsB64(t, h.Value)})
			}
			where := fmt.Sprintf("%s[%d]", k.topic, k.part)
			if r.Offset != s.Offset {
				t.Errorf("%s record %d: offset %d, want %d", where, j, r.Offset, s.Offset)
			}
			if !bytes.Equal(r.Key, key) || (r.Key == nil) != (key == nil) {
				t.Errorf("%s offset %d: key %q, want %q", where, r.Offset, r.Key, key)
			}
			if !bytes.Equal(r.Value, val) || (r.Value == nil) != (val == nil) {
				t.Errorf("%s offset %d: value %q, want %q", where, r.Offset, r.Value, val)
			}
			if r.Timestamp.UnixMilli() != s.Timestamp {
				t.Errorf("%s offset %d: timestamp %d, want %d", where, r.Offset, r.Timestamp.UnixMilli(), s.Timestamp)
			}
			if !extEqualHeaders(r.Headers, hdrs) {
				t.Errorf("%s offset %d: headers %s, want %s", where, r.Offset, extFmtHeaders(r.Headers), extFmtHeaders(hdrs))
			}
			if c := r.Attrs.CompressionType(); c != s.Codec {
				t.Errorf("%s offset %d: stored with compression %d, want %d", where, r.Offset, c, s.Codec)
			}
			if s.Idempotent != (r.ProducerID >= 0) {
				t.Errorf("%s offset %d: producer id %d epoch %d, idempotent=%v", where, r.Offset, r.ProducerID, r.ProducerEpoch, s.Idempotent)
			}
		}
	}
}

func extEqualHeaders(a, b []kgo.RecordHeader) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Key != b[i].Key || !bytes.Equal(a[i].Value, b[i].Value) {
			return false
		}
	}
	return true
}

func extFmtHeaders(hs []kgo.RecordHeader) string {
	parts := make([]string, len(hs))
	for i, h := range hs {
		parts[i] = h.Key + "=" + strconv.Quote(string(h.Value))
	}
	return "[" + strings.Join(parts, " ") + "]"
}

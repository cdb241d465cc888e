package broker

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/weirhq/weir/internal/batch"
	"github.com/weirhq/weir/internal/vfs"
)

// TestConfigValueRules checks the validators on values at and past the
// edges of Kafka's rules; the kafka package's table test covers one valid
// and one invalid value of every config end to end.
func TestConfigValueRules(t *testing.T) {
	for _, c := range []struct {
		name    string
		valid   []string
		invalid []string
		msg     string // in every invalid value's error
	}{
		{"retention.ms", []string{"-1", "0", " 42 ", "9223372036854775807"}, []string{"-2", "soon", "9223372036854775808", ""}, "at least -1"},
		{"retention.bytes", []string{"-5", "0", "-9223372036854775808"}, []string{"1.5", "lots"}, "any 64-bit integer"},
		{"segment.bytes", []string{"14", "2147483647"}, []string{"13", "2147483648"}, "32-bit integer of at least 14"},
		{"max.message.bytes", []string{"0"}, []string{"-1"}, "at least 0"},
		{"compression.gzip.level", []string{"-1", "1", "9"}, []string{"0", "10", "-2", "x"}, "1 to 9, or -1"},
		{"compression.lz4.level", []string{"1", "17"}, []string{"0", "18"}, "from 1 to 17"},
		{"compression.zstd.level", []string{"-131072", "0", "22"}, []string{"-131073", "23"}, "from -131072 to 22"},
		{"min.cleanable.dirty.ratio", []string{"0", "0.5", "1", "1e-1"}, []string{"-0.1", "1.01", "NaN", "half"}, "from 0 to 1"},
		{"cleanup.policy", []string{"delete", "compact", "compact,delete", "delete, compact"}, []string{"", "archive", "delete,"}, "list of delete, compact"},
		{"compression.type", []string{"producer", "zstd", "uncompressed"}, []string{"none", "ZSTD"}, "not one of"},
		{"message.timestamp.type", []string{"CreateTime", "LogAppendTime"}, []string{"createtime"}, "not one of"},
		{"unclean.leader.election.enable", []string{"true", "False", " TRUE "}, []string{"yes", "1", ""}, "true or false"},
		{"leader.replication.throttled.replicas", []string{"", "*", "0:0", "0:0, 1:0,2:0"}, []string{"0", "a:b", "*,0:0", "0:0;1:0"}, "partition:broker"},
		{"follower.replication.throttled.replicas", []string{"*"}, []string{"all"}, "partition:broker"},
		{"message.format.version", []string{"3.0-IV1", "0.8.0", "0.10.0-IV1", "0.10.0.1", "2.8", "2.8.2", "3.9", "3.7-IV4"},
			[]string{"", "4.0", "3.0-IV2", "3.9-IV1", "0.10", "2.8-IV", "2.8-IV01", "latest"}, "Kafka version"},
		{"local.retention.ms", []string{"-2", "-1", "0"}, []string{"-3"}, "at least -2"},
		{"weir.value.schema.validation", []string{"full", "TRUE"}, []string{"yes"}, "not one of"},
	} {
		for _, v := range c.valid {
			if err := ValidateConfig(c.name, v); err != nil {
				t.Errorf("%s=%q: %v, want valid", c.name, v, err)
			}
		}
		for _, v := range c.invalid {
			err := ValidateConfig(c.name, v)
			if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), c.name+": ") || !strings.Contains(err.Error(), c.msg) {
				t.Errorf("%s=%q: %v, want ErrInvalidConfig naming the config and %q", c.name, v, err, c.msg)
			}
		}
	}
	if err := ValidateConfig("no.such.config", "1"); !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), "no.such.config") {
		t.Errorf("unknown config: %v", err)
	}
}

// TestConfigsAcrossNames checks the rules Kafka applies to a topic's
// configs together, on create and on alter.
func TestConfigsAcrossNames(t *testing.T) {
	plain := openMem(t, vfs.NewMem())
	defer plain.Close()
	if _, err := plain.CreateTopic("t", 1, map[string]string{"remote.storage.enable": "true"}, true); !errors.Is(err, ErrInvalidConfig) ||
		!strings.Contains(err.Error(), "--archive") {
		t.Errorf("remote.storage.enable=true on a node without tiered storage: %v, want an invalid config naming --archive", err)
	}
	b := openMemRemote(t, vfs.NewMem())
	defer b.Close()
	for _, c := range []struct {
		configs map[string]string
		msg     string // "" when valid
	}{
		{map[string]string{"min.compaction.lag.ms": "10", "max.compaction.lag.ms": "10"}, ""},
		{map[string]string{"min.compaction.lag.ms": "11", "max.compaction.lag.ms": "10"}, "min.compaction.lag.ms (11) must not exceed max.compaction.lag.ms (10)"},
		{map[string]string{"remote.storage.enable": "true"}, ""},
		{map[string]string{"remote.storage.enable": "true", "cleanup.policy": "delete,compact"}, "cleanup.policy=compact"},
		{map[string]string{"remote.storage.enable": "true", "retention.ms": "1000", "local.retention.ms": "1000"}, ""},
		{map[string]string{"remote.storage.enable": "true", "retention.ms": "1000", "local.retention.ms": "1001"}, "local.retention.ms (1001) must not exceed retention.ms (1000)"},
		{map[string]string{"remote.storage.enable": "true", "local.retention.ms": "-1"}, "local.retention.ms must not be -1"},
		{map[string]string{"remote.storage.enable": "true", "retention.ms": "-1", "local.retention.ms": "-1"}, ""},
		{map[string]string{"remote.storage.enable": "true", "retention.bytes": "100", "local.retention.bytes": "101"}, "local.retention.bytes (101) must not exceed retention.bytes (100)"},
		{map[string]string{"remote.storage.enable": "true", "local.retention.bytes": "5000"}, ""}, // retention.bytes -1: unbounded
		{map[string]string{"remote.storage.enable": "true", "remote.log.copy.disable": "true", "local.retention.ms": "1000"}, "must equal retention.ms"},
		{map[string]string{"remote.storage.enable": "false", "local.retention.ms": "-1", "cleanup.policy": "compact"}, ""},
	} {
		_, err := b.CreateTopic("t", 1, c.configs, true)
		if c.msg == "" && err != nil || c.msg != "" && (!errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), c.msg)) {
			t.Errorf("create with %v: %v, want %q", c.configs, err, c.msg)
		}
	}

	// Turning remote storage off must delete the remote data.
	if _, err := b.CreateTopic("tiered", 1, map[string]string{"remote.storage.enable": "true"}, false); err != nil {
		t.Fatal(err)
	}
	err := b.IncrementalAlterConfigs("tiered", []ConfigOp{{Name: "remote.storage.enable", Op: OpSet, Value: "false"}}, false)
	if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), "remote.log.delete.on.disable=true") {
		t.Errorf("turning remote storage off: %v, want INVALID_CONFIG", err)
	}
	if err := b.AlterConfigs("tiered", map[string]string{"remote.storage.enable": "false", "remote.log.delete.on.disable": "true"}, false); err != nil {
		t.Errorf("turning remote storage off with delete: %v", err)
	}
	if err := b.IncrementalAlterConfigs("tiered", []ConfigOp{{Name: "max.compaction.lag.ms", Op: OpSet, Value: "5"},
		{Name: "min.compaction.lag.ms", Op: OpSet, Value: "6"}}, false); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("alter min.compaction.lag.ms past max: %v, want INVALID_CONFIG", err)
	}
}

func TestListConfigAppendSubtract(t *testing.T) {
	b := openMem(t, vfs.NewMem())
	defer b.Close()
	if _, err := b.CreateTopic("t", 1, nil, false); err != nil {
		t.Fatal(err)
	}
	const name = "leader.replication.throttled.replicas"
	for _, c := range []struct {
		op   OpType
		val  string
		want string
	}{
		{OpAppend, "0:0", "0:0"},
		{OpAppend, "1:0, 0:0,2:0", "0:0,1:0,2:0"},
		{OpSubtract, "0:0,2:0", "1:0"},
		{OpSubtract, "1:0", ""},
	} {
		if err := b.IncrementalAlterConfigs("t", []ConfigOp{{Name: name, Op: c.op, Value: c.val}}, false); err != nil {
			t.Fatalf("op %d %q: %v", c.op, c.val, err)
		}
		tp, _ := b.Topic("t")
		if got := tp.Configs()[name]; got != c.want {
			t.Errorf("after op %d %q: %q, want %q", c.op, c.val, got, c.want)
		}
	}
	if err := b.IncrementalAlterConfigs("t", []ConfigOp{{Name: name, Op: OpAppend, Value: "x"}}, false); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("append a bad item: %v, want INVALID_CONFIG", err)
	}
}

func TestRecordTimestampBounds(t *testing.T) {
	now := time.UnixMilli(1_700_000_000_000)
	b, err := Open(Options{FS: vfs.NewMem(), Dir: "/data", Logger: quiet(), Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	at := func(ts ...int64) []byte {
		recs := make([]batch.Record, len(ts))
		for i, x := range ts {
			recs[i] = batch.Record{OffsetDelta: int32(i), TimestampDelta: x - ts[0], Value: []byte("v")}
		}
		raw, err := batch.Build(batch.BuildOptions{BaseTimestamp: ts[0]}, recs)
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	ms := now.UnixMilli()
	for _, c := range []struct {
		configs map[string]string
		ok      [][]int64
		refused [][]int64
	}{
		{nil, [][]int64{{0}, {ms + 1e12}, {math.MaxInt64}}, nil},
		{map[string]string{"message.timestamp.before.max.ms": "1000", "message.timestamp.after.max.ms": "10"},
			[][]int64{{ms - 1000}, {ms + 10}, {ms, ms - 1000, ms + 10}, {-1}},
			[][]int64{{ms - 1001}, {ms + 11}, {ms, ms - 1001}, {ms, ms + 5, ms + 11}}},
		{map[string]string{"message.timestamp.after.max.ms": "0"},
			[][]int64{{ms}, {0}, {math.MinInt64 + 1}}, [][]int64{{ms + 1}}},
		// The deprecated bound stands in for both where they are unset.
		{map[string]string{"message.timestamp.difference.max.ms": "100"},
			[][]int64{{ms - 100}, {ms + 100}}, [][]int64{{ms - 101}, {ms + 101}}},
		{map[string]string{"message.timestamp.difference.max.ms": "100", "message.timestamp.before.max.ms": "5000"},
			[][]int64{{ms - 5000}, {ms + 100}}, [][]int64{{ms - 5001}, {ms + 101}}},
		// LogAppendTime: the broker's clock stamps every record.
		{map[string]string{"message.timestamp.difference.max.ms": "0", "message.timestamp.type": "LogAppendTime"},
			[][]int64{{0}, {ms + 1e9}}, nil},
	} {
		if _, err := b.CreateTopic("ts", 1, c.configs, false); err != nil {
			t.Fatal(err)
		}
		p, _ := b.Partition("ts", 0)
		for _, ts := range c.ok {
			if _, err := p.Produce(at(ts...)); err != nil {
				t.Errorf("%v: append timestamps %v: %v", c.configs, ts, err)
			}
		}
		for _, ts := range c.refused {
			if _, err := p.Produce(at(ts...)); !errors.Is(err, ErrInvalidTimestamp) || !strings.Contains(err.Error(), "message.timestamp.before.max.ms") {
				t.Errorf("%v: append timestamps %v: %v, want ErrInvalidTimestamp", c.configs, ts, err)
			}
		}
		if err := b.DeleteTopic("ts"); err != nil {
			t.Fatal(err)
		}
	}

	// Altering the bounds applies to the next append.
	if _, err := b.CreateTopic("alter", 1, nil, false); err != nil {
		t.Fatal(err)
	}
	p, _ := b.Partition("alter", 0)
	if err := b.IncrementalAlterConfigs("alter", []ConfigOp{{Name: "message.timestamp.before.max.ms", Op: OpSet, Value: "0"}}, false); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Produce(at(ms - 1)); !errors.Is(err, ErrInvalidTimestamp) {
		t.Errorf("after alter: %v, want ErrInvalidTimestamp", err)
	}
	if err := b.IncrementalAlterConfigs("alter", []ConfigOp{{Name: "message.timestamp.before.max.ms", Op: OpDelete}}, false); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Produce(at(ms - 1)); err != nil {
		t.Errorf("after delete: %v", err)
	}
}

func TestRetentionMsZeroExpiresClosedSegments(t *testing.T) {
	b := openMem(t, vfs.NewMem())
	defer b.Close()
	if got := b.limits(map[string]string{"retention.ms": "0"}).RetentionMs; got != 1 {
		t.Errorf("retention.ms=0 gives the log %d ms, want 1 (0 would mean its default)", got)
	}
}

// TestDescribedConfigs checks what DescribeConfigs reports beyond values:
// synonyms, the honoured flag and the doc saying why not.
func TestDescribedConfigs(t *testing.T) {
	b := openMemRemote(t, vfs.NewMem())
	defer b.Close()
	if _, err := b.CreateTopic("t", 1, map[string]string{"flush.messages": "10", "remote.storage.enable": "true"}, false); err != nil {
		t.Fatal(err)
	}
	entries, err := b.DescribeConfigs("t")
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != len(configDefs) {
		t.Errorf("%d entries, want %d", len(entries), len(configDefs))
	}
	got := map[string]ConfigEntry{}
	for _, e := range entries {
		got[e.Name] = e
	}
	syn := func(name, value string, src ConfigSource) ConfigSynonym { return ConfigSynonym{name, value, src} }
	for name, want := range map[string][]ConfigSynonym{
		"flush.messages":                 {syn("flush.messages", "10", SourceTopic), syn("log.flush.interval.messages", "9223372036854775807", SourceDefaultConfig)},
		"delete.retention.ms":            {syn("log.cleaner.delete.retention.ms", "86400000", SourceDefaultConfig)},
		"remote.storage.enable":          {syn("remote.storage.enable", "true", SourceTopic)},
		"remote.log.copy.disable":        nil,
		"segment.ms":                     {syn("log.roll.ms", "604800000", SourceDefaultConfig)},
		"unclean.leader.election.enable": {syn("unclean.leader.election.enable", "false", SourceDefaultConfig)},
	} {
		e := got[name]
		if len(e.Synonyms) != len(want) {
			t.Errorf("%s synonyms %+v, want %+v", name, e.Synonyms, want)
			continue
		}
		for i := range want {
			if e.Synonyms[i] != want[i] {
				t.Errorf("%s synonyms %+v, want %+v", name, e.Synonyms, want)
			}
		}
	}
	if e := got["flush.ms"]; e.Honoured || !strings.Contains(e.Doc, "stored only") {
		t.Errorf("flush.ms = %+v, want not honoured, doc saying so", e)
	}
	if e := got["message.timestamp.difference.max.ms"]; !e.Honoured || strings.Contains(e.Doc, "stored only") {
		t.Errorf("message.timestamp.difference.max.ms = %+v, want honoured", e)
	}

	static := map[string]ConfigEntry{}
	for _, e := range b.StaticConfigs() {
		static[e.Name] = e
	}
	for name, value := range map[string]string{
		"log.cleaner.min.cleanable.ratio": "0.5", "log.flush.interval.ms": "9223372036854775807",
		"log.message.format.version": "3.0-IV1", "log.local.retention.ms": "-2", "log.retention.bytes": "-1",
		"log.retention.check.interval.ms": "5000", "log.cleaner.backoff.ms": "5000",
	} {
		if e, ok := static[name]; !ok || e.Value != value || e.Source != SourceStaticBroker || !e.ReadOnly {
			t.Errorf("broker config %s = %+v (present %v), want %q", name, e, ok, value)
		}
	}
	if _, ok := static["remote.storage.enable"]; ok {
		t.Error("remote.storage.enable listed as a broker config; Kafka has no broker-level name for it")
	}
}

// TestCompatDocListsConfigs keeps the topic-config table of docs/compat.md
// true: every config once, honoured or stored only as the table here says.
func TestCompatDocListsConfigs(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "docs", "compat.md"))
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("(?m)^\\| `([a-z0-9.]+)` \\| (honoured|stored only) \\|")
	listed := map[string]string{}
	for _, m := range row.FindAllStringSubmatch(string(raw), -1) {
		if _, dup := listed[m[1]]; dup {
			t.Errorf("docs/compat.md lists %s twice", m[1])
		}
		listed[m[1]] = m[2]
	}
	for i := range configDefs {
		d := &configDefs[i]
		want := "honoured"
		if d.unused != "" {
			want = "stored only"
		}
		switch got, ok := listed[d.name]; {
		case !ok:
			t.Errorf("docs/compat.md does not list topic config %s (%s)", d.name, want)
		case got != want:
			t.Errorf("docs/compat.md says %s is %s; the broker has it %s", d.name, got, want)
		}
		delete(listed, d.name)
	}
	for name := range listed {
		t.Errorf("docs/compat.md lists %s, which the broker does not know", name)
	}
}

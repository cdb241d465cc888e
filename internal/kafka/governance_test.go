package kafka

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/weirhq/weir/internal/batch"
	"github.com/weirhq/weir/internal/broker"
)

// fakeSchemas accepts data starting with "ok" and records its calls.
type fakeSchemas struct {
	calls []string
}

func (f *fakeSchemas) CheckRecord(subject string, data []byte, full bool) error {
	f.calls = append(f.calls, fmt.Sprintf("%s:%s:%v", subject, data, full))
	if strings.HasPrefix(string(data), "ok") {
		return nil
	}
	return errors.New("not ok")
}

func TestCheckSchemas(t *testing.T) {
	fake := &fakeSchemas{}
	s, _ := newTestServer(t, Options{Schemas: fake})
	b := s.opts.Broker
	for name, cfg := range map[string]map[string]string{
		"off":   nil,
		"value": {"weir.value.schema.validation": "TRUE"},
		"full":  {"weir.value.schema.validation": "full"},
		"both":  {"confluent.key.schema.validation": "true", "confluent.value.schema.validation": "true"},
		"wins":  {"weir.value.schema.validation": "false", "confluent.value.schema.validation": "true"},
	} {
		if _, err := b.CreateTopic(name, 1, cfg, false); err != nil {
			t.Fatal(err)
		}
	}
	build := func(codec batch.Codec, recs ...batch.Record) []byte {
		for i := range recs {
			recs[i].OffsetDelta = int32(i)
		}
		raw, err := batch.Build(batch.BuildOptions{Codec: codec}, recs)
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	good := build(batch.CodecNone, batch.Record{Key: []byte("ok-k"), Value: []byte("ok-1")}, batch.Record{Key: []byte("k")})
	bad := build(batch.CodecLZ4, batch.Record{Value: []byte("ok")}, batch.Record{Value: []byte("no")}, batch.Record{Value: []byte("nope")})

	for _, c := range []struct {
		topic   string
		records []byte
		calls   []string
		wantErr string
	}{
		{"off", bad, nil, ""},
		{"value", good, []string{"value-value:ok-1:false"}, ""},
		{"full", good, []string{"full-value:ok-1:true"}, ""},
		{"both", good, []string{"both-key:ok-k:false", "both-value:ok-1:false", "both-key:k:false"}, "both-0 record 1: key not ok"},
		{"wins", bad, nil, ""},
		{"value", bad, []string{"value-value:ok:false", "value-value:no:false", "value-value:nope:false"}, "value-0 record 1: value not ok (and 1 more records)"},
		{"value", append(good, bad...), nil, "value-0 record 3: value not ok (and 1 more records)"},
		{"value", []byte("garbage"), nil, ""}, // left for the append to reject
	} {
		fake.calls = nil
		err := s.checkSchemas(c.topic, 0, c.records)
		if c.calls != nil && strings.Join(fake.calls, " ") != strings.Join(c.calls, " ") {
			t.Errorf("%s: calls %q, want %q", c.topic, fake.calls, c.calls)
		}
		switch {
		case c.wantErr == "" && err != nil:
			t.Errorf("%s: unexpected %v", c.topic, err)
		case c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr) || !errors.Is(err, broker.ErrInvalidRecord)):
			t.Errorf("%s: got %v, want INVALID_RECORD containing %q", c.topic, err, c.wantErr)
		}
		if err != nil && errorCode(err) != kerr.InvalidRecord.Code {
			t.Errorf("%s: error code %d", c.topic, errorCode(err))
		}
	}
}

func TestRecordErrorsAreCapped(t *testing.T) {
	re := &recordErrors{topic: "t"}
	for i := range maxRecordErrors + 50 {
		re.add(int32(i), "bad")
	}
	if got := len(errorRecords(re)); got != maxRecordErrors {
		t.Fatalf("%d error records, want %d", got, maxRecordErrors)
	}
	if !strings.Contains(re.Error(), "and 149 more records") {
		t.Fatal(re.Error())
	}
	if errorRecords(errors.New("other")) != nil {
		t.Fatal("error records for a plain error")
	}
}

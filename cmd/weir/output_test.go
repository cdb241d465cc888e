package main

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

func TestRecordTemplate(t *testing.T) {
	r := &kgo.Record{
		Topic: "t", Partition: 2, Offset: 41, Key: []byte("k"), Value: []byte("hello"),
		Timestamp: time.UnixMilli(1700000000123).UTC(),
		Headers:   []kgo.RecordHeader{{Key: "a", Value: []byte("1")}, {Key: "b", Value: []byte("2")}},
	}
	for _, tc := range []struct{ tmpl, want string }{
		{"%v", "hello\n"},
		{"%s", "hello\n"},
		{`%k=%v\n`, "k=hello\n"},
		{`%t/%p/%o %T %d`, "t/2/41 1700000000123 2023-11-14T22:13:20.123Z\n"},
		{`%h|%K|%V|%S|100%%`, "a=1,b=2|1|5|5|100%\n"},
		{`\t%v\\`, "\thello\\\n"},
	} {
		tmpl, err := parseTemplate(tc.tmpl)
		if err != nil {
			t.Fatalf("%q: %v", tc.tmpl, err)
		}
		var b bytes.Buffer
		tmpl.write(&b, r)
		if b.String() != tc.want {
			t.Errorf("%q: got %q, want %q", tc.tmpl, b.String(), tc.want)
		}
	}
	for _, bad := range []string{"%x", "%", `\`, `\q`} {
		if _, err := parseTemplate(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestParsePosition(t *testing.T) {
	now := time.UnixMilli(1_000_000_000_000)
	for _, tc := range []struct {
		in    string
		shift bool
		want  position
		err   bool
	}{
		{in: "beginning", want: position{kind: posStart}},
		{in: "earliest", want: position{kind: posStart}},
		{in: "END", want: position{kind: posEnd}},
		{in: "latest", want: position{kind: posEnd}},
		{in: "42", want: position{kind: posOffset, offset: 42}},
		{in: "@1700000000000", want: position{kind: posTime, millis: 1700000000000}},
		{in: "-10m", want: position{kind: posTime, millis: 1_000_000_000_000 - 600_000}},
		{in: "2001-09-09", want: position{kind: posTime, millis: 999993600000}},
		{in: "2001-09-09T01:46:40Z", want: position{kind: posTime, millis: 1_000_000_000_000}},
		{in: "+5", shift: true, want: position{kind: posShift, offset: 5}},
		{in: "-5", shift: true, want: position{kind: posShift, offset: -5}},
		{in: "-5", err: true},
		{in: "yesterday", err: true},
		{in: "@soon", err: true},
	} {
		got, err := parsePosition(tc.in, now, tc.shift)
		if (err != nil) != tc.err || (!tc.err && got != tc.want) {
			t.Errorf("parsePosition(%q, shift=%v) = %+v, %v; want %+v (error %v)", tc.in, tc.shift, got, err, tc.want, tc.err)
		}
	}
}

func TestOneLine(t *testing.T) {
	err := errors.New("unknown command \"tpoic\" for \"weir\"\n\nDid you mean this?\n\ttopic\n")
	if got, want := oneLine(err), `unknown command "tpoic" for "weir"; did you mean "topic"?`; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if got := oneLine(errors.New("plain")); got != "plain" {
		t.Errorf("got %q", got)
	}
}

func TestHumanBytesAndSeeds(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1536: "1.5 KiB", 5 << 20: "5.0 MiB"} {
		if got := humanBytes(n); got != want {
			t.Errorf("humanBytes(%d) = %q, want %q", n, got, want)
		}
	}
	a := &app{brokers: " a:1, b ,,[::1]:3"}
	if got := strings.Join(a.seeds(), ","); got != "a:1,b:9092,[::1]:3" {
		t.Errorf("seeds = %q", got)
	}
}

func TestShellWords(t *testing.T) {
	got, err := shellWords(`weir consume t -f '%k %v' --x "a \"b\"" # comment`)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"weir", "consume", "t", "-f", "%k %v", "--x", `a "b"`}; strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("got %q, want %q", got, want)
	}
}

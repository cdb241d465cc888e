package nexmark

import (
	"strings"
	"testing"
)

func TestCompareAppend(t *testing.T) {
	want := values(`{"a":1,"b":"x"}`, `{"a":1,"b":"x"}`, `{"a":2.5,"b":"y"}`, `{"p":302.364}`)
	for _, c := range []struct {
		name  string
		got   []Record
		equal bool
		diff  string
	}{
		{"same order", want, true, ""},
		{"other order, field order, number forms", values(`{"p":302.36400000000003}`, ` {"b":"y","a":25e-1}`, `{"b":"x","a":1.0}`, `{"a":1e0,"b":"x"}`), true, ""},
		{"one copy short", values(`{"a":1,"b":"x"}`, `{"a":2.5,"b":"y"}`, `{"p":302.364}`), false, `1 missing, 0 unexpected` + "\n" + `  missing: {"a":1,"b":"x"}`},
		{"one copy too many", append(values(`{"b":"x","a":1}`), want...), false, `0 missing, 1 unexpected`},
		{"extra field", values(`{"a":1,"b":"x"}`, `{"a":1,"b":"x","c":null}`, `{"a":2.5,"b":"y"}`, `{"p":302.364}`), false, `unexpected: {"a":1,"b":"x","c":null}`},
		{"beyond the tolerance", values(`{"a":1,"b":"x"}`, `{"a":1.000001,"b":"x"}`, `{"a":2.5,"b":"y"}`, `{"p":302.364}`), false, `1 missing, 1 unexpected`},
		{"float off", values(`{"a":1,"b":"x"}`, `{"a":1,"b":"x"}`, `{"a":2.5,"b":"y"}`, `{"p":302.3641}`), false, `unexpected: {"p":302.3641}`},
		{"invalid JSON", values(`{"a":1,"b":"x"}`, `{"a":1,"b":"x"`, `{"a":2.5,"b":"y"}`, `{"p":302.364}`), false, `unexpected: {"a":1,"b":"x"`},
		{"timestamp text exact", values(`{"t":"2025-01-01T00:00:00.000"}`), false, `want 4 records, got 1`},
	} {
		d := Compare(want, c.got, Append)
		if d.Equal() != c.equal || !strings.Contains(d.String(), c.diff) {
			t.Errorf("%s: equal %v, want %v:\n%s\nwant it to contain %q", c.name, d.Equal(), c.equal, d, c.diff)
		}
	}
	// Large integers never match approximately.
	if Compare(values(`{"id":1000000000001}`), values(`{"id":1000000000000}`), Append).Equal() {
		t.Error("1000000000001 matched 1000000000000")
	}
}

func TestCompareUpsert(t *testing.T) {
	rec := func(k, v string) Record {
		r := Record{Key: []byte(k)}
		if v != "" {
			r.Value = []byte(v)
		}
		return r
	}
	want := []Record{rec(`{"category":10}`, `{"category":10,"avg_price":5}`), rec(`{"category":11}`, `{"category":11,"avg_price":7}`)}
	for _, c := range []struct {
		name  string
		got   []Record
		equal bool
		diff  string
	}{
		{"last per key", []Record{
			rec(`{"category":11}`, `{"category":11,"avg_price":1}`),
			rec(`{"category":10}`, `{"category":10,"avg_price":3}`),
			rec(`{ "category" : 10 }`, `{"avg_price":5,"category":10}`),
			rec(`{"category":11}`, `{"category":11,"avg_price":7}`),
			rec(`{"category":12}`, `{"category":12,"avg_price":1}`),
			rec(`{"category":12}`, ``), // deleted
		}, true, ""},
		{"stale last value", []Record{want[0], want[1], rec(`{"category":10}`, `{"category":10,"avg_price":4}`)}, false,
			"missing: key {\"category\":10} value {\"category\":10,\"avg_price\":5}\n  unexpected: key {\"category\":10} value {\"category\":10,\"avg_price\":4}"},
		{"key absent", want[:1], false, `want 2 records, got 1; 1 missing, 0 unexpected`},
		{"key extra", append(want, rec(`{"category":13}`, `{"category":13,"avg_price":1}`)), false, `unexpected: key {"category":13}`},
		{"key spelled otherwise", []Record{want[0], rec(`{"cat":11}`, `{"category":11,"avg_price":7}`)}, false, `1 missing, 1 unexpected`},
	} {
		d := Compare(want, c.got, Upsert)
		if d.Equal() != c.equal || !strings.Contains(d.String(), c.diff) {
			t.Errorf("%s: equal %v, want %v:\n%s\nwant it to contain %q", c.name, d.Equal(), c.equal, d, c.diff)
		}
	}
}

func TestDiffFormatLimits(t *testing.T) {
	var want []Record
	for i := range 30 {
		want = append(want, Record{Value: []byte(`{"n":` + FormatTime(int64(i)) + `}`)})
	}
	d := Compare(want, nil, Append)
	s := d.Format(5)
	if strings.Count(s, "\n  missing:") != 5 || !strings.Contains(s, "… 25 more missing") {
		t.Fatalf("Format(5):\n%s", s)
	}
	if Compare(want, want, Append).String() != "outputs match (append, 30 records)" {
		t.Fatal(Compare(want, want, Append).String())
	}
}

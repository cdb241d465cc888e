package nexmark

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// Mode says how Compare matches two outputs.
type Mode int

const (
	// Append outputs are multisets of values: every record counts, order
	// and keys do not.
	Append Mode = iota
	// Upsert outputs are updating results: only the last record per key
	// counts (a nil value deletes the key), and keys must match. Pass the
	// records of each partition in offset order; a key stays in one
	// partition, so concatenating partitions keeps each key's order.
	Upsert
)

func (m Mode) String() string {
	if m == Upsert {
		return "upsert"
	}
	return "append"
}

// Diff is the difference between an expected and an actual output.
type Diff struct {
	Mode      Mode
	Want, Got int // records compared (for Upsert: keys)
	// Missing are expected records not found; Unexpected are actual
	// records not expected (for Upsert, a key whose last value differs is
	// in both).
	Missing, Unexpected []Record
}

// Equal reports whether the outputs matched.
func (d Diff) Equal() bool { return len(d.Missing) == 0 && len(d.Unexpected) == 0 }

// String formats the first 10 differences.
func (d Diff) String() string { return d.Format(10) }

// Format describes the difference readably, listing at most n records of
// each kind.
func (d Diff) Format(n int) string {
	if d.Equal() {
		return fmt.Sprintf("outputs match (%s, %d records)", d.Mode, d.Want)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "outputs differ (%s): want %d records, got %d; %d missing, %d unexpected",
		d.Mode, d.Want, d.Got, len(d.Missing), len(d.Unexpected))
	list := func(what string, rs []Record) {
		for i, r := range rs {
			if i == n {
				fmt.Fprintf(&b, "\n  … %d more %s", len(rs)-n, what)
				return
			}
			fmt.Fprintf(&b, "\n  %s: %s", what, r)
		}
	}
	list("missing", d.Missing)
	list("unexpected", d.Unexpected)
	return b.String()
}

func (r Record) String() string {
	if r.Key == nil {
		return string(r.Value)
	}
	v := "null"
	if r.Value != nil {
		v = string(r.Value)
	}
	return "key " + string(r.Key) + " value " + v
}

// Compare matches the actual output of a query with the expected one.
// Values are JSON objects compared field by field whatever the field
// order, numbers numerically (1, 1.0 and 1e0 are equal; non-integers within
// a relative 1e-9, so that 0.908 × price computed either way matches);
// strings, timestamps included, exactly. A value that is not valid JSON
// matches only the same bytes.
func Compare(want, got []Record, mode Mode) Diff {
	if mode == Upsert {
		return compareUpsert(want, got)
	}
	d := Diff{Mode: mode, Want: len(want), Got: len(got)}
	left := map[string][]Record{} // canonical value → expected records not yet matched
	for _, r := range want {
		k := canonical(r.Value)
		left[k] = append(left[k], r)
	}
	for _, r := range got {
		k := canonical(r.Value)
		if rs := left[k]; len(rs) > 0 {
			left[k] = rs[1:]
			continue
		}
		d.Unexpected = append(d.Unexpected, r)
	}
	for _, k := range sortedKeys(left) {
		d.Missing = append(d.Missing, left[k]...)
	}
	d.Missing, d.Unexpected = matchApprox(d.Missing, d.Unexpected)
	return d
}

func compareUpsert(want, got []Record) Diff {
	last := func(rs []Record) (map[string]Record, []string) {
		m := map[string]Record{}
		var order []string
		for _, r := range rs {
			k := canonical(r.Key)
			if _, ok := m[k]; !ok {
				order = append(order, k)
			}
			m[k] = r
		}
		for k, r := range m {
			if r.Value == nil {
				delete(m, k)
			}
		}
		return m, order
	}
	w, worder := last(want)
	g, gorder := last(got)
	d := Diff{Mode: Upsert, Want: len(w), Got: len(g)}
	for _, k := range worder {
		wr, ok := w[k]
		if !ok {
			continue
		}
		gr, ok := g[k]
		if !ok || (canonical(gr.Value) != canonical(wr.Value) && !approxEqual(wr.Value, gr.Value)) {
			d.Missing = append(d.Missing, wr)
			if ok {
				d.Unexpected = append(d.Unexpected, gr)
			}
		}
	}
	for _, k := range gorder {
		if gr, ok := g[k]; ok {
			if _, ok := w[k]; !ok {
				d.Unexpected = append(d.Unexpected, gr)
			}
		}
	}
	return d
}

// maxApproxPairs bounds the pairwise search of matchApprox.
const maxApproxPairs = 1 << 20

// matchApprox pairs off missing and unexpected records whose values are
// equal up to float rounding.
func matchApprox(missing, unexpected []Record) ([]Record, []Record) {
	if len(missing) == 0 || len(unexpected) == 0 || len(missing)*len(unexpected) > maxApproxPairs {
		return missing, unexpected
	}
	used := make([]bool, len(unexpected))
	var still []Record
	for _, m := range missing {
		found := false
		for j, u := range unexpected {
			if !used[j] && approxEqual(m.Value, u.Value) {
				used[j], found = true, true
				break
			}
		}
		if !found {
			still = append(still, m)
		}
	}
	var extra []Record
	for j, u := range unexpected {
		if !used[j] {
			extra = append(extra, u)
		}
	}
	return still, extra
}

// canonical renders a JSON value with object fields sorted and numbers in
// one form, so that equal values have equal renderings; invalid JSON
// renders as its bytes behind a marker no JSON starts with.
func canonical(raw []byte) string {
	if raw == nil {
		return "\x00nil"
	}
	v, err := parseJSON(raw)
	if err != nil {
		return "\x00raw:" + string(raw)
	}
	var b bytes.Buffer
	writeCanonical(&b, v)
	return b.String()
}

func parseJSON(raw []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, fmt.Errorf("trailing data")
	}
	return v, nil
}

func writeCanonical(b *bytes.Buffer, v any) {
	switch v := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		b.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				b.WriteByte(',')
			}
			b.Write(appendString(nil, k))
			b.WriteByte(':')
			writeCanonical(b, v[k])
		}
		b.WriteByte('}')
	case []any:
		b.WriteByte('[')
		for i, e := range v {
			if i > 0 {
				b.WriteByte(',')
			}
			writeCanonical(b, e)
		}
		b.WriteByte(']')
	case json.Number:
		b.WriteString(canonicalNumber(v))
	case string:
		b.Write(appendString(nil, v))
	default:
		s, _ := json.Marshal(v) // bool or nil
		b.Write(s)
	}
}

// canonicalNumber writes integers exactly and other numbers as the
// shortest float64 form.
func canonicalNumber(n json.Number) string {
	if i, err := strconv.ParseInt(string(n), 10, 64); err == nil {
		return strconv.FormatInt(i, 10)
	}
	f, err := strconv.ParseFloat(string(n), 64)
	if err != nil {
		return string(n)
	}
	if f == math.Trunc(f) && math.Abs(f) < 1<<53 {
		return strconv.FormatInt(int64(f), 10)
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

// approxEqual reports whether two JSON values are equal with numbers
// within a relative 1e-9.
func approxEqual(a, b []byte) bool {
	va, err1 := parseJSON(a)
	vb, err2 := parseJSON(b)
	return err1 == nil && err2 == nil && approx(va, vb)
}

func approx(a, b any) bool {
	switch a := a.(type) {
	case map[string]any:
		b, ok := b.(map[string]any)
		if !ok || len(a) != len(b) {
			return false
		}
		for k, va := range a {
			vb, ok := b[k]
			if !ok || !approx(va, vb) {
				return false
			}
		}
		return true
	case []any:
		b, ok := b.([]any)
		if !ok || len(a) != len(b) {
			return false
		}
		for i := range a {
			if !approx(a[i], b[i]) {
				return false
			}
		}
		return true
	case json.Number:
		b, ok := b.(json.Number)
		if !ok {
			return false
		}
		ca, cb := canonicalNumber(a), canonicalNumber(b)
		if ca == cb {
			return true
		}
		_, err1 := strconv.ParseInt(ca, 10, 64)
		_, err2 := strconv.ParseInt(cb, 10, 64)
		if err1 == nil && err2 == nil {
			return false // integers match exactly
		}
		fa, err1 := a.Float64()
		fb, err2 := b.Float64()
		if err1 != nil || err2 != nil {
			return false
		}
		return fa == fb || math.Abs(fa-fb) <= 1e-9*max(math.Abs(fa), math.Abs(fb))
	default:
		return a == b
	}
}

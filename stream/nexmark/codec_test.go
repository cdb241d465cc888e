package nexmark

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestTimeFormat(t *testing.T) {
	for _, c := range []struct {
		ms   int64
		text string
	}{
		{0, "1970-01-01 00:00:00.000"},
		{DefaultBaseTime, "2025-01-01 00:00:00.000"},
		{DefaultBaseTime + 7_250, "2025-01-01 00:00:07.250"},
		{951782400000 + 86399_999, "2000-02-29 23:59:59.999"},
		{-1, "1969-12-31 23:59:59.999"},
	} {
		if got := FormatTime(c.ms); got != c.text {
			t.Errorf("FormatTime(%d) = %q, want %q", c.ms, got, c.text)
		}
		if got, err := ParseTime(c.text); err != nil || got != c.ms {
			t.Errorf("ParseTime(%q) = %d, %v; want %d", c.text, got, err, c.ms)
		}
	}
	// What Flink's JSON format may write.
	for text, ms := range map[string]int64{
		"2025-01-01T00:00:07.25Z":       DefaultBaseTime + 7_250,
		"2025-01-01 00:00:07":           DefaultBaseTime + 7_000,
		"2025-01-01 00:00:07.123456789": DefaultBaseTime + 7_123,
		"2025-01-01 00:00:07.5":         DefaultBaseTime + 7_500,
	} {
		if got, err := ParseTime(text); err != nil || got != ms {
			t.Errorf("ParseTime(%q) = %d, %v; want %d", text, got, err, ms)
		}
	}
	for _, bad := range []string{"", "2025-01-01", "2025-13-01 00:00:00.000", "2025-02-29 00:00:00.000",
		"2025-01-01 24:00:00.000", "2025-01-01 00:00:00.", "2025-01-01 00:00:00.000+01:00", "2025/01/01 00:00:00.000",
		"2025-01-01 00:00:00.0000000000", "-025-01-01 00:00:00.000"} {
		if _, err := ParseTime(bad); err == nil {
			t.Errorf("ParseTime(%q) accepted", bad)
		}
	}
}

// TestMarshalRoundTrip: generated events encode to JSON that encoding/json
// reads with exactly the documented fields, and decode back to themselves.
func TestMarshalRoundTrip(t *testing.T) {
	evs, err := Generate(Config{Seed: 7, Events: 500})
	if err != nil {
		t.Fatal(err)
	}
	fields := map[string][]string{"person": personFields, "auction": auctionFields, "bid": bidFields}
	var back Event
	for _, e := range evs {
		b, err := Marshal(&e)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("encoding/json rejects %s: %v", b, err)
		}
		if len(m) != 4 || m["event_type"] != float64(e.Type) {
			t.Fatalf("top level of %s", b)
		}
		for name, want := range fields {
			obj, _ := m[name].(map[string]any)
			if name != e.Type.String() {
				if m[name] != nil {
					t.Fatalf("%s is not null in %s", name, b)
				}
				continue
			}
			if len(obj) != len(want) {
				t.Fatalf("%s has %d fields, want %v: %s", name, len(obj), want, b)
			}
			for _, f := range want {
				if _, ok := obj[f]; !ok {
					t.Fatalf("%s lacks %s: %s", name, f, b)
				}
			}
		}
		if err := Unmarshal(b, &back); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		if !reflect.DeepEqual(back, e) {
			t.Fatalf("round trip:\n got %+v\nwant %+v", back, e)
		}
	}
}

// TestUnmarshalFlinkForms: field order, spaces, escapes, unknown fields
// and nulls for strings, as other writers produce them.
func TestUnmarshalFlinkForms(t *testing.T) {
	in := ` { "bid" : {"extra":null,"dateTime":"2025-01-01T00:00:01.5Z","url":"http:\/\/x\u00e9\ud83d\ude00","channel":"a\"b\\c\n",
	  "price":-5,"bidder":0,"auction":1001,"more":[1,{"x":[true,false,null]},"s",-1.5e3]},
	  "person":null,"event_type":2,"other":{} } `
	var e Event
	if err := Unmarshal([]byte(in), &e); err != nil {
		t.Fatal(err)
	}
	want := &Bid{Auction: 1001, Bidder: 0, Price: -5, Channel: "a\"b\\c\n", URL: "http://xé😀", DateTime: DefaultBaseTime + 1500}
	if e.Type != BidEvent || e.Person != nil || e.Auction != nil || !reflect.DeepEqual(e.Bid, want) {
		t.Fatalf("got %+v %+v", e, e.Bid)
	}
	// Re-encoded, it is canonical and decodes to the same.
	b, _ := Marshal(&e)
	var e2 Event
	if err := Unmarshal(b, &e2); err != nil || !reflect.DeepEqual(e2, e) {
		t.Fatalf("%s: %v %+v", b, err, e2)
	}
}

func TestUnmarshalErrors(t *testing.T) {
	bid := `"bid":{"auction":1,"bidder":2,"price":3,"channel":"c","url":"u","dateTime":"2025-01-01 00:00:00.000","extra":""}`
	for _, c := range []struct{ in, want string }{
		{``, "want '{'"},
		{`{` + bid + `}`, "no event_type"},
		{`{"event_type":3,` + bid + `}`, "event_type 3"},
		{`{"event_type":1,` + bid + `}`, `"auction" is null`},
		{`{"event_type":2,` + bid + `,"person":{"id":1,"name":"","emailAddress":"","creditCard":"","city":"","state":"","dateTime":"2025-01-01 00:00:00.000","extra":""}}`, "2 of person, auction, bid are set"},
		{`{"event_type":2,` + strings.Replace(bid, `"price":3,`, ``, 1) + `}`, `bid: missing field "price"`},
		{`{"event_type":2,` + strings.Replace(bid, `"price":3`, `"price":3.5`, 1) + `}`, "field price: want an integer, got a fraction"},
		{`{"event_type":2,` + strings.Replace(bid, `"price":3`, `"price":"3"`, 1) + `}`, "field price: want an integer"},
		{`{"event_type":2,` + strings.Replace(bid, `"price":3`, `"price":99999999999999999999`, 1) + `}`, "out of range"},
		{`{"event_type":2,` + strings.Replace(bid, `"price":3`, `"price":012`, 1) + `}`, "want an integer"},
		{`{"event_type":2,` + strings.Replace(bid, `00:00:00.000`, `00:00:60.000`, 1) + `}`, "field dateTime"},
		{`{"event_type":2,` + strings.Replace(bid, `"c"`, "\"\x01\"", 1) + `}`, "control character"},
		{`{"event_type":2,` + strings.Replace(bid, `"c"`, "\"\xff\"", 1) + `}`, "invalid UTF-8"},
		{`{"event_type":2,` + strings.Replace(bid, `"c"`, `"\q"`, 1) + `}`, `bad escape`},
		{`{"event_type":2,` + bid + `,"event_type":2}`, "duplicate field"},
		{`{"event_type":2,` + bid + `} x`, "trailing data"},
		{`{"event_type":2,` + bid, "want ',' or '}'"},
		{`{"event_type":2,"x":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `,` + bid + `}`, "nested deeper than 64"},
		{`{"event_type":2,"x":tru,` + bid + `}`, "want a JSON value"},
		{strings.Repeat(" ", MaxEventSize+1), "over the 1048576-byte limit"},
	} {
		var e Event
		err := Unmarshal([]byte(c.in), &e)
		if err == nil || !strings.Contains(err.Error(), c.want) || !errors.Is(err, ErrSyntax) {
			t.Errorf("Unmarshal(%.80q) = %v, want an ErrSyntax with %q", c.in, err, c.want)
		}
	}
}

func TestMarshalRejectsInconsistentEvents(t *testing.T) {
	for _, e := range []Event{
		{Type: BidEvent},
		{Type: PersonEvent, Bid: &Bid{}},
		{Type: BidEvent, Bid: &Bid{}, Person: &Person{}},
		{Type: 7, Bid: &Bid{}},
	} {
		if _, err := Marshal(&e); err == nil {
			t.Errorf("Marshal(%+v) accepted", e)
		}
	}
	// Strings are escaped; invalid UTF-8 becomes U+FFFD as in encoding/json.
	e := Event{Type: PersonEvent, Person: &Person{Name: "a\"\\\x00\n\xffé"}}
	b, _ := Marshal(&e)
	var m struct{ Person struct{ Name string } }
	if err := json.Unmarshal(b, &m); err != nil || m.Person.Name != "a\"\\\x00\n\uFFFDé" {
		t.Fatalf("%s: %v %q", b, err, m.Person.Name)
	}
}

// FuzzUnmarshal: untrusted bytes never panic the decoder; what it accepts
// re-encodes to valid JSON that decodes to the same event.
func FuzzUnmarshal(f *testing.F) {
	evs, _ := Generate(Config{Seed: 3, Events: 60, InOrder: true})
	for _, i := range []int{0, 1, 4} {
		b, _ := Marshal(&evs[i])
		f.Add(b)
	}
	f.Add([]byte(`{"event_type":2,"bid":{"auction":1,"bidder":2,"price":3,"channel":"\u00e9\ud83d","url":null,"dateTime":"2025-01-01T00:00:00.5Z","extra":"","x":[{}]}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var e Event
		if err := Unmarshal(data, &e); err != nil {
			return
		}
		b, err := Marshal(&e)
		if err != nil {
			t.Fatalf("accepted %q but cannot re-encode: %v", data, err)
		}
		if !json.Valid(b) {
			t.Fatalf("re-encoded %q is not JSON: %s", data, b)
		}
		var back Event
		if err := Unmarshal(b, &back); err != nil || !reflect.DeepEqual(back, e) {
			t.Fatalf("re-encoded %s decodes to %+v, %v; want %+v", b, back, err, e)
		}
	})
}

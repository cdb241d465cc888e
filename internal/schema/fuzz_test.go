package schema

import (
	"context"
	"testing"
)

// FuzzParse feeds untrusted schema text of every type to the parsers and
// the compatibility checker: none may panic.
func FuzzParse(f *testing.F) {
	f.Add(`{"type":"record","name":"r","fields":[{"name":"a","type":"int"}]}`, uint8(0))
	f.Add(`{"type":"object","properties":{"a":{"type":"integer"}},"required":["a"]}`, uint8(1))
	f.Add("syntax = \"proto3\";\nmessage M { int32 a = 1; }\n", uint8(2))
	f.Add(`{"type":"enum","name":"e","symbols":["A","B"]}`, uint8(0))
	f.Add(`{"$ref":"#/definitions/x","definitions":{"x":{"$ref":"#/definitions/x"}}}`, uint8(1))
	f.Fuzz(func(t *testing.T, text string, kind uint8) {
		if len(text) > 1<<16 {
			return
		}
		typ := Types[int(kind)%len(Types)]
		p, err := parse(typ, text, nil)
		if err != nil {
			return
		}
		// A schema must be compatible with itself in both directions.
		if probs := evolutionProblems(p, p); len(probs) > 0 {
			t.Fatalf("%s schema incompatible with itself: %v\n%s", typ, probs, text)
		}
	})
}

// FuzzFrameJSON feeds an untrusted dataschema attribute and event data to
// the CloudEvents framing: it never panics, and what it frames is in the
// wire format of the subject's schema and valid for it.
func FuzzFrameJSON(f *testing.F) {
	f.Add("", []byte(`{"name":"ada"}`))
	f.Add("http://r/subjects/p-value/versions/1", []byte(`{"name":1}`))
	f.Add("http://r/subjects/p-value/versions/latest", []byte(`{}`))
	f.Add("http://r/schemas/ids/1", []byte(`[1,2]`))
	f.Add("/subjects/%zz/versions/1", []byte(`null`))
	f.Add("http://r/schemas/ids/-4", []byte("\x00\x00\x00\x00\x01{}"))
	r, err := Open(Options{Store: &memStore{}})
	if err != nil {
		f.Fatal(err)
	}
	_, err = r.Register(context.Background(), "p-value", Schema{Type: JSON,
		Schema: `{"type":"object","properties":{"name":{"type":"string"}},"required":["name"]}`}, RegisterOptions{})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, dataschema string, data []byte) {
		framed, err := r.FrameJSON("p-value", dataschema, data)
		if err != nil {
			return
		}
		if err := r.CheckRecord("p-value", framed, true); err != nil {
			t.Fatalf("framed %q is not valid for its subject: %v", framed, err)
		}
		if doc, ok := r.UnframeJSON(framed); !ok || string(doc) != string(data) {
			t.Fatalf("unframed %q, %v; want %q", doc, ok, data)
		}
	})
}

package schema

import "testing"

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

package schema

import (
	"strings"
	"testing"
)

// compatCase is one schema evolution: old → new, and whether it is
// BACKWARD (new reads old) and FORWARD (old reads new) compatible.
type compatCase struct {
	name          string
	old, new      string
	backward, fwd bool
}

func runCompat(t *testing.T, typ Type, cases []compatCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			old, err := parse(typ, c.old, nil)
			if err != nil {
				t.Fatalf("old schema: %v", err)
			}
			nw, err := parse(typ, c.new, nil)
			if err != nil {
				t.Fatalf("new schema: %v", err)
			}
			history := evolutionProblems(nw, old)
			back := append(nw.readable(old), history...)
			fwd := append(old.readable(nw), history...)
			if (len(back) == 0) != c.backward {
				t.Errorf("backward compatible = %v, want %v (problems: %s)", len(back) == 0, c.backward, strings.Join(back, "; "))
			}
			if (len(fwd) == 0) != c.fwd {
				t.Errorf("forward compatible = %v, want %v (problems: %s)", len(fwd) == 0, c.fwd, strings.Join(fwd, "; "))
			}
		})
	}
}

func avroRecord(fields string) string {
	return `{"type":"record","name":"User","namespace":"weir.test","fields":[` + fields + `]}`
}

func TestAvroCompatibility(t *testing.T) {
	const (
		name    = `{"name":"name","type":"string"}`
		age     = `{"name":"age","type":"int"}`
		ageDef  = `{"name":"age","type":"int","default":0}`
		ageLong = `{"name":"age","type":"long"}`
		color   = `{"name":"color","type":{"type":"enum","name":"Color","symbols":["RED","GREEN"]}}`
		color3  = `{"name":"color","type":{"type":"enum","name":"Color","symbols":["RED","GREEN","BLUE"]}}`
		colorD  = `{"name":"color","type":{"type":"enum","name":"Color","symbols":["RED","GREEN"],"default":"RED"}}`
		color1  = `{"name":"color","type":{"type":"enum","name":"Color","symbols":["RED"]}}`
	)
	runCompat(t, Avro, []compatCase{
		{"identical", avroRecord(name), avroRecord(name), true, true},
		{"added field with default", avroRecord(name), avroRecord(name + "," + ageDef), true, true},
		{"added field without default", avroRecord(name), avroRecord(name + "," + age), false, true},
		{"removed field with default", avroRecord(name + "," + ageDef), avroRecord(name), true, true},
		{"removed field without default", avroRecord(name + "," + age), avroRecord(name), true, false},
		{"promotion int to long", avroRecord(age), avroRecord(ageLong), true, false},
		{"demotion long to int", avroRecord(ageLong), avroRecord(age), false, true},
		{"promotion int to double", `"int"`, `"double"`, true, false},
		{"string to bytes", `"string"`, `"bytes"`, true, true},
		{"type changed string to int", avroRecord(name), avroRecord(`{"name":"name","type":"int"}`), false, false},
		{"enum symbol added", avroRecord(color), avroRecord(color3), true, false},
		{"enum symbol added, old enum has a default", avroRecord(colorD), avroRecord(color3), true, true},
		{"enum symbol removed", avroRecord(color), avroRecord(color1), false, true},
		{"field made nullable", avroRecord(name), avroRecord(`{"name":"name","type":["null","string"],"default":null}`), true, false},
		{"record renamed", avroRecord(name), strings.Replace(avroRecord(name), `"User"`, `"Person"`, 1), false, false},
		{"record renamed with alias", avroRecord(name), strings.Replace(avroRecord(name), `"name":"User"`, `"name":"Person","aliases":["weir.test.User"]`, 1), true, false},
		{"field renamed with alias", avroRecord(name), avroRecord(`{"name":"fullName","type":"string","aliases":["name"]}`), true, false},
		{"array items promoted", `{"type":"array","items":"int"}`, `{"type":"array","items":"long"}`, true, false},
		{"map values changed", `{"type":"map","values":"int"}`, `{"type":"map","values":"string"}`, false, false},
		{"fixed size changed", `{"type":"fixed","name":"F","size":4}`, `{"type":"fixed","name":"F","size":8}`, false, false},
	})
}

func jsonObject(props, extra string) string {
	s := `{"type":"object","properties":{` + props + `}`
	if extra != "" {
		s += "," + extra
	}
	return s + "}"
}

func TestJSONSchemaCompatibility(t *testing.T) {
	const (
		name   = `"name":{"type":"string"}`
		age    = `"age":{"type":"integer"}`
		ageNum = `"age":{"type":"number"}`
		closed = `"additionalProperties":false`
	)
	runCompat(t, JSON, []compatCase{
		{"identical", jsonObject(name, ""), jsonObject(name, ""), true, true},
		{"whitespace and key order only", `{"type":"string","maxLength":3}`, "{ \"maxLength\": 3,\n \"type\": \"string\" }", true, true},
		{"optional property added to open model", jsonObject(name, ""), jsonObject(name+","+age, ""), false, true},
		{"optional property added to closed model", jsonObject(name, closed), jsonObject(name+","+age, closed), true, false},
		{"unconstrained property added to open model", jsonObject(name, ""), jsonObject(name+`,"extra":{}`, ""), true, true},
		{"required property added", jsonObject(name+","+age, ""), jsonObject(name+","+age, `"required":["age"]`), false, true},
		{"required property dropped", jsonObject(name, `"required":["name"]`), jsonObject(name, ""), true, false},
		{"property removed from open model", jsonObject(name+","+age, ""), jsonObject(name, ""), true, false},
		{"property removed from closed model", jsonObject(name+","+age, closed), jsonObject(name, closed), false, true},
		{"integer widened to number", jsonObject(age, ""), jsonObject(ageNum, ""), true, false},
		{"number narrowed to integer", jsonObject(ageNum, ""), jsonObject(age, ""), false, true},
		{"type changed", jsonObject(name, ""), jsonObject(`"name":{"type":"integer"}`, ""), false, false},
		{"type added to union", `{"type":"string"}`, `{"type":["string","null"]}`, true, false},
		{"enum value added", `{"enum":["a","b"]}`, `{"enum":["a","b","c"]}`, true, false},
		{"enum value removed", `{"enum":["a","b"]}`, `{"enum":["a"]}`, false, true},
		{"maxLength lowered", `{"type":"string","maxLength":10}`, `{"type":"string","maxLength":5}`, false, true},
		{"minimum raised", `{"type":"integer","minimum":0}`, `{"type":"integer","minimum":5}`, false, true},
		{"pattern added", `{"type":"string"}`, `{"type":"string","pattern":"^a"}`, false, true},
		{"additionalProperties closed", jsonObject(name, ""), jsonObject(name, closed), false, true},
		{"array items widened", `{"type":"array","items":{"type":"integer"}}`, `{"type":"array","items":{"type":"number"}}`, true, false},
		{"nested property type changed", jsonObject(`"addr":`+jsonObject(`"zip":{"type":"string"}`, ""), ""),
			jsonObject(`"addr":`+jsonObject(`"zip":{"type":"integer"}`, ""), ""), false, false},
		{"oneOf branch added", `{"oneOf":[{"type":"string"}]}`, `{"oneOf":[{"type":"string"},{"type":"integer"}]}`, true, false},
		{"definitions via $ref widened", `{"$ref":"#/definitions/a","definitions":{"a":{"type":"integer"}}}`,
			`{"$ref":"#/definitions/a","definitions":{"a":{"type":"number"}}}`, true, false},
	})
}

func protoFile(body string) string {
	return "syntax = \"proto3\";\npackage weir.test;\n" + body
}

func TestProtobufCompatibility(t *testing.T) {
	const (
		user       = "message User { string name = 1; int32 age = 2; }"
		userAdded  = "message User { string name = 1; int32 age = 2; string email = 3; }"
		userNoAge  = "message User { string name = 1; }"
		reserved   = "message User { string name = 1; reserved 2; }"
		reused     = "message User { string name = 1; string age = 2; }"
		renamed    = "message User { string full_name = 1; int32 age = 2; }"
		age64      = "message User { string name = 1; int64 age = 2; }"
		repeated   = "message User { repeated string name = 1; int32 age = 2; }"
		inOneof    = "message User { oneof id { string name = 1; int32 age = 2; } }"
		oneOfOne   = "message User { oneof id { string name = 1; } int32 age = 2; }"
		withOrder  = "message User { string name = 1; int32 age = 2; }\nmessage Order { string id = 1; }"
		addrA      = "message A { string s = 1; }\nmessage B { string s = 1; }\nmessage User { A addr = 1; }"
		addrB      = "message A { string s = 1; }\nmessage B { string s = 1; }\nmessage User { B addr = 1; }"
		enumField  = "enum Color { RED = 0; GREEN = 1; }\nmessage User { Color c = 1; }"
		enumMore   = "enum Color { RED = 0; GREEN = 1; BLUE = 2; }\nmessage User { Color c = 1; }"
		nestedOld  = "message User { message Address { string zip = 1; } Address a = 1; }"
		nestedBad  = "message User { message Address { int32 zip = 1; } Address a = 1; }"
		otherPkg   = "syntax = \"proto3\";\npackage weir.other;\nmessage User { string name = 1; int32 age = 2; }"
		proto2Old  = "syntax = \"proto2\";\npackage weir.test;\nmessage User { optional string name = 1; }"
		proto2Req  = "syntax = \"proto2\";\npackage weir.test;\nmessage User { optional string name = 1; required int32 age = 2; }"
		mapField   = "message User { map<string, int32> tags = 1; }"
		mapChanged = "message User { map<string, string> tags = 1; }"
	)
	runCompat(t, Protobuf, []compatCase{
		{"identical", protoFile(user), protoFile(user), true, true},
		{"field added", protoFile(user), protoFile(userAdded), true, true},
		{"field removed", protoFile(user), protoFile(userNoAge), true, true},
		{"field removed and number reserved", protoFile(user), protoFile(reserved), true, true},
		{"reserved field number reused", protoFile(reserved), protoFile(reused), false, false},
		{"field number reused with another type", protoFile(user), protoFile(reused), false, false},
		{"field renamed", protoFile(user), protoFile(renamed), true, true},
		{"int32 to int64", protoFile(user), protoFile(age64), true, true},
		{"singular to repeated", protoFile(user), protoFile(repeated), false, false},
		{"fields moved into one new oneof", protoFile(user), protoFile(inOneof), false, true},
		{"one field moved into a new oneof", protoFile(user), protoFile(oneOfOne), true, true},
		{"message added", protoFile(user), protoFile(withOrder), true, false},
		{"message removed", protoFile(withOrder), protoFile(user), false, true},
		{"message field type changed", protoFile(addrA), protoFile(addrB), false, false},
		{"enum value added", protoFile(enumField), protoFile(enumMore), true, true},
		{"nested message field kind changed", protoFile(nestedOld), protoFile(nestedBad), false, false},
		{"package changed", protoFile(user), otherPkg, false, false},
		{"proto2 required field added", proto2Old, proto2Req, false, false},
		{"map value type changed", protoFile(mapField), protoFile(mapChanged), false, false},
	})
}

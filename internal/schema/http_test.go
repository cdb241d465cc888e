package schema

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// step is one request of the HTTP script.
type step struct {
	name        string
	method      string
	path        string
	body        string
	contentType string // default the registry's
	accept      string
	wantStatus  int
}

func body(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func reg(schema string, typ Type, refs ...Reference) string {
	m := map[string]any{"schema": schema}
	if typ != "" {
		m["schemaType"] = typ
	}
	if len(refs) > 0 {
		m["references"] = refs
	}
	return body(m)
}

// TestHTTPGolden runs a script of requests covering every route and every
// error code against the handler and compares the answers (status,
// content type, body) with testdata/http.golden; -update rewrites it.
func TestHTTPGolden(t *testing.T) {
	r := openRegistry(t, &memStore{})
	srv := httptest.NewServer(Handler(r, HandlerOptions{MaxBodyBytes: 64 << 10, Logger: quiet}))
	defer srv.Close()

	v1 := reg(userV1.Schema, "")
	v2 := reg(userV2.Schema, "")
	bad := reg(userBad.Schema, "")
	jsonV1 := reg(`{"type":"object","properties":{"n":{"type":"integer"}}}`, JSON)
	address := reg(`{"type":"record","name":"Address","namespace":"weir.test","fields":[{"name":"zip","type":"string"}]}`, "")
	withRef := reg(avroRecord(`{"name":"home","type":"weir.test.Address"}`), "", Reference{Name: "weir.test.Address", Subject: "address", Version: 1})
	proto := reg("syntax = \"proto3\";\npackage weir.test;\nmessage User { string name = 1; }", Protobuf)

	steps := []step{
		{name: "root", method: "GET", path: "/", wantStatus: 200},
		{name: "types", method: "GET", path: "/schemas/types", wantStatus: 200},
		{name: "no subjects yet", method: "GET", path: "/subjects", wantStatus: 200},
		{name: "register avro", method: "POST", path: "/subjects/users-value/versions", body: v1, wantStatus: 200},
		{name: "register the same schema again", method: "POST", path: "/subjects/users-value/versions", body: v1, wantStatus: 200},
		{name: "register v2", method: "POST", path: "/subjects/users-value/versions", body: v2, wantStatus: 200},
		{name: "register json", method: "POST", path: "/subjects/json-value/versions", body: jsonV1, contentType: "application/json", wantStatus: 200},
		{name: "register protobuf", method: "POST", path: "/subjects/proto-value/versions", body: proto, wantStatus: 200},
		{name: "subjects", method: "GET", path: "/subjects", wantStatus: 200},
		{name: "subjects by prefix", method: "GET", path: "/subjects?subjectPrefix=users", wantStatus: 200},
		{name: "versions", method: "GET", path: "/subjects/users-value/versions", wantStatus: 200},
		{name: "version 1", method: "GET", path: "/subjects/users-value/versions/1", wantStatus: 200},
		{name: "latest version", method: "GET", path: "/subjects/users-value/versions/latest", wantStatus: 200},
		{name: "json version shows its type", method: "GET", path: "/subjects/json-value/versions/-1", accept: "application/json", wantStatus: 200},
		{name: "raw schema by version", method: "GET", path: "/subjects/users-value/versions/1/schema", wantStatus: 200},
		{name: "schema by id", method: "GET", path: "/schemas/ids/1", wantStatus: 200},
		{name: "protobuf schema by id", method: "GET", path: "/schemas/ids/4", wantStatus: 200},
		{name: "raw schema by id", method: "GET", path: "/schemas/ids/1/schema", wantStatus: 200},
		{name: "subjects by id", method: "GET", path: "/schemas/ids/1/subjects", wantStatus: 200},
		{name: "versions by id", method: "GET", path: "/schemas/ids/2/versions", wantStatus: 200},
		{name: "all schemas, latest only", method: "GET", path: "/schemas?latestOnly=true&subjectPrefix=users", wantStatus: 200},
		{name: "lookup", method: "POST", path: "/subjects/users-value", body: v1, wantStatus: 200},
		{name: "lookup with trailing slash", method: "POST", path: "/subjects/users-value/", body: v2, wantStatus: 200},
		{name: "lookup unknown schema", method: "POST", path: "/subjects/users-value", body: reg(`"string"`, ""), wantStatus: 404},
		{name: "lookup unknown subject", method: "POST", path: "/subjects/nope", body: v1, wantStatus: 404},
		{name: "compatible", method: "POST", path: "/compatibility/subjects/users-value/versions/latest", body: v2, wantStatus: 200},
		{name: "incompatible, verbose", method: "POST", path: "/compatibility/subjects/users-value/versions/latest?verbose=true", body: bad, wantStatus: 200},
		{name: "incompatible against all by level", method: "POST", path: "/compatibility/subjects/users-value/versions", body: bad, wantStatus: 200},
		{name: "compatibility of unknown subject version", method: "POST", path: "/compatibility/subjects/nope/versions/1", body: v1, wantStatus: 404},
		{name: "register incompatible", method: "POST", path: "/subjects/users-value/versions", body: bad, wantStatus: 409},
		{name: "register invalid avro", method: "POST", path: "/subjects/users-value/versions", body: reg(`{"type":"record","name":"X","fields":[{"name":"a"}]}`, ""), wantStatus: 422},
		{name: "register invalid json schema", method: "POST", path: "/subjects/j2/versions", body: reg(`{"type":12}`, JSON), wantStatus: 422},
		{name: "register invalid protobuf", method: "POST", path: "/subjects/p2/versions", body: reg(`message {`, Protobuf), wantStatus: 422},
		{name: "register unknown type", method: "POST", path: "/subjects/x/versions", body: reg(`x`, "XML"), wantStatus: 422},
		{name: "subject not found", method: "GET", path: "/subjects/nope/versions", wantStatus: 404},
		{name: "version not found", method: "GET", path: "/subjects/users-value/versions/9", wantStatus: 404},
		{name: "schema not found", method: "GET", path: "/schemas/ids/77", wantStatus: 404},
		{name: "invalid version", method: "GET", path: "/subjects/users-value/versions/0", wantStatus: 422},
		{name: "global config", method: "GET", path: "/config", wantStatus: 200},
		{name: "invalid compatibility level", method: "PUT", path: "/config", body: `{"compatibility":"SIDEWAYS"}`, wantStatus: 422},
		{name: "set subject config", method: "PUT", path: "/config/users-value", body: `{"compatibility":"full"}`, wantStatus: 200},
		{name: "subject config", method: "GET", path: "/config/users-value", wantStatus: 200},
		{name: "delete subject config", method: "DELETE", path: "/config/users-value", wantStatus: 200},
		{name: "subject config not configured", method: "GET", path: "/config/users-value", wantStatus: 404},
		{name: "subject config defaulting to global", method: "GET", path: "/config/users-value?defaultToGlobal=true", wantStatus: 200},
		{name: "set global config", method: "PUT", path: "/config", body: `{"compatibility":"NONE"}`, wantStatus: 200},
		{name: "reset global config", method: "DELETE", path: "/config", wantStatus: 200},
		{name: "register referenced schema", method: "POST", path: "/subjects/address/versions", body: address, wantStatus: 200},
		{name: "register with a reference", method: "POST", path: "/subjects/with-ref/versions", body: withRef, wantStatus: 200},
		{name: "schema by id with references", method: "GET", path: "/schemas/ids/6", wantStatus: 200},
		{name: "referenced by", method: "GET", path: "/subjects/address/versions/1/referencedby", wantStatus: 200},
		{name: "delete a referenced version", method: "DELETE", path: "/subjects/address/versions/1", wantStatus: 422},
		{name: "hard delete before soft delete", method: "DELETE", path: "/subjects/users-value/versions/1?permanent=true", wantStatus: 404},
		{name: "soft delete version", method: "DELETE", path: "/subjects/users-value/versions/1", wantStatus: 200},
		{name: "soft delete version again", method: "DELETE", path: "/subjects/users-value/versions/1", wantStatus: 404},
		{name: "versions including deleted", method: "GET", path: "/subjects/users-value/versions?deleted=true", wantStatus: 200},
		{name: "hard delete version", method: "DELETE", path: "/subjects/users-value/versions/1?permanent=true", wantStatus: 200},
		{name: "hard delete subject before soft delete", method: "DELETE", path: "/subjects/json-value?permanent=true", wantStatus: 404},
		{name: "soft delete subject", method: "DELETE", path: "/subjects/json-value", wantStatus: 200},
		{name: "soft delete subject again", method: "DELETE", path: "/subjects/json-value", wantStatus: 404},
		{name: "deleted subjects", method: "GET", path: "/subjects?deletedOnly=true", wantStatus: 200},
		{name: "hard delete subject", method: "DELETE", path: "/subjects/json-value?permanent=true", wantStatus: 200},
		{name: "global mode", method: "GET", path: "/mode", wantStatus: 200},
		{name: "invalid mode", method: "PUT", path: "/mode", body: `{"mode":"SIDEWAYS"}`, wantStatus: 422},
		{name: "import needs an empty registry", method: "PUT", path: "/mode", body: `{"mode":"IMPORT"}`, wantStatus: 422},
		{name: "register with an id outside import mode", method: "POST", path: "/subjects/users-value/versions", body: `{"schema":"\"int\"","id":50}`, wantStatus: 422},
		{name: "set read-only", method: "PUT", path: "/mode", body: `{"mode":"READONLY"}`, wantStatus: 200},
		{name: "register while read-only", method: "POST", path: "/subjects/users-value/versions", body: v2, wantStatus: 422},
		{name: "subject mode not configured", method: "GET", path: "/mode/users-value", wantStatus: 404},
		{name: "reset mode", method: "DELETE", path: "/mode", wantStatus: 200},
		{name: "subject with an escaped slash", method: "POST", path: "/subjects/team%2Forders-value/versions", body: reg(`"string"`, ""), wantStatus: 200},
		{name: "get subject with an escaped slash", method: "GET", path: "/subjects/team%2Forders-value/versions/latest", wantStatus: 200},
		{name: "invalid subject", method: "POST", path: "/subjects/a%01b/versions", body: v1, wantStatus: 422},
		{name: "malformed JSON body", method: "POST", path: "/subjects/users-value/versions", body: `{"schema":`, wantStatus: 400},
		{name: "wrongly typed JSON body", method: "POST", path: "/subjects/users-value/versions", body: `{"schema":5}`, wantStatus: 422},
		{name: "unsupported content type", method: "POST", path: "/subjects/users-value/versions", body: v1, contentType: "text/plain", wantStatus: 415},
		{name: "body too large", method: "POST", path: "/subjects/users-value/versions", body: reg(strings.Repeat(" ", 70<<10)+`"int"`, ""), wantStatus: 413},
		{name: "unknown path", method: "GET", path: "/nope", wantStatus: 404},
		{name: "method not allowed", method: "PATCH", path: "/subjects", wantStatus: 405},
		{name: "bad id", method: "GET", path: "/schemas/ids/abc", wantStatus: 404},
	}

	var out bytes.Buffer
	for _, s := range steps {
		req, err := http.NewRequest(s.method, srv.URL+s.path, strings.NewReader(s.body))
		if err != nil {
			t.Fatal(err)
		}
		ct := s.contentType
		if ct == "" {
			ct = ContentType
		}
		if s.body != "" {
			req.Header.Set("Content-Type", ct)
		}
		if s.accept != "" {
			req.Header.Set("Accept", s.accept)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var rb bytes.Buffer
		_, _ = rb.ReadFrom(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != s.wantStatus {
			t.Errorf("%s: status %d, want %d: %s", s.name, resp.StatusCode, s.wantStatus, rb.String())
		}
		if resp.StatusCode >= 400 {
			var e errorBody
			if err := json.Unmarshal(rb.Bytes(), &e); err != nil || e.ErrorCode == 0 || e.Message == "" {
				t.Errorf("%s: error body %q is not {error_code, message}", s.name, rb.String())
			}
		}
		reqBody := s.body
		if len(reqBody) > 200 {
			reqBody = reqBody[:60] + fmt.Sprintf("… (%d bytes)", len(s.body))
		}
		fmt.Fprintf(&out, "=== %s\n> %s %s\n", s.name, s.method, s.path)
		if reqBody != "" {
			fmt.Fprintf(&out, "> %s\n", reqBody)
		}
		fmt.Fprintf(&out, "< %d %s\n< %s\n\n", resp.StatusCode, resp.Header.Get("Content-Type"), rb.String())
	}

	golden := filepath.Join("testdata", "http.golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, out.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got := out.String(); got != string(want) {
		gl, wl := strings.Split(got, "\n"), strings.Split(string(want), "\n")
		for i := 0; i < len(gl) && i < len(wl); i++ {
			if gl[i] != wl[i] {
				t.Fatalf("output differs from %s at line %d:\n got: %s\nwant: %s\n(run with -update to accept)", golden, i+1, gl[i], wl[i])
			}
		}
		t.Fatalf("output differs from %s in length (%d vs %d lines)", golden, len(gl), len(wl))
	}
}

package schema

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
)

// memStore is an in-memory Store; fail, when set, fails appends.
type memStore struct {
	mu   sync.Mutex
	recs []Record
	fail error
}

func (m *memStore) Append(_ context.Context, recs []Record) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return m.fail
	}
	m.recs = append(m.recs, recs...)
	return nil
}

func (m *memStore) Load(fn func(Record) error) error {
	m.mu.Lock()
	recs := slices.Clone(m.recs)
	m.mu.Unlock()
	for _, r := range recs {
		if err := fn(r); err != nil {
			return err
		}
	}
	return nil
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func openRegistry(t *testing.T, st *memStore) *Registry {
	t.Helper()
	r, err := Open(Options{Store: st, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func mustRegister(t *testing.T, r *Registry, subject string, s Schema) Version {
	t.Helper()
	v, err := r.Register(context.Background(), subject, s, RegisterOptions{})
	if err != nil {
		t.Fatalf("register %s: %v", subject, err)
	}
	return v
}

func wantCode(t *testing.T, err error, code int) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want code %d", code)
	}
	if got := ErrorCode(err); got != code {
		t.Fatalf("got code %d (%v), want %d", got, err, code)
	}
}

var (
	userV1 = Schema{Schema: avroRecord(`{"name":"name","type":"string"}`)}
	userV2 = Schema{Schema: avroRecord(`{"name":"name","type":"string"},{"name":"age","type":"int","default":0}`)}
	userV3 = Schema{Schema: avroRecord(`{"name":"name","type":"string"},{"name":"age","type":"int","default":0},{"name":"email","type":"string","default":""}`)}
	// userBad adds a field without a default: not BACKWARD compatible.
	userBad = Schema{Schema: avroRecord(`{"name":"name","type":"string"},{"name":"zip","type":"string"}`)}
)

func TestRegisterIDsAndVersions(t *testing.T) {
	r := openRegistry(t, &memStore{})
	v1 := mustRegister(t, r, "users-value", userV1)
	if v1.ID != 1 || v1.Version != 1 {
		t.Fatalf("first registration = id %d version %d, want 1/1", v1.ID, v1.Version)
	}
	// The same schema, written differently, is the same schema.
	again := mustRegister(t, r, "users-value", Schema{Type: Avro, Schema: "{ \"namespace\": \"weir.test\", \"type\": \"record\", \"name\": \"User\",\n \"fields\": [ {\"type\": \"string\", \"name\": \"name\"} ] }"})
	if again.ID != 1 || again.Version != 1 {
		t.Fatalf("re-registration = id %d version %d, want the existing 1/1", again.ID, again.Version)
	}
	v2 := mustRegister(t, r, "users-value", userV2)
	if v2.ID != 2 || v2.Version != 2 {
		t.Fatalf("second version = id %d version %d, want 2/2", v2.ID, v2.Version)
	}
	// Another subject reuses the id of an identical schema.
	other := mustRegister(t, r, "people-value", userV1)
	if other.ID != 1 || other.Version != 1 {
		t.Fatalf("other subject = id %d version %d, want 1/1", other.ID, other.Version)
	}
	subs, err := r.SubjectsByID(1, false)
	if err != nil || !slices.Equal(subs, []string{"people-value", "users-value"}) {
		t.Fatalf("subjects of id 1 = %v, %v", subs, err)
	}
	if got := r.Subjects("", false, false); !slices.Equal(got, []string{"people-value", "users-value"}) {
		t.Fatalf("subjects = %v", got)
	}
	latest, err := r.GetVersion("users-value", "latest", false)
	if err != nil || latest.Version != 2 || latest.ID != 2 {
		t.Fatalf("latest = %+v, %v", latest, err)
	}
	if _, err := r.SchemaByID(99); ErrorCode(err) != CodeSchemaNotFound {
		t.Fatalf("unknown id: %v", err)
	}
	_, err = r.GetVersion("users-value", "7", false)
	wantCode(t, err, CodeVersionNotFound)
	_, err = r.GetVersion("nope", "1", false)
	wantCode(t, err, CodeSubjectNotFound)
	for _, bad := range []string{"0", "-2", "x", "2147483648"} {
		_, err = r.GetVersion("users-value", bad, false)
		wantCode(t, err, CodeInvalidVersion)
	}
}

func TestRegisterRejects(t *testing.T) {
	ctx := context.Background()
	r := openRegistry(t, &memStore{})
	mustRegister(t, r, "s", userV1)
	_, err := r.Register(ctx, "s", userBad, RegisterOptions{})
	wantCode(t, err, CodeIncompatibleSchema)
	_, err = r.Register(ctx, "s", Schema{Schema: `{"type":"record"`}, RegisterOptions{})
	wantCode(t, err, CodeInvalidSchema)
	_, err = r.Register(ctx, "s", Schema{Type: "XML", Schema: `<a/>`}, RegisterOptions{})
	wantCode(t, err, CodeInvalidSchema)
	_, err = r.Register(ctx, "s", Schema{Type: JSON, Schema: `{"type":"object"}`}, RegisterOptions{})
	wantCode(t, err, CodeIncompatibleSchema) // the type changed
	_, err = r.Register(ctx, "", userV1, RegisterOptions{})
	wantCode(t, err, CodeInvalidSubject)
	_, err = r.Register(ctx, "s", userV2, RegisterOptions{ID: 50})
	wantCode(t, err, CodeOperationNotPermitted)

	// NONE accepts anything; the subject level overrides the global one.
	if err := r.SetConfig(ctx, "s", None); err != nil {
		t.Fatal(err)
	}
	if v := mustRegister(t, r, "s", userBad); v.Version != 2 {
		t.Fatalf("version = %d", v.Version)
	}
	if err := r.SetConfig(ctx, "s", "SIDEWAYS"); ErrorCode(err) != CodeInvalidCompatibilityLevel {
		t.Fatalf("bad level: %v", err)
	}
}

func TestTransitiveLevels(t *testing.T) {
	ctx := context.Background()
	mk := func(typ string) Schema { return Schema{Schema: avroRecord(`{"name":"n","type":"` + typ + `"}`)} }

	// FORWARD: old schemas must read new data. long (v1) reads int (v2);
	// float (v3) is readable by neither long nor int.
	r := openRegistry(t, &memStore{})
	if err := r.SetConfig(ctx, "", Forward); err != nil {
		t.Fatal(err)
	}
	mustRegister(t, r, "t", mk("long"))
	mustRegister(t, r, "t", mk("int"))
	if err := r.SetConfig(ctx, "t", ForwardTransitive); err != nil {
		t.Fatal(err)
	}
	_, err := r.Register(ctx, "t", mk("float"), RegisterOptions{})
	wantCode(t, err, CodeIncompatibleSchema)

	// BACKWARD vs BACKWARD_TRANSITIVE: v1 has a string b, v2 drops it,
	// v3 brings b back as an int with a default. v3 reads v2's data, but
	// not v1's (string b can not be read as int).
	r2 := openRegistry(t, &memStore{})
	a := `{"name":"a","type":"string"}`
	mustRegister(t, r2, "u", Schema{Schema: avroRecord(a + `,{"name":"b","type":"string"}`)})
	mustRegister(t, r2, "u", Schema{Schema: avroRecord(a)})
	v3 := Schema{Schema: avroRecord(a + `,{"name":"b","type":"int","default":0}`)}
	msgs, err := r2.CheckCompatibility("u", "", v3)
	if err != nil || len(msgs) != 0 {
		t.Fatalf("BACKWARD against the latest: %v %v", msgs, err)
	}
	if err := r2.SetConfig(ctx, "u", BackwardTransitive); err != nil {
		t.Fatal(err)
	}
	msgs, err = r2.CheckCompatibility("u", "", v3)
	if err != nil || len(msgs) == 0 {
		t.Fatalf("BACKWARD_TRANSITIVE should find v1's string b: %v %v", msgs, err)
	}
	_, err = r2.Register(ctx, "u", v3, RegisterOptions{})
	wantCode(t, err, CodeIncompatibleSchema)
	msgs, err = r2.CheckCompatibility("u", "2", v3)
	if err != nil || len(msgs) != 0 {
		t.Fatalf("against version 2 only: %v %v", msgs, err)
	}
	_, err = r2.CheckCompatibility("nope", "latest", v3)
	wantCode(t, err, CodeSubjectNotFound)

	// FULL_TRANSITIVE on Protobuf: a field number reused with another
	// type two versions later.
	r3 := openRegistry(t, &memStore{})
	if err := r3.SetConfig(ctx, "", FullTransitive); err != nil {
		t.Fatal(err)
	}
	proto := func(body string) Schema { return Schema{Type: Protobuf, Schema: protoFile(body)} }
	mustRegister(t, r3, "p", proto("message M { string a = 1; string b = 2; }"))
	mustRegister(t, r3, "p", proto("message M { string a = 1; }"))
	_, err = r3.Register(ctx, "p", proto("message M { string a = 1; int64 b = 2; }"), RegisterOptions{})
	wantCode(t, err, CodeIncompatibleSchema)
}

func TestDeleteRules(t *testing.T) {
	ctx := context.Background()
	r := openRegistry(t, &memStore{})
	mustRegister(t, r, "s", userV1)
	mustRegister(t, r, "s", userV2)
	mustRegister(t, r, "s", userV3)

	_, err := r.DeleteVersion(ctx, "s", "2", true)
	wantCode(t, err, CodeVersionNotSoftDeleted)
	if v, err := r.DeleteVersion(ctx, "s", "2", false); err != nil || v != 2 {
		t.Fatalf("soft delete = %d, %v", v, err)
	}
	_, err = r.DeleteVersion(ctx, "s", "2", false)
	wantCode(t, err, CodeVersionSoftDeleted)
	if vs, _ := r.Versions("s", false, false); !slices.Equal(vs, []int{1, 3}) {
		t.Fatalf("versions = %v", vs)
	}
	if vs, _ := r.Versions("s", true, false); !slices.Equal(vs, []int{1, 2, 3}) {
		t.Fatalf("versions with deleted = %v", vs)
	}
	// A soft-deleted schema is still served by id (consumers need it).
	if _, err := r.SchemaByID(2); err != nil {
		t.Fatal(err)
	}
	if v, err := r.DeleteVersion(ctx, "s", "2", true); err != nil || v != 2 {
		t.Fatalf("hard delete = %d, %v", v, err)
	}
	_, err = r.SchemaByID(2)
	wantCode(t, err, CodeSchemaNotFound)

	_, err = r.DeleteSubject(ctx, "s", true)
	wantCode(t, err, CodeSubjectNotSoftDeleted)
	if vs, err := r.DeleteSubject(ctx, "s", false); err != nil || !slices.Equal(vs, []int{1, 3}) {
		t.Fatalf("soft delete subject = %v, %v", vs, err)
	}
	_, err = r.DeleteSubject(ctx, "s", false)
	wantCode(t, err, CodeSubjectSoftDeleted)
	if got := r.Subjects("", false, false); len(got) != 0 {
		t.Fatalf("subjects = %v", got)
	}
	if got := r.Subjects("", false, true); !slices.Equal(got, []string{"s"}) {
		t.Fatalf("deleted-only subjects = %v", got)
	}
	// Re-registering after a soft delete makes a new version, same id.
	v := mustRegister(t, r, "s", userV3)
	if v.Version != 4 || v.ID != 3 {
		t.Fatalf("after soft delete: %+v", v)
	}
	if _, err := r.DeleteSubject(ctx, "s", false); err != nil {
		t.Fatal(err)
	}
	if vs, err := r.DeleteSubject(ctx, "s", true); err != nil || !slices.Equal(vs, []int{1, 3, 4}) {
		t.Fatalf("hard delete subject = %v, %v", vs, err)
	}
	_, err = r.DeleteSubject(ctx, "s", false)
	wantCode(t, err, CodeSubjectNotFound)
	// Ids are never reused, even after every schema was hard-deleted.
	if v := mustRegister(t, r, "s2", Schema{Schema: `"string"`}); v.ID != 4 {
		t.Fatalf("id after hard deletes = %d, want 4", v.ID)
	}
}

func TestReferences(t *testing.T) {
	ctx := context.Background()
	r := openRegistry(t, &memStore{})
	mustRegister(t, r, "address", Schema{Schema: `{"type":"record","name":"Address","namespace":"weir.test","fields":[{"name":"zip","type":"string"}]}`})
	user := Schema{
		Schema:     avroRecord(`{"name":"name","type":"string"},{"name":"home","type":"weir.test.Address"}`),
		References: []Reference{{Name: "weir.test.Address", Subject: "address", Version: 1}},
	}
	v := mustRegister(t, r, "user", user)
	ids, err := r.ReferencedBy("address", "1", false)
	if err != nil || !slices.Equal(ids, []int{v.ID}) {
		t.Fatalf("referenced by = %v, %v", ids, err)
	}
	// Without the reference the named type is unknown.
	_, err = r.Register(ctx, "user2", Schema{Schema: user.Schema}, RegisterOptions{})
	wantCode(t, err, CodeInvalidSchema)
	_, err = r.Register(ctx, "user2", Schema{Schema: user.Schema, References: []Reference{{Name: "x", Subject: "address", Version: 9}}}, RegisterOptions{})
	wantCode(t, err, CodeInvalidSchema)
	// A referenced version may not be deleted.
	_, err = r.DeleteVersion(ctx, "address", "1", false)
	wantCode(t, err, CodeReferenceExists)

	// JSON Schema: $ref by reference name.
	mustRegister(t, r, "zip.json", Schema{Type: JSON, Schema: `{"type":"string","pattern":"^[0-9]{5}$"}`})
	js := Schema{Type: JSON, Schema: `{"type":"object","properties":{"zip":{"$ref":"zip.json"}}}`,
		References: []Reference{{Name: "zip.json", Subject: "zip.json", Version: 1}}}
	jv := mustRegister(t, r, "customer", js)
	if err := r.CheckRecord("customer", wire(jv.ID, []byte(`{"zip":"12345"}`)), true); err != nil {
		t.Fatal(err)
	}
	if err := r.CheckRecord("customer", wire(jv.ID, []byte(`{"zip":"1x"}`)), true); err == nil {
		t.Fatal("a zip not matching the referenced pattern passed")
	}

	// Protobuf: import by reference name.
	mustRegister(t, r, "common.proto", Schema{Type: Protobuf, Schema: "syntax = \"proto3\";\npackage common;\nmessage Money { int64 cents = 1; }"})
	ps := Schema{Type: Protobuf, Schema: "syntax = \"proto3\";\npackage shop;\nimport \"common.proto\";\nimport \"google/protobuf/timestamp.proto\";\n" +
		"message Order { common.Money total = 1; google.protobuf.Timestamp at = 2; }",
		References: []Reference{{Name: "common.proto", Subject: "common.proto", Version: 1}}}
	mustRegister(t, r, "order", ps)
}

func wire(id int, payload []byte) []byte {
	b := make([]byte, 5, 5+len(payload))
	binary.BigEndian.PutUint32(b[1:], uint32(id))
	return append(b, payload...)
}

func TestCheckRecord(t *testing.T) {
	r := openRegistry(t, &memStore{})
	av := mustRegister(t, r, "t-value", Schema{Schema: `{"type":"record","name":"R","fields":[{"name":"n","type":"int"},{"name":"s","type":"string"}]}`})
	jv := mustRegister(t, r, "j-value", Schema{Type: JSON, Schema: `{"type":"object","properties":{"n":{"type":"integer"}},"required":["n"]}`})
	pv := mustRegister(t, r, "p-value", Schema{Type: Protobuf, Schema: "syntax = \"proto3\";\nmessage A { int32 n = 1; }\nmessage B { string s = 1; }"})
	avroOK := []byte{0x04, 0x02, 'h'} // n=2, s="h"
	for _, c := range []struct {
		name    string
		subject string
		data    []byte
		full    bool
		wantErr string
	}{
		{"valid id", "t-value", wire(av.ID, avroOK), false, ""},
		{"valid avro payload", "t-value", wire(av.ID, avroOK), true, ""},
		{"no magic byte", "t-value", []byte("hello world"), false, "magic byte"},
		{"too short", "t-value", []byte{0, 0, 1}, false, "magic byte"},
		{"unknown id", "t-value", wire(999, avroOK), false, "schema id 999 is not registered"},
		{"wrong subject", "t-value", wire(jv.ID, avroOK), false, "not registered under subject 't-value'"},
		{"avro payload truncated", "t-value", wire(av.ID, avroOK[:2]), true, "ends early"},
		{"avro payload with trailing bytes", "t-value", wire(av.ID, append(slices.Clone(avroOK), 9)), true, "bytes left"},
		{"malformed payload unchecked without full", "t-value", wire(av.ID, []byte{0xff}), false, ""},
		{"valid json", "j-value", wire(jv.ID, []byte(`{"n":1}`)), true, ""},
		{"json missing required", "j-value", wire(jv.ID, []byte(`{}`)), true, "payload does not match"},
		{"json not json", "j-value", wire(jv.ID, []byte(`{`)), true, "payload does not match"},
		{"protobuf first message", "p-value", wire(pv.ID, []byte{0, 0x08, 0x01}), true, ""},
		{"protobuf second message", "p-value", wire(pv.ID, []byte{2, 2, 0x0a, 0x01, 'x'}), true, ""},
		{"protobuf bad index", "p-value", wire(pv.ID, []byte{2, 8}), true, "out of range"},
		{"protobuf malformed", "p-value", wire(pv.ID, []byte{0, 0x08}), true, "payload does not match"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := r.CheckRecord(c.subject, c.data, c.full)
			switch {
			case c.wantErr == "" && err != nil:
				t.Fatalf("unexpected error %v", err)
			case c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)):
				t.Fatalf("error %v, want one containing %q", err, c.wantErr)
			}
		})
	}
}

func TestRestartKeepsState(t *testing.T) {
	ctx := context.Background()
	st := &memStore{}
	r := openRegistry(t, st)
	mustRegister(t, r, "a", userV1)
	mustRegister(t, r, "a", userV2)
	mustRegister(t, r, "b", Schema{Type: JSON, Schema: `{"type":"string"}`})
	if _, err := r.DeleteVersion(ctx, "a", "1", false); err != nil {
		t.Fatal(err)
	}
	if err := r.SetConfig(ctx, "b", Full); err != nil {
		t.Fatal(err)
	}
	if err := r.SetMode(ctx, "a", ReadOnly, false); err != nil {
		t.Fatal(err)
	}

	r2 := openRegistry(t, st)
	if v, err := r2.GetVersion("a", "latest", false); err != nil || v.ID != 2 || v.Version != 2 {
		t.Fatalf("after restart: %+v %v", v, err)
	}
	if vs, _ := r2.Versions("a", false, false); !slices.Equal(vs, []int{2}) {
		t.Fatalf("versions after restart = %v", vs)
	}
	if l, _ := r2.Config("b", false); l != Full {
		t.Fatalf("level after restart = %s", l)
	}
	_, err := r2.Register(ctx, "a", userV3, RegisterOptions{})
	wantCode(t, err, CodeOperationNotPermitted)
	if v := mustRegister(t, r2, "c", Schema{Schema: `"long"`}); v.ID != 4 {
		t.Fatalf("next id after restart = %d, want 4", v.ID)
	}
}

func TestConcurrentRegistrationsGetDistinctIDs(t *testing.T) {
	r := openRegistry(t, &memStore{})
	if err := r.SetConfig(context.Background(), "", None); err != nil {
		t.Fatal(err)
	}
	const n = 40
	ids := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			v, err := r.Register(context.Background(), fmt.Sprintf("s%d", i%4),
				Schema{Schema: fmt.Sprintf(`{"type":"fixed","name":"F%d","size":%d}`, i, i+1)}, RegisterOptions{})
			if err != nil {
				t.Error(err)
				return
			}
			ids[i] = v.ID
		})
	}
	wg.Wait()
	seen := map[int]bool{}
	for _, id := range ids {
		if id == 0 || seen[id] {
			t.Fatalf("id %d handed out twice: %v", id, ids)
		}
		seen[id] = true
	}
}

func TestStoreFailureLeavesStateUnchanged(t *testing.T) {
	st := &memStore{}
	r := openRegistry(t, st)
	mustRegister(t, r, "a", userV1)
	st.fail = errors.New("disk on fire")
	_, err := r.Register(context.Background(), "a", userV2, RegisterOptions{})
	wantCode(t, err, CodeStoreError)
	st.fail = nil
	if vs, _ := r.Versions("a", false, false); !slices.Equal(vs, []int{1}) {
		t.Fatalf("versions = %v", vs)
	}
	if v := mustRegister(t, r, "a", userV2); v.ID != 2 || v.Version != 2 {
		t.Fatalf("after recovery: %+v", v)
	}
}

func TestModes(t *testing.T) {
	ctx := context.Background()
	r := openRegistry(t, &memStore{})
	mustRegister(t, r, "a", userV1)
	if err := r.SetMode(ctx, "", Import, false); ErrorCode(err) != CodeOperationNotPermitted {
		t.Fatalf("IMPORT on a non-empty registry without force: %v", err)
	}
	if err := r.SetMode(ctx, "", Import, true); err != nil {
		t.Fatal(err)
	}
	// IMPORT keeps ids and versions given, and skips compatibility.
	v, err := r.Register(ctx, "imported", userBad, RegisterOptions{ID: 100, Version: 7})
	if err != nil || v.ID != 100 || v.Version != 7 {
		t.Fatalf("import = %+v, %v", v, err)
	}
	_, err = r.Register(ctx, "imported2", userV3, RegisterOptions{ID: 100})
	wantCode(t, err, CodeIDDoesNotMatch)
	if prev, err := r.DeleteMode(ctx, ""); err != nil || prev != Import {
		t.Fatalf("delete mode = %s, %v", prev, err)
	}
	if v := mustRegister(t, r, "next", Schema{Schema: `"boolean"`}); v.ID != 101 {
		t.Fatalf("id after import = %d, want 101", v.ID)
	}
	if _, err := ParseMode("sideways"); ErrorCode(err) != CodeInvalidMode {
		t.Fatalf("bad mode: %v", err)
	}
	_, err = r.Mode("a", false)
	wantCode(t, err, CodeSubjectModeNotConfigured)
	_, err = r.Config("a", false)
	wantCode(t, err, CodeSubjectCompatNotConfigured)
}

package schema

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
)

// Options configure a Registry.
type Options struct {
	// Store persists the registry; required.
	Store Store
	// Logger; default slog.Default().
	Logger *slog.Logger
	// DefaultLevel is the global compatibility level until one is set;
	// default BACKWARD.
	DefaultLevel Level
}

// Registry is the schema registry's state and operations. It is safe for
// concurrent use.
type Registry struct {
	store        Store
	log          *slog.Logger
	defaultLevel Level

	// wmu serialises writers across the store append, so ids and versions
	// are decided and stored one change at a time.
	wmu sync.Mutex
	// mu guards st; readers hold it only for the in-memory lookups.
	mu sync.RWMutex
	st *state
}

// state is the replay of the stored records.
type state struct {
	schemas  map[int]*schemaRec
	byKey    map[string]int
	subjects map[string]*subjectRec
	nextID   int
	level    Level // global; "" means the registry default
	mode     Mode  // global; "" means READWRITE
}

// schemaRec is one schema (one id), shared by every version using it.
type schemaRec struct {
	id    int
	typ   Type
	text  string
	refs  []Reference
	key   string // identity: type, canonical text, references
	p     parsed // nil if the stored schema no longer parses
	perr  error
	users int // versions (soft-deleted included) using it
}

type versionRec struct {
	version int
	schema  *schemaRec
	deleted bool
}

type subjectRec struct {
	versions []*versionRec // by version
	level    Level
	mode     Mode
}

func newState() *state {
	return &state{schemas: map[int]*schemaRec{}, byKey: map[string]int{}, subjects: map[string]*subjectRec{}, nextID: 1}
}

// Open replays the store and returns the registry.
func Open(opts Options) (*Registry, error) {
	if opts.Store == nil {
		return nil, errors.New("schema: Options.Store is required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.DefaultLevel == "" {
		opts.DefaultLevel = DefaultLevel
	}
	if _, err := ParseLevel(string(opts.DefaultLevel)); err != nil {
		return nil, fmt.Errorf("schema: default level %q: %w", opts.DefaultLevel, err)
	}
	r := &Registry{store: opts.Store, log: opts.Logger, defaultLevel: opts.DefaultLevel}
	st, err := r.load()
	if err != nil {
		return nil, err
	}
	r.st = st
	return r, nil
}

func (r *Registry) load() (*state, error) {
	st := newState()
	n := 0
	err := r.store.Load(func(rec Record) error {
		n++
		if err := st.apply(rec, nil); err != nil {
			r.log.Warn("schema: skipping stored record", "key", string(rec.Key), "err", err)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("schema: load: %w", err)
	}
	r.log.Debug("schema: loaded", "records", n, "schemas", len(st.schemas), "subjects", len(st.subjects))
	return st, nil
}

// write stores recs and applies them. The caller holds wmu. hint carries
// the already-parsed schema a SCHEMA record introduces.
func (r *Registry) write(ctx context.Context, recs []Record, hint *schemaRec) error {
	if err := r.store.Append(ctx, recs); err != nil {
		// The records may or may not be stored: rebuild memory from the
		// store so it matches whatever is there.
		if st, lerr := r.load(); lerr == nil {
			r.mu.Lock()
			r.st = st
			r.mu.Unlock()
		}
		return errStore(err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rec := range recs {
		if err := r.st.apply(rec, hint); err != nil {
			r.log.Error("schema: applying a stored record", "key", string(rec.Key), "err", err)
		}
	}
	return nil
}

// apply changes st by one record. hint, when it has the record's id,
// supplies the parsed schema.
func (st *state) apply(rec Record, hint *schemaRec) error {
	var k recordKey
	if err := json.Unmarshal(rec.Key, &k); err != nil {
		return fmt.Errorf("bad key: %w", err)
	}
	subject := ""
	if k.Subject != nil {
		subject = *k.Subject
	}
	switch k.KeyType {
	case keySchema:
		if rec.Value == nil {
			st.removeVersion(subject, k.Version)
			return nil
		}
		var v schemaValue
		if err := json.Unmarshal(rec.Value, &v); err != nil {
			return fmt.Errorf("bad schema value: %w", err)
		}
		return st.putVersion(v, hint)
	case keyConfig:
		var l Level
		if rec.Value != nil {
			var v configValue
			if err := json.Unmarshal(rec.Value, &v); err != nil {
				return fmt.Errorf("bad config value: %w", err)
			}
			if _, err := ParseLevel(string(v.CompatibilityLevel)); err != nil {
				return err
			}
			l = v.CompatibilityLevel
		}
		if subject == "" {
			st.level = l
		} else {
			st.subject(subject).level = l
			st.dropIfEmpty(subject)
		}
	case keyMode:
		var m Mode
		if rec.Value != nil {
			var v modeValue
			if err := json.Unmarshal(rec.Value, &v); err != nil {
				return fmt.Errorf("bad mode value: %w", err)
			}
			if _, err := ParseMode(string(v.Mode)); err != nil {
				return err
			}
			m = v.Mode
		}
		if subject == "" {
			st.mode = m
		} else {
			st.subject(subject).mode = m
			st.dropIfEmpty(subject)
		}
	case keyMaxID:
		if rec.Value != nil {
			var v maxIDValue
			if err := json.Unmarshal(rec.Value, &v); err != nil {
				return fmt.Errorf("bad max id value: %w", err)
			}
			if v.ID >= st.nextID {
				st.nextID = v.ID + 1
			}
		}
	default:
		// Other Confluent key types (NOOP, DELETE_SUBJECT, CLEAR_SUBJECT…)
		// carry nothing the SCHEMA records do not.
	}
	return nil
}

func (st *state) subject(name string) *subjectRec {
	s := st.subjects[name]
	if s == nil {
		s = &subjectRec{}
		st.subjects[name] = s
	}
	return s
}

func (st *state) dropIfEmpty(name string) {
	if s := st.subjects[name]; s != nil && len(s.versions) == 0 && s.level == "" && s.mode == "" {
		delete(st.subjects, name)
	}
}

func (st *state) putVersion(v schemaValue, hint *schemaRec) error {
	if v.Subject == "" || v.Version < 1 || v.ID < 1 {
		return fmt.Errorf("schema record for %q version %d id %d is incomplete", v.Subject, v.Version, v.ID)
	}
	typ, err := parseType(string(v.Type))
	if err != nil {
		return err
	}
	sr := st.schemas[v.ID]
	if sr == nil {
		if hint != nil && hint.id == v.ID {
			sr = hint
		} else {
			sr = &schemaRec{id: v.ID, typ: typ, text: v.Schema, refs: v.References}
			deps, err := st.resolve(v.References)
			if err == nil {
				sr.p, err = parse(typ, v.Schema, deps)
			}
			sr.perr = err
			sr.key = identity(typ, sr.p, v.Schema, v.References)
		}
		st.schemas[v.ID] = sr
		if _, ok := st.byKey[sr.key]; !ok {
			st.byKey[sr.key] = v.ID
		}
	} else if sr.typ != typ || sr.text != v.Schema {
		return fmt.Errorf("id %d is already another schema", v.ID)
	}
	if v.ID >= st.nextID {
		st.nextID = v.ID + 1
	}
	s := st.subject(v.Subject)
	if old := s.find(v.Version); old != nil {
		if old.schema != sr {
			old.schema.release(st)
			sr.users++
			old.schema = sr
		}
		old.deleted = v.Deleted
		return nil
	}
	sr.users++
	s.versions = append(s.versions, &versionRec{version: v.Version, schema: sr, deleted: v.Deleted})
	sort.Slice(s.versions, func(i, j int) bool { return s.versions[i].version < s.versions[j].version })
	return nil
}

func (st *state) removeVersion(subject string, version int) {
	s := st.subjects[subject]
	if s == nil {
		return
	}
	for i, v := range s.versions {
		if v.version == version {
			v.schema.release(st)
			s.versions = slices.Delete(s.versions, i, i+1)
			break
		}
	}
	st.dropIfEmpty(subject)
}

// release drops one user of sr, forgetting the schema with its last one.
func (sr *schemaRec) release(st *state) {
	sr.users--
	if sr.users > 0 {
		return
	}
	delete(st.schemas, sr.id)
	if st.byKey[sr.key] == sr.id {
		delete(st.byKey, sr.key)
	}
}

func (s *subjectRec) find(version int) *versionRec {
	for _, v := range s.versions {
		if v.version == version {
			return v
		}
	}
	return nil
}

// live returns the versions not soft-deleted.
func (s *subjectRec) live() []*versionRec {
	var out []*versionRec
	for _, v := range s.versions {
		if !v.deleted {
			out = append(out, v)
		}
	}
	return out
}

// identity is the key equal schemas share: their type, canonical text and
// references.
func identity(typ Type, p parsed, text string, refs []Reference) string {
	canon := text
	if p != nil {
		canon = p.canonical()
	}
	var b strings.Builder
	b.WriteString(string(typ))
	b.WriteByte(0)
	b.WriteString(canon)
	b.WriteByte(0)
	b.Write(mustJSON(refs))
	return b.String()
}

// maxRefDepth bounds reference chains.
const maxRefDepth = 32

// resolve returns the schemas refs name, dependencies first, each once.
func (st *state) resolve(refs []Reference) ([]dependency, error) {
	var out []dependency
	seen := map[string]bool{}
	var walk func(refs []Reference, depth int) error
	walk = func(refs []Reference, depth int) error {
		if depth > maxRefDepth {
			return errors.New("references nest too deeply")
		}
		for _, ref := range refs {
			s := st.subjects[ref.Subject]
			var v *versionRec
			if s != nil {
				v = s.find(ref.Version)
			}
			if v == nil {
				return fmt.Errorf("reference %q: subject '%s' version %d not found", ref.Name, ref.Subject, ref.Version)
			}
			id := fmt.Sprintf("%s\x00%d", ref.Subject, ref.Version)
			if seen[id] {
				continue
			}
			seen[id] = true
			if err := walk(v.schema.refs, depth+1); err != nil {
				return err
			}
			out = append(out, dependency{name: ref.Name, schema: v.schema.text})
		}
		return nil
	}
	return out, walk(refs, 0)
}

// levelFor returns the compatibility level in force for subject.
func (r *Registry) levelFor(st *state, subject string) Level {
	if s := st.subjects[subject]; s != nil && s.level != "" {
		return s.level
	}
	if st.level != "" {
		return st.level
	}
	return r.defaultLevel
}

func modeFor(st *state, subject string) Mode {
	if s := st.subjects[subject]; s != nil && s.mode != "" {
		return s.mode
	}
	if st.mode != "" {
		return st.mode
	}
	return ReadWrite
}

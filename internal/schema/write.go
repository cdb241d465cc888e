package schema

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode"
)

// RegisterOptions carry the optional parts of a registration.
type RegisterOptions struct {
	// ID and Version, when positive, fix the new version's id and number;
	// only allowed in IMPORT mode.
	ID      int
	Version int
}

// checkSubject applies Confluent's subject name rules.
func checkSubject(subject string) error {
	if subject == "" || strings.ContainsFunc(subject, unicode.IsControl) || subject == "__GLOBAL" || subject == "__EMPTY" {
		return newError(CodeInvalidSubject, "The specified subject '%s' is not valid.", subject)
	}
	return nil
}

// prepare checks and parses a submitted schema against st. With lookup,
// references may name soft-deleted versions.
func (st *state) prepare(s Schema, lookup bool) (*schemaRec, error) {
	typ, err := parseType(string(s.Type))
	if err != nil {
		return nil, errInvalidSchema(err)
	}
	if strings.TrimSpace(s.Schema) == "" {
		return nil, errInvalidSchema(errors.New("empty schema"))
	}
	refs := make([]Reference, 0, len(s.References))
	for _, ref := range s.References {
		if ref.Name == "" || ref.Subject == "" {
			return nil, errInvalidSchema(fmt.Errorf("reference %+v needs a name and a subject", ref))
		}
		sub := st.subjects[ref.Subject]
		v, err := sub.pick(ref.Subject, ref.Version, lookup)
		if ref.Version == 0 || err != nil {
			return nil, errInvalidSchema(fmt.Errorf("reference %q: subject '%s' version %d not found", ref.Name, ref.Subject, ref.Version))
		}
		ref.Version = v.version
		refs = append(refs, ref)
	}
	if len(refs) == 0 {
		refs = nil
	}
	deps, err := st.resolve(refs)
	if err != nil {
		return nil, errInvalidSchema(err)
	}
	p, err := parse(typ, s.Schema, deps)
	if err != nil {
		return nil, errInvalidSchema(err)
	}
	return &schemaRec{typ: typ, text: s.Schema, refs: refs, p: p, key: identity(typ, p, s.Schema, refs)}, nil
}

// Register adds s to subject and returns the new (or, for a schema the
// subject already has, the existing) version.
func (r *Registry) Register(ctx context.Context, subject string, s Schema, o RegisterOptions) (Version, error) {
	if err := checkSubject(subject); err != nil {
		return Version{}, err
	}
	r.wmu.Lock()
	defer r.wmu.Unlock()
	r.mu.RLock()
	hint, v, err := r.planRegister(subject, s, o)
	r.mu.RUnlock()
	if err != nil || hint == nil {
		return v, err
	}
	recs := []Record{schemaRecord(schemaValue{Subject: subject, Version: v.Version, ID: v.ID, Type: v.Type, References: v.References, Schema: v.Schema})}
	r.mu.RLock()
	newMax := v.ID >= r.st.nextID
	r.mu.RUnlock()
	if newMax {
		// The highest id also goes in its own record, in the same batch:
		// compaction keeps it when every version using the id is gone, so
		// ids are never handed out twice.
		recs = append(recs, maxIDRecord(v.ID))
	}
	if err := r.write(ctx, recs, hint); err != nil {
		return Version{}, err
	}
	return v, nil
}

// planRegister decides a registration under the read lock: the version to
// write and the schema it introduces, or (nil hint) the existing version.
func (r *Registry) planRegister(subject string, s Schema, o RegisterOptions) (*schemaRec, Version, error) {
	st := r.st
	mode := modeFor(st, subject)
	if mode == ReadOnly {
		return nil, Version{}, newError(CodeOperationNotPermitted, "Subject %s is in read-only mode", subject)
	}
	if (o.ID > 0 || o.Version > 0) && mode != Import {
		return nil, Version{}, newError(CodeOperationNotPermitted, "Subject %s is not in import mode; an id or version may not be given", subject)
	}
	cand, err := st.prepare(s, false)
	if err != nil {
		return nil, Version{}, err
	}
	sub := st.subjects[subject]
	var live []*versionRec
	if sub != nil {
		live = sub.live()
		for i := len(live) - 1; i >= 0; i-- {
			if live[i].schema.key == cand.key && (o.ID <= 0 || o.ID == live[i].schema.id) {
				return nil, live[i].out(subject), nil
			}
		}
	}
	if mode != Import {
		if msgs := r.incompatibilities(r.levelFor(st, subject), cand, live, true); len(msgs) > 0 {
			return nil, Version{}, newError(CodeIncompatibleSchema,
				"Schema being registered is incompatible with an earlier schema for subject \"%s\", details: [%s]",
				subject, strings.Join(msgs, ", "))
		}
	}
	id := st.byKey[cand.key]
	if o.ID > 0 {
		if other := st.schemas[o.ID]; other != nil && other.key != cand.key {
			return nil, Version{}, newError(CodeIDDoesNotMatch, "Overwrite new schema with id %d is not permitted.", o.ID)
		}
		id = o.ID
	}
	if id == 0 {
		id = st.nextID
	}
	version := 1
	if sub != nil && len(sub.versions) > 0 {
		version = sub.versions[len(sub.versions)-1].version + 1
	}
	if o.Version > 0 {
		if sub != nil && sub.find(o.Version) != nil {
			return nil, Version{}, newError(CodeOperationNotPermitted, "Version %d already exists for subject '%s'", o.Version, subject)
		}
		version = o.Version
	}
	if version > maxVersion {
		return nil, Version{}, newError(CodeInvalidVersion, invalidVersionMessageFmt, fmt.Sprint(version))
	}
	if existing := st.schemas[id]; existing != nil {
		cand = existing
	} else {
		cand.id = id
	}
	return cand, Version{Subject: subject, Version: version, ID: id, Type: cand.typ, Schema: cand.text, References: cand.refs}, nil
}

// DeleteSubject soft-deletes every version of subject, or with permanent
// removes versions that were soft-deleted first; it returns the versions.
func (r *Registry) DeleteSubject(ctx context.Context, subject string, permanent bool) ([]int, error) {
	r.wmu.Lock()
	defer r.wmu.Unlock()
	r.mu.RLock()
	recs, versions, err := r.planDeleteSubject(subject, permanent)
	r.mu.RUnlock()
	if err != nil {
		return nil, err
	}
	if err := r.write(ctx, recs, nil); err != nil {
		return nil, err
	}
	return versions, nil
}

func (r *Registry) planDeleteSubject(subject string, permanent bool) ([]Record, []int, error) {
	st := r.st
	if modeFor(st, subject) == ReadOnly {
		return nil, nil, newError(CodeOperationNotPermitted, "Subject %s is in read-only mode", subject)
	}
	s := st.subjects[subject]
	if !s.visible(true) {
		return nil, nil, errSubjectNotFound(subject)
	}
	live := s.live()
	if !permanent && len(live) == 0 {
		return nil, nil, newError(CodeSubjectSoftDeleted, "Subject '%s' was soft deleted.Set permanent=true to delete permanently", subject)
	}
	if permanent && len(live) > 0 {
		return nil, nil, newError(CodeSubjectNotSoftDeleted, "Subject '%s' was not deleted first before being permanently deleted", subject)
	}
	var recs []Record
	versions := []int{}
	targets := live
	if permanent {
		targets = s.versions
	}
	for _, v := range targets {
		if ids := st.referrers(subject, v.version, permanent); len(ids) > 0 {
			return nil, nil, errReferenced(subject, v.version, ids)
		}
		versions = append(versions, v.version)
		if permanent {
			recs = append(recs, schemaTombstone(subject, v.version))
		} else {
			recs = append(recs, deletedRecord(subject, v))
		}
	}
	if permanent {
		if s.level != "" {
			recs = append(recs, configRecord(subject, ""))
		}
		if s.mode != "" {
			recs = append(recs, modeRecord(subject, ""))
		}
	}
	return recs, versions, nil
}

func deletedRecord(subject string, v *versionRec) Record {
	return schemaRecord(schemaValue{Subject: subject, Version: v.version, ID: v.schema.id, Type: v.schema.typ,
		References: v.schema.refs, Schema: v.schema.text, Deleted: true})
}

func errReferenced(subject string, version int, ids []int) *Error {
	return newError(CodeReferenceExists, "One or more references exist to the schema {subject=%s,version=%d} (referenced by ids %v).", subject, version, ids)
}

// DeleteVersion soft-deletes a version ("latest", -1 or a number), or
// with permanent removes one that was soft-deleted first.
func (r *Registry) DeleteVersion(ctx context.Context, subject, version string, permanent bool) (int, error) {
	n, err := parseVersion(version)
	if err != nil {
		return 0, err
	}
	r.wmu.Lock()
	defer r.wmu.Unlock()
	r.mu.RLock()
	rec, v, err := r.planDeleteVersion(subject, n, permanent)
	r.mu.RUnlock()
	if err != nil {
		return 0, err
	}
	if err := r.write(ctx, []Record{rec}, nil); err != nil {
		return 0, err
	}
	return v, nil
}

func (r *Registry) planDeleteVersion(subject string, n int, permanent bool) (Record, int, error) {
	st := r.st
	if modeFor(st, subject) == ReadOnly {
		return Record{}, 0, newError(CodeOperationNotPermitted, "Subject %s is in read-only mode", subject)
	}
	v, err := st.subjects[subject].pick(subject, n, permanent)
	if err != nil {
		if ErrorCode(err) == CodeVersionNotFound && !permanent {
			if s := st.subjects[subject]; s != nil && s.find(n) != nil {
				return Record{}, 0, newError(CodeVersionSoftDeleted, "Subject '%s' Version %d was soft deleted.Set permanent=true to delete permanently", subject, n)
			}
		}
		return Record{}, 0, err
	}
	if permanent && !v.deleted {
		return Record{}, 0, newError(CodeVersionNotSoftDeleted, "Subject '%s' Version %d was not deleted first before being permanently deleted", subject, v.version)
	}
	if ids := st.referrers(subject, v.version, permanent); len(ids) > 0 {
		return Record{}, 0, errReferenced(subject, v.version, ids)
	}
	if permanent {
		return schemaTombstone(subject, v.version), v.version, nil
	}
	return deletedRecord(subject, v), v.version, nil
}

// SetConfig sets the compatibility level of subject ("" for global).
func (r *Registry) SetConfig(ctx context.Context, subject string, l Level) error {
	if subject != "" {
		if err := checkSubject(subject); err != nil {
			return err
		}
	}
	l, err := ParseLevel(string(l))
	if err != nil {
		return err
	}
	r.wmu.Lock()
	defer r.wmu.Unlock()
	return r.write(ctx, []Record{configRecord(subject, l)}, nil)
}

// DeleteConfig removes subject's level (or resets the global one) and
// returns the level that was in force.
func (r *Registry) DeleteConfig(ctx context.Context, subject string) (Level, error) {
	r.wmu.Lock()
	defer r.wmu.Unlock()
	prev, err := r.Config(subject, false)
	if err != nil {
		return "", err
	}
	return prev, r.write(ctx, []Record{configRecord(subject, "")}, nil)
}

// SetMode sets the mode of subject ("" for global). IMPORT needs force
// while the registry (or subject) has schemas.
func (r *Registry) SetMode(ctx context.Context, subject string, m Mode, force bool) error {
	if subject != "" {
		if err := checkSubject(subject); err != nil {
			return err
		}
	}
	m, err := ParseMode(string(m))
	if err != nil {
		return err
	}
	r.wmu.Lock()
	defer r.wmu.Unlock()
	if m == Import && !force {
		r.mu.RLock()
		nonEmpty := false
		for name, s := range r.st.subjects {
			if (subject == "" || name == subject) && len(s.versions) > 0 {
				nonEmpty = true
			}
		}
		r.mu.RUnlock()
		if nonEmpty {
			return newError(CodeOperationNotPermitted, "Cannot import since found existing subjects")
		}
	}
	return r.write(ctx, []Record{modeRecord(subject, m)}, nil)
}

// DeleteMode removes subject's mode (or resets the global one to
// READWRITE) and returns the mode that was in force.
func (r *Registry) DeleteMode(ctx context.Context, subject string) (Mode, error) {
	r.wmu.Lock()
	defer r.wmu.Unlock()
	prev, err := r.Mode(subject, false)
	if err != nil {
		return "", err
	}
	return prev, r.write(ctx, []Record{modeRecord(subject, "")}, nil)
}

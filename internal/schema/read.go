package schema

import (
	"sort"
	"strconv"
	"strings"
)

// Version is one version of a subject with its schema.
type Version struct {
	Subject    string
	Version    int
	ID         int
	Type       Type
	Schema     string
	References []Reference
	Deleted    bool
}

// SubjectVersion names one version of a subject.
type SubjectVersion struct {
	Subject string `json:"subject"`
	Version int    `json:"version"`
}

func (v *versionRec) out(subject string) Version {
	return Version{Subject: subject, Version: v.version, ID: v.schema.id, Type: v.schema.typ, Schema: v.schema.text,
		References: v.schema.refs, Deleted: v.deleted}
}

// latestVersion stands for "latest" (or -1) in version arguments.
const latestVersion = -1

// parseVersion parses a version path argument: "latest", -1 or
// 1..2^31-1.
func parseVersion(s string) (int, error) {
	if s == "latest" {
		return latestVersion, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n == 0 || n < latestVersion || n > maxVersion {
		return 0, newError(CodeInvalidVersion, invalidVersionMessageFmt, s)
	}
	return n, nil
}

// visible reports whether a subject shows: it has versions that are not
// soft-deleted, or any versions when deleted ones are asked for.
func (s *subjectRec) visible(deleted bool) bool {
	if s == nil {
		return false
	}
	if deleted {
		return len(s.versions) > 0
	}
	return len(s.live()) > 0
}

// pick returns the version v names (latestVersion for the newest),
// including soft-deleted ones if deleted.
func (s *subjectRec) pick(subject string, v int, deleted bool) (*versionRec, error) {
	if !s.visible(deleted) {
		return nil, errSubjectNotFound(subject)
	}
	if v == latestVersion {
		for i := len(s.versions) - 1; i >= 0; i-- {
			if deleted || !s.versions[i].deleted {
				return s.versions[i], nil
			}
		}
		return nil, errSubjectNotFound(subject)
	}
	if vr := s.find(v); vr != nil && (deleted || !vr.deleted) {
		return vr, nil
	}
	return nil, errVersionNotFound(subject, v)
}

// SchemaByID returns the schema with id. Soft-deleted schemas are still
// found: consumers of old records need them.
func (r *Registry) SchemaByID(id int) (Schema, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	sr := r.st.schemas[id]
	if sr == nil {
		return Schema{}, errSchemaNotFound("Schema %d not found", id)
	}
	return Schema{Type: sr.typ, Schema: sr.text, References: sr.refs}, nil
}

// VersionsByID lists the subject versions using id.
func (r *Registry) VersionsByID(id int, deleted bool) ([]SubjectVersion, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.st.schemas[id] == nil {
		return nil, errSchemaNotFound("Schema %d not found", id)
	}
	out := []SubjectVersion{}
	for _, name := range r.sortedSubjects() {
		for _, v := range r.st.subjects[name].versions {
			if v.schema.id == id && (deleted || !v.deleted) {
				out = append(out, SubjectVersion{Subject: name, Version: v.version})
			}
		}
	}
	return out, nil
}

// SubjectsByID lists the subjects with a version using id.
func (r *Registry) SubjectsByID(id int, deleted bool) ([]string, error) {
	vs, err := r.VersionsByID(id, deleted)
	if err != nil {
		return nil, err
	}
	out := []string{}
	for _, v := range vs {
		if len(out) == 0 || out[len(out)-1] != v.Subject {
			out = append(out, v.Subject)
		}
	}
	return out, nil
}

func (r *Registry) sortedSubjects() []string {
	out := make([]string, 0, len(r.st.subjects))
	for name := range r.st.subjects {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

// Subjects lists subjects with the prefix: those with live versions,
// plus soft-deleted ones with deleted, or only those with deletedOnly.
func (r *Registry) Subjects(prefix string, deleted, deletedOnly bool) []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := []string{}
	for _, name := range r.sortedSubjects() {
		if !strings.HasPrefix(name, prefix) {
			continue
		}
		s := r.st.subjects[name]
		live := s.visible(false)
		switch {
		case deletedOnly && s.visible(true) && !live, !deletedOnly && live, !deletedOnly && deleted && s.visible(true):
			out = append(out, name)
		}
	}
	return out
}

// Versions lists a subject's version numbers.
func (r *Registry) Versions(subject string, deleted, deletedOnly bool) ([]int, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	s := r.st.subjects[subject]
	if !s.visible(deleted || deletedOnly) {
		return nil, errSubjectNotFound(subject)
	}
	out := []int{}
	for _, v := range s.versions {
		if (deletedOnly && v.deleted) || (!deletedOnly && (deleted || !v.deleted)) {
			out = append(out, v.version)
		}
	}
	return out, nil
}

// GetVersion returns one version ("latest", -1 or a number).
func (r *Registry) GetVersion(subject, version string, deleted bool) (Version, error) {
	v, err := parseVersion(version)
	if err != nil {
		return Version{}, err
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	vr, err := r.st.subjects[subject].pick(subject, v, deleted)
	if err != nil {
		return Version{}, err
	}
	return vr.out(subject), nil
}

// ReferencedBy lists the ids of schemas whose references name the
// version.
func (r *Registry) ReferencedBy(subject, version string, deleted bool) ([]int, error) {
	v, err := parseVersion(version)
	if err != nil {
		return nil, err
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	vr, err := r.st.subjects[subject].pick(subject, v, deleted)
	if err != nil {
		return nil, err
	}
	return r.st.referrers(subject, vr.version, deleted), nil
}

// referrers returns the ids of schemas used by versions (soft-deleted
// ones too if deleted) that reference subject's version.
func (st *state) referrers(subject string, version int, deleted bool) []int {
	ids := map[int]bool{}
	for _, s := range st.subjects {
		for _, v := range s.versions {
			if v.deleted && !deleted {
				continue
			}
			for _, ref := range v.schema.refs {
				if ref.Subject == subject && ref.Version == version {
					ids[v.schema.id] = true
				}
			}
		}
	}
	out := make([]int, 0, len(ids))
	for id := range ids {
		out = append(out, id)
	}
	sort.Ints(out)
	return out
}

// Schemas lists every version of the subjects with the prefix, or only
// each subject's latest with latestOnly.
func (r *Registry) Schemas(prefix string, deleted, latestOnly bool) []Version {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := []Version{}
	for _, name := range r.sortedSubjects() {
		if !strings.HasPrefix(name, prefix) {
			continue
		}
		var vs []Version
		for _, v := range r.st.subjects[name].versions {
			if deleted || !v.deleted {
				vs = append(vs, v.out(name))
			}
		}
		if latestOnly && len(vs) > 1 {
			vs = vs[len(vs)-1:]
		}
		out = append(out, vs...)
	}
	return out
}

// Lookup finds the version of subject holding schema s.
func (r *Registry) Lookup(subject string, s Schema, deleted bool) (Version, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	sub := r.st.subjects[subject]
	if !sub.visible(deleted) {
		return Version{}, errSubjectNotFound(subject)
	}
	cand, err := r.st.prepare(s, true)
	if err != nil {
		return Version{}, err
	}
	for i := len(sub.versions) - 1; i >= 0; i-- {
		v := sub.versions[i]
		if v.schema.key == cand.key && (deleted || !v.deleted) {
			return v.out(subject), nil
		}
	}
	return Version{}, errSchemaNotFound("Schema not found")
}

// Config returns the compatibility level of subject ("" for the global
// one). Without defaultToGlobal a subject with no level of its own is an
// error.
func (r *Registry) Config(subject string, defaultToGlobal bool) (Level, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if subject != "" && !defaultToGlobal {
		if s := r.st.subjects[subject]; s == nil || s.level == "" {
			return "", newError(CodeSubjectCompatNotConfigured, "Subject '%s' does not have subject-level compatibility configured", subject)
		}
	}
	return r.levelFor(r.st, subject), nil
}

// Mode returns the mode of subject ("" for the global one). Without
// defaultToGlobal a subject with no mode of its own is an error.
func (r *Registry) Mode(subject string, defaultToGlobal bool) (Mode, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if subject != "" && !defaultToGlobal {
		if s := r.st.subjects[subject]; s == nil || s.mode == "" {
			return "", newError(CodeSubjectModeNotConfigured, "Subject '%s' does not have subject-level mode configured", subject)
		}
	}
	return modeFor(r.st, subject), nil
}

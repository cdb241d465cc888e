package schema

import "fmt"

// incompatibilities lists why cand may not follow the versions prev
// (oldest first) under level. With byLevel a non-transitive level checks
// only the latest; otherwise every version in prev is checked.
func (r *Registry) incompatibilities(level Level, cand *schemaRec, prev []*versionRec, byLevel bool) []string {
	if level == None || len(prev) == 0 {
		return nil
	}
	if byLevel && !level.transitive() {
		prev = prev[len(prev)-1:]
	}
	var out []string
	for i := len(prev) - 1; i >= 0; i-- {
		old := prev[i]
		if old.schema.typ != cand.typ {
			out = append(out, fmt.Sprintf("version %d: the schema type changed from %s to %s", old.version, old.schema.typ, cand.typ))
			continue
		}
		if old.schema.p == nil {
			out = append(out, fmt.Sprintf("version %d: the stored schema does not parse: %v", old.version, old.schema.perr))
			continue
		}
		for _, m := range evolutionProblems(cand.p, old.schema.p) {
			out = append(out, fmt.Sprintf("version %d (%s): %s", old.version, level, m))
		}
		if level.backward() {
			for _, m := range cand.p.readable(old.schema.p) {
				out = append(out, fmt.Sprintf("version %d (%s: the new schema must read old data): %s", old.version, level, m))
			}
		}
		if level.forward() {
			for _, m := range old.schema.p.readable(cand.p) {
				out = append(out, fmt.Sprintf("version %d (%s: old schemas must read new data): %s", old.version, level, m))
			}
		}
	}
	return out
}

// CheckCompatibility tests s against one version of subject ("latest", -1
// or a number), or with version "" against the versions its level names.
// It returns the reasons s is incompatible, none if it is compatible.
func (r *Registry) CheckCompatibility(subject, version string, s Schema) ([]string, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	st := r.st
	cand, err := st.prepare(s, false)
	if err != nil {
		return nil, err
	}
	level := r.levelFor(st, subject)
	sub := st.subjects[subject]
	if version == "" {
		if sub == nil {
			return nil, nil
		}
		return r.incompatibilities(level, cand, sub.live(), true), nil
	}
	n, err := parseVersion(version)
	if err != nil {
		return nil, err
	}
	v, err := sub.pick(subject, n, false)
	if err != nil {
		return nil, err
	}
	return r.incompatibilities(level, cand, []*versionRec{v}, false), nil
}

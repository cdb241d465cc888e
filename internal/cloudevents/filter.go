package cloudevents

import (
	"errors"
	"fmt"
	"strings"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/types"
)

// Filter is one of Knative's filter dialects; exactly one member is set.
// exact, prefix and suffix map attribute names to values and match when
// every named attribute is present and matches; all, any and not combine
// filters.
type Filter struct {
	Exact  map[string]string `json:"exact,omitempty"`
	Prefix map[string]string `json:"prefix,omitempty"`
	Suffix map[string]string `json:"suffix,omitempty"`
	All    []Filter          `json:"all,omitempty"`
	Any    []Filter          `json:"any,omitempty"`
	Not    *Filter           `json:"not,omitempty"`
}

// Bounds on a subscription's filter tree.
const (
	maxFilterDepth = 8
	maxFilterNodes = 256
)

func (f *Filter) validate(depth int, nodes *int) error {
	*nodes++
	if *nodes > maxFilterNodes {
		return fmt.Errorf("more than %d filters", maxFilterNodes)
	}
	if depth > maxFilterDepth {
		return fmt.Errorf("filters nest deeper than %d", maxFilterDepth)
	}
	set := 0
	for _, ok := range []bool{f.Exact != nil, f.Prefix != nil, f.Suffix != nil, f.All != nil, f.Any != nil, f.Not != nil} {
		if ok {
			set++
		}
	}
	if set != 1 {
		return errors.New("a filter has exactly one of exact, prefix, suffix, all, any, not")
	}
	for dialect, m := range map[string]map[string]string{"exact": f.Exact, "prefix": f.Prefix, "suffix": f.Suffix} {
		if m == nil {
			continue
		}
		if len(m) == 0 {
			return fmt.Errorf("%s names no attribute", dialect)
		}
		for name, v := range m {
			if err := checkName(name); err != nil {
				return fmt.Errorf("%s: %v", dialect, err)
			}
			if v == "" {
				return fmt.Errorf("%s: attribute %q: empty value", dialect, name)
			}
		}
	}
	for dialect, fs := range map[string][]Filter{"all": f.All, "any": f.Any} {
		if fs == nil {
			continue
		}
		if len(fs) == 0 {
			return fmt.Errorf("%s holds no filter", dialect)
		}
		for i := range fs {
			if err := fs[i].validate(depth+1, nodes); err != nil {
				return fmt.Errorf("%s[%d]: %v", dialect, i, err)
			}
		}
	}
	if f.Not != nil {
		if err := f.Not.validate(depth+1, nodes); err != nil {
			return fmt.Errorf("not: %v", err)
		}
	}
	return nil
}

// match reports whether ev passes f.
func (f *Filter) match(ev *event.Event) bool {
	switch {
	case f.Exact != nil:
		return matchEach(ev, f.Exact, func(a, v string) bool { return a == v })
	case f.Prefix != nil:
		return matchEach(ev, f.Prefix, strings.HasPrefix)
	case f.Suffix != nil:
		return matchEach(ev, f.Suffix, strings.HasSuffix)
	case f.All != nil:
		for i := range f.All {
			if !f.All[i].match(ev) {
				return false
			}
		}
		return true
	case f.Any != nil:
		for i := range f.Any {
			if f.Any[i].match(ev) {
				return true
			}
		}
		return false
	case f.Not != nil:
		return !f.Not.match(ev)
	}
	return false
}

// matchAll reports whether ev passes every filter.
func matchAll(fs []Filter, ev *event.Event) bool {
	for i := range fs {
		if !fs[i].match(ev) {
			return false
		}
	}
	return true
}

func matchEach(ev *event.Event, m map[string]string, ok func(attr, v string) bool) bool {
	for name, v := range m {
		a, present := attribute(ev, name)
		if !present || !ok(a, v) {
			return false
		}
	}
	return true
}

// attribute returns an attribute's canonical string value.
func attribute(ev *event.Event, name string) (string, bool) {
	switch name {
	case "specversion":
		return ev.SpecVersion(), true
	case "id":
		return ev.ID(), true
	case "source":
		return ev.Source(), true
	case "type":
		return ev.Type(), true
	case "subject":
		return ev.Subject(), ev.Subject() != ""
	case "datacontenttype":
		return ev.DataContentType(), ev.DataContentType() != ""
	case "dataschema":
		return ev.DataSchema(), ev.DataSchema() != ""
	case "time":
		if t := ev.Time(); !t.IsZero() {
			return types.FormatTime(t), true
		}
		return "", false
	}
	v, ok := ev.Extensions()[name]
	if !ok {
		return "", false
	}
	s, err := types.Format(v)
	return s, err == nil
}

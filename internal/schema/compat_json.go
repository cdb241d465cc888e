package schema

import (
	"encoding/json"
	"fmt"
	"math/big"
	"slices"
	"sort"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// jsonCompat decides whether every instance one JSON Schema (the writer)
// accepts is accepted by another (the reader): that is what "the reader can
// read the writer's data" means for JSON Schema, whose documents are not
// resolved field by field as Avro's are. The check is sound but not
// complete: where the rules below cannot prove inclusion (an unmodelled
// keyword, a changed regular expression) they report a problem.
//
// The rules, with the change they judge for BACKWARD (old = writer):
//   - type: the reader's types must cover the writer's (integer widens to
//     number; adding a type constraint or narrowing it is incompatible);
//   - enum/const: the reader's values must include the writer's;
//   - numeric and length bounds may only loosen; multipleOf may only be
//     replaced by a divisor; pattern must not change;
//   - required: the reader may not require a property the writer does not;
//   - properties: a property the reader adds is compatible only if the
//     writer's content model is closed (additionalProperties false), or
//     the writer's additionalProperties schema fits it; a property the
//     reader removes is compatible only if its content model is open (or
//     its additionalProperties schema accepts the writer's property);
//   - additionalProperties may not be closed or narrowed;
//   - items, properties and combinators are compared recursively; the
//     reader's anyOf/oneOf must have a branch for each writer branch.
type jsonCompat struct {
	problems []string
	seen     map[[2]*jsonschema.Schema]bool
}

func (c *jsonCompat) fail(path, format string, args ...any) {
	c.problems = append(c.problems, path+": "+fmt.Sprintf(format, args...))
}

// wview is the writer seen through its conjunctions ($ref, allOf), whose
// constraints all hold at once.
type wview []*jsonschema.Schema

func flatten(s *jsonschema.Schema) wview {
	var out wview
	var walk func(*jsonschema.Schema)
	walk = func(s *jsonschema.Schema) {
		if s == nil || slices.Contains(out, s) {
			return
		}
		out = append(out, s)
		walk(s.Ref)
		for _, a := range s.AllOf {
			walk(a)
		}
	}
	walk(s)
	return out
}

func (w wview) isFalse() bool {
	for _, s := range w {
		if s.Bool != nil && !*s.Bool {
			return true
		}
	}
	return false
}

// types returns the JSON types w admits; nil means any.
func (w wview) types() []string {
	var out []string
	set := false
	for _, s := range w {
		var ts []string
		switch {
		case s.Types != nil:
			ts = s.Types.ToStrings()
		case s.Const != nil:
			ts = []string{jsonTypeOf(*s.Const)}
		case s.Enum != nil:
			for _, v := range s.Enum.Values {
				if t := jsonTypeOf(v); !slices.Contains(ts, t) {
					ts = append(ts, t)
				}
			}
		default:
			continue
		}
		if !set {
			out, set = ts, true
			continue
		}
		var keep []string
		for _, t := range out {
			if slices.Contains(ts, t) || (t == "integer" && slices.Contains(ts, "number")) {
				keep = append(keep, t)
			} else if t == "number" && slices.Contains(ts, "integer") {
				keep = append(keep, "integer")
			}
		}
		out = keep
	}
	return out
}

// admits reports whether w may accept values of type t (integers are
// numbers, and a number may be integral).
func (w wview) admits(t string) bool {
	ts := w.types()
	return ts == nil || slices.Contains(ts, t) || (t == "integer" && slices.Contains(ts, "number")) ||
		(t == "number" && slices.Contains(ts, "integer"))
}

// values returns w's possible values when an enum or const fixes them.
func (w wview) values() ([]string, bool) {
	for _, s := range w {
		if s.Const != nil {
			return []string{jsonKey(*s.Const)}, true
		}
		if s.Enum != nil {
			out := make([]string, 0, len(s.Enum.Values))
			for _, v := range s.Enum.Values {
				out = append(out, jsonKey(v))
			}
			return out, true
		}
	}
	return nil, false
}

func (w wview) required() []string {
	var out []string
	for _, s := range w {
		out = append(out, s.Required...)
	}
	return out
}

func (w wview) property(name string) *jsonschema.Schema {
	for _, s := range w {
		if p, ok := s.Properties[name]; ok {
			return p
		}
	}
	return nil
}

func (w wview) propertyNames() []string {
	var out []string
	for _, s := range w {
		for n := range s.Properties {
			if !slices.Contains(out, n) {
				out = append(out, n)
			}
		}
	}
	sort.Strings(out)
	return out
}

// additional returns how w treats properties it does not name: closed
// (false), a schema, or open (nil, false).
func (w wview) additional() (sch *jsonschema.Schema, closed bool) {
	for _, s := range w {
		switch a := s.AdditionalProperties.(type) {
		case bool:
			if !a {
				return nil, true
			}
		case *jsonschema.Schema:
			if a.Bool != nil && !*a.Bool {
				return nil, true
			}
			if sch == nil {
				sch = a
			}
		}
	}
	return sch, false
}

func (w wview) patternFor(name string) *jsonschema.Schema {
	for _, s := range w {
		for re, p := range s.PatternProperties {
			if re.MatchString(name) {
				return p
			}
		}
	}
	return nil
}

func (w wview) items() *jsonschema.Schema {
	for _, s := range w {
		if s.Items2020 != nil {
			return s.Items2020
		}
		if it, ok := s.Items.(*jsonschema.Schema); ok {
			return it
		}
	}
	return nil
}

func (w wview) intBound(get func(*jsonschema.Schema) *int, tighter func(a, b int) bool) *int {
	var out *int
	for _, s := range w {
		if v := get(s); v != nil && (out == nil || tighter(*v, *out)) {
			out = v
		}
	}
	return out
}

func (w wview) ratBound(get func(*jsonschema.Schema) *big.Rat, sign int) *big.Rat {
	var out *big.Rat
	for _, s := range w {
		if v := get(s); v != nil && (out == nil || v.Cmp(out) == sign) {
			out = v
		}
	}
	return out
}

// isTrue reports whether s constrains nothing.
func isTrue(s *jsonschema.Schema) bool {
	if s == nil {
		return true
	}
	if s.Bool != nil {
		return *s.Bool
	}
	return s.Ref == nil && s.Types == nil && s.Enum == nil && s.Const == nil && s.Not == nil &&
		len(s.AllOf) == 0 && len(s.AnyOf) == 0 && len(s.OneOf) == 0 && s.If == nil &&
		len(s.Required) == 0 && len(s.Properties) == 0 && len(s.PatternProperties) == 0 &&
		s.AdditionalProperties == nil && s.PropertyNames == nil && s.MinProperties == nil && s.MaxProperties == nil &&
		len(s.DependentRequired) == 0 && len(s.DependentSchemas) == 0 && len(s.Dependencies) == 0 &&
		s.Items == nil && s.Items2020 == nil && len(s.PrefixItems) == 0 && s.AdditionalItems == nil &&
		s.Contains == nil && s.MinItems == nil && s.MaxItems == nil && !s.UniqueItems &&
		s.MinLength == nil && s.MaxLength == nil && s.Pattern == nil &&
		s.Minimum == nil && s.Maximum == nil && s.ExclusiveMinimum == nil && s.ExclusiveMaximum == nil && s.MultipleOf == nil &&
		s.UnevaluatedProperties == nil && s.UnevaluatedItems == nil && s.DynamicRef == nil && s.RecursiveRef == nil
}

// subset records why instances of w might not be instances of r.
func (c *jsonCompat) subset(w, r *jsonschema.Schema, path string) {
	if w == nil || r == nil || w == r || isTrue(r) {
		return
	}
	k := [2]*jsonschema.Schema{w, r}
	if c.seen[k] {
		return
	}
	c.seen[k] = true
	wv := flatten(w)
	if wv.isFalse() {
		return
	}
	// A writer with alternatives must fit in each of them.
	for _, s := range wv {
		if alts := append(slices.Clone(s.AnyOf), s.OneOf...); len(alts) > 0 {
			for i, a := range alts {
				sub := &jsonCompat{seen: c.seen}
				sub.subsetView(append(slices.Clone(wv), flatten(a)...), r, path)
				for _, p := range sub.problems {
					c.problems = append(c.problems, fmt.Sprintf("%s (writer alternative %d)", p, i))
				}
			}
			return
		}
	}
	c.subsetView(wv, r, path)
}

func (c *jsonCompat) subsetView(wv wview, r *jsonschema.Schema, path string) {
	if isTrue(r) {
		return
	}
	if r.Bool != nil && !*r.Bool {
		c.fail(path, "the reader accepts nothing")
		return
	}
	if r.Ref != nil {
		c.subsetOf(wv, r.Ref, path)
	}
	for _, a := range r.AllOf {
		c.subsetOf(wv, a, path)
	}
	if alts := append(slices.Clone(r.AnyOf), r.OneOf...); len(alts) > 0 {
		fits := false
		for _, a := range alts {
			sub := &jsonCompat{seen: map[[2]*jsonschema.Schema]bool{}}
			sub.subsetOf(wv, a, path)
			if len(sub.problems) == 0 {
				fits = true
				break
			}
		}
		if !fits {
			c.fail(path, "no reader alternative (anyOf/oneOf) accepts the writer's values")
		}
	}
	if r.Not != nil {
		var wn *jsonschema.Schema
		for _, s := range wv {
			if s.Not != nil {
				wn = s.Not
			}
		}
		if wn == nil {
			c.fail(path, "the reader adds a 'not' constraint")
		} else {
			c.subset(r.Not, wn, path+"/not")
		}
	}
	if r.If != nil {
		same := false
		for _, s := range wv {
			if s.If != nil {
				same = true
				c.subset(s.If, r.If, path+"/if")
				c.subset(r.If, s.If, path+"/if")
				c.subset(s.Then, r.Then, path+"/then")
				c.subset(s.Else, r.Else, path+"/else")
			}
		}
		if !same {
			c.fail(path, "the reader adds an if/then/else constraint")
		}
	}
	c.checkTypes(wv, r, path)
	if wv.admits("string") {
		c.checkString(wv, r, path)
	}
	if wv.admits("number") {
		c.checkNumber(wv, r, path)
	}
	if wv.admits("object") {
		c.checkObject(wv, r, path)
	}
	if wv.admits("array") {
		c.checkArray(wv, r, path)
	}
}

// subsetOf checks wv against one more schema r (a conjunct of the reader).
func (c *jsonCompat) subsetOf(wv wview, r *jsonschema.Schema, path string) {
	if len(wv) == 1 {
		c.subset(wv[0], r, path)
		return
	}
	c.subsetView(wv, r, path)
}

func (c *jsonCompat) checkTypes(wv wview, r *jsonschema.Schema, path string) {
	if r.Types != nil {
		rt := r.Types.ToStrings()
		wt := wv.types()
		if wt == nil {
			c.fail(path, "the reader restricts the type to %v; the writer allows any", rt)
		} else {
			for _, t := range wt {
				if !slices.Contains(rt, t) && !(t == "integer" && slices.Contains(rt, "number")) {
					c.fail(path, "type %s is no longer allowed (reader allows %v)", t, rt)
				}
			}
		}
	}
	var rv []string
	switch {
	case r.Const != nil:
		rv = []string{jsonKey(*r.Const)}
	case r.Enum != nil:
		for _, v := range r.Enum.Values {
			rv = append(rv, jsonKey(v))
		}
	default:
		return
	}
	wvals, ok := wv.values()
	if !ok {
		c.fail(path, "the reader restricts values to an enum the writer does not have")
		return
	}
	for _, v := range wvals {
		if !slices.Contains(rv, v) {
			c.fail(path, "value %s is no longer allowed by the enum", v)
		}
	}
}

func (c *jsonCompat) checkString(wv wview, r *jsonschema.Schema, path string) {
	if r.MinLength != nil {
		if w := wv.intBound(func(s *jsonschema.Schema) *int { return s.MinLength }, func(a, b int) bool { return a > b }); w == nil || *w < *r.MinLength {
			c.fail(path, "minLength raised to %d", *r.MinLength)
		}
	}
	if r.MaxLength != nil {
		if w := wv.intBound(func(s *jsonschema.Schema) *int { return s.MaxLength }, func(a, b int) bool { return a < b }); w == nil || *w > *r.MaxLength {
			c.fail(path, "maxLength lowered to %d", *r.MaxLength)
		}
	}
	if r.Pattern != nil {
		same := false
		for _, s := range wv {
			if s.Pattern != nil && s.Pattern.String() == r.Pattern.String() {
				same = true
			}
		}
		if !same {
			c.fail(path, "pattern %q added or changed", r.Pattern.String())
		}
	}
}

func (c *jsonCompat) checkNumber(wv wview, r *jsonschema.Schema, path string) {
	lower := func(name string, rb *big.Rat, gets ...func(*jsonschema.Schema) *big.Rat) {
		if rb == nil {
			return
		}
		for _, g := range gets {
			if w := wv.ratBound(g, 1); w != nil && w.Cmp(rb) >= 0 {
				return
			}
		}
		c.fail(path, "%s raised to %s", name, rb.RatString())
	}
	upper := func(name string, rb *big.Rat, gets ...func(*jsonschema.Schema) *big.Rat) {
		if rb == nil {
			return
		}
		for _, g := range gets {
			if w := wv.ratBound(g, -1); w != nil && w.Cmp(rb) <= 0 {
				return
			}
		}
		c.fail(path, "%s lowered to %s", name, rb.RatString())
	}
	minimum := func(s *jsonschema.Schema) *big.Rat { return s.Minimum }
	exMin := func(s *jsonschema.Schema) *big.Rat { return s.ExclusiveMinimum }
	maximum := func(s *jsonschema.Schema) *big.Rat { return s.Maximum }
	exMax := func(s *jsonschema.Schema) *big.Rat { return s.ExclusiveMaximum }
	lower("minimum", r.Minimum, minimum, exMin)
	upper("maximum", r.Maximum, maximum, exMax)
	if r.ExclusiveMinimum != nil {
		if w := wv.ratBound(exMin, 1); w == nil || w.Cmp(r.ExclusiveMinimum) < 0 {
			if w := wv.ratBound(minimum, 1); w == nil || w.Cmp(r.ExclusiveMinimum) <= 0 {
				c.fail(path, "exclusiveMinimum raised to %s", r.ExclusiveMinimum.RatString())
			}
		}
	}
	if r.ExclusiveMaximum != nil {
		if w := wv.ratBound(exMax, -1); w == nil || w.Cmp(r.ExclusiveMaximum) > 0 {
			if w := wv.ratBound(maximum, -1); w == nil || w.Cmp(r.ExclusiveMaximum) >= 0 {
				c.fail(path, "exclusiveMaximum lowered to %s", r.ExclusiveMaximum.RatString())
			}
		}
	}
	if r.MultipleOf != nil {
		ok := false
		for _, s := range wv {
			if s.MultipleOf != nil {
				q := new(big.Rat).Quo(s.MultipleOf, r.MultipleOf)
				if q.IsInt() {
					ok = true
				}
			}
		}
		if !ok {
			c.fail(path, "multipleOf %s added or changed", r.MultipleOf.RatString())
		}
	}
}

func (c *jsonCompat) checkObject(wv wview, r *jsonschema.Schema, path string) {
	wreq := wv.required()
	for _, p := range r.Required {
		if !slices.Contains(wreq, p) {
			c.fail(path, "required property '%s' added", p)
		}
	}
	wadd, wclosed := wv.additional()
	rnames := make([]string, 0, len(r.Properties))
	for n := range r.Properties {
		rnames = append(rnames, n)
	}
	sort.Strings(rnames)
	for _, n := range rnames {
		rs := r.Properties[n]
		p := path + "/properties/" + n
		if ws := wv.property(n); ws != nil {
			c.subset(ws, rs, p)
			continue
		}
		switch ws := wv.patternFor(n); {
		case ws != nil:
			c.subset(ws, rs, p)
		case wclosed:
			// The writer never has the property: an optional property
			// added to a closed content model.
		case wadd != nil:
			c.subset(wadd, rs, p)
		case !isTrue(rs):
			c.fail(p, "property '%s' added to an open content model: the writer may have it with any value", n)
		}
	}
	radd, rclosed := additionalOf(r)
	for _, n := range wv.propertyNames() {
		if _, ok := r.Properties[n]; ok {
			continue
		}
		ws := wv.property(n)
		p := path + "/properties/" + n
		switch rs := patternOf(r, n); {
		case rs != nil:
			c.subset(ws, rs, p)
		case rclosed:
			c.fail(p, "property '%s' removed from a closed content model", n)
		case radd != nil:
			c.subset(ws, radd, p)
		}
	}
	switch {
	case rclosed && !wclosed:
		c.fail(path, "additionalProperties closed: the writer allows properties the reader rejects")
	case radd != nil && !wclosed:
		if wadd == nil {
			c.fail(path, "additionalProperties narrowed to a schema; the writer allows any")
		} else {
			c.subset(wadd, radd, path+"/additionalProperties")
		}
	}
	for re, rs := range r.PatternProperties {
		found := false
		for _, s := range wv {
			for wre, ws := range s.PatternProperties {
				if wre.String() == re.String() {
					found = true
					c.subset(ws, rs, path+"/patternProperties/"+re.String())
				}
			}
		}
		if !found && !wclosed {
			c.fail(path, "patternProperties %q added", re.String())
		}
	}
	if r.MinProperties != nil {
		if w := wv.intBound(func(s *jsonschema.Schema) *int { return s.MinProperties }, func(a, b int) bool { return a > b }); (w == nil || *w < *r.MinProperties) && len(wreq) < *r.MinProperties {
			c.fail(path, "minProperties raised to %d", *r.MinProperties)
		}
	}
	if r.MaxProperties != nil {
		if w := wv.intBound(func(s *jsonschema.Schema) *int { return s.MaxProperties }, func(a, b int) bool { return a < b }); w == nil || *w > *r.MaxProperties {
			c.fail(path, "maxProperties lowered to %d", *r.MaxProperties)
		}
	}
	for name, deps := range r.DependentRequired {
		for _, d := range deps {
			if !slices.Contains(wreq, d) {
				c.fail(path, "dependentRequired %s → %s added", name, d)
			}
		}
	}
}

func additionalOf(r *jsonschema.Schema) (*jsonschema.Schema, bool) { return wview{r}.additional() }

func patternOf(r *jsonschema.Schema, name string) *jsonschema.Schema {
	return wview{r}.patternFor(name)
}

func (c *jsonCompat) checkArray(wv wview, r *jsonschema.Schema, path string) {
	ri := wview{r}.items()
	if ri != nil && !isTrue(ri) {
		if wi := wv.items(); wi != nil {
			c.subset(wi, ri, path+"/items")
		} else {
			c.fail(path, "the reader restricts array items; the writer allows any")
		}
	}
	if len(r.PrefixItems) > 0 || r.Items != nil && ri == nil {
		c.fail(path, "tuple items (prefixItems or an items array) are not compared; treat as changed")
	}
	if r.MinItems != nil {
		if w := wv.intBound(func(s *jsonschema.Schema) *int { return s.MinItems }, func(a, b int) bool { return a > b }); w == nil || *w < *r.MinItems {
			c.fail(path, "minItems raised to %d", *r.MinItems)
		}
	}
	if r.MaxItems != nil {
		if w := wv.intBound(func(s *jsonschema.Schema) *int { return s.MaxItems }, func(a, b int) bool { return a < b }); w == nil || *w > *r.MaxItems {
			c.fail(path, "maxItems lowered to %d", *r.MaxItems)
		}
	}
	if r.UniqueItems && !slices.ContainsFunc(wv, func(s *jsonschema.Schema) bool { return s.UniqueItems }) {
		c.fail(path, "uniqueItems added")
	}
}

func jsonKey(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

func jsonTypeOf(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case json.Number:
		if _, err := v.Int64(); err == nil {
			return "integer"
		}
		return "number"
	case float64:
		if v == float64(int64(v)) {
			return "integer"
		}
		return "number"
	case string:
		return "string"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return "unknown"
}

package schema

import (
	"bytes"
	"fmt"
	"net/url"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// jsonBase is the base URL relative schema and reference names resolve
// against; the scheme keeps the compiler off the filesystem.
const jsonBase = "weir:///schemas/"

type jsonSchema struct {
	root  *jsonschema.Schema
	canon string
}

// parseJSONSchema compiles text (draft-07 unless it names another draft in
// $schema) with references added as resources under their names. The
// loader refuses every URL, so a $ref that is not a reference fails
// instead of reaching the filesystem or network.
func parseJSONSchema(text string, deps []dependency) (*jsonSchema, error) {
	canon, err := canonicalJSON(text)
	if err != nil {
		return nil, fmt.Errorf("not JSON: %w", err)
	}
	doc, err := jsonschema.UnmarshalJSON(strings.NewReader(text))
	if err != nil {
		return nil, err
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft7)
	c.UseLoader(jsonschema.SchemeURLLoader{})
	rootURL := jsonBase + "root.json"
	// References resolve against the root's $id when it has one.
	bases := []string{jsonBase}
	if m, ok := doc.(map[string]any); ok {
		if id, ok := m["$id"].(string); ok && id != "" {
			bases = append(bases, id)
		}
	}
	added := map[string]bool{rootURL: true}
	for _, d := range deps {
		dd, err := jsonschema.UnmarshalJSON(strings.NewReader(d.schema))
		if err != nil {
			return nil, fmt.Errorf("reference %q: %w", d.name, err)
		}
		for _, b := range bases {
			u, err := resolveURL(b, d.name)
			if err != nil || added[u] {
				continue
			}
			added[u] = true
			if err := c.AddResource(u, dd); err != nil {
				return nil, fmt.Errorf("reference %q: %w", d.name, err)
			}
		}
	}
	if err := c.AddResource(rootURL, doc); err != nil {
		return nil, err
	}
	sch, err := c.Compile(rootURL)
	if err != nil {
		return nil, err
	}
	return &jsonSchema{root: sch, canon: canon}, nil
}

func resolveURL(base, name string) (string, error) {
	b, err := url.Parse(base)
	if err != nil {
		return "", err
	}
	n, err := url.Parse(name)
	if err != nil {
		return "", err
	}
	u := b.ResolveReference(n)
	u.Fragment = ""
	return u.String(), nil
}

func (j *jsonSchema) canonical() string { return j.canon }

func (j *jsonSchema) readable(writer parsed) []string {
	w, ok := writer.(*jsonSchema)
	if !ok {
		return []string{"schema types differ"}
	}
	c := &jsonCompat{seen: map[[2]*jsonschema.Schema]bool{}}
	c.subset(w.root, j.root, "#")
	return c.problems
}

func (j *jsonSchema) validate(payload []byte) error {
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(payload))
	if err != nil {
		return fmt.Errorf("json: %w", err)
	}
	if err := j.root.Validate(v); err != nil {
		return fmt.Errorf("json: %s", strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	return nil
}

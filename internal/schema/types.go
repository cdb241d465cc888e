package schema

import (
	"fmt"
	"strings"
)

// Type is a schema language, named as the REST API names it.
type Type string

// Schema types. An empty type in a request means Avro.
const (
	Avro     Type = "AVRO"
	JSON     Type = "JSON"
	Protobuf Type = "PROTOBUF"
)

// Types lists the supported schema types as GET /schemas/types answers.
var Types = []Type{JSON, Protobuf, Avro}

func parseType(s string) (Type, error) {
	switch t := Type(strings.ToUpper(s)); t {
	case "":
		return Avro, nil
	case Avro, JSON, Protobuf:
		return t, nil
	}
	return "", fmt.Errorf("unknown schema type %q", s)
}

// Reference names another registered schema that a schema imports: Name
// is how the schema refers to it (an Avro full name, a JSON $ref URL, a
// .proto import path).
type Reference struct {
	Name    string `json:"name"`
	Subject string `json:"subject"`
	Version int    `json:"version"`
}

// Schema is a schema as clients submit it.
type Schema struct {
	Type       Type
	Schema     string
	References []Reference
}

// Level is a compatibility level.
type Level string

// Compatibility levels.
const (
	None               Level = "NONE"
	Backward           Level = "BACKWARD"
	BackwardTransitive Level = "BACKWARD_TRANSITIVE"
	Forward            Level = "FORWARD"
	ForwardTransitive  Level = "FORWARD_TRANSITIVE"
	Full               Level = "FULL"
	FullTransitive     Level = "FULL_TRANSITIVE"
)

// DefaultLevel is the global level until one is set.
const DefaultLevel = Backward

// ParseLevel parses a level case-insensitively.
func ParseLevel(s string) (Level, error) {
	switch l := Level(strings.ToUpper(strings.TrimSpace(s))); l {
	case None, Backward, BackwardTransitive, Forward, ForwardTransitive, Full, FullTransitive:
		return l, nil
	}
	return "", newError(CodeInvalidCompatibilityLevel, invalidCompatibilityLevelMessage)
}

// backward reports whether l requires new schemas to read old data.
func (l Level) backward() bool {
	return l == Backward || l == BackwardTransitive || l == Full || l == FullTransitive
}

// forward reports whether l requires old schemas to read new data.
func (l Level) forward() bool {
	return l == Forward || l == ForwardTransitive || l == Full || l == FullTransitive
}

// transitive reports whether l checks every earlier version, not only the
// latest.
func (l Level) transitive() bool {
	return l == BackwardTransitive || l == ForwardTransitive || l == FullTransitive
}

// Mode is the registry's (or a subject's) write mode.
type Mode string

// Modes.
const (
	ReadWrite Mode = "READWRITE"
	ReadOnly  Mode = "READONLY"
	Import    Mode = "IMPORT"
)

// ParseMode parses a mode case-insensitively.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(strings.ToUpper(strings.TrimSpace(s))); m {
	case ReadWrite, ReadOnly, Import:
		return m, nil
	}
	return "", newError(CodeInvalidMode, "Invalid mode. Valid values are READWRITE, READONLY, IMPORT")
}

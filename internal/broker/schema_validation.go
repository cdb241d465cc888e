package broker

import (
	"fmt"
	"slices"
	"strings"
)

// Modes of weir.key.schema.validation and weir.value.schema.validation.
const (
	// SchemaValidationOff accepts any record.
	SchemaValidationOff = "false"
	// SchemaValidationID requires the Confluent wire format with the id
	// of a schema registered under the topic's subject.
	SchemaValidationID = "true"
	// SchemaValidationFull also validates the payload against the schema.
	SchemaValidationFull = "full"
)

// oneOfFold is oneOf ignoring ASCII case, as Kafka parses booleans.
func oneOfFold(vals ...string) func(string) error {
	return func(v string) error {
		if slices.Contains(vals, strings.ToLower(strings.TrimSpace(v))) {
			return nil
		}
		return fmt.Errorf("%q is not one of %s", v, strings.Join(vals, ", "))
	}
}

// SchemaValidation returns the schema validation modes in force for the
// topic's record keys and values: the weir.* config when set, else
// Confluent's confluent.*.schema.validation, else off.
func (t *Topic) SchemaValidation() (key, value string) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	mode := func(weir, confluent string) string {
		if v, ok := t.configs[weir]; ok {
			return strings.ToLower(strings.TrimSpace(v))
		}
		if v, ok := t.configs[confluent]; ok && strings.EqualFold(strings.TrimSpace(v), "true") {
			return SchemaValidationID
		}
		return SchemaValidationOff
	}
	return mode("weir.key.schema.validation", "confluent.key.schema.validation"),
		mode("weir.value.schema.validation", "confluent.value.schema.validation")
}

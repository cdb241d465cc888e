package cloudevents

import (
	"errors"
	"fmt"
	"mime"
	"net/url"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/types"
)

// maxNameLen bounds attribute names. The specification asks for at most 20
// characters (SHOULD); names are refused only past this hard limit.
const maxNameLen = 64

// invalidError is a problem with one event; it answers 400.
type invalidError struct {
	Attribute string // the attribute at fault, if one is
	Msg       string
}

func (e *invalidError) Error() string {
	if e.Attribute == "" {
		return e.Msg
	}
	return fmt.Sprintf("attribute %q: %s", e.Attribute, e.Msg)
}

func invalid(attr, format string, args ...any) error {
	return &invalidError{Attribute: attr, Msg: fmt.Sprintf(format, args...)}
}

// contextAttributes are the attributes CloudEvents 1.0 defines; any other
// name is an extension.
var contextAttributes = map[string]bool{
	"specversion": true, "id": true, "source": true, "type": true,
	"datacontenttype": true, "dataschema": true, "subject": true, "time": true,
}

// checkName applies the naming rule: lower-case ASCII letters and digits.
func checkName(name string) error {
	if name == "" {
		return invalid(name, "attribute names must not be empty")
	}
	if len(name) > maxNameLen {
		return invalid(name, "attribute names must be at most %d characters", maxNameLen)
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return invalid(name, "attribute names must consist of lower-case letters 'a'-'z' and digits '0'-'9'")
		}
	}
	return nil
}

// validString reports whether s is a CloudEvents String: valid UTF-8
// without control characters.
func validString(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 || (r >= 0x7f && r <= 0x9f) || (r >= 0xfdd0 && r <= 0xfdef) || r&0xfffe == 0xfffe {
			return false
		}
	}
	return true
}

// buildEvent makes a CloudEvents 1.0 event from attribute values in their
// string form (binary mode, Kafka headers) plus typed extension values
// (structured mode), applying every check of the specification.
func buildEvent(attrs map[string]string, typed map[string]any) (event.Event, error) {
	sv, ok := attrs["specversion"]
	if !ok {
		return event.Event{}, invalid("specversion", "required")
	}
	if sv != event.CloudEventsVersionV1 {
		return event.Event{}, invalid("specversion", "%q is not supported; want \"1.0\"", sv)
	}
	for _, name := range []string{"id", "source", "type"} {
		if strings.TrimSpace(attrs[name]) == "" {
			if _, ok := attrs[name]; ok {
				return event.Event{}, invalid(name, "must be a non-empty string")
			}
			return event.Event{}, invalid(name, "required")
		}
	}
	names := make([]string, 0, len(attrs))
	for n := range attrs {
		names = append(names, n)
	}
	sort.Strings(names)
	ev := event.New(event.CloudEventsVersionV1)
	for _, name := range names {
		v := attrs[name]
		if err := checkName(name); err != nil {
			return event.Event{}, err
		}
		if !validString(v) {
			return event.Event{}, invalid(name, "value must be valid UTF-8 without control characters")
		}
		switch name {
		case "specversion":
		case "id":
			ev.SetID(v)
		case "type":
			ev.SetType(v)
		case "source":
			if _, err := url.Parse(v); err != nil {
				return event.Event{}, invalid(name, "not a URI-reference: %v", err)
			}
			ev.SetSource(v)
		case "subject":
			if v == "" {
				return event.Event{}, invalid(name, "must be a non-empty string when present")
			}
			ev.SetSubject(v)
		case "time":
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				return event.Event{}, invalid(name, "%q is not an RFC 3339 timestamp", v)
			}
			ev.SetTime(t)
		case "dataschema":
			u, err := url.Parse(v)
			if err != nil || !u.IsAbs() {
				return event.Event{}, invalid(name, "%q is not an absolute URI", v)
			}
			ev.SetDataSchema(v)
		case "datacontenttype":
			if _, _, err := mime.ParseMediaType(v); err != nil {
				return event.Event{}, invalid(name, "%q is not an RFC 2046 media type: %v", v, err)
			}
			ev.SetDataContentType(v)
		default:
			if err := setExtension(&ev, name, v); err != nil {
				return event.Event{}, err
			}
		}
	}
	for name, v := range typed {
		if err := checkName(name); err != nil {
			return event.Event{}, err
		}
		if contextAttributes[name] {
			return event.Event{}, invalid(name, "must be a string")
		}
		if err := setExtension(&ev, name, v); err != nil {
			return event.Event{}, err
		}
	}
	if err := ev.Validate(); err != nil {
		var verr event.ValidationError
		if errors.As(err, &verr) {
			for attr, e := range verr {
				return event.Event{}, invalid(attr, "%v", e)
			}
		}
		return event.Event{}, invalid("", "%v", err)
	}
	return ev, nil
}

// setExtension sets one extension attribute.
func setExtension(ev *event.Event, name string, v any) error {
	if name == "data" {
		return invalid(name, "reserved name; extensions must not be called data")
	}
	if s, ok := v.(string); ok {
		if !validString(s) {
			return invalid(name, "value must be valid UTF-8 without control characters")
		}
		if name == PartitionKeyExtension && s == "" {
			return invalid(name, "must not be empty")
		}
	}
	if _, err := types.Validate(v); err != nil {
		return invalid(name, "%v", err)
	}
	if err := ev.Context.SetExtension(name, v); err != nil {
		return invalid(name, "%v", err)
	}
	return nil
}

// eventSize is an event's size as limits count it: data plus attribute
// names and values.
func eventSize(ev *event.Event) int {
	n := len(ev.DataEncoded) + len(ev.ID()) + len(ev.Source()) + len(ev.Type()) + len(ev.Subject()) +
		len(ev.DataSchema()) + len(ev.DataContentType()) + 64
	for k, v := range ev.Extensions() {
		s, _ := types.Format(v)
		n += len(k) + len(s)
	}
	return n
}

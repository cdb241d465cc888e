package serde

import (
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/types"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weirhq/weir/stream"
)

// ErrNotCloudEvent: a record is neither a binary-mode event (ce_ headers)
// nor a structured-mode one (a CloudEvents JSON value), or the event it
// describes is not valid CloudEvents 1.0.
var ErrNotCloudEvent = errors.New("serde: not a CloudEvent")

// CloudEvents Kafka protocol binding names.
const (
	ceHeaderPrefix    = "ce_"
	ceContentType     = "content-type"
	ceStructuredMedia = "application/cloudevents+json"
)

// CloudEventOption configures the CloudEvents serde.
type CloudEventOption func(*cloudEventSerde)

// Structured makes the serde write structured content mode (the whole
// event as application/cloudevents+json in the value, a content-type
// header) instead of binary mode.
func Structured() CloudEventOption { return func(s *cloudEventSerde) { s.structured = true } }

// CloudEvent returns a serde of CloudEvents 1.0 events following the
// CloudEvents Kafka protocol binding. It implements stream.HeaderSerde,
// so as a Source or To value serde it sees the record headers and reads
// both content modes:
//
//   - binary (what Weir's HTTP gateway writes, and the default here):
//     attributes in ce_<name> headers, datacontenttype in content-type,
//     the data as the value;
//   - structured: the event as JSON in the value.
//
// Called as a plain Serde (Encode, Decode: no headers), it writes and
// reads structured mode only. The record key is the key serde's business:
// the binding puts the partitionkey extension there, which Weir's gateway
// also keeps as a ce_partitionkey header, so it reads back as the
// extension.
func CloudEvent(opts ...CloudEventOption) stream.Serde[event.Event] {
	s := &cloudEventSerde{}
	for _, f := range opts {
		f(s)
	}
	return s
}

type cloudEventSerde struct{ structured bool }

// Encode writes structured mode.
func (s *cloudEventSerde) Encode(ev event.Event) ([]byte, error) {
	if err := ev.Validate(); err != nil {
		return nil, fmt.Errorf("serde: cloudevent encode: %w", err)
	}
	return json.Marshal(ev)
}

// Decode reads structured mode.
func (s *cloudEventSerde) Decode(b []byte) (event.Event, error) {
	var ev event.Event
	if err := json.Unmarshal(b, &ev); err != nil {
		return event.Event{}, fmt.Errorf("%w: structured: %w", ErrNotCloudEvent, err)
	}
	if err := ev.Validate(); err != nil {
		return event.Event{}, fmt.Errorf("%w: %w", ErrNotCloudEvent, err)
	}
	return ev, nil
}

// EncodeHeaders writes binary mode, or structured mode with a
// content-type header if the serde was made Structured.
func (s *cloudEventSerde) EncodeHeaders(ev event.Event) ([]byte, []kgo.RecordHeader, error) {
	if s.structured {
		b, err := s.Encode(ev)
		if err != nil {
			return nil, nil, err
		}
		return b, []kgo.RecordHeader{{Key: ceContentType, Value: []byte(ceStructuredMedia)}}, nil
	}
	if err := ev.Validate(); err != nil {
		return nil, nil, fmt.Errorf("serde: cloudevent encode: %w", err)
	}
	var hs []kgo.RecordHeader
	add := func(k, v string) { hs = append(hs, kgo.RecordHeader{Key: k, Value: []byte(v)}) }
	add(ceHeaderPrefix+"specversion", ev.SpecVersion())
	add(ceHeaderPrefix+"id", ev.ID())
	add(ceHeaderPrefix+"source", ev.Source())
	add(ceHeaderPrefix+"type", ev.Type())
	if v := ev.Subject(); v != "" {
		add(ceHeaderPrefix+"subject", v)
	}
	if t := ev.Time(); !t.IsZero() {
		add(ceHeaderPrefix+"time", types.FormatTime(t))
	}
	if v := ev.DataSchema(); v != "" {
		add(ceHeaderPrefix+"dataschema", v)
	}
	if v := ev.DataContentType(); v != "" {
		add(ceContentType, v)
	}
	exts := ev.Extensions()
	names := make([]string, 0, len(exts))
	for n := range exts {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		v, err := types.Format(exts[n])
		if err != nil {
			return nil, nil, fmt.Errorf("serde: cloudevent extension %q: %w", n, err)
		}
		add(ceHeaderPrefix+n, v)
	}
	return ev.Data(), hs, nil
}

// DecodeHeaders reads binary mode when the record has a ce_specversion
// header, structured mode otherwise.
func (s *cloudEventSerde) DecodeHeaders(value []byte, headers []kgo.RecordHeader) (event.Event, error) {
	binary := false
	for _, h := range headers {
		if h.Key == ceHeaderPrefix+"specversion" {
			binary = true
			break
		}
	}
	if !binary {
		return s.Decode(value)
	}
	ev := event.New(event.CloudEventsVersionV1)
	seen := map[string]bool{}
	for _, h := range headers {
		var name string
		switch {
		case strings.HasPrefix(h.Key, ceHeaderPrefix):
			name = h.Key[len(ceHeaderPrefix):]
		case strings.EqualFold(h.Key, ceContentType):
			name = "datacontenttype"
		default:
			continue
		}
		if seen[name] {
			return event.Event{}, fmt.Errorf("%w: header for %q twice", ErrNotCloudEvent, name)
		}
		seen[name] = true
		if err := setAttribute(&ev, name, string(h.Value)); err != nil {
			return event.Event{}, fmt.Errorf("%w: %s: %w", ErrNotCloudEvent, name, err)
		}
	}
	if err := ev.Validate(); err != nil {
		return event.Event{}, fmt.Errorf("%w: %w", ErrNotCloudEvent, err)
	}
	if value != nil {
		ev.DataEncoded = value
		ev.DataBase64 = !dataIsText(ev.DataContentType(), value)
	}
	return ev, nil
}

// setAttribute sets one attribute from its canonical string.
func setAttribute(ev *event.Event, name, v string) error {
	switch name {
	case "specversion":
		if v != event.CloudEventsVersionV1 {
			return fmt.Errorf("specversion %q, want %s", v, event.CloudEventsVersionV1)
		}
	case "id":
		ev.SetID(v)
	case "source":
		ev.SetSource(v)
	case "type":
		ev.SetType(v)
	case "subject":
		ev.SetSubject(v)
	case "dataschema":
		ev.SetDataSchema(v)
	case "datacontenttype":
		if _, _, err := mime.ParseMediaType(v); err != nil {
			return err
		}
		ev.SetDataContentType(v)
	case "time":
		t, err := types.ParseTime(v)
		if err != nil {
			return err
		}
		ev.SetTime(t)
	default:
		if !event.IsExtensionNameValid(name) {
			return errors.New("not a valid extension name")
		}
		return ev.Context.SetExtension(name, v)
	}
	return nil
}

// dataIsText reports whether the JSON format can carry data inline (JSON
// data, or text) rather than as data_base64.
func dataIsText(contentType string, data []byte) bool {
	mt, _, _ := mime.ParseMediaType(contentType)
	switch {
	case mt == "" || mt == "application/json" || mt == "text/json" || strings.HasSuffix(mt, "+json"):
		return json.Valid(data)
	case strings.HasPrefix(mt, "text/") || mt == "application/xml" || strings.HasSuffix(mt, "+xml"):
		return utf8.Valid(data)
	}
	return false
}

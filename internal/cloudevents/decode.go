package cloudevents

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"strings"

	"github.com/cloudevents/sdk-go/v2/event"
)

// Media types of the HTTP protocol binding.
const (
	mediaStructuredJSON = "application/cloudevents+json"
	mediaBatchJSON      = "application/cloudevents-batch+json"
)

// contentMode is how a request carries its events.
type contentMode int

const (
	modeBinary contentMode = iota
	modeStructured
	modeBatch
)

func (m contentMode) String() string {
	switch m {
	case modeStructured:
		return "structured"
	case modeBatch:
		return "batch"
	}
	return "binary"
}

// requestMode decides the content mode from the headers, or fails with 415
// (an unsupported event format) or 400 (no CloudEvent at all).
func requestMode(h http.Header) (contentMode, error) {
	ct := h.Get("Content-Type")
	mt, params := "", map[string]string(nil)
	if ct != "" {
		var err error
		if mt, params, err = mime.ParseMediaType(ct); err != nil {
			return 0, &apiError{Status: http.StatusUnsupportedMediaType, Code: codeUnsupportedMedia,
				Message: fmt.Sprintf("Content-Type %q does not parse: %v", ct, err)}
		}
	}
	if strings.HasPrefix(mt, "application/cloudevents") {
		if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
			return 0, &apiError{Status: http.StatusUnsupportedMediaType, Code: codeUnsupportedMedia,
				Message: fmt.Sprintf("charset %q is not supported; CloudEvents JSON is UTF-8", cs)}
		}
		switch mt {
		case mediaStructuredJSON:
			return modeStructured, nil
		case mediaBatchJSON:
			return modeBatch, nil
		}
		return 0, &apiError{Status: http.StatusUnsupportedMediaType, Code: codeUnsupportedMedia,
			Message: fmt.Sprintf("event format %q is not supported; use %s, %s or binary mode", mt, mediaStructuredJSON, mediaBatchJSON)}
	}
	if len(h.Values("Ce-Specversion")) > 0 {
		return modeBinary, nil
	}
	for k := range h {
		if strings.HasPrefix(strings.ToLower(k), "ce-") {
			return 0, &apiError{Status: http.StatusBadRequest, Code: codeInvalidEvent, Attribute: "specversion",
				Message: "binary mode event without a ce-specversion header"}
		}
	}
	return 0, &apiError{Status: http.StatusUnsupportedMediaType, Code: codeUnsupportedMedia,
		Message: fmt.Sprintf("Content-Type %q carries no CloudEvent: send binary mode (ce-* headers) or Content-Type %s or %s", ct, mediaStructuredJSON, mediaBatchJSON)}
}

// decodeBinary reads a binary mode event: attributes from ce-* headers
// (percent-decoded), datacontenttype from Content-Type, data from body.
func decodeBinary(h http.Header, body []byte, hasBody bool) (event.Event, error) {
	attrs := map[string]string{}
	for k, vs := range h {
		lk := strings.ToLower(k)
		if !strings.HasPrefix(lk, "ce-") {
			continue
		}
		name := lk[3:]
		if err := checkName(name); err != nil {
			return event.Event{}, err
		}
		if name == "datacontenttype" {
			return event.Event{}, invalid(name, "binary mode carries datacontenttype in the Content-Type header, not ce-datacontenttype")
		}
		if len(vs) != 1 {
			return event.Event{}, invalid(name, "given %d times", len(vs))
		}
		attrs[name] = percentDecode(vs[0])
	}
	if ct := h.Get("Content-Type"); ct != "" {
		attrs["datacontenttype"] = ct
	}
	ev, err := buildEvent(attrs, nil)
	if err != nil {
		return event.Event{}, err
	}
	if hasBody {
		ev.DataEncoded = body
		if ev.DataEncoded == nil {
			ev.DataEncoded = []byte{}
		}
	}
	return ev, nil
}

// percentDecode undoes the percent-encoding the HTTP binding applies to
// header values; a '%' not starting a valid escape is kept as it is, so
// senders that do not encode are read as they meant.
func percentDecode(s string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			b.WriteByte(unhex(s[i+1])<<4 | unhex(s[i+2]))
			i += 2
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// percentEncode encodes a header value as the HTTP binding asks: bytes
// outside printable ASCII, '"' and '%' become %XX.
func percentEncode(s string) string {
	need := false
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '%' {
			need = true
			break
		}
	}
	if !need {
		return s
	}
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '%' {
			b.WriteByte('%')
			b.WriteByte(hexDigits[c>>4])
			b.WriteByte(hexDigits[c&15])
		} else {
			b.WriteByte(c)
		}
	}
	return b.String()
}

func isHex(c byte) bool { return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' }

func unhex(c byte) byte {
	switch {
	case c >= 'a':
		return c - 'a' + 10
	case c >= 'A':
		return c - 'A' + 10
	}
	return c - '0'
}

// decodeStructured reads one event in the JSON event format.
func decodeStructured(doc []byte) (event.Event, error) {
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	ev, err := decodeObject(dec)
	if err != nil {
		return event.Event{}, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return event.Event{}, invalid("", "malformed JSON: data after the event object")
	}
	return ev, nil
}

// decodeBatch reads a JSON array of events, refusing more than maxEvents.
func decodeBatch(doc []byte, maxEvents int) ([]event.Event, error) {
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('[') {
		return nil, invalid("", "a batch must be a JSON array of events")
	}
	var evs []event.Event
	for dec.More() {
		if len(evs) == maxEvents {
			return nil, &apiError{Status: http.StatusRequestEntityTooLarge, Code: codeTooLarge,
				Message: fmt.Sprintf("batch holds more than %d events", maxEvents)}
		}
		ev, err := decodeObject(dec)
		if err != nil {
			return nil, atIndex(err, len(evs))
		}
		evs = append(evs, ev)
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim(']') {
		return nil, invalid("", "malformed JSON batch")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, invalid("", "malformed JSON: data after the batch array")
	}
	if len(evs) == 0 {
		return nil, invalid("", "the batch holds no events")
	}
	return evs, nil
}

// indexedError names the event of a batch a problem belongs to.
type indexedError struct {
	Index int
	Err   error
}

func (e *indexedError) Error() string { return fmt.Sprintf("event %d: %v", e.Index, e.Err) }
func (e *indexedError) Unwrap() error { return e.Err }

func atIndex(err error, i int) error { return &indexedError{Index: i, Err: err} }

// decodeObject reads one JSON event object from dec.
func decodeObject(dec *json.Decoder) (event.Event, error) {
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return event.Event{}, invalid("", "an event must be a JSON object")
	}
	attrs := map[string]string{}
	typed := map[string]any{}
	var data, dataB64 json.RawMessage
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return event.Event{}, invalid("", "malformed JSON: %v", err)
		}
		key := tok.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return event.Event{}, invalid("", "malformed JSON: %v", err)
		}
		if seen[key] {
			return event.Event{}, invalid(key, "given twice")
		}
		seen[key] = true
		switch key {
		case "data":
			data = raw
			continue
		case "data_base64":
			dataB64 = raw
			continue
		}
		if err := checkName(key); err != nil {
			return event.Event{}, err
		}
		if string(raw) == "null" {
			continue // an attribute with a null value is absent
		}
		var v any
		d := json.NewDecoder(bytes.NewReader(raw))
		d.UseNumber()
		if err := d.Decode(&v); err != nil {
			return event.Event{}, invalid(key, "malformed JSON: %v", err)
		}
		switch v := v.(type) {
		case string:
			attrs[key] = v
		case bool:
			if contextAttributes[key] {
				return event.Event{}, invalid(key, "must be a string")
			}
			typed[key] = v
		case json.Number:
			if contextAttributes[key] {
				return event.Event{}, invalid(key, "must be a string")
			}
			i, err := v.Int64()
			if err != nil || i < math.MinInt32 || i > math.MaxInt32 {
				return event.Event{}, invalid(key, "number %s is not a CloudEvents Integer (32-bit, no fraction)", v)
			}
			typed[key] = int32(i)
		default:
			return event.Event{}, invalid(key, "attribute values must be strings, booleans or integers")
		}
	}
	if _, err := dec.Token(); err != nil {
		return event.Event{}, invalid("", "malformed JSON: %v", err)
	}
	if data != nil && dataB64 != nil {
		return event.Event{}, invalid("data", "data and data_base64 are mutually exclusive")
	}
	if data != nil && string(data) != "null" {
		if _, ok := attrs["datacontenttype"]; !ok {
			// The JSON format reads absent datacontenttype as JSON data;
			// the Kafka record says so explicitly.
			attrs["datacontenttype"] = "application/json"
		}
	}
	ev, err := buildEvent(attrs, typed)
	if err != nil {
		return event.Event{}, err
	}
	switch {
	case dataB64 != nil && string(dataB64) != "null":
		var s string
		if err := json.Unmarshal(dataB64, &s); err != nil {
			return event.Event{}, invalid("data_base64", "must be a string")
		}
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return event.Event{}, invalid("data_base64", "not base64: %v", err)
		}
		ev.DataEncoded, ev.DataBase64 = b, true
	case data != nil && string(data) != "null":
		if mt := mediaType(ev.DataContentType()); isJSONMedia(mt) {
			ev.DataEncoded = append([]byte(nil), data...)
		} else {
			var s string
			if err := json.Unmarshal(data, &s); err != nil {
				return event.Event{}, invalid("data", "must be a JSON string for datacontenttype %q (or use data_base64)", ev.DataContentType())
			}
			ev.DataEncoded = []byte(s)
		}
	}
	return ev, nil
}

// asInvalid reports whether err is a problem with an event.
func asInvalid(err error) (*invalidError, bool) {
	var ie *invalidError
	ok := errors.As(err, &ie)
	return ie, ok
}

package nexmark

import (
	"errors"
	"fmt"
	"math"
	"unicode/utf16"
	"unicode/utf8"
)

// MaxEventSize bounds the JSON of one event that Unmarshal accepts.
const MaxEventSize = 1 << 20

// maxDepth bounds the nesting of unknown fields' values that Unmarshal skips.
const maxDepth = 64

// ErrSyntax is wrapped by every error of Unmarshal about malformed input.
var ErrSyntax = errors.New("nexmark: malformed event")

// Unmarshal decodes one record value into e. It reads what Marshal writes
// and what Flink's JSON format writes: fields in any order, unknown fields
// skipped, null for a string field read as "", timestamps as ParseTime
// accepts. Every field of the member event_type names is required; the
// other members must be null or absent. Input is untrusted: Unmarshal
// never panics, and rejects values over MaxEventSize, invalid UTF-8 and
// nesting deeper than 64.
//
// Unmarshal overwrites e. When e's member of the decoded type is already
// set, it is reused (overwritten in place), so decoding into one Event
// again and again allocates only the strings; pass a zero Event to get
// fresh members. On error e is unchanged, except that a reused member may
// be partly overwritten.
func Unmarshal(data []byte, e *Event) error {
	if len(data) > MaxEventSize {
		return fmt.Errorf("%w: %d bytes, over the %d-byte limit", ErrSyntax, len(data), MaxEventSize)
	}
	d := decoder{b: data}
	if err := d.event(e); err != nil {
		return err
	}
	d.ws()
	if d.i != len(d.b) {
		return d.errf("trailing data after the event")
	}
	return nil
}

// decoder is a cursor over one JSON value.
type decoder struct {
	b    []byte
	i    int
	path string // the member being decoded, for messages
	buf  []byte // scratch for strings with escapes
}

func (d *decoder) errf(format string, args ...any) error {
	where := ""
	if d.path != "" {
		where = d.path + ": "
	}
	return fmt.Errorf("%w: %s%s at byte %d", ErrSyntax, where, fmt.Sprintf(format, args...), d.i)
}

func (d *decoder) ws() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// peek returns the next non-space byte, or 0 at the end.
func (d *decoder) peek() byte {
	d.ws()
	if d.i < len(d.b) {
		return d.b[d.i]
	}
	return 0
}

func (d *decoder) want(c byte) error {
	if d.peek() != c {
		if d.i >= len(d.b) {
			return d.errf("unexpected end, want %q", c)
		}
		return d.errf("want %q, got %q", c, d.b[d.i])
	}
	d.i++
	return nil
}

// null consumes a literal null if one comes next.
func (d *decoder) null() bool {
	if d.peek() == 'n' && d.i+4 <= len(d.b) && string(d.b[d.i:d.i+4]) == "null" {
		d.i += 4
		return true
	}
	return false
}

// fields calls field for each member name of an object, positioned at its
// value; field must consume the value.
func (d *decoder) fields(field func(name []byte) error) error {
	if err := d.want('{'); err != nil {
		return err
	}
	if d.peek() == '}' {
		d.i++
		return nil
	}
	for {
		name, err := d.rawString()
		if err != nil {
			return err
		}
		if err := d.want(':'); err != nil {
			return err
		}
		if err := field(name); err != nil {
			return err
		}
		switch d.peek() {
		case ',':
			d.i++
		case '}':
			d.i++
			return nil
		default:
			return d.errf("want ',' or '}' after a field")
		}
	}
}

// rawString reads a string and returns its decoded bytes, valid only until
// the next call (they may alias the input or the scratch buffer).
func (d *decoder) rawString() ([]byte, error) {
	if d.peek() != '"' {
		return nil, d.errf("want a string")
	}
	d.i++
	start := d.i
	for d.i < len(d.b) {
		c := d.b[d.i]
		switch {
		case c == '"':
			s := d.b[start:d.i]
			d.i++
			if !utf8.Valid(s) {
				return nil, d.errf("invalid UTF-8 in a string")
			}
			return s, nil
		case c == '\\':
			return d.escapedString(start)
		case c < 0x20:
			return nil, d.errf("control character in a string")
		}
		d.i++
	}
	return nil, d.errf("unterminated string")
}

// escapedString finishes a string that has escapes, from start (just past
// the opening quote), into the scratch buffer.
func (d *decoder) escapedString(start int) ([]byte, error) {
	d.buf = append(d.buf[:0], d.b[start:d.i]...)
	for d.i < len(d.b) {
		c := d.b[d.i]
		switch {
		case c == '"':
			d.i++
			if !utf8.Valid(d.buf) {
				return nil, d.errf("invalid UTF-8 in a string")
			}
			return d.buf, nil
		case c < 0x20:
			return nil, d.errf("control character in a string")
		case c != '\\':
			d.buf = append(d.buf, c)
			d.i++
			continue
		}
		if d.i+1 >= len(d.b) {
			return nil, d.errf("unterminated string")
		}
		esc := d.b[d.i+1]
		d.i += 2
		switch esc {
		case '"', '\\', '/':
			d.buf = append(d.buf, esc)
		case 'b':
			d.buf = append(d.buf, '\b')
		case 'f':
			d.buf = append(d.buf, '\f')
		case 'n':
			d.buf = append(d.buf, '\n')
		case 'r':
			d.buf = append(d.buf, '\r')
		case 't':
			d.buf = append(d.buf, '\t')
		case 'u':
			r, ok := d.hex4()
			if !ok {
				return nil, d.errf("bad \\u escape")
			}
			if utf16.IsSurrogate(r) {
				r2 := utf8.RuneError
				save := d.i
				if d.i+1 < len(d.b) && d.b[d.i] == '\\' && d.b[d.i+1] == 'u' {
					d.i += 2
					if lo, ok := d.hex4(); ok {
						r2 = lo
					}
				}
				if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
					r = dec
				} else {
					r, d.i = utf8.RuneError, save // lone surrogate: U+FFFD, as encoding/json
				}
			}
			d.buf = utf8.AppendRune(d.buf, r)
		default:
			return nil, d.errf("bad escape \\%c", esc)
		}
	}
	return nil, d.errf("unterminated string")
}

func (d *decoder) hex4() (rune, bool) {
	if d.i+4 > len(d.b) {
		return 0, false
	}
	var r rune
	for _, c := range d.b[d.i : d.i+4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	d.i += 4
	return r, true
}

// str reads a string field; null reads as "".
func (d *decoder) str(name string) (string, error) {
	if d.null() {
		return "", nil
	}
	s, err := d.rawString()
	if err != nil {
		return "", fmt.Errorf("%w (field %s)", err, name)
	}
	return string(s), nil
}

// int reads an integer field: a JSON number without fraction or exponent
// that fits in 64 bits.
func (d *decoder) int(name string) (int64, error) {
	d.ws()
	start := d.i
	neg := d.i < len(d.b) && d.b[d.i] == '-'
	if neg {
		d.i++
	}
	var u uint64
	digits := 0
	for d.i < len(d.b) && d.b[d.i] >= '0' && d.b[d.i] <= '9' {
		if u > (math.MaxUint64-9)/10 {
			return 0, d.errf("field %s: integer out of range", name)
		}
		u = u*10 + uint64(d.b[d.i]-'0')
		digits++
		d.i++
	}
	if digits == 0 || (digits > 1 && d.b[start+btoi(neg)] == '0') {
		return 0, d.errf("field %s: want an integer", name)
	}
	if d.i < len(d.b) && (d.b[d.i] == '.' || d.b[d.i] == 'e' || d.b[d.i] == 'E') {
		return 0, d.errf("field %s: want an integer, got a fraction or exponent", name)
	}
	if neg {
		if u > 1<<63 {
			return 0, d.errf("field %s: integer out of range", name)
		}
		return -int64(u), nil
	}
	if u > math.MaxInt64 {
		return 0, d.errf("field %s: integer out of range", name)
	}
	return int64(u), nil
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// time reads a timestamp field.
func (d *decoder) time(name string) (int64, error) {
	s, err := d.rawString()
	if err != nil {
		return 0, fmt.Errorf("%w (field %s)", err, name)
	}
	ms, err := parseTime(s)
	if err != nil {
		return 0, fmt.Errorf("%w: %s: field %s: %v", ErrSyntax, d.path, name, err)
	}
	return ms, nil
}

// skip consumes one value of any kind, nested at most maxDepth deep.
func (d *decoder) skip(depth int) error {
	if depth > maxDepth {
		return d.errf("nested deeper than %d", maxDepth)
	}
	switch c := d.peek(); {
	case c == '"':
		_, err := d.rawString()
		return err
	case c == '{':
		return d.fields(func([]byte) error { return d.skip(depth + 1) })
	case c == '[':
		d.i++
		if d.peek() == ']' {
			d.i++
			return nil
		}
		for {
			if err := d.skip(depth + 1); err != nil {
				return err
			}
			switch d.peek() {
			case ',':
				d.i++
			case ']':
				d.i++
				return nil
			default:
				return d.errf("want ',' or ']' in an array")
			}
		}
	case c == '-' || (c >= '0' && c <= '9'):
		d.i++
		for d.i < len(d.b) && (d.b[d.i] >= '0' && d.b[d.i] <= '9' || d.b[d.i] == '.' ||
			d.b[d.i] == 'e' || d.b[d.i] == 'E' || d.b[d.i] == '+' || d.b[d.i] == '-') {
			d.i++
		}
		return nil
	default:
		for _, lit := range []string{"null", "true", "false"} {
			if d.i+len(lit) <= len(d.b) && string(d.b[d.i:d.i+len(lit)]) == lit {
				d.i += len(lit)
				return nil
			}
		}
		return d.errf("want a JSON value")
	}
}

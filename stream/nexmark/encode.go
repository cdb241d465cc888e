package nexmark

import (
	"math"
	"strconv"
	"unicode/utf8"
)

// Marshal encodes e as the JSON of one record value (see the package doc).
// It fails only if e's members disagree with its Type.
func Marshal(e *Event) ([]byte, error) { return AppendJSON(make([]byte, 0, 256), e) }

// AppendJSON appends the JSON encoding of e to b; with a reused b it does
// not allocate.
func AppendJSON(b []byte, e *Event) ([]byte, error) {
	if err := e.check(); err != nil {
		return b, err
	}
	b = append(b, `{"event_type":`...)
	b = append(b, byte('0'+e.Type))
	b = append(b, `,"person":`...)
	if p := e.Person; p == nil {
		b = append(b, "null"...)
	} else {
		o := object{b: b}
		o.int("id", p.ID)
		o.str("name", p.Name)
		o.str("emailAddress", p.EmailAddress)
		o.str("creditCard", p.CreditCard)
		o.str("city", p.City)
		o.str("state", p.State)
		o.time("dateTime", p.DateTime)
		o.str("extra", p.Extra)
		b = o.close()
	}
	b = append(b, `,"auction":`...)
	if a := e.Auction; a == nil {
		b = append(b, "null"...)
	} else {
		o := object{b: b}
		o.int("id", a.ID)
		o.str("itemName", a.ItemName)
		o.str("description", a.Description)
		o.int("initialBid", a.InitialBid)
		o.int("reserve", a.Reserve)
		o.time("dateTime", a.DateTime)
		o.time("expires", a.Expires)
		o.int("seller", a.Seller)
		o.int("category", a.Category)
		o.str("extra", a.Extra)
		b = o.close()
	}
	b = append(b, `,"bid":`...)
	if x := e.Bid; x == nil {
		b = append(b, "null"...)
	} else {
		o := object{b: b}
		o.int("auction", x.Auction)
		o.int("bidder", x.Bidder)
		o.int("price", x.Price)
		o.str("channel", x.Channel)
		o.str("url", x.URL)
		o.time("dateTime", x.DateTime)
		o.str("extra", x.Extra)
		b = o.close()
	}
	return append(b, '}'), nil
}

// object appends one JSON object field by field; names are plain ASCII.
type object struct {
	b []byte
	n int
}

func (o *object) name(n string) {
	if o.n == 0 {
		o.b = append(o.b, '{')
	} else {
		o.b = append(o.b, ',')
	}
	o.n++
	o.b = append(o.b, '"')
	o.b = append(o.b, n...)
	o.b = append(o.b, '"', ':')
}

func (o *object) int(n string, v int64)  { o.name(n); o.b = strconv.AppendInt(o.b, v, 10) }
func (o *object) str(n string, v string) { o.name(n); o.b = appendString(o.b, v) }
func (o *object) time(n string, ms int64) {
	o.name(n)
	o.b = append(AppendTime(append(o.b, '"'), ms), '"')
}
func (o *object) float(n string, v float64) {
	o.name(n)
	o.b = appendFloat(o.b, v)
}

func (o *object) close() []byte {
	if o.n == 0 {
		return append(o.b, '{', '}')
	}
	return append(o.b, '}')
}

// appendFloat writes v as encoding/json does: shortest representation,
// exponent only for very large or small magnitudes; NaN and infinities,
// which JSON cannot carry, as null.
func appendFloat(b []byte, v float64) []byte {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return append(b, "null"...)
	}
	abs := math.Abs(v)
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		return strconv.AppendFloat(b, v, 'e', -1, 64)
	}
	return strconv.AppendFloat(b, v, 'f', -1, 64)
}

const hexDigits = "0123456789abcdef"

// appendString writes s as a JSON string: quotes, backslashes and control
// characters escaped, invalid UTF-8 replaced by U+FFFD (as encoding/json).
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	i := 0
	for i < len(s) {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		break
	}
	b = append(b, s[:i]...)
	start := i
	for i < len(s) {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i++
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

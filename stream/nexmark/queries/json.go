package queries

import (
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"unicode/utf8"

	"github.com/weirhq/weir/stream"
	"github.com/weirhq/weir/stream/nexmark"
)

// The output values, each written as a JSON object with exactly its
// query's fields. Times are Unix milliseconds, written as
// nexmark.TimeLayout.

// BidOut is a bid as q0 and q7 output it: {auction,bidder,price,dateTime,extra}.
type BidOut struct {
	Auction, Bidder, Price, DateTime int64
	Extra                            string
}

// Q1Out is q1's value: a bid with its price in euros, not rounded.
type Q1Out struct {
	Auction, Bidder int64
	Price           float64
	DateTime        int64
	Extra           string
}

// Q2Out is q2's value: {auction,price}.
type Q2Out struct{ Auction, Price int64 }

// Q3Out is q3's value: the seller's name, city and state, and the
// auction's id.
type Q3Out struct {
	Name, City, State string
	ID                int64
}

// Q4Key is q4's key, {"category":N}; Q4Out its value {category,avg_price}.
type (
	Q4Key struct{ Category int64 }
	Q4Out struct{ Category, AvgPrice int64 }
)

// Q5Out is q5's value: {auction,num,window_start,window_end}.
type Q5Out struct{ Auction, Num, WindowStart, WindowEnd int64 }

// Q8Out is q8's value: {id,name,starttime}.
type Q8Out struct {
	ID        int64
	Name      string
	StartTime int64
}

func (v BidOut) appendJSON(o *object) {
	o.int("auction", v.Auction)
	o.int("bidder", v.Bidder)
	o.int("price", v.Price)
	o.time("dateTime", v.DateTime)
	o.str("extra", v.Extra)
}

func (v Q1Out) appendJSON(o *object) {
	o.int("auction", v.Auction)
	o.int("bidder", v.Bidder)
	o.float("price", v.Price)
	o.time("dateTime", v.DateTime)
	o.str("extra", v.Extra)
}

func (v Q2Out) appendJSON(o *object) { o.int("auction", v.Auction); o.int("price", v.Price) }

func (v Q3Out) appendJSON(o *object) {
	o.str("name", v.Name)
	o.str("city", v.City)
	o.str("state", v.State)
	o.int("id", v.ID)
}

func (v Q4Key) appendJSON(o *object) { o.int("category", v.Category) }

func (v Q4Out) appendJSON(o *object) { o.int("category", v.Category); o.int("avg_price", v.AvgPrice) }

func (v Q5Out) appendJSON(o *object) {
	o.int("auction", v.Auction)
	o.int("num", v.Num)
	o.time("window_start", v.WindowStart)
	o.time("window_end", v.WindowEnd)
}

func (v Q8Out) appendJSON(o *object) {
	o.int("id", v.ID)
	o.str("name", v.Name)
	o.time("starttime", v.StartTime)
}

// jsonValue is an output value.
type jsonValue interface{ appendJSON(o *object) }

// Output is the serde of the output values: Encode writes the JSON
// object; Decode is not supported (outputs are read as JSON by their
// consumers, e.g. with encoding/json or nexmark.Compare).
func Output[T jsonValue]() stream.Serde[T] { return outSerde[T]{} }

type outSerde[T jsonValue] struct{}

func (outSerde[T]) Encode(v T) ([]byte, error) {
	o := object{b: make([]byte, 0, 64)}
	v.appendJSON(&o)
	return o.close(), nil
}

var errWriteOnly = errors.New("queries: output values are written, not read")

func (outSerde[T]) Decode([]byte) (T, error) {
	var v T
	return v, errWriteOnly
}

// EventSerde reads and writes NEXMark events with nexmark.Unmarshal and
// nexmark.Marshal (not encoding/json: several times faster).
func EventSerde() stream.Serde[*nexmark.Event] { return eventSerde{} }

type eventSerde struct{}

func (eventSerde) Encode(e *nexmark.Event) ([]byte, error) { return nexmark.Marshal(e) }

func (eventSerde) Decode(b []byte) (*nexmark.Event, error) {
	e := new(nexmark.Event)
	if err := nexmark.Unmarshal(b, e); err != nil {
		return nil, err
	}
	return e, nil
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
	o.b = append(append(append(o.b, '"'), n...), '"', ':')
}

func (o *object) int(n string, v int64) { o.name(n); o.b = strconv.AppendInt(o.b, v, 10) }

func (o *object) str(n string, v string) { o.name(n); o.b = appendString(o.b, v) }

func (o *object) time(n string, ms int64) {
	o.name(n)
	o.b = append(nexmark.AppendTime(append(o.b, '"'), ms), '"')
}

// float writes v as encoding/json does (NaN and infinities, which JSON
// cannot carry, as null).
func (o *object) float(n string, v float64) {
	o.name(n)
	if math.IsNaN(v) || math.IsInf(v, 0) {
		o.b = append(o.b, "null"...)
		return
	}
	if a := math.Abs(v); a != 0 && (a < 1e-6 || a >= 1e21) {
		o.b = strconv.AppendFloat(o.b, v, 'e', -1, 64)
		return
	}
	o.b = strconv.AppendFloat(o.b, v, 'f', -1, 64)
}

func (o *object) close() []byte {
	if o.n == 0 {
		return append(o.b, '{', '}')
	}
	return append(o.b, '}')
}

// appendString writes s as a JSON string; plain ASCII is copied as is,
// anything else goes through encoding/json's escaping.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= utf8.RuneSelf {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	return append(append(append(b, '"'), s...), '"')
}

package nexmark

import (
	"fmt"
	"time"
)

// EventType says which of an Event's three members is set; its numbers are
// the JSON event_type.
type EventType int8

// The three kinds of NEXMark events.
const (
	PersonEvent  EventType = 0
	AuctionEvent EventType = 1
	BidEvent     EventType = 2
)

func (t EventType) String() string {
	switch t {
	case PersonEvent:
		return "person"
	case AuctionEvent:
		return "auction"
	case BidEvent:
		return "bid"
	}
	return fmt.Sprintf("EventType(%d)", int8(t))
}

// Person is a new user of the auction site. DateTime is the event time in
// milliseconds since the Unix epoch (UTC), as every time in this package.
type Person struct {
	ID           int64
	Name         string
	EmailAddress string
	CreditCard   string
	City         string
	State        string
	DateTime     int64
	Extra        string
}

// Auction is a new item put up for sale by Seller, open from DateTime until
// Expires (milliseconds since the epoch).
type Auction struct {
	ID          int64
	ItemName    string
	Description string
	InitialBid  int64
	Reserve     int64
	DateTime    int64
	Expires     int64
	Seller      int64
	Category    int64
	Extra       string
}

// Bid is a bid of Bidder on Auction.
type Bid struct {
	Auction  int64
	Bidder   int64
	Price    int64
	Channel  string
	URL      string
	DateTime int64
	Extra    string
}

// Event is one record of the NEXMark stream: exactly the member Type names
// is set, the other two are nil.
type Event struct {
	Type    EventType
	Person  *Person
	Auction *Auction
	Bid     *Bid
}

// Time returns the event time of e (its member's DateTime), or 0 if the
// member Type names is missing.
func (e *Event) Time() int64 {
	switch e.Type {
	case PersonEvent:
		if e.Person != nil {
			return e.Person.DateTime
		}
	case AuctionEvent:
		if e.Auction != nil {
			return e.Auction.DateTime
		}
	case BidEvent:
		if e.Bid != nil {
			return e.Bid.DateTime
		}
	}
	return 0
}

// check reports an event whose members disagree with its Type.
func (e *Event) check() error {
	n := 0
	for _, set := range []bool{e.Person != nil, e.Auction != nil, e.Bid != nil} {
		if set {
			n++
		}
	}
	var ok bool
	switch e.Type {
	case PersonEvent:
		ok = e.Person != nil
	case AuctionEvent:
		ok = e.Auction != nil
	case BidEvent:
		ok = e.Bid != nil
	default:
		return fmt.Errorf("nexmark: event_type %d: want 0 (person), 1 (auction) or 2 (bid)", e.Type)
	}
	if !ok {
		return fmt.Errorf("nexmark: event_type %d (%s) but %q is null", e.Type, e.Type, e.Type.String())
	}
	if n != 1 {
		return fmt.Errorf("nexmark: event_type %d (%s) but %d of person, auction, bid are set; want exactly 1", e.Type, e.Type, n)
	}
	return nil
}

// TimeLayout is the timestamp format of the JSON events and query outputs
// (Go layout of yyyy-MM-dd HH:mm:ss.SSS, always UTC).
const TimeLayout = "2006-01-02 15:04:05.000"

// FormatTime renders ms (milliseconds since the epoch) as TimeLayout in UTC.
func FormatTime(ms int64) string { return string(AppendTime(nil, ms)) }

// AppendTime appends ms formatted as TimeLayout in UTC to b.
func AppendTime(b []byte, ms int64) []byte {
	t := time.UnixMilli(ms).UTC()
	y, mo, d := t.Date()
	if y < 0 || y > 9999 {
		return t.AppendFormat(b, TimeLayout)
	}
	h, mi, s := t.Clock()
	milli := t.Nanosecond() / 1e6
	b = append(b, byte('0'+y/1000), byte('0'+y/100%10), byte('0'+y/10%10), byte('0'+y%10), '-')
	b = append(b, byte('0'+int(mo)/10), byte('0'+int(mo)%10), '-', byte('0'+d/10), byte('0'+d%10), ' ')
	b = append(b, byte('0'+h/10), byte('0'+h%10), ':', byte('0'+mi/10), byte('0'+mi%10), ':')
	b = append(b, byte('0'+s/10), byte('0'+s%10), '.')
	return append(b, byte('0'+milli/100), byte('0'+milli/10%10), byte('0'+milli%10))
}

// ParseTime parses a timestamp as the events carry it: TimeLayout, and, to
// read what Flink's JSON format writes, a 'T' in place of the space, 0 to 9
// fraction digits (truncated to milliseconds) and a trailing 'Z'. The time
// is always UTC.
func ParseTime(s string) (int64, error) {
	ms, err := parseTime([]byte(s))
	if err != nil {
		return 0, fmt.Errorf("nexmark: %w", err)
	}
	return ms, nil
}

func parseTime(b []byte) (int64, error) {
	bad := func(why string) (int64, error) {
		return 0, fmt.Errorf("timestamp %q: %s; want yyyy-MM-dd HH:mm:ss.SSS", truncate(b, 40), why)
	}
	if len(b) < 19 {
		return bad("too short")
	}
	num := func(i, n int) int {
		v := 0
		for _, c := range b[i : i+n] {
			if c < '0' || c > '9' {
				return -1
			}
			v = v*10 + int(c-'0')
		}
		return v
	}
	y, mo, d := num(0, 4), num(5, 2), num(8, 2)
	h, mi, s := num(11, 2), num(14, 2), num(17, 2)
	if b[4] != '-' || b[7] != '-' || (b[10] != ' ' && b[10] != 'T') || b[13] != ':' || b[16] != ':' ||
		y < 0 || mo < 0 || d < 0 || h < 0 || mi < 0 || s < 0 {
		return bad("malformed")
	}
	if mo < 1 || mo > 12 || d < 1 || d > daysIn(mo, y) || h > 23 || mi > 59 || s > 59 {
		return bad("out of range")
	}
	rest := b[19:]
	milli := 0
	if len(rest) > 0 && rest[0] == '.' {
		digits := 0
		for _, c := range rest[1:] {
			if c < '0' || c > '9' {
				break
			}
			if digits < 3 {
				milli = milli*10 + int(c-'0')
			}
			digits++
		}
		if digits == 0 || digits > 9 {
			return bad("fraction of 1 to 9 digits expected")
		}
		for k := digits; k < 3; k++ {
			milli *= 10
		}
		rest = rest[1+digits:]
	}
	if len(rest) == 1 && rest[0] == 'Z' {
		rest = rest[1:]
	}
	if len(rest) != 0 {
		return bad("trailing characters")
	}
	return time.Date(y, time.Month(mo), d, h, mi, s, milli*1e6, time.UTC).UnixMilli(), nil
}

func daysIn(month, year int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// truncate shortens b for an error message.
func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}

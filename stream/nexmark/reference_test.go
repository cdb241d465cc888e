package nexmark

import (
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
)

// Hand-made inputs. Times are seconds after DefaultBaseTime
// (2025-01-01 00:00:00.000, a multiple of 10 s); ts renders them.
func sec(s float64) int64 { return DefaultBaseTime + int64(s*1000) }

func ts(s float64) string { return FormatTime(sec(s)) }

func person(id int64, name, state string, t float64) Event {
	return Event{Type: PersonEvent, Person: &Person{ID: id, Name: name, City: "city" + name, State: state, DateTime: sec(t)}}
}

func auction(id, seller, category int64, t, expires float64) Event {
	return Event{Type: AuctionEvent, Auction: &Auction{ID: id, Seller: seller, Category: category, DateTime: sec(t), Expires: sec(expires)}}
}

func bid(auction, bidder, price int64, t float64) Event {
	return Event{Type: BidEvent, Bid: &Bid{Auction: auction, Bidder: bidder, Price: price, DateTime: sec(t), Extra: "x"}}
}

// values makes expected records from JSON values.
func values(vs ...string) []Record {
	out := make([]Record, len(vs))
	for i, v := range vs {
		out[i] = Record{Value: []byte(v)}
	}
	return out
}

// checkQuery runs the reference on events, in order and reversed, and
// compares with want.
func checkQuery(t *testing.T, query string, events []Event, want []Record) {
	t.Helper()
	for _, order := range []string{"as given", "reversed"} {
		in := append([]Event(nil), events...)
		if order == "reversed" {
			for i, j := 0, len(in)-1; i < j; i, j = i+1, j-1 {
				in[i], in[j] = in[j], in[i]
			}
		}
		got, err := Reference(query, in)
		if err != nil {
			t.Fatal(err)
		}
		if d := Compare(want, got, ModeOf(query)); !d.Equal() {
			t.Errorf("%s, input %s: %s", query, order, d.Format(20))
		}
	}
}

func TestQ0Q1Q2(t *testing.T) {
	events := []Event{
		person(1, "a", "OR", 0),
		bid(1230, 7, 1000, 1),
		auction(1000, 1, 10, 0, 5),
		bid(1001, 8, 7, 2.5),
		bid(246, 9, 333, 3),
		bid(0, 9, 1, 3),
		bid(-123, 9, 2, 3),
	}
	checkQuery(t, "q0", events, values(
		`{"auction":1230,"bidder":7,"price":1000,"dateTime":"`+ts(1)+`","extra":"x"}`,
		`{"auction":1001,"bidder":8,"price":7,"dateTime":"`+ts(2.5)+`","extra":"x"}`,
		`{"auction":246,"bidder":9,"price":333,"dateTime":"`+ts(3)+`","extra":"x"}`,
		`{"auction":0,"bidder":9,"price":1,"dateTime":"`+ts(3)+`","extra":"x"}`,
		`{"auction":-123,"bidder":9,"price":2,"dateTime":"`+ts(3)+`","extra":"x"}`,
	))
	// price × 0.908, not rounded.
	checkQuery(t, "q1", events, values(
		`{"auction":1230,"bidder":7,"price":908,"dateTime":"2025-01-01 00:00:01.000","extra":"x"}`,
		`{"auction":1001,"bidder":8,"price":6.356,"dateTime":"2025-01-01 00:00:02.500","extra":"x"}`,
		`{"auction":246,"bidder":9,"price":302.364,"dateTime":"2025-01-01 00:00:03.000","extra":"x"}`,
		`{"auction":0,"bidder":9,"price":0.908,"dateTime":"2025-01-01 00:00:03.000","extra":"x"}`,
		`{"auction":-123,"bidder":9,"price":1.816,"dateTime":"2025-01-01 00:00:03.000","extra":"x"}`,
	))
	checkQuery(t, "q2", events, values(
		`{"auction":1230,"price":1000}`, `{"auction":246,"price":333}`, `{"auction":0,"price":1}`, `{"auction":-123,"price":2}`,
	))
	got, _ := Reference("q1", events)
	if v := string(got[1].Value); !strings.Contains(v, `"price":6.356`) {
		t.Errorf("q1 price of 7 written as %s", v)
	}
}

func TestQ3(t *testing.T) {
	events := []Event{
		auction(14, 1, 10, 0, 1), // before its seller: still joined
		person(1, "p1", "OR", 1),
		person(2, "p2", "WA", 1),
		person(3, "p3", "CA", 1),
		person(4, "p4", "ID", 1), // sells nothing
		auction(10, 1, 10, 2, 3),
		auction(11, 2, 10, 2, 3),  // seller in WA
		auction(12, 3, 11, 2, 3),  // category 11
		auction(13, 3, 10, 50, 3), // far later in time: a join, not a window
		auction(15, 99, 10, 2, 3), // unknown seller
	}
	checkQuery(t, "q3", events, values(
		`{"name":"p1","city":"cityp1","state":"OR","id":14}`,
		`{"name":"p1","city":"cityp1","state":"OR","id":10}`,
		`{"name":"p3","city":"cityp3","state":"CA","id":13}`,
	))
}

func TestQ4(t *testing.T) {
	events := []Event{
		// Category 10: auction 1 ends at 10 s; its final price is 300 (the
		// 1000 comes after expiry; 50 at exactly the expiry counts but is
		// lower). Auction 2's bid at its very start counts (700), the one
		// before does not (900).
		bid(1, 20, 100, 1), bid(1, 21, 300, 5), bid(1, 22, 1000, 11), bid(1, 23, 50, 10),
		auction(1, 5, 10, 0, 10),
		bid(2, 20, 700, 2), bid(2, 20, 900, 1.999),
		auction(2, 5, 10, 2, 4),
		// Category 11: finals 10 and 11, mean 10.5, rounded down to 10.
		auction(3, 5, 11, 0, 100), bid(3, 1, 10, 50),
		auction(4, 5, 11, 0, 100), bid(4, 1, 11, 50), bid(4, 1, 2, 51),
		// Category 12: no bid; 13: bids only outside the auction.
		auction(5, 5, 12, 0, 100),
		auction(6, 5, 13, 10, 20), bid(6, 1, 1, 9.999), bid(6, 1, 1, 20.001),
		bid(77, 1, 5, 1), // no such auction
	}
	want := []Record{
		{Key: []byte(`{"category":10}`), Value: []byte(`{"category":10,"avg_price":500}`)},
		{Key: []byte(`{"category":11}`), Value: []byte(`{"category":11,"avg_price":10}`)},
	}
	checkQuery(t, "q4", events, want)
	got, _ := Reference("q4", events)
	if len(got) != 2 || string(got[0].Key) != `{"category":10}` || string(got[1].Key) != `{"category":11}` {
		t.Fatalf("q4 keys: %v", got)
	}
}

func TestQ5(t *testing.T) {
	events := []Event{
		bid(1, 0, 1, 0.5), bid(1, 0, 1, 1), bid(2, 0, 1, 3), bid(2, 0, 1, 9.999), bid(3, 0, 1, 11),
	}
	row := func(auction, num int, start float64) string {
		return `{"auction":` + strconv.Itoa(auction) + `,"num":` + strconv.Itoa(num) + `,"window_start":"` + ts(start) + `","window_end":"` + ts(start+10) + `"}`
	}
	checkQuery(t, "q5", events, values(
		row(1, 2, -8), // the first window starts 8 s before the first bid
		row(1, 2, -6),
		row(1, 2, -4),
		row(1, 2, -2),
		row(1, 2, 0), row(2, 2, 0), // a tie: both
		row(2, 2, 2),
		row(2, 1, 4), row(3, 1, 4),
		row(2, 1, 6), row(3, 1, 6),
		row(2, 1, 8), row(3, 1, 8),
		row(3, 1, 10),
	))
	if ts(-8) != "2024-12-31 23:59:52.000" {
		t.Fatal(ts(-8))
	}
}

func TestQ7(t *testing.T) {
	events := []Event{
		bid(1, 10, 5, 1), bid(2, 11, 9, 2), bid(3, 12, 9, 9.999), // tie in [0,10)
		bid(4, 13, 3, 10), // [10,20): the window's end excludes it from [0,10)
		bid(5, 14, 1, 35), bid(6, 15, 0, 39.999),
	}
	row := func(auction, price, bidder int, t float64) string {
		return `{"auction":` + strconv.Itoa(auction) + `,"price":` + strconv.Itoa(price) + `,"bidder":` + strconv.Itoa(bidder) +
			`,"dateTime":"` + ts(t) + `","extra":"x"}`
	}
	checkQuery(t, "q7", events, values(row(2, 9, 11, 2), row(3, 9, 12, 9.999), row(4, 3, 13, 10), row(5, 1, 14, 35)))
}

func TestQ8(t *testing.T) {
	events := []Event{
		auction(100, 1, 10, 3, 4), // before the person in input order
		person(1, "p1", "OR", 1),
		person(2, "p2", "OR", 5),
		person(3, "p3", "OR", 12),
		auction(101, 1, 10, 9.999, 20),
		auction(102, 2, 10, 10, 20), // p2 joined in [0,10), sold in [10,20)
		auction(103, 3, 10, 19, 20),
		auction(104, 3, 10, 15, 20), // twice in one window: once
		auction(105, 4, 10, 1, 20),  // no such person
	}
	checkQuery(t, "q8", events, values(
		`{"id":1,"name":"p1","starttime":"2025-01-01 00:00:00.000"}`,
		`{"id":3,"name":"p3","starttime":"2025-01-01 00:00:10.000"}`,
	))
}

func TestReferenceUnknownQuery(t *testing.T) {
	if _, err := Reference("q6", nil); err == nil || !strings.Contains(err.Error(), `no query "q6"`) {
		t.Fatalf("q6: %v", err)
	}
}

// TestReferenceOrderIndependent: on a generated run, every query's output
// is the same whatever order the events come in.
func TestReferenceOrderIndependent(t *testing.T) {
	evs, err := Generate(Config{Seed: 9, Events: 20_000, Rate: 500})
	if err != nil {
		t.Fatal(err)
	}
	shuffled := append([]Event(nil), evs...)
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	for _, q := range Queries() {
		a, _ := Reference(q, evs)
		b, _ := Reference(q, shuffled)
		if d := Compare(a, b, ModeOf(q)); !d.Equal() {
			t.Errorf("%s depends on order: %s", q, d)
		}
		if len(a) == 0 {
			t.Errorf("%s: no output on 20,000 events", q)
		}
	}
}

func TestFloorTo(t *testing.T) {
	for _, c := range [][3]int64{{0, 10, 0}, {9, 10, 0}, {10, 10, 10}, {-1, 10, -10}, {-10, 10, -10}, {-11, 10, -20}} {
		if got := floorTo(c[0], c[1]); got != c[2] {
			t.Errorf("floorTo(%d, %d) = %d, want %d", c[0], c[1], got, c[2])
		}
	}
}

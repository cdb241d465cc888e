package queries_test

import (
	"testing"

	"github.com/weirhq/weir/stream/nexmark"
)

func sec(s float64) int64 { return nexmark.DefaultBaseTime + int64(s*1000) }

func person(id int64, name, state string, t float64) nexmark.Event {
	return nexmark.Event{Type: nexmark.PersonEvent, Person: &nexmark.Person{ID: id, Name: name, City: "c", State: state, DateTime: sec(t)}}
}

func auction(id, seller, category int64, t, expires float64) nexmark.Event {
	return nexmark.Event{Type: nexmark.AuctionEvent, Auction: &nexmark.Auction{ID: id, Seller: seller, Category: category, DateTime: sec(t), Expires: sec(expires)}}
}

func bid(auction, price int64, t float64) nexmark.Event {
	return nexmark.Event{Type: nexmark.BidEvent, Bid: &nexmark.Bid{Auction: auction, Bidder: 1, Price: price, DateTime: sec(t)}}
}

// answer runs query over hand-made events, in the order given, on one
// partition and checks the output against want (JSON values; for q4 the
// last value per key).
func answer(t *testing.T, query string, events []nexmark.Event, want []nexmark.Record) {
	t.Helper()
	got := runDriver(t, query, events, make([]int32, len(events)), 1)
	if d := nexmark.Compare(want, got, nexmark.ModeOf(query)); !d.Equal() {
		t.Fatal(d.Format(10))
	}
	ref, err := nexmark.Reference(query, events)
	if err != nil {
		t.Fatal(err)
	}
	if d := nexmark.Compare(ref, got, nexmark.ModeOf(query)); !d.Equal() {
		t.Fatalf("reference disagrees: %s", d.Format(10))
	}
}

// TestQ4Answers: bids before their auction count, bids outside
// [dateTime, expires] do not, a higher bid replaces the auction's final
// price in its category's mean (rounded down), and an auction without a
// qualifying bid does not count.
func TestQ4Answers(t *testing.T) {
	events := []nexmark.Event{
		bid(1, 500, 1.5), // before its auction arrives, in time
		bid(1, 900, 0.5), // before the auction's dateTime: ignored
		auction(1, 7, 10, 1, 3),
		bid(1, 700, 2),
		bid(1, 950, 3.001), // after expires: ignored
		auction(2, 7, 10, 2, 4),
		bid(2, 100, 3),
		bid(2, 101, 4),          // expires is included
		auction(3, 7, 11, 2, 4), // no bid: category 11 absent
		bid(3, 5, 9),
		auction(4, 8, 12, 20, 30), // fires the timers of 1-3 on the way
		bid(4, 3, 21),
	}
	answer(t, "q4", events, []nexmark.Record{
		{Key: []byte(`{"category":10}`), Value: []byte(`{"category":10,"avg_price":400}`)}, // (700+101)/2 = 400.5
		{Key: []byte(`{"category":12}`), Value: []byte(`{"category":12,"avg_price":3}`)},
	})
}

// TestQ3Answers: a pair is found whichever of seller and auction comes
// first, once.
func TestQ3Answers(t *testing.T) {
	events := []nexmark.Event{
		auction(10, 5, 10, 1, 9), // before its seller
		person(5, "ann", "OR", 2),
		auction(11, 5, 10, 30, 40), // long after
		auction(12, 5, 11, 3, 9),   // category 11
		person(6, "bob", "WA", 3),
		auction(13, 6, 10, 4, 9), // seller in WA
	}
	answer(t, "q3", events, []nexmark.Record{
		{Value: []byte(`{"name":"ann","city":"c","state":"OR","id":10}`)},
		{Value: []byte(`{"name":"ann","city":"c","state":"OR","id":11}`)},
	})
}

package nexmark_test

import (
	"fmt"

	"github.com/weirhq/weir/stream/nexmark"
)

// A bid as it sits in a record value.
func ExampleMarshal() {
	t, _ := nexmark.ParseTime("2025-01-01 00:00:07.250")
	b, _ := nexmark.Marshal(&nexmark.Event{Type: nexmark.BidEvent, Bid: &nexmark.Bid{
		Auction: 1007, Bidder: 1001, Price: 2500, Channel: "Apple", URL: "https://www.nexmark.com/a/b/c/item.htm?query=1", DateTime: t,
	}})
	fmt.Println(string(b))
	// Output:
	// {"event_type":2,"person":null,"auction":null,"bid":{"auction":1007,"bidder":1001,"price":2500,"channel":"Apple","url":"https://www.nexmark.com/a/b/c/item.htm?query=1","dateTime":"2025-01-01 00:00:07.250","extra":""}}
}

// Checking a query's output against the reference: here an output that
// missed a tie of q7.
func ExampleCompare() {
	at := func(s string) int64 { t, _ := nexmark.ParseTime(s); return t }
	events := []nexmark.Event{
		{Type: nexmark.BidEvent, Bid: &nexmark.Bid{Auction: 1000, Bidder: 1001, Price: 900, DateTime: at("2025-01-01 00:00:01.000")}},
		{Type: nexmark.BidEvent, Bid: &nexmark.Bid{Auction: 1003, Bidder: 1002, Price: 900, DateTime: at("2025-01-01 00:00:09.999")}},
		{Type: nexmark.BidEvent, Bid: &nexmark.Bid{Auction: 1003, Bidder: 1002, Price: 5, DateTime: at("2025-01-01 00:00:10.000")}},
	}
	want, _ := nexmark.Reference("q7", events)
	got := []nexmark.Record{
		{Value: []byte(`{"price":900,"auction":1000,"bidder":1001,"dateTime":"2025-01-01 00:00:01.000","extra":""}`)},
		{Value: []byte(`{"auction":1003,"price":5,"bidder":1002,"dateTime":"2025-01-01 00:00:10.000","extra":""}`)},
	}
	fmt.Println(nexmark.Compare(want, got, nexmark.ModeOf("q7")))
	// Output:
	// outputs differ (append): want 3 records, got 2; 1 missing, 0 unexpected
	//   missing: {"auction":1003,"price":900,"bidder":1002,"dateTime":"2025-01-01 00:00:09.999","extra":""}
}

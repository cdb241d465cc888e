package nexmark

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
)

// Record is one output record of a query as it sits in a topic: key and
// value bytes (Key is nil for unkeyed outputs).
type Record struct {
	Key, Value []byte
}

// The windows of q5, q7 and q8, in milliseconds.
const (
	TumbleSize = 10_000 // q7, q8: tumbling 10 s
	HopSize    = 10_000 // q5: 10 s windows ...
	HopSlide   = 2_000  // ... starting every 2 s
)

// Queries returns the names of the queries Reference computes.
func Queries() []string { return []string{"q0", "q1", "q2", "q3", "q4", "q5", "q7", "q8"} }

// Reference computes the output of query over a bounded input: every event
// of the run, in any order (the outputs do not depend on it); the end of
// the input closes every window. It is written as plain loops over the
// events, independent of any streaming library, to check one. The records
// come in an order fixed by the input; compare them with Compare, which
// ignores order (and, for q4, keeps the last record per key).
func Reference(query string, events []Event) ([]Record, error) {
	switch query {
	case "q0":
		return q0(events), nil
	case "q1":
		return q1(events), nil
	case "q2":
		return q2(events), nil
	case "q3":
		return q3(events), nil
	case "q4":
		return q4(events), nil
	case "q5":
		return q5(events), nil
	case "q7":
		return q7(events), nil
	case "q8":
		return q8(events), nil
	}
	return nil, fmt.Errorf("nexmark: no query %q; want one of q0, q1, q2, q3, q4, q5, q7, q8", query)
}

// ModeOf returns how outputs of query compare: Upsert for q4 (an updating
// result), Append for the others.
func ModeOf(query string) Mode {
	if query == "q4" {
		return Upsert
	}
	return Append
}

func value(fill func(o *object)) Record {
	o := object{}
	fill(&o)
	return Record{Value: o.close()}
}

// q0 passes every bid through: {auction,bidder,price,dateTime,extra}.
func q0(events []Event) []Record {
	var out []Record
	for _, e := range events {
		if b := e.Bid; e.Type == BidEvent && b != nil {
			out = append(out, value(func(o *object) {
				o.int("auction", b.Auction)
				o.int("bidder", b.Bidder)
				o.int("price", b.Price)
				o.time("dateTime", b.DateTime)
				o.str("extra", b.Extra)
			}))
		}
	}
	return out
}

// q1 converts every bid's price to euros, price × 0.908 as a float64, not
// rounded: {auction,bidder,price,dateTime,extra}.
func q1(events []Event) []Record {
	var out []Record
	for _, e := range events {
		if b := e.Bid; e.Type == BidEvent && b != nil {
			out = append(out, value(func(o *object) {
				o.int("auction", b.Auction)
				o.int("bidder", b.Bidder)
				o.float("price", float64(b.Price)*0.908)
				o.time("dateTime", b.DateTime)
				o.str("extra", b.Extra)
			}))
		}
	}
	return out
}

// q2 selects the bids on auctions whose ID is a multiple of 123:
// {auction,price}.
func q2(events []Event) []Record {
	var out []Record
	for _, e := range events {
		if b := e.Bid; e.Type == BidEvent && b != nil && b.Auction%123 == 0 {
			out = append(out, value(func(o *object) {
				o.int("auction", b.Auction)
				o.int("price", b.Price)
			}))
		}
	}
	return out
}

// q3 joins every auction of category 10 with every person that is its
// seller and lives in OR, ID or CA: {name,city,state,id}, id the
// auction's; one record per (auction, person) pair.
func q3(events []Event) []Record {
	sellers := map[int64][]*Person{}
	for _, e := range events {
		if p := e.Person; e.Type == PersonEvent && p != nil && (p.State == "OR" || p.State == "ID" || p.State == "CA") {
			sellers[p.ID] = append(sellers[p.ID], p)
		}
	}
	var out []Record
	for _, e := range events {
		a := e.Auction
		if e.Type != AuctionEvent || a == nil || a.Category != 10 {
			continue
		}
		for _, p := range sellers[a.Seller] {
			out = append(out, value(func(o *object) {
				o.str("name", p.Name)
				o.str("city", p.City)
				o.str("state", p.State)
				o.int("id", a.ID)
			}))
		}
	}
	return out
}

// q4: for each auction, its final price is the highest price of its bids
// with A.dateTime <= B.dateTime <= A.expires (auctions and their bids
// grouped by auction ID and category, as Flink's GROUP BY A.id,
// A.category); an auction without such a bid has none and does not count.
// Per category, avg_price is the mean of the final prices, rounded down to
// an integer (Flink's AVG of a BIGINT). One record per category, the final
// answer, key {"category":N}, value {category,avg_price}; a category
// without a qualifying auction is absent.
func q4(events []Event) []Record {
	bids := map[int64][]*Bid{}
	for _, e := range events {
		if b := e.Bid; e.Type == BidEvent && b != nil {
			bids[b.Auction] = append(bids[b.Auction], b)
		}
	}
	type group struct{ id, category int64 }
	final := map[group]int64{}
	for _, e := range events {
		a := e.Auction
		if e.Type != AuctionEvent || a == nil {
			continue
		}
		g := group{a.ID, a.Category}
		for _, b := range bids[a.ID] {
			if b.DateTime < a.DateTime || b.DateTime > a.Expires {
				continue
			}
			if cur, ok := final[g]; !ok || b.Price > cur {
				final[g] = b.Price
			}
		}
	}
	type agg struct{ sum, n int64 }
	cats := map[int64]agg{}
	for g, price := range final {
		c := cats[g.category]
		c.sum += price
		c.n++
		cats[g.category] = c
	}
	var out []Record
	for _, cat := range sortedKeys(cats) {
		c := cats[cat]
		avg := c.sum / c.n
		if c.sum%c.n != 0 && c.sum < 0 {
			avg-- // round down, not towards zero
		}
		r := value(func(o *object) {
			o.int("category", cat)
			o.int("avg_price", avg)
		})
		r.Key = strconv.AppendInt([]byte(`{"category":`), cat, 10)
		r.Key = append(r.Key, '}')
		out = append(out, r)
	}
	return out
}

// q5: per hopping window of HopSize every HopSlide (epoch-aligned,
// [start,end)), the bids per auction; the auctions with the most bids, all
// of them on a tie: {auction,num,window_start,window_end}. Every window
// holding a bid is reported, so a bid at t is in the five windows starting
// at the multiples of 2 s in (t-10s, t].
func q5(events []Event) []Record {
	counts := map[int64]map[int64]int64{} // window start → auction → bids
	for _, e := range events {
		b := e.Bid
		if e.Type != BidEvent || b == nil {
			continue
		}
		for s := floorTo(b.DateTime, HopSlide); s > b.DateTime-HopSize; s -= HopSlide {
			w := counts[s]
			if w == nil {
				w = map[int64]int64{}
				counts[s] = w
			}
			w[b.Auction]++
		}
	}
	var out []Record
	for _, s := range sortedKeys(counts) {
		w := counts[s]
		top := int64(0)
		for _, n := range w {
			top = max(top, n)
		}
		for _, auction := range sortedKeys(w) {
			if w[auction] != top {
				continue
			}
			out = append(out, value(func(o *object) {
				o.int("auction", auction)
				o.int("num", top)
				o.time("window_start", s)
				o.time("window_end", s+HopSize)
			}))
		}
	}
	return out
}

// q7: per tumbling window of TumbleSize, every bid with the window's
// highest price, all of them on a tie: {auction,price,bidder,dateTime,extra}.
func q7(events []Event) []Record {
	windows := map[int64][]*Bid{} // window start → its bids with the top price
	for _, e := range events {
		b := e.Bid
		if e.Type != BidEvent || b == nil {
			continue
		}
		s := floorTo(b.DateTime, TumbleSize)
		top := windows[s]
		switch {
		case len(top) == 0 || b.Price > top[0].Price:
			windows[s] = append(top[:0:0], b)
		case b.Price == top[0].Price:
			windows[s] = append(top, b)
		}
	}
	var out []Record
	for _, s := range sortedKeys(windows) {
		for _, b := range windows[s] {
			out = append(out, value(func(o *object) {
				o.int("auction", b.Auction)
				o.int("price", b.Price)
				o.int("bidder", b.Bidder)
				o.time("dateTime", b.DateTime)
				o.str("extra", b.Extra)
			}))
		}
	}
	return out
}

// q8: per tumbling window of TumbleSize, the persons who joined in the
// window and created an auction as its seller in the same window:
// {id,name,starttime}, once per distinct (id, name) and window (Flink
// groups persons by id, name and window).
func q8(events []Event) []Record {
	type seller struct{ window, id int64 }
	type person struct {
		window, id int64
		name       string
	}
	sold := map[seller]bool{}
	for _, e := range events {
		if a := e.Auction; e.Type == AuctionEvent && a != nil {
			sold[seller{floorTo(a.DateTime, TumbleSize), a.Seller}] = true
		}
	}
	seen := map[person]bool{}
	var hits []person
	for _, e := range events {
		p := e.Person
		if e.Type != PersonEvent || p == nil {
			continue
		}
		k := person{floorTo(p.DateTime, TumbleSize), p.ID, p.Name}
		if !seen[k] && sold[seller{k.window, k.id}] {
			seen[k] = true
			hits = append(hits, k)
		}
	}
	slices.SortFunc(hits, func(a, b person) int {
		return cmp.Or(cmp.Compare(a.window, b.window), cmp.Compare(a.id, b.id), cmp.Compare(a.name, b.name))
	})
	out := make([]Record, 0, len(hits))
	for _, h := range hits {
		out = append(out, value(func(o *object) {
			o.int("id", h.id)
			o.str("name", h.name)
			o.time("starttime", h.window)
		}))
	}
	return out
}

// floorTo rounds t down to a multiple of size (also for times before the
// epoch).
func floorTo(t, size int64) int64 {
	s := t - t%size
	if t%size < 0 {
		s -= size
	}
	return s
}

func sortedKeys[K cmp.Ordered, V any](m map[K]V) []K {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

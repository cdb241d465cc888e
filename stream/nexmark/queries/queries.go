package queries

import (
	"fmt"
	"time"

	"github.com/weirhq/weir/stream"
	"github.com/weirhq/weir/stream/nexmark"
)

// OutOfOrderness is the watermark's bound: the highest event time seen on
// a partition minus 4 s.
const OutOfOrderness = 4 * time.Second

// Events is the NEXMark event stream: no key, one event per record.
type Events = stream.Stream[[]byte, *nexmark.Event]

// Source reads the NEXMark events of topic: values decoded with
// nexmark.Unmarshal, event time = the event's dateTime, watermark bounded
// by OutOfOrderness.
func Source(topo *stream.Topology, topic string) Events {
	return stream.Source(topo, topic, stream.Bytes(), EventSerde(),
		stream.EventTime(func(_ []byte, e *nexmark.Event, _ time.Time) time.Time { return time.UnixMilli(e.Time()) }),
		stream.OutOfOrderness(OutOfOrderness),
		stream.SourceName("nexmark"))
}

// Names lists the queries Build knows.
func Names() []string { return nexmark.Queries() }

// Build adds query (q0, q1, q2, q3, q4, q5, q7 or q8) to topo, reading
// NEXMark events from the topic input and writing its output to the topic
// output.
func Build(topo *stream.Topology, query, input, output string) error {
	build, ok := map[string]func(Events, string){
		"q0": Q0, "q1": Q1, "q2": Q2, "q3": Q3, "q4": Q4, "q5": Q5, "q7": Q7, "q8": Q8,
	}[query]
	if !ok {
		return fmt.Errorf("queries: no query %q; want one of q0, q1, q2, q3, q4, q5, q7, q8", query)
	}
	build(Source(topo, input), output)
	return topo.Err()
}

// noKey is the key serde of the unkeyed outputs: a nil []byte, a null key.
var noKey = stream.Bytes()

// bids selects the bids.
func bids(ev Events) stream.Stream[[]byte, *nexmark.Bid] {
	only := stream.Filter(ev, func(_ []byte, e *nexmark.Event) bool { return e.Type == nexmark.BidEvent })
	return stream.MapValues(only, func(_ []byte, e *nexmark.Event) *nexmark.Bid { return e.Bid })
}

func bidOut(b *nexmark.Bid) BidOut {
	return BidOut{Auction: b.Auction, Bidder: b.Bidder, Price: b.Price, DateTime: b.DateTime, Extra: b.Extra}
}

// Q0 passes every bid through: {auction,bidder,price,dateTime,extra}.
func Q0(ev Events, output string) {
	out := stream.MapValues(bids(ev), func(_ []byte, b *nexmark.Bid) BidOut { return bidOut(b) })
	stream.To(out, output, noKey, Output[BidOut]())
}

// Q1 converts every bid's price to euros: price × 0.908, not rounded.
func Q1(ev Events, output string) {
	out := stream.MapValues(bids(ev), func(_ []byte, b *nexmark.Bid) Q1Out {
		return Q1Out{Auction: b.Auction, Bidder: b.Bidder, Price: float64(b.Price) * 0.908, DateTime: b.DateTime, Extra: b.Extra}
	})
	stream.To(out, output, noKey, Output[Q1Out]())
}

// Q2 selects the bids on auctions whose id is a multiple of 123:
// {auction,price}.
func Q2(ev Events, output string) {
	some := stream.Filter(bids(ev), func(_ []byte, b *nexmark.Bid) bool { return b.Auction%123 == 0 })
	out := stream.MapValues(some, func(_ []byte, b *nexmark.Bid) Q2Out { return Q2Out{Auction: b.Auction, Price: b.Price} })
	stream.To(out, output, noKey, Output[Q2Out]())
}

// Q3 joins the auctions of category 10 with their sellers living in OR,
// ID or CA: {name,city,state,id}, once per pair whatever the arrival
// order. Both sides stay in the join's store (as in Flink, whose q3 is a
// regular join); they are filtered first, so the state is a small share
// of persons and auctions.
func Q3(ev Events, output string) {
	persons := stream.Filter(ev, func(_ []byte, e *nexmark.Event) bool {
		if e.Type != nexmark.PersonEvent {
			return false
		}
		s := e.Person.State
		return s == "OR" || s == "ID" || s == "CA"
	})
	byID := stream.Map(persons, func(_ []byte, e *nexmark.Event) (int64, seller) {
		p := e.Person
		return p.ID, seller{Name: p.Name, City: p.City, State: p.State}
	})
	auctions := stream.Filter(ev, func(_ []byte, e *nexmark.Event) bool {
		return e.Type == nexmark.AuctionEvent && e.Auction.Category == 10
	})
	bySeller := stream.Map(auctions, func(_ []byte, e *nexmark.Event) (int64, int64) { return e.Auction.Seller, e.Auction.ID })
	joined := stream.Join(byID, bySeller, stream.Joined[int64, seller, int64]{Key: stream.Int64(), Left: sellerCodec(), Right: stream.Int64()},
		func(_ int64, p seller, auction int64) Q3Out {
			return Q3Out{Name: p.Name, City: p.City, State: p.State, ID: auction}
		}, stream.Named("q3-join"))
	out := stream.Map(joined, func(_ int64, v Q3Out) ([]byte, Q3Out) { return nil, v })
	stream.To(out, output, noKey, Output[Q3Out]())
}

// Q4 is the average final price per category: an auction's final price
// is its highest bid with A.dateTime <= B.dateTime <= A.expires, and
// avg_price, per category, the mean of its auctions' final prices rounded
// down (Flink's AVG of a BIGINT). An updating result keyed {"category":N}.
//
// Per auction (keyed by its id) a Process function keeps the auction, its
// highest qualifying bid and the bids that came before the auction, and
// sends every change of the final price to the auction's category, where
// an Aggregate keeps the sum and count. Timers drop an auction's state
// once the watermark passes its expiry, and a bid waiting for its auction
// once no auction that could take it can still come.
func Q4(ev Events, output string) {
	some := stream.Filter(ev, func(_ []byte, e *nexmark.Event) bool { return e.Type != nexmark.PersonEvent })
	byAuction := stream.Map(some, func(_ []byte, e *nexmark.Event) (int64, q4Event) {
		if a := e.Auction; a != nil {
			return a.ID, q4Event{Auction: true, Time: a.DateTime, Expires: a.Expires, Category: a.Category}
		}
		return e.Bid.Auction, q4Event{Time: e.Bid.DateTime, Price: e.Bid.Price}
	})
	g := stream.GroupByKey(byAuction, stream.Int64(), q4EventCodec(), stream.Named("q4-by-auction"))
	changes := stream.Process(g, q4StateCodec(), stream.Processor[int64, q4Event, q4State, q4Change]{
		OnRecord: q4Record, OnTimer: q4Timer,
	}, stream.Named("q4-final-price"))
	byCategory := stream.Map(changes, func(_ int64, c q4Change) (int64, q4Change) { return c.Category, c })
	sums := stream.Aggregate(stream.GroupByKey(byCategory, stream.Int64(), q4ChangeCodec(), stream.Named("q4-by-category")),
		func() q4Sum { return q4Sum{} },
		func(_ int64, c q4Change, s q4Sum) q4Sum {
			if c.First {
				s.N++
				s.Sum += c.New
			} else {
				s.Sum += c.New - c.Old
			}
			return s
		}, q4SumCodec(), stream.Named("q4-avg"))
	out := stream.Map(sums.ToStream(), func(cat int64, s q4Sum) (Q4Key, Q4Out) {
		avg := s.Sum / s.N
		if s.Sum%s.N != 0 && s.Sum < 0 {
			avg-- // round down, not towards zero
		}
		return Q4Key{Category: cat}, Q4Out{Category: cat, AvgPrice: avg}
	})
	stream.To(out, output, Output[Q4Key](), Output[Q4Out]())
}

type q4Context = stream.ProcessContext[int64, q4State, q4Change]

func q4Record(c *q4Context, e q4Event) {
	s, _ := c.State()
	if e.Auction {
		if s.Known {
			return // the same auction again: its first copy counts
		}
		s.Known, s.Start, s.Expires, s.Category = true, e.Time, e.Expires, e.Category
		for _, b := range s.Pending {
			applyBid(c, &s, b)
		}
		s.Pending = nil
		c.SetState(s)
		c.SetTimer(time.UnixMilli(s.Expires)) // then no qualifying bid can come
		return
	}
	if s.Known {
		if applyBid(c, &s, q4Bid{Time: e.Time, Price: e.Price}) {
			c.SetState(s)
		}
		return
	}
	// Before its auction: kept until no auction that could take it (one
	// with dateTime <= the bid's) can still come.
	s.Pending = append(s.Pending, q4Bid{Time: e.Time, Price: e.Price})
	c.SetState(s)
	c.SetTimer(time.UnixMilli(e.Time))
}

// applyBid applies a bid to a known auction, emitting the change of its final
// price; it reports whether the state changed.
func applyBid(c *q4Context, s *q4State, b q4Bid) bool {
	if b.Time < s.Start || b.Time > s.Expires || (s.HasMax && b.Price <= s.Max) {
		return false
	}
	c.Emit(q4Change{Category: s.Category, Old: s.Max, New: b.Price, First: !s.HasMax})
	s.HasMax, s.Max = true, b.Price
	return true
}

func q4Timer(c *q4Context) {
	s, ok := c.State()
	if !ok {
		return
	}
	now := c.Time().UnixMilli()
	if s.Known {
		if now >= s.Expires {
			c.ClearState()
		}
		return
	}
	kept := s.Pending[:0]
	for _, b := range s.Pending {
		if b.Time > now {
			kept = append(kept, b)
		}
	}
	if len(kept) == 0 {
		c.ClearState()
		return
	}
	s.Pending = kept
	c.SetState(s)
}

// Q5 finds the hottest auctions: per hopping window of 10 s every 2 s,
// the auction(s) with the most bids, {auction,num,window_start,window_end}.
// A CountWindows counts bids per auction and window; each window's counts
// (emitted when it closes, at its end − 1 ms) are then grouped by the
// window's start, and a 2 s tumbling AggregateWindows keeps the top ones.
func Q5(ev Events, output string) {
	byAuction := stream.Map(bids(ev), func(_ []byte, b *nexmark.Bid) (int64, int64) { return b.Auction, 0 })
	counts := stream.CountWindows(stream.WindowBy(
		stream.GroupByKey(byAuction, stream.Int64(), stream.Int64(), stream.Named("q5-by-auction")),
		stream.Hopping(nexmark.HopSize*time.Millisecond, nexmark.HopSlide*time.Millisecond)), stream.Named("q5-counts"))
	byWindow := stream.Map(counts, func(w stream.Windowed[int64], n int64) (int64, auctionCount) {
		return w.Start.UnixMilli(), auctionCount{Auction: w.Key, Num: n}
	})
	top := stream.AggregateWindows(stream.WindowBy(
		stream.GroupByKey(byWindow, stream.Int64(), auctionCountCodec(), stream.Named("q5-by-window")),
		stream.Tumbling(nexmark.HopSlide*time.Millisecond)),
		func() hottest { return hottest{} },
		func(_ int64, c auctionCount, h hottest) hottest {
			switch {
			case c.Num > h.Num:
				return hottest{Num: c.Num, Auctions: append(h.Auctions[:0], c.Auction)}
			case c.Num == h.Num:
				h.Auctions = append(h.Auctions, c.Auction)
			}
			return h
		}, hottestCodec(), stream.Named("q5-top"))
	out := stream.FlatMap(top, func(w stream.Windowed[int64], h hottest) []stream.KV[[]byte, Q5Out] {
		kvs := make([]stream.KV[[]byte, Q5Out], len(h.Auctions))
		for i, a := range h.Auctions {
			kvs[i].Value = Q5Out{Auction: a, Num: h.Num, WindowStart: w.Key, WindowEnd: w.Key + nexmark.HopSize}
		}
		return kvs
	})
	stream.To(out, output, noKey, Output[Q5Out]())
}

// Q7 finds the highest bid per tumbling window of 10 s: every bid with the
// window's top price, {auction,price,bidder,dateTime,extra}. Bids are
// keyed by their window's start, so each window is aggregated in one task.
func Q7(ev Events, output string) {
	byWindow := stream.Map(bids(ev), func(_ []byte, b *nexmark.Bid) (int64, BidOut) {
		return floorTo(b.DateTime, nexmark.TumbleSize), bidOut(b)
	})
	top := stream.AggregateWindows(stream.WindowBy(
		stream.GroupByKey(byWindow, stream.Int64(), bidCodec(), stream.Named("q7-by-window")),
		stream.Tumbling(nexmark.TumbleSize*time.Millisecond)),
		func() topBids { return nil },
		func(_ int64, b BidOut, top topBids) topBids {
			switch {
			case len(top) == 0 || b.Price > top[0].Price:
				return append(top[:0], b)
			case b.Price == top[0].Price:
				return append(top, b)
			}
			return top
		}, topBidsCodec(), stream.Named("q7-top"))
	out := stream.FlatMap(top, func(_ stream.Windowed[int64], top topBids) []stream.KV[[]byte, BidOut] {
		kvs := make([]stream.KV[[]byte, BidOut], len(top))
		for i, b := range top {
			kvs[i].Value = b
		}
		return kvs
	})
	stream.To(out, output, noKey, Output[BidOut]())
}

// Q8 monitors new users: per tumbling window of 10 s, the persons who
// joined and created an auction as its seller in the same window,
// {id,name,starttime}. As Flink's q8, both sides are made distinct per
// window first (persons by id and name, auctions by seller; a
// ReduceWindows each, emitted when the window closes, at its end − 1 ms),
// then joined by id in the same window (WindowJoin).
func Q8(ev Events, output string) {
	size := nexmark.TumbleSize * time.Millisecond
	persons := stream.Filter(ev, func(_ []byte, e *nexmark.Event) bool { return e.Type == nexmark.PersonEvent })
	byPerson := stream.Map(persons, func(_ []byte, e *nexmark.Event) (personKey, int64) {
		return personKey{ID: e.Person.ID, Name: e.Person.Name}, 0
	})
	distinctPersons := stream.ReduceWindows(stream.WindowBy(
		stream.GroupByKey(byPerson, personKeyCodec(), stream.Int64(), stream.Named("q8-persons")), stream.Tumbling(size)),
		func(acc, _ int64) int64 { return acc }, stream.Named("q8-distinct-persons"))
	left := stream.Map(distinctPersons, func(w stream.Windowed[personKey], _ int64) (int64, string) { return w.Key.ID, w.Key.Name })

	auctions := stream.Filter(ev, func(_ []byte, e *nexmark.Event) bool { return e.Type == nexmark.AuctionEvent })
	bySeller := stream.Map(auctions, func(_ []byte, e *nexmark.Event) (int64, int64) { return e.Auction.Seller, 0 })
	distinctSellers := stream.ReduceWindows(stream.WindowBy(
		stream.GroupByKey(bySeller, stream.Int64(), stream.Int64(), stream.Named("q8-sellers")), stream.Tumbling(size)),
		func(acc, _ int64) int64 { return acc }, stream.Named("q8-distinct-sellers"))
	right := stream.Map(distinctSellers, func(w stream.Windowed[int64], _ int64) (int64, int64) { return w.Key, 0 })

	joined := stream.WindowJoin(left, right, stream.Tumbling(size),
		stream.Joined[int64, string, int64]{Key: stream.Int64(), Left: stream.String(), Right: stream.Int64()},
		func(_ int64, name string, _ int64) string { return name }, stream.Named("q8-join"))
	out := stream.Map(joined, func(w stream.Windowed[int64], name string) ([]byte, Q8Out) {
		return nil, Q8Out{ID: w.Key, Name: name, StartTime: w.Start.UnixMilli()}
	})
	stream.To(out, output, noKey, Output[Q8Out]())
}

// floorTo rounds t down to a multiple of size (also before the epoch).
func floorTo(t, size int64) int64 {
	s := t - t%size
	if t%size < 0 {
		s -= size
	}
	return s
}

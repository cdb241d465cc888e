package queries

import (
	"encoding/binary"
	"errors"

	"github.com/weirhq/weir/stream"
)

// The values the queries send through repartition topics and keep in
// stores, with compact binary serdes: varints and length-prefixed strings
// in field order. They are internal to one application, so their format
// may change between versions (with a new application ID).

// codec is a Serde built from a writer and a reader of T's fields.
type codec[T any] struct {
	write func(w *writer, v T)
	read  func(r *reader) T
}

func (c codec[T]) Encode(v T) ([]byte, error) {
	w := writer{b: make([]byte, 0, 32)}
	c.write(&w, v)
	return w.b, nil
}

var errCorrupt = errors.New("queries: corrupt state or repartition value")

func (c codec[T]) Decode(b []byte) (T, error) {
	r := reader{b: b}
	v := c.read(&r)
	if r.bad || len(r.b) != 0 {
		var zero T
		return zero, errCorrupt
	}
	return v, nil
}

type writer struct{ b []byte }

func (w *writer) int(v int64) { w.b = binary.AppendVarint(w.b, v) }

func (w *writer) str(s string) {
	w.b = binary.AppendUvarint(w.b, uint64(len(s)))
	w.b = append(w.b, s...)
}

type reader struct {
	b   []byte
	bad bool
}

func (r *reader) int() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.bad, r.b = true, nil
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) str() string {
	n, k := binary.Uvarint(r.b)
	if k <= 0 || uint64(len(r.b)-k) < n {
		r.bad, r.b = true, nil
		return ""
	}
	s := string(r.b[k : k+int(n)])
	r.b = r.b[k+int(n):]
	return s
}

func bidCodec() stream.Serde[BidOut] {
	return codec[BidOut]{
		write: func(w *writer, v BidOut) {
			w.int(v.Auction)
			w.int(v.Bidder)
			w.int(v.Price)
			w.int(v.DateTime)
			w.str(v.Extra)
		},
		read: func(r *reader) BidOut {
			return BidOut{Auction: r.int(), Bidder: r.int(), Price: r.int(), DateTime: r.int(), Extra: r.str()}
		},
	}
}

// seller is a person as q3 keeps it.
type seller struct{ Name, City, State string }

func sellerCodec() stream.Serde[seller] {
	return codec[seller]{
		write: func(w *writer, v seller) { w.str(v.Name); w.str(v.City); w.str(v.State) },
		read:  func(r *reader) seller { return seller{Name: r.str(), City: r.str(), State: r.str()} },
	}
}

// personKey groups q8's persons as Flink does: by id and name.
type personKey struct {
	ID   int64
	Name string
}

func personKeyCodec() stream.Serde[personKey] {
	return codec[personKey]{
		write: func(w *writer, v personKey) { w.int(v.ID); w.str(v.Name) },
		read:  func(r *reader) personKey { return personKey{ID: r.int(), Name: r.str()} },
	}
}

// q4Event is an auction or a bid of q4, reduced to what q4 needs.
type q4Event struct {
	Auction           bool
	Time              int64 // dateTime
	Expires, Category int64 // auction
	Price             int64 // bid
}

func q4EventCodec() stream.Serde[q4Event] {
	return codec[q4Event]{
		write: func(w *writer, v q4Event) {
			if v.Auction {
				w.int(1)
				w.int(v.Time)
				w.int(v.Expires)
				w.int(v.Category)
				return
			}
			w.int(0)
			w.int(v.Time)
			w.int(v.Price)
		},
		read: func(r *reader) q4Event {
			if r.int() == 1 {
				return q4Event{Auction: true, Time: r.int(), Expires: r.int(), Category: r.int()}
			}
			return q4Event{Time: r.int(), Price: r.int()}
		},
	}
}

// q4State is one auction's state in q4: the auction once seen, its
// highest qualifying bid, and the bids that came before it.
type q4State struct {
	Known                    bool
	Start, Expires, Category int64
	HasMax                   bool
	Max                      int64
	Pending                  []q4Bid
}

type q4Bid struct{ Time, Price int64 }

func q4StateCodec() stream.Serde[q4State] {
	return codec[q4State]{
		write: func(w *writer, v q4State) {
			flags := int64(0)
			if v.Known {
				flags |= 1
			}
			if v.HasMax {
				flags |= 2
			}
			w.int(flags)
			w.int(v.Start)
			w.int(v.Expires)
			w.int(v.Category)
			w.int(v.Max)
			w.int(int64(len(v.Pending)))
			for _, b := range v.Pending {
				w.int(b.Time)
				w.int(b.Price)
			}
		},
		read: func(r *reader) q4State {
			flags := r.int()
			s := q4State{Known: flags&1 != 0, HasMax: flags&2 != 0, Start: r.int(), Expires: r.int(), Category: r.int(), Max: r.int()}
			n := r.int()
			if n < 0 || n > int64(len(r.b)) {
				r.bad = true
				return s
			}
			for range n {
				s.Pending = append(s.Pending, q4Bid{Time: r.int(), Price: r.int()})
			}
			return s
		},
	}
}

// q4Change is an auction's final price moving from Old (none if First)
// to New, sent to its category.
type q4Change struct {
	Category, Old, New int64
	First              bool
}

func q4ChangeCodec() stream.Serde[q4Change] {
	return codec[q4Change]{
		write: func(w *writer, v q4Change) {
			first := int64(0)
			if v.First {
				first = 1
			}
			w.int(v.Category)
			w.int(v.Old)
			w.int(v.New)
			w.int(first)
		},
		read: func(r *reader) q4Change {
			return q4Change{Category: r.int(), Old: r.int(), New: r.int(), First: r.int() == 1}
		},
	}
}

// q4Sum is a category's sum and count of final prices.
type q4Sum struct{ Sum, N int64 }

func q4SumCodec() stream.Serde[q4Sum] {
	return codec[q4Sum]{
		write: func(w *writer, v q4Sum) { w.int(v.Sum); w.int(v.N) },
		read:  func(r *reader) q4Sum { return q4Sum{Sum: r.int(), N: r.int()} },
	}
}

// auctionCount is q5's count of bids of one auction in one window.
type auctionCount struct{ Auction, Num int64 }

func auctionCountCodec() stream.Serde[auctionCount] {
	return codec[auctionCount]{
		write: func(w *writer, v auctionCount) { w.int(v.Auction); w.int(v.Num) },
		read:  func(r *reader) auctionCount { return auctionCount{Auction: r.int(), Num: r.int()} },
	}
}

// hottest is q5's accumulator per window: the highest count and the
// auctions that have it.
type hottest struct {
	Num      int64
	Auctions []int64
}

func hottestCodec() stream.Serde[hottest] {
	return codec[hottest]{
		write: func(w *writer, v hottest) {
			w.int(v.Num)
			w.int(int64(len(v.Auctions)))
			for _, a := range v.Auctions {
				w.int(a)
			}
		},
		read: func(r *reader) hottest {
			h := hottest{Num: r.int()}
			n := r.int()
			if n < 0 || n > int64(len(r.b)) {
				r.bad = true
				return h
			}
			for range n {
				h.Auctions = append(h.Auctions, r.int())
			}
			return h
		},
	}
}

// topBids is q7's accumulator per window: the bids with the highest price.
type topBids []BidOut

func topBidsCodec() stream.Serde[topBids] {
	bc := bidCodec().(codec[BidOut])
	return codec[topBids]{
		write: func(w *writer, v topBids) {
			w.int(int64(len(v)))
			for _, b := range v {
				bc.write(w, b)
			}
		},
		read: func(r *reader) topBids {
			n := r.int()
			if n < 0 || n > int64(len(r.b)) {
				r.bad = true
				return nil
			}
			out := make(topBids, 0, n)
			for range n {
				out = append(out, bc.read(r))
			}
			return out
		},
	}
}

package nexmark

import (
	"bytes"
	"math"
	"testing"
	"time"
)

func marshalAll(t testing.TB, evs []Event) [][]byte {
	t.Helper()
	out := make([][]byte, len(evs))
	for i := range evs {
		b, err := Marshal(&evs[i])
		if err != nil {
			t.Fatal(err)
		}
		out[i] = b
	}
	return out
}

func TestGeneratorDeterministic(t *testing.T) {
	gen := func(seed uint64) [][]byte {
		evs, err := Generate(Config{Seed: seed, Events: 3000})
		if err != nil {
			t.Fatal(err)
		}
		return marshalAll(t, evs)
	}
	a, b, c := gen(1), gen(1), gen(2)
	same := 0
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			t.Fatalf("seed 1 twice: event %d differs:\n%s\n%s", i, a[i], b[i])
		}
		if bytes.Equal(a[i], c[i]) {
			same++
		}
	}
	if same > len(a)/10 {
		t.Fatalf("seeds 1 and 2 share %d of %d events", same, len(a))
	}
}

func TestGeneratorConfig(t *testing.T) {
	for _, c := range []Config{{}, {Events: -1}, {Events: 1, Rate: -5}, {Events: 1, MaxDelay: -time.Second},
		{Events: 1, DelayedFraction: 2}, {Events: 1, Partitions: -1}, {Events: 1, AvgBidBytes: 1 << 20}} {
		if _, err := NewGenerator(c); err == nil {
			t.Errorf("NewGenerator(%+v) accepted", c)
		}
	}
	g, err := NewGenerator(Config{Events: 1})
	if err != nil {
		t.Fatal(err)
	}
	if c := g.Config(); c.Rate != 10_000 || c.MaxDelay != 3*time.Second || c.Partitions != 1 || c.BidProportion != 46 {
		t.Fatalf("defaults: %+v", c)
	}
}

// TestGeneratorModel checks a run against the model: proportions, IDs,
// times, out-of-orderness, partitions, value ranges.
func TestGeneratorModel(t *testing.T) {
	const n = 50_000
	c := Config{Seed: 11, Events: n, Partitions: 3, Rate: 1000}
	g, err := NewGenerator(c)
	if err != nil {
		t.Fatal(err)
	}
	var (
		count    [3]int
		maxTime  = int64(0)
		disorder int64
		lastP    = int64(firstPersonID - 1) // highest person ID generated so far in event time
		lastA    = int64(firstAuctionID - 1)
		persons  = map[int64]int64{} // id → time
		auctions = map[int64]*Auction{}
		bytesOf  [3]int
		hotBids  int
		i        int64
	)
	var evs []Event
	for {
		e, part, ok := g.Next()
		if !ok {
			break
		}
		if want := int32(i % 3); part != want {
			t.Fatalf("event %d on partition %d, want %d (round robin)", i, part, want)
		}
		i++
		evs = append(evs, e)
		b, _ := Marshal(&e)
		count[e.Type]++
		bytesOf[e.Type] += len(b)
		tm := e.Time()
		if tm < DefaultBaseTime || tm > DefaultBaseTime+n*1000/1000 {
			t.Fatalf("event time %s out of the run", FormatTime(tm))
		}
		disorder = max(disorder, maxTime-tm)
		maxTime = max(maxTime, tm)
	}
	if g.Emitted() != n || len(evs) != n {
		t.Fatalf("emitted %d, want %d", g.Emitted(), n)
	}
	if disorder > 3000 {
		t.Errorf("an event came %dms after a younger one; bound is 3000", disorder)
	}
	if disorder < 1000 {
		t.Errorf("out-of-orderness only %dms: delays not applied?", disorder)
	}
	for k, want := range []float64{1.0 / 50, 3.0 / 50, 46.0 / 50} {
		if got := float64(count[k]) / n; math.Abs(got-want) > 0.002 {
			t.Errorf("%s share %.4f, want %.4f", EventType(k), got, want)
		}
	}
	// Average sizes near NEXMark's 200, 500, 100 bytes of payload (the JSON
	// adds field names).
	for k, want := range []int{200, 500, 100} {
		if avg := bytesOf[k] / max(count[k], 1); avg < want || avg > want+300 {
			t.Errorf("%s average JSON size %d, want about %d + field names", EventType(k), avg, want)
		}
	}

	// In event-time order (generation order, stable by time), IDs follow
	// the model: persons and auctions numbered from 1000 in sequence;
	// sellers, bidders and auctions of bids at most 10 ahead of the last
	// created.
	sorted := append([]Event(nil), evs...)
	sortByTimeStable(sorted)
	for _, e := range sorted {
		switch e.Type {
		case PersonEvent:
			p := e.Person
			persons[p.ID] = p.DateTime
			if p.ID != lastP+1 {
				t.Fatalf("person %d after %d", p.ID, lastP)
			}
			lastP = p.ID
		case AuctionEvent:
			a := e.Auction
			if a.ID != lastA+1 {
				t.Fatalf("auction %d after %d", a.ID, lastA)
			}
			lastA = a.ID
			auctions[a.ID] = a
			if a.Seller < firstPersonID || a.Seller > lastP+personIDLead {
				t.Fatalf("auction %d: seller %d, last person %d", a.ID, a.Seller, lastP)
			}
			if a.Expires <= a.DateTime || a.Category < 10 || a.Category > 14 || a.Reserve < a.InitialBid {
				t.Fatalf("auction %+v", a)
			}
		case BidEvent:
			b := e.Bid
			if b.Auction < firstAuctionID || b.Auction > lastA+auctionIDLead {
				t.Fatalf("bid on auction %d, last auction %d", b.Auction, lastA)
			}
			if b.Bidder < firstPersonID || b.Bidder > lastP+personIDLead {
				t.Fatalf("bid by %d, last person %d", b.Bidder, lastP)
			}
			if b.Price < 100 || b.Price > 100_000_000 {
				t.Fatalf("price %d", b.Price)
			}
			if b.Auction == (lastA-firstAuctionID)/100*100+firstAuctionID {
				hotBids++
			}
		}
	}
	// Half the bids go to the hot auction (HotAuctionRatio 2), plus the
	// cold ones that happen to pick it.
	if share := float64(hotBids) / float64(count[BidEvent]); share < 0.48 || share > 0.6 {
		t.Errorf("hot auction share %.3f, want about 0.5", share)
	}
	if len(persons) != count[PersonEvent] || len(auctions) != count[AuctionEvent] {
		t.Fatalf("IDs repeat")
	}
}

func sortByTimeStable(evs []Event) {
	// Insertion by time is enough: the input is nearly sorted.
	for i := 1; i < len(evs); i++ {
		for j := i; j > 0 && evs[j].Time() < evs[j-1].Time(); j-- {
			evs[j], evs[j-1] = evs[j-1], evs[j]
		}
	}
}

func TestGeneratorInOrderAndDelayBound(t *testing.T) {
	for _, c := range []Config{
		{Seed: 5, Events: 20_000, InOrder: true},
		{Seed: 5, Events: 20_000, MaxDelay: 500 * time.Millisecond, DelayedFraction: 1},
		{Seed: 5, Events: 20_000, Rate: 100, MaxDelay: 4 * time.Second, DelayedFraction: 0.5},
	} {
		evs, err := Generate(c)
		if err != nil {
			t.Fatal(err)
		}
		bound := c.MaxDelay.Milliseconds()
		if c.InOrder {
			bound = 0
		}
		maxTime, worst := int64(0), int64(0)
		for _, e := range evs {
			worst = max(worst, maxTime-e.Time())
			maxTime = max(maxTime, e.Time())
		}
		if worst > bound || (bound > 0 && worst < bound/2) {
			t.Errorf("%+v: worst lateness %dms, bound %dms", c, worst, bound)
		}
	}
}

// TestGeneratorTimes: event n is at BaseTime + n/Rate.
func TestGeneratorTimes(t *testing.T) {
	evs, err := Generate(Config{Events: 100, Rate: 40, InOrder: true, BaseTime: 5})
	if err != nil {
		t.Fatal(err)
	}
	for n, e := range evs {
		if want := 5 + int64(n)*1000/40; e.Time() != want {
			t.Fatalf("event %d at %d, want %d", n, e.Time(), want)
		}
	}
	if evs[0].Type != PersonEvent || evs[1].Type != AuctionEvent || evs[4].Type != BidEvent || evs[50].Type != PersonEvent {
		t.Fatalf("event types out of the 1:3:46 pattern")
	}
}

package nexmark

import (
	"math"
	"math/bits"
	"math/rand/v2"
	"strconv"
)

// The model's constants, as NEXMark (and Flink's nexmark) fix them.
const (
	firstPersonID   = 1000
	firstAuctionID  = 1000
	firstCategoryID = 10
	numCategories   = 5
	personIDLead    = 10  // a cold seller or bidder may be up to this many persons ahead
	auctionIDLead   = 10  // a cold bid may be for an auction up to this many ahead
	hotBatch        = 100 // hot sellers, bidders and auctions are the first of each batch of 100
	hotChannelRatio = 2
	numChannels     = 10_000
	minStringLength = 3
)

var (
	usStates   = [...]string{"AZ", "CA", "ID", "OR", "WA", "WY"}
	usCities   = [...]string{"Phoenix", "Los Angeles", "San Francisco", "Boise", "Portland", "Bend", "Redmond", "Seattle", "Kent", "Cheyenne"}
	firstNames = [...]string{"Peter", "Paul", "Luke", "John", "Saul", "Vicky", "Kate", "Julie", "Sarah", "Deiter", "Walter"}
	lastNames  = [...]string{"Shultz", "Abrams", "Spencer", "White", "Bartels", "Walton", "Smith", "Jones", "Noris"}
	hotNames   = [...]string{"Google", "Facebook", "Baidu", "Apple"}
)

// model holds what the event generators share: the configuration, the
// random source and the caches of strings.
type model struct {
	c       Config
	total   int64 // PersonProportion + AuctionProportion + BidProportion
	rng     *rand.Rand
	letters string // random letters; extra fields are slices of it
	names   [len(firstNames) * len(lastNames)]string
	hotURLs [len(hotNames)]string
	chans   []channel // cold channels, each built on first use
}

// channel is a cold channel's name and URL.
type channel struct{ name, url string }

func newModel(c Config) *model {
	m := &model{
		c:     c,
		total: c.PersonProportion + c.AuctionProportion + c.BidProportion,
		rng:   rand.New(rand.NewPCG(c.Seed, 0x6e65786d61726b)), // "nexmark"
		chans: make([]channel, numChannels),
	}
	for i, f := range firstNames {
		for j, l := range lastNames {
			m.names[i*len(lastNames)+j] = f + " " + l
		}
	}
	// The letters and URLs come from their own streams, so that the main
	// stream does not depend on when a cache is filled.
	maxAvg := max(c.AvgPersonBytes, c.AvgAuctionBytes, c.AvgBidBytes)
	lr := rand.New(rand.NewPCG(c.Seed, 0x6578747261)) // "extra"
	letters := make([]byte, max(1<<16, 3*maxAvg))
	for i := range letters {
		letters[i] = byte('a' + lr.IntN(26))
	}
	m.letters = string(letters)
	for i := range m.hotURLs {
		m.hotURLs[i] = baseURL(rand.New(rand.NewPCG(c.Seed, 0x686f74+uint64(i)))) // "hot"
	}
	return m
}

// timeOf is the event time of event number n.
func (m *model) timeOf(n int64) int64 { return m.c.BaseTime + n*1000/m.c.Rate }

// lastPerson is the base-0 ID of the last person generated at or before
// event id.
func (m *model) lastPerson(id int64) int64 {
	epoch, off := id/m.total, id%m.total
	if off >= m.c.PersonProportion {
		off = m.c.PersonProportion - 1
	}
	return epoch*m.c.PersonProportion + off
}

// lastAuction is the base-0 ID of the last auction generated at or before
// event id (-1 before the first).
func (m *model) lastAuction(id int64) int64 {
	epoch, off := id/m.total, id%m.total
	switch {
	case off < m.c.PersonProportion:
		epoch--
		off = m.c.AuctionProportion - 1
	case off >= m.c.PersonProportion+m.c.AuctionProportion:
		off = m.c.AuctionProportion - 1
	default:
		off -= m.c.PersonProportion
	}
	return epoch*m.c.AuctionProportion + off
}

// coldPerson picks a base-0 person among the active ones, or a few ahead.
func (m *model) coldPerson(id int64) int64 {
	people := m.lastPerson(id) + 1
	active := min(people, m.c.NumActivePeople)
	return people - active + m.rng.Int64N(active+personIDLead)
}

// coldAuction picks a base-0 auction among those likely in flight, or a few
// ahead.
func (m *model) coldAuction(id int64) int64 {
	last := m.lastAuction(id)
	lo := max(last-m.c.NumInFlightAuctions, 0)
	return lo + m.rng.Int64N(last-lo+1+auctionIDLead)
}

func (m *model) person(id, t int64) *Person {
	p := &Person{
		ID:           m.lastPerson(id) + firstPersonID,
		Name:         m.names[m.rng.IntN(len(m.names))],
		EmailAddress: m.string(7, ' ') + "@" + m.string(5, ' ') + ".com",
		CreditCard:   m.creditCard(),
		City:         usCities[m.rng.IntN(len(usCities))],
		State:        usStates[m.rng.IntN(len(usStates))],
		DateTime:     t,
	}
	size := 8 + len(p.Name) + len(p.EmailAddress) + len(p.CreditCard) + len(p.City) + len(p.State)
	p.Extra = m.extra(int64(size), m.c.AvgPersonBytes)
	return p
}

// auction makes event number n (ID id) an auction at time t.
func (m *model) auction(n, id, t int64) *Auction {
	a := &Auction{ID: m.lastAuction(id) + firstAuctionID, DateTime: t}
	if m.rng.Int64N(m.c.HotSellersRatio) > 0 {
		a.Seller = m.lastPerson(id) / hotBatch * hotBatch
	} else {
		a.Seller = m.coldPerson(id)
	}
	a.Seller += firstPersonID
	a.Category = firstCategoryID + m.rng.Int64N(numCategories)
	a.InitialBid = m.price()
	// An auction lasts on average until NumInFlightAuctions more auctions
	// have been created.
	ahead := m.c.NumInFlightAuctions * m.total / m.c.AuctionProportion
	horizon := m.timeOf(n+ahead) - t
	a.Expires = t + 1 + m.rng.Int64N(max(2*horizon, 1))
	a.ItemName = m.string(20, ' ')
	a.Description = m.string(100, ' ')
	a.Reserve = a.InitialBid + m.price()
	a.Extra = m.extra(int64(8+len(a.ItemName)+len(a.Description)+40), m.c.AvgAuctionBytes)
	return a
}

func (m *model) bid(id, t int64) *Bid {
	b := &Bid{DateTime: t}
	if m.rng.Int64N(m.c.HotAuctionRatio) > 0 {
		b.Auction = m.lastAuction(id) / hotBatch * hotBatch
	} else {
		b.Auction = m.coldAuction(id)
	}
	b.Auction += firstAuctionID
	if m.rng.Int64N(m.c.HotBiddersRatio) > 0 {
		// The second of the batch, so hot bidders are not hot sellers.
		b.Bidder = m.lastPerson(id)/hotBatch*hotBatch + 1
	} else {
		b.Bidder = m.coldPerson(id)
	}
	b.Bidder += firstPersonID
	b.Price = m.price()
	if m.rng.IntN(hotChannelRatio) > 0 {
		i := m.rng.IntN(len(hotNames))
		b.Channel, b.URL = hotNames[i], m.hotURLs[i]
	} else {
		ch := m.channel(m.rng.IntN(numChannels))
		b.Channel, b.URL = ch.name, ch.url
	}
	b.Extra = m.extra(32, m.c.AvgBidBytes)
	return b
}

// price is log-uniform from 1.00 to 1,000,000.00 (in cents).
func (m *model) price() int64 {
	return int64(math.Round(math.Pow(10, m.rng.Float64()*6) * 100))
}

// string is 3 to maxLen-1 random letters, about one in 13 of them special,
// trimmed of spaces at both ends.
func (m *model) string(maxLen int, special byte) string {
	return randomString(m.rng, maxLen, special)
}

func randomString(r *rand.Rand, maxLen int, special byte) string {
	var buf [128]byte
	n := minStringLength + r.IntN(maxLen-minStringLength)
	b := buf[:n]
	for i := range b {
		if r.IntN(13) == 0 {
			b[i] = special
		} else {
			b[i] = byte('a' + r.IntN(26))
		}
	}
	for len(b) > 0 && b[0] == ' ' {
		b = b[1:]
	}
	for len(b) > 0 && b[len(b)-1] == ' ' {
		b = b[:len(b)-1]
	}
	return string(b)
}

func (m *model) creditCard() string {
	var b [19]byte
	for g := range 4 {
		v := m.rng.IntN(10_000)
		i := g * 5
		if g > 0 {
			b[i-1] = ' '
		}
		b[i], b[i+1], b[i+2], b[i+3] = byte('0'+v/1000), byte('0'+v/100%10), byte('0'+v/10%10), byte('0'+v%10)
	}
	return string(b[:])
}

// extra pads an event of size bytes towards avg: avg-size bytes ± 20%.
func (m *model) extra(size, avg int64) string {
	if size > avg {
		return ""
	}
	want := avg - size
	delta := int64(math.Round(float64(want) * 0.2))
	n := want - delta
	if delta > 0 {
		n += m.rng.Int64N(2 * delta)
	}
	off := m.rng.Int64N(int64(len(m.letters)) - n)
	return m.letters[off : off+n]
}

// channel is cold channel k, the same for the whole run.
func (m *model) channel(k int) channel {
	if ch := m.chans[k]; ch.name != "" {
		return ch
	}
	r := rand.New(rand.NewPCG(m.c.Seed, 0x75726c<<32|uint64(k))) // "url"
	u := baseURL(r)
	if r.IntN(10) > 0 {
		u += "&channel_id=" + strconv.FormatInt(abs(int64(int32(bits.Reverse32(uint32(k))))), 10)
	}
	m.chans[k] = channel{name: "channel-" + strconv.Itoa(k), url: u}
	return m.chans[k]
}

func baseURL(r *rand.Rand) string {
	return "https://www.nexmark.com/" + randomString(r, 5, '_') + "/" + randomString(r, 5, '_') + "/" +
		randomString(r, 5, '_') + "/item.htm?query=1"
}

func abs(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}

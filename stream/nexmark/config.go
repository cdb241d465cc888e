package nexmark

import (
	"errors"
	"fmt"
	"time"
)

// Config sets up a Generator. The zero value of every field means its
// default (the NEXMark defaults of Flink's nexmark, GeneratorConfig and
// NexmarkConfiguration, where the model has one); Defaults fills them in.
type Config struct {
	// Seed makes the run: the same Config yields the same events in the
	// same order on the same partitions.
	Seed uint64
	// Events is how many events to generate; required (above 0).
	Events int64
	// Rate is events per second of event time (default 10,000, Flink's
	// firstEventRate): event n has the time BaseTime + n/Rate, rounded
	// down to the millisecond. Generation itself runs as fast as it can.
	Rate int64
	// BaseTime is the event time of the first event, in milliseconds since
	// the epoch (default DefaultBaseTime).
	BaseTime int64
	// MaxDelay bounds the out-of-orderness: events are emitted out of
	// event-time order, but never after an event more than MaxDelay younger
	// (default 3s, NEXMark's occasionalDelaySec, below the 4s a standard
	// watermark holds back, so such a watermark drops nothing). InOrder
	// turns delays off.
	MaxDelay time.Duration
	// DelayedFraction is the share of events held back, each by a uniform
	// delay in [0, MaxDelay] (default 0.1, NEXMark's probDelayedEvent).
	DelayedFraction float64
	// InOrder emits events in event-time order.
	InOrder bool
	// Partitions spreads the emitted events round robin over this many
	// partitions, the i-th emitted event to partition i mod Partitions
	// (Flink's 'sink.partitioner' = 'round-robin'); default 1.
	Partitions int32

	// The model's proportions: of every PersonProportion +
	// AuctionProportion + BidProportion consecutive events (defaults 1, 3,
	// 46), that many are persons, auctions and bids, in that order.
	PersonProportion, AuctionProportion, BidProportion int64
	// HotAuctionRatio, HotSellersRatio, HotBiddersRatio (defaults 2, 4, 4):
	// a bid is for a hot auction with probability 1 - 1/HotAuctionRatio,
	// an auction has a hot seller with probability 1 - 1/HotSellersRatio,
	// a bid has a hot bidder with probability 1 - 1/HotBiddersRatio.
	HotAuctionRatio, HotSellersRatio, HotBiddersRatio int64
	// NumInFlightAuctions (default 100) is how many recent auctions a cold
	// bid chooses from; it also sets auction lengths (an auction lasts on
	// average until NumInFlightAuctions more auctions have been created).
	NumInFlightAuctions int64
	// NumActivePeople (default 1000) is how many recent persons a cold
	// seller or bidder is chosen from.
	NumActivePeople int64
	// AvgPersonBytes, AvgAuctionBytes, AvgBidBytes (defaults 200, 500,
	// 100) size the extra field, which pads each event towards them.
	AvgPersonBytes, AvgAuctionBytes, AvgBidBytes int64
}

// DefaultBaseTime is the default event time of the first event:
// 2025-01-01 00:00:00.000 UTC, a multiple of every window size.
const DefaultBaseTime int64 = 1735689600000

// Defaults returns c with every zero field set to its default.
func (c Config) Defaults() Config {
	def := func(v *int64, d int64) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.Rate, 10_000)
	def(&c.BaseTime, DefaultBaseTime)
	if c.MaxDelay == 0 {
		c.MaxDelay = 3 * time.Second
	}
	if c.DelayedFraction == 0 {
		c.DelayedFraction = 0.1
	}
	if c.Partitions == 0 {
		c.Partitions = 1
	}
	def(&c.PersonProportion, 1)
	def(&c.AuctionProportion, 3)
	def(&c.BidProportion, 46)
	def(&c.HotAuctionRatio, 2)
	def(&c.HotSellersRatio, 4)
	def(&c.HotBiddersRatio, 4)
	def(&c.NumInFlightAuctions, 100)
	def(&c.NumActivePeople, 1000)
	def(&c.AvgPersonBytes, 200)
	def(&c.AvgAuctionBytes, 500)
	def(&c.AvgBidBytes, 100)
	return c
}

// Validate reports the first setting of c (after Defaults) that cannot work.
func (c Config) Validate() error {
	c = c.Defaults()
	switch {
	case c.Events <= 0:
		return fmt.Errorf("nexmark: events %d: want at least 1", c.Events)
	case c.Rate < 0 || c.Rate > 1_000_000_000:
		return fmt.Errorf("nexmark: rate %d: want 1 to 1e9 events/s", c.Rate)
	case c.MaxDelay < 0 || c.MaxDelay > time.Hour:
		return fmt.Errorf("nexmark: max delay %v: want 0 to 1h", c.MaxDelay)
	case c.DelayedFraction < 0 || c.DelayedFraction > 1:
		return fmt.Errorf("nexmark: delayed fraction %v: want 0 to 1", c.DelayedFraction)
	case c.Partitions < 0:
		return fmt.Errorf("nexmark: partitions %d: want at least 1", c.Partitions)
	case c.PersonProportion < 0 || c.AuctionProportion < 0 || c.BidProportion < 0:
		return errors.New("nexmark: proportions must not be negative")
	case c.HotAuctionRatio < 0 || c.HotSellersRatio < 0 || c.HotBiddersRatio < 0:
		return errors.New("nexmark: hot ratios must not be negative")
	case c.NumInFlightAuctions < 0 || c.NumActivePeople < 0:
		return errors.New("nexmark: in-flight auctions and active people must not be negative")
	case c.AvgPersonBytes < 0 || c.AvgAuctionBytes < 0 || c.AvgBidBytes < 0 ||
		c.AvgPersonBytes > 1<<16 || c.AvgAuctionBytes > 1<<16 || c.AvgBidBytes > 1<<16:
		return errors.New("nexmark: average sizes must be 0 to 65536 bytes")
	case c.Events > 1e12:
		return fmt.Errorf("nexmark: events %d: want at most 1e12", c.Events)
	}
	return nil
}

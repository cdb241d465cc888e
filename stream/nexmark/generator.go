package nexmark

import "container/heap"

// Generator produces the events of one Config, in emission order, as fast
// as it can. A Generator is not safe for concurrent use.
type Generator struct {
	c       Config
	m       *model
	n       int64   // events generated so far: the next event number
	emitted int64   // events returned so far
	held    pending // delayed events not yet emitted
	delayMs int64
}

// NewGenerator checks c and returns its generator.
func NewGenerator(c Config) (*Generator, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	c = c.Defaults()
	return &Generator{c: c, m: newModel(c), delayMs: c.MaxDelay.Milliseconds()}, nil
}

// Config returns the generator's configuration with its defaults filled in.
func (g *Generator) Config() Config { return g.c }

// Emitted returns how many events Next has returned.
func (g *Generator) Emitted() int64 { return g.emitted }

// Next returns the next event in emission order and its partition (the
// emission index modulo Partitions); ok is false after the last event.
//
// Events are generated in event-time order, and each is, with probability
// DelayedFraction, held back by a uniform delay d in [0, MaxDelay]: it is
// emitted after every event whose time is at most its own time + d. So an
// event is never emitted after one more than MaxDelay younger.
func (g *Generator) Next() (ev Event, partition int32, ok bool) {
	for {
		if len(g.held) > 0 && (g.n >= g.c.Events || g.held[0].due <= g.m.timeOf(g.n)) {
			h := heap.Pop(&g.held).(held)
			return h.ev, g.emit(), true
		}
		if g.n >= g.c.Events {
			return Event{}, 0, false
		}
		ev, t := g.generate()
		if !g.c.InOrder && g.delayMs > 0 && g.m.rng.Float64() < g.c.DelayedFraction {
			if d := g.m.rng.Int64N(g.delayMs + 1); d > 0 {
				heap.Push(&g.held, held{due: t + d, seq: g.n - 1, ev: ev})
				continue
			}
		}
		if len(g.held) > 0 && g.held[0].due <= t {
			// Equal due times: the held event was generated first.
			heap.Push(&g.held, held{due: t, seq: g.n - 1, ev: ev})
			continue
		}
		return ev, g.emit(), true
	}
}

func (g *Generator) emit() int32 {
	p := int32(g.emitted % int64(g.c.Partitions))
	g.emitted++
	return p
}

// generate makes event number g.n and returns it with its time.
func (g *Generator) generate() (Event, int64) {
	n := g.n
	g.n++
	t := g.m.timeOf(n)
	id := n // Flink's firstEventId is 0 and events are not regrouped
	switch rem := id % g.m.total; {
	case rem < g.c.PersonProportion:
		return Event{Type: PersonEvent, Person: g.m.person(id, t)}, t
	case rem < g.c.PersonProportion+g.c.AuctionProportion:
		return Event{Type: AuctionEvent, Auction: g.m.auction(n, id, t)}, t
	default:
		return Event{Type: BidEvent, Bid: g.m.bid(id, t)}, t
	}
}

// Generate returns all the events of c in emission order (partition i mod
// c.Partitions for the i-th).
func Generate(c Config) ([]Event, error) {
	g, err := NewGenerator(c)
	if err != nil {
		return nil, err
	}
	out := make([]Event, 0, g.c.Events)
	for {
		ev, _, ok := g.Next()
		if !ok {
			return out, nil
		}
		out = append(out, ev)
	}
}

// held is a delayed event, due for emission once the generator passes due.
type held struct {
	due int64
	seq int64
	ev  Event
}

// pending is a min-heap of held events by due time, then generation order.
type pending []held

func (p pending) Len() int { return len(p) }
func (p pending) Less(i, j int) bool {
	return p[i].due < p[j].due || (p[i].due == p[j].due && p[i].seq < p[j].seq)
}
func (p pending) Swap(i, j int) { p[i], p[j] = p[j], p[i] }
func (p *pending) Push(x any)   { *p = append(*p, x.(held)) }
func (p *pending) Pop() any {
	old := *p
	h := old[len(old)-1]
	*p = old[:len(old)-1]
	return h
}

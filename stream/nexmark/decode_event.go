package nexmark

import "fmt"

// event decodes the top-level object into e.
func (d *decoder) event(e *Event) error {
	var (
		typ              int64 = -1
		seen             uint8
		p                *Person
		a                *Auction
		x                *Bid
		hasP, hasA, hasB bool
	)
	err := d.fields(func(name []byte) error {
		var bit uint8
		var err error
		switch string(name) {
		case "event_type":
			bit = 1
			d.path = "event_type"
			typ, err = d.int("event_type")
		case "person":
			bit = 2
			if !d.null() {
				p, hasP = reuse(e.Person), true
				d.path = "person"
				err = d.person(p)
			}
		case "auction":
			bit = 4
			if !d.null() {
				a, hasA = reuse(e.Auction), true
				d.path = "auction"
				err = d.auction(a)
			}
		case "bid":
			bit = 8
			if !d.null() {
				x, hasB = reuse(e.Bid), true
				d.path = "bid"
				err = d.bid(x)
			}
		default:
			d.path = ""
			return d.skip(1)
		}
		if err != nil {
			return err
		}
		if seen&bit != 0 {
			return d.errf("duplicate field %q", name)
		}
		seen |= bit
		d.path = ""
		return nil
	})
	if err != nil {
		return err
	}
	if seen&1 == 0 {
		return fmt.Errorf("%w: no event_type", ErrSyntax)
	}
	if typ < 0 || typ > 2 {
		return fmt.Errorf("%w: event_type %d: want 0 (person), 1 (auction) or 2 (bid)", ErrSyntax, typ)
	}
	ev := Event{Type: EventType(typ)}
	if hasP {
		ev.Person = p
	}
	if hasA {
		ev.Auction = a
	}
	if hasB {
		ev.Bid = x
	}
	if err := ev.check(); err != nil {
		return fmt.Errorf("%w: %v", ErrSyntax, err)
	}
	*e = ev
	return nil
}

// reuse returns p, or a new T if p is nil.
func reuse[T any](p *T) *T {
	if p == nil {
		return new(T)
	}
	return p
}

// members decodes an object whose fields are all required, with set
// decoding the field at index i of names.
func (d *decoder) members(names []string, set func(i int) error) error {
	var seen uint32
	err := d.fields(func(name []byte) error {
		for i, n := range names {
			if string(name) != n {
				continue
			}
			if seen&(1<<i) != 0 {
				return d.errf("duplicate field %q", n)
			}
			seen |= 1 << i
			return set(i)
		}
		return d.skip(2)
	})
	if err != nil {
		return err
	}
	for i, n := range names {
		if seen&(1<<i) == 0 {
			return fmt.Errorf("%w: %s: missing field %q", ErrSyntax, d.path, n)
		}
	}
	return nil
}

var personFields = []string{"id", "name", "emailAddress", "creditCard", "city", "state", "dateTime", "extra"}

func (d *decoder) person(p *Person) error {
	return d.members(personFields, func(i int) (err error) {
		switch i {
		case 0:
			p.ID, err = d.int("id")
		case 1:
			p.Name, err = d.str("name")
		case 2:
			p.EmailAddress, err = d.str("emailAddress")
		case 3:
			p.CreditCard, err = d.str("creditCard")
		case 4:
			p.City, err = d.str("city")
		case 5:
			p.State, err = d.str("state")
		case 6:
			p.DateTime, err = d.time("dateTime")
		case 7:
			p.Extra, err = d.str("extra")
		}
		return err
	})
}

var auctionFields = []string{"id", "itemName", "description", "initialBid", "reserve", "dateTime", "expires", "seller", "category", "extra"}

func (d *decoder) auction(a *Auction) error {
	return d.members(auctionFields, func(i int) (err error) {
		switch i {
		case 0:
			a.ID, err = d.int("id")
		case 1:
			a.ItemName, err = d.str("itemName")
		case 2:
			a.Description, err = d.str("description")
		case 3:
			a.InitialBid, err = d.int("initialBid")
		case 4:
			a.Reserve, err = d.int("reserve")
		case 5:
			a.DateTime, err = d.time("dateTime")
		case 6:
			a.Expires, err = d.time("expires")
		case 7:
			a.Seller, err = d.int("seller")
		case 8:
			a.Category, err = d.int("category")
		case 9:
			a.Extra, err = d.str("extra")
		}
		return err
	})
}

var bidFields = []string{"auction", "bidder", "price", "channel", "url", "dateTime", "extra"}

func (d *decoder) bid(x *Bid) error {
	return d.members(bidFields, func(i int) (err error) {
		switch i {
		case 0:
			x.Auction, err = d.int("auction")
		case 1:
			x.Bidder, err = d.int("bidder")
		case 2:
			x.Price, err = d.int("price")
		case 3:
			x.Channel, err = d.str("channel")
		case 4:
			x.URL, err = d.str("url")
		case 5:
			x.DateTime, err = d.time("dateTime")
		case 6:
			x.Extra, err = d.str("extra")
		}
		return err
	})
}

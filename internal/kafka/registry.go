package kafka

import (
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// api is one supported Kafka API: its key, the version range Weir advertises
// in ApiVersions and accepts, and its handler.
type api struct {
	Key        int16
	MinVersion int16
	MaxVersion int16
	// Handle runs on the connection's reader goroutine, one request at a
	// time. req is the kmsg request type for Key (kmsg.RequestForKey),
	// decoded at a version within [MinVersion, MaxVersion]; the handler
	// type-asserts it. A method expression such as
	// (*Server).handleApiVersions fits.
	Handle func(s *Server, c *Conn, req kmsg.Request) Reply
}

// apis is the table of supported APIs, filled by register from the init
// functions of the NN_name.go files and read-only afterwards.
var apis = map[int16]api{}

// register adds a to the table of supported APIs. It is called from init
// functions only, so it panics on a programming error: an unknown key, a
// duplicate, a nil handler or a version range kmsg cannot decode.
func register(a api) {
	if err := a.check(); err != nil {
		panic(err)
	}
	if _, dup := apis[a.Key]; dup {
		panic(fmt.Sprintf("kafka: api key %d registered twice", a.Key))
	}
	apis[a.Key] = a
}

// check reports whether a is a well-formed table entry.
func (a api) check() error {
	req := kmsg.RequestForKey(a.Key)
	switch {
	case req == nil:
		return fmt.Errorf("kafka: api key %d unknown to kmsg", a.Key)
	case a.Handle == nil:
		return fmt.Errorf("kafka: api key %d has no handler", a.Key)
	case a.MinVersion < 0 || a.MinVersion > a.MaxVersion:
		return fmt.Errorf("kafka: api key %d has bad version range %d-%d", a.Key, a.MinVersion, a.MaxVersion)
	case a.MaxVersion > req.MaxVersion():
		return fmt.Errorf("kafka: api key %d max version %d exceeds kmsg's %d", a.Key, a.MaxVersion, req.MaxVersion())
	}
	return nil
}

// lookup returns the API for key. Test-only entries in s.extra take
// precedence over the package table.
func (s *Server) lookup(key int16) (api, bool) {
	if a, ok := s.extra[key]; ok {
		return a, true
	}
	a, ok := apis[key]
	return a, ok
}

// apiVersionsKeys lists every supported API with its version range, sorted
// by key, as the ApiVersions response carries it.
func (s *Server) apiVersionsKeys() []kmsg.ApiVersionsResponseApiKey {
	keys := make([]kmsg.ApiVersionsResponseApiKey, 0, len(apis)+len(s.extra))
	add := func(a api) {
		k := kmsg.NewApiVersionsResponseApiKey()
		k.ApiKey, k.MinVersion, k.MaxVersion = a.Key, a.MinVersion, a.MaxVersion
		keys = append(keys, k)
	}
	for key, a := range apis {
		if _, overridden := s.extra[key]; !overridden {
			add(a)
		}
	}
	for _, a := range s.extra {
		add(a)
	}
	slices.SortFunc(keys, func(a, b kmsg.ApiVersionsResponseApiKey) int { return int(a.ApiKey) - int(b.ApiKey) })
	return keys
}

// Reply is a handler's answer to one request: a response now (Respond), a
// response later (Defer), or no response at all (NoReply). The zero Reply, or
// Respond(nil), is invalid: the connection is closed if a handler returns it.
//
// The writer goroutine sends replies in request order whichever kind they are,
// so a deferred reply holds back the replies to later requests on the same
// connection, but not their handling.
type Reply struct {
	resp kmsg.Response
	wait func() kmsg.Response
	none bool
	// release, if set, runs on the writer goroutine once the response
	// is encoded (and counted): buffers it referred to may be recycled.
	release func()
}

// valid reports whether r is one of the three kinds of Reply.
func (r Reply) valid() bool { return r.resp != nil || r.wait != nil || r.none }

// Respond returns a Reply that sends resp as soon as the replies before it
// are sent. resp must be the response kind of the request; its version is set
// to the request's before it is encoded.
func Respond(resp kmsg.Response) Reply { return Reply{resp: resp} }

// Defer returns a Reply whose response comes from wait, which the writer
// goroutine calls once the replies before it are sent. Handlers use it for
// waits that must not stall the next request's handling: durability (an
// fsync group commit) and fetch long-polls. wait must return once the
// connection's Context is done; it may return nil then, which closes the
// connection without a response. wait runs on the writer goroutine,
// concurrently with later handlers, so it must capture what it needs from the
// Conn (ClientID and the like) in the handler rather than call Conn methods
// other than Context.
func Defer(wait func() kmsg.Response) Reply { return Reply{wait: wait} }

// NoReply returns a Reply that sends nothing, for a produce request with
// acks=0, which Kafka never answers.
func NoReply() Reply { return Reply{none: true} }

package cloudevents

import (
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/weirhq/weir/internal/broker"
)

// Subscription pushes a topic's matching events to an HTTP sink, Knative
// Trigger style. Its JSON is both the API body and the stored record:
//
//	{"name":"billing","topic":"orders","sink":"http://billing:8080/",
//	 "filters":[{"exact":{"type":"order.created"}},{"prefix":{"source":"/shop"}}],
//	 "delivery":{"retries":5,"backoffPolicy":"exponential","backoffDelay":"200ms",
//	             "maxBackoff":"1m","timeout":"30s","ordered":true,
//	             "deadLetterTopic":"orders.dlq"},
//	 "startFrom":"latest"}
type Subscription struct {
	Name  string `json:"name"`
	Topic string `json:"topic"`
	Sink  string `json:"sink"`
	// Filters must all match (an empty list matches every event).
	Filters  []Filter `json:"filters,omitempty"`
	Delivery Delivery `json:"delivery"`
	// StartFrom is where a new subscription starts: "latest" (default,
	// events published after its creation) or "earliest".
	StartFrom string    `json:"startFrom,omitempty"`
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"`
}

// Delivery holds a subscription's delivery options; Normalize fills the
// defaults noted.
type Delivery struct {
	// Retries after the first attempt; default 3.
	Retries *int `json:"retries,omitempty"`
	// BackoffPolicy is "exponential" (delay·2^(n-1), default) or "linear"
	// (delay·n) before retry n.
	BackoffPolicy string `json:"backoffPolicy,omitempty"`
	// BackoffDelay is the base delay; default 200ms.
	BackoffDelay Duration `json:"backoffDelay,omitempty"`
	// MaxBackoff caps one delay, and a sink's Retry-After; default 1m.
	MaxBackoff Duration `json:"maxBackoff,omitempty"`
	// Timeout bounds one attempt; default 30s.
	Timeout Duration `json:"timeout,omitempty"`
	// Ordered delivers one event at a time per partition, in order
	// (default true); unordered keeps up to MaxInFlight per partition.
	Ordered     *bool `json:"ordered,omitempty"`
	MaxInFlight int   `json:"maxInFlight,omitempty"`
	// DeadLetterTopic receives events whose delivery failed for good;
	// empty drops them.
	DeadLetterTopic string `json:"deadLetterTopic,omitempty"`
}

// Duration is a time.Duration whose JSON is a Go duration string; ISO 8601
// durations ("PT0.5S", as Knative writes them) are read too.
type Duration time.Duration

// MarshalJSON writes d as a Go duration string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON reads "1.5s" or "PT1.5S".
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("durations are strings such as \"500ms\" or \"PT0.5S\"")
	}
	v, err := parseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

var isoDuration = regexp.MustCompile(`^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$`)

func parseDuration(s string) (time.Duration, error) {
	if d, err := time.ParseDuration(s); err == nil {
		return d, nil
	}
	m := isoDuration.FindStringSubmatch(strings.ToUpper(s))
	if m == nil || s == "P" || strings.HasSuffix(strings.ToUpper(s), "T") {
		return 0, fmt.Errorf("duration %q: want a Go duration (\"500ms\") or ISO 8601 (\"PT0.5S\")", s)
	}
	var d time.Duration
	for i, unit := range []time.Duration{24 * time.Hour, time.Hour, time.Minute} {
		if m[i+1] != "" {
			n, err := strconv.Atoi(m[i+1])
			if err != nil {
				return 0, fmt.Errorf("duration %q: %v", s, err)
			}
			d += time.Duration(n) * unit
		}
	}
	if m[4] != "" {
		f, err := strconv.ParseFloat(m[4], 64)
		if err != nil {
			return 0, fmt.Errorf("duration %q: %v", s, err)
		}
		d += time.Duration(f * float64(time.Second))
	}
	return d, nil
}

// Delivery defaults.
const (
	defaultRetries      = 3
	defaultBackoffDelay = 200 * time.Millisecond
	defaultMaxBackoff   = time.Minute
	defaultTimeout      = 30 * time.Second
	defaultMaxInFlight  = 16
)

var subscriptionName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$`)

// Group is the consumer group that holds the subscription's offsets.
func (s *Subscription) Group() string { return subscriptionGroupPrefix + s.Name }

// Normalize fills defaults and validates s; the error answers 400.
func (s *Subscription) Normalize() error {
	if !subscriptionName.MatchString(s.Name) {
		return badRequest("subscription name %q: want 1-200 of A-Z a-z 0-9 . _ -, starting with a letter or digit", s.Name)
	}
	if err := broker.ValidateTopicName(s.Topic); err != nil {
		return badRequest("topic: %v", err)
	}
	if strings.HasPrefix(s.Topic, "__") {
		return badRequest("topic %q is internal", s.Topic)
	}
	u, err := url.Parse(s.Sink)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return badRequest("sink %q: want an absolute http or https URL", s.Sink)
	}
	nodes := 0
	for i := range s.Filters {
		if err := s.Filters[i].validate(1, &nodes); err != nil {
			return badRequest("filters[%d]: %v", i, err)
		}
	}
	switch s.StartFrom {
	case "":
		s.StartFrom = "latest"
	case "latest", "earliest":
	default:
		return badRequest("startFrom %q: want latest or earliest", s.StartFrom)
	}
	d := &s.Delivery
	if d.Retries == nil {
		n := defaultRetries
		d.Retries = &n
	}
	if *d.Retries < 0 || *d.Retries > 100 {
		return badRequest("delivery.retries %d: want 0..100", *d.Retries)
	}
	switch d.BackoffPolicy {
	case "":
		d.BackoffPolicy = "exponential"
	case "exponential", "linear":
	default:
		return badRequest("delivery.backoffPolicy %q: want exponential or linear", d.BackoffPolicy)
	}
	if d.BackoffDelay == 0 {
		d.BackoffDelay = Duration(defaultBackoffDelay)
	}
	if d.MaxBackoff == 0 {
		d.MaxBackoff = Duration(max(defaultMaxBackoff, time.Duration(d.BackoffDelay)))
	}
	if d.Timeout == 0 {
		d.Timeout = Duration(defaultTimeout)
	}
	if d.BackoffDelay < 0 || time.Duration(d.BackoffDelay) > time.Hour {
		return badRequest("delivery.backoffDelay %v: want up to 1h", time.Duration(d.BackoffDelay))
	}
	if d.MaxBackoff < d.BackoffDelay || time.Duration(d.MaxBackoff) > 24*time.Hour {
		return badRequest("delivery.maxBackoff %v: want backoffDelay..24h", time.Duration(d.MaxBackoff))
	}
	if d.Timeout < 0 || time.Duration(d.Timeout) > 10*time.Minute {
		return badRequest("delivery.timeout %v: want up to 10m", time.Duration(d.Timeout))
	}
	if d.Ordered == nil {
		t := true
		d.Ordered = &t
	}
	if *d.Ordered {
		d.MaxInFlight = 1
	} else if d.MaxInFlight == 0 {
		d.MaxInFlight = defaultMaxInFlight
	}
	if d.MaxInFlight < 1 || d.MaxInFlight > 1000 {
		return badRequest("delivery.maxInFlight %d: want 1..1000", d.MaxInFlight)
	}
	if d.DeadLetterTopic != "" {
		if err := broker.ValidateTopicName(d.DeadLetterTopic); err != nil {
			return badRequest("delivery.deadLetterTopic: %v", err)
		}
		if strings.HasPrefix(d.DeadLetterTopic, "__") || d.DeadLetterTopic == s.Topic {
			return badRequest("delivery.deadLetterTopic %q must be another, non-internal topic", d.DeadLetterTopic)
		}
	}
	return nil
}

// backoff is the delay before retry n (1-based).
func (d *Delivery) backoff(n int) time.Duration {
	base, limit := time.Duration(d.BackoffDelay), time.Duration(d.MaxBackoff)
	var v time.Duration
	if d.BackoffPolicy == "linear" {
		v = base * time.Duration(n)
	} else {
		v = base
		for i := 1; i < n && v < limit; i++ {
			v *= 2
		}
	}
	if v > limit || v < 0 {
		v = limit
	}
	return v
}

package cloudevents

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weirhq/weir/internal/broker"
)

// TestPushRetriesThenSucceeds: a sink failing twice gets the event a third
// time after linear backoff; the subscription's group then shows no lag.
func TestPushRetriesThenSucceeds(t *testing.T) {
	e := newEnv(t)
	sk := newSink(t, func(n int, _ *http.Request) int {
		if n <= 2 {
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	})
	v := e.createSub(fmt.Sprintf(`{"name":"flaky","topic":"orders","sink":%q,
		"delivery":{"retries":3,"backoffPolicy":"linear","backoffDelay":"30ms"}}`, sk.srv.URL))
	if v.Group != "weir-sub-flaky" || *v.Delivery.Ordered != true || v.StartFrom != "latest" {
		t.Fatalf("view %+v", v)
	}
	e.mustAccept(e.postBinary("orders", "o-1", `{"n":1}`, "Content-Type: application/json", "ce-subject: s1", "ce-region: eu"))
	eventually(t, "three attempts", func() bool { return len(sk.received()) == 3 })
	got := sk.received()
	for _, r := range got {
		if r.header.Get("Ce-Id") != "o-1" || r.header.Get("Ce-Specversion") != "1.0" || r.header.Get("Ce-Source") != "/test" ||
			r.header.Get("Ce-Type") != "test.event" || r.header.Get("Ce-Subject") != "s1" || r.header.Get("Ce-Region") != "eu" ||
			r.header.Get("Content-Type") != "application/json" || string(r.body) != `{"n":1}` {
			t.Fatalf("delivery %v %q", r.header, r.body)
		}
	}
	// Linear backoff: 30ms before the first retry, 60ms before the second.
	if d := got[1].at.Sub(got[0].at); d < 30*time.Millisecond {
		t.Errorf("first retry after %v", d)
	}
	if d := got[2].at.Sub(got[1].at); d < 60*time.Millisecond {
		t.Errorf("second retry after %v", d)
	}
	eventually(t, "the offset commit", func() bool { return e.committedOffsets("weir-sub-flaky")[0] == 1 })
	st := e.getSub("flaky").Status
	if st.Delivered != 1 || st.Retried != 2 || st.Lag != 0 || st.DeadLettered != 0 || !strings.Contains(st.LastError, "status 503") {
		t.Fatalf("status %+v", st)
	}
	// Committed means finished: no attempt follows.
	if n := len(sk.received()); n != 3 {
		t.Fatalf("%d deliveries", n)
	}
}

// TestPushDeadLetter: an event a sink always refuses lands in the
// dead-letter topic with its attributes and extensions saying why; a 4xx
// answer is final at once.
func TestPushDeadLetter(t *testing.T) {
	e := newEnv(t)
	var status atomic.Int32
	status.Store(http.StatusInternalServerError)
	sk := newSink(t, func(int, *http.Request) int { return int(status.Load()) })
	e.createSub(fmt.Sprintf(`{"name":"doomed","topic":"payments","sink":%q,
		"delivery":{"retries":2,"backoffDelay":"5ms","deadLetterTopic":"payments.dlq"}}`, sk.srv.URL))
	e.mustAccept(e.postBinary("payments", "pay-1", "amount=5", "Content-Type: text/plain", "ce-partitionkey: acct-9", "ce-tenant: acme"))
	recs := e.consumeAll("payments.dlq", 1)
	h := headerMap(recs[0])
	want := map[string]string{
		"ce_id": "pay-1", "ce_source": "/test", "ce_type": "test.event", "ce_tenant": "acme", "content-type": "text/plain",
		"ce_deadletterreason": "status 500", "ce_deadletterstatus": "500", "ce_deadletterattempts": "3", "ce_deadlettersink": sk.srv.URL,
	}
	for k, v := range want {
		if h[k] != v {
			t.Errorf("dead letter header %s = %q, want %q", k, h[k], v)
		}
	}
	if string(recs[0].Value) != "amount=5" || string(recs[0].Key) != "acct-9" {
		t.Errorf("dead letter %q %q", recs[0].Key, recs[0].Value)
	}
	if n := len(sk.received()); n != 3 {
		t.Errorf("%d attempts, want 3", n)
	}

	// 400 is not retried.
	status.Store(http.StatusBadRequest)
	e.mustAccept(e.postBinary("payments", "pay-2", "x"))
	recs = e.consumeAll("payments.dlq", 2)
	if h := headerMap(recs[1]); h["ce_id"] != "pay-2" || h["ce_deadletterattempts"] != "1" || h["ce_deadletterstatus"] != "400" {
		t.Errorf("second dead letter %v", h)
	}
	eventually(t, "the commit past both", func() bool { return e.committedOffsets("weir-sub-doomed")[0] == 2 })
	if st := e.getSub("doomed").Status; st.DeadLettered != 2 || st.Delivered != 0 {
		t.Fatalf("status %+v", st)
	}
}

// TestPushTimeoutAndDrop: an attempt that outlasts the timeout fails with
// reason "timeout"; without a dead-letter topic the event is dropped and
// the subscription moves on.
func TestPushTimeoutAndDrop(t *testing.T) {
	e := newEnv(t)
	release := make(chan struct{})
	defer close(release)
	sk := newSink(t, func(n int, r *http.Request) int {
		if r.Header.Get("Ce-Id") == "slow" {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}
		return http.StatusOK
	})
	e.createSub(fmt.Sprintf(`{"name":"hasty","topic":"slow","sink":%q,"delivery":{"retries":1,"backoffDelay":"1ms","timeout":"50ms"}}`, sk.srv.URL))
	e.mustAccept(e.postBinary("slow", "slow", "x"))
	e.mustAccept(e.postBinary("slow", "fast", "x"))
	eventually(t, "the next event", func() bool {
		ids := sk.ids()
		return len(ids) == 3 && ids[2] == "fast"
	})
	eventually(t, "the fast event's success", func() bool { return e.getSub("hasty").Status.Delivered == 1 })
	st := e.getSub("hasty").Status
	if st.Dropped != 1 || !strings.Contains(st.LastError, "timeout") {
		t.Fatalf("status %+v", st)
	}
}

// TestPushFilters: exact, prefix, suffix, all, any and not.
func TestPushFilters(t *testing.T) {
	e := newEnv(t)
	sk := newSink(t, nil)
	e.createSub(fmt.Sprintf(`{"name":"picky","topic":"mixed","sink":%q,"filters":[
		{"prefix":{"type":"com.shop."}},
		{"any":[{"exact":{"region":"eu"}},{"suffix":{"source":"/vip"}}]},
		{"not":{"exact":{"type":"com.shop.ignored"}}},
		{"all":[{"prefix":{"id":"keep"}}]}]}`, sk.srv.URL))
	cases := []struct {
		id, typ, source, region string
		want                    bool
	}{
		{"keep-1", "com.shop.order", "/s", "eu", true},
		{"keep-2", "com.shop.order", "/s/vip", "", true},
		{"keep-3", "com.shop.order", "/s", "us", false},
		{"keep-4", "org.other", "/s", "eu", false},
		{"keep-5", "com.shop.ignored", "/s", "eu", false},
		{"drop-6", "com.shop.order", "/s", "eu", false},
		{"keep-7", "com.shop.refund", "/x/vip", "eu", true},
	}
	var want []string
	for _, c := range cases {
		hs := []string{"ce-type: " + c.typ, "ce-source: " + c.source}
		if c.region != "" {
			hs = append(hs, "ce-region: "+c.region)
		}
		e.mustAccept(e.postBinary("mixed", c.id, "x", hs...))
		if c.want {
			want = append(want, c.id)
		}
	}
	eventually(t, "the filtered events", func() bool { return e.getSub("picky").Status.Lag == 0 })
	if got := sk.ids(); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("delivered %v, want %v", got, want)
	}
	if st := e.getSub("picky").Status; st.Filtered != 4 || st.Delivered != 3 {
		t.Fatalf("status %+v", st)
	}
}

// TestPushUnordered: with ordered false several events are in flight per
// partition, and the committed offset waits for the slowest.
func TestPushUnordered(t *testing.T) {
	e := newEnv(t)
	var inflight, peak atomic.Int32
	gate := make(chan struct{})
	sk := newSink(t, func(n int, r *http.Request) int {
		cur := inflight.Add(1)
		defer inflight.Add(-1)
		for {
			p := peak.Load()
			if cur <= p || peak.CompareAndSwap(p, cur) {
				break
			}
		}
		if r.Header.Get("Ce-Id") == "u-0" {
			<-gate
		}
		return http.StatusOK
	})
	e.createSub(fmt.Sprintf(`{"name":"parallel","topic":"fanout","sink":%q,"delivery":{"ordered":false,"maxInFlight":4}}`, sk.srv.URL))
	for i := range 10 {
		e.mustAccept(e.postBinary("fanout", fmt.Sprintf("u-%d", i), "x"))
	}
	eventually(t, "the other nine", func() bool { return len(sk.received()) == 10 })
	if peak.Load() < 2 {
		t.Fatalf("peak concurrency %d", peak.Load())
	}
	eventually(t, "nine deliveries finished", func() bool { return e.getSub("parallel").Status.Delivered == 9 })
	e.gw.subs.mu.Lock()
	run := e.gw.subs.m["parallel"]
	e.gw.subs.mu.Unlock()
	checks := run.commitChecks.Load()
	eventually(t, "several commit checks since", func() bool { return run.commitChecks.Load() >= checks+3 })
	if c := e.committedOffsets("weir-sub-parallel")[0]; c != 0 {
		t.Fatalf("committed %d past the unfinished first event", c)
	}
	close(gate)
	eventually(t, "the commit of all", func() bool { return e.committedOffsets("weir-sub-parallel")[0] == 10 })
	ids := sk.ids()
	sort.Strings(ids)
	if len(ids) != 10 {
		t.Fatalf("ids %v", ids)
	}
}

// TestSubscriptionsSurviveRestart: subscriptions are stored in the broker;
// after a restart they are back and every event is delivered at least
// once, including those published while the gateway was down.
func TestSubscriptionsSurviveRestart(t *testing.T) {
	e := newEnv(t)
	var fail atomic.Bool
	sk := newSink(t, func(int, *http.Request) int {
		if fail.Load() {
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	})
	e.createSub(fmt.Sprintf(`{"name":"durable","topic":"ledger","sink":%q,"delivery":{"retries":100,"backoffDelay":"5ms","maxBackoff":"20ms"},
		"filters":[{"exact":{"type":"test.event"}}]}`, sk.srv.URL))
	publish := func(from, to int) {
		for i := from; i < to; i++ {
			e.mustAccept(e.postBinary("ledger", fmt.Sprintf("l-%d", i), "x"))
		}
	}
	publish(0, 5)
	eventually(t, "the first five", func() bool { return len(sk.ids()) >= 5 })
	// The sink starts failing: event 5 is retried when the node stops.
	fail.Store(true)
	publish(5, 8)
	eventually(t, "retries of event 5", func() bool { return len(sk.ids()) >= 7 })
	e.stop()
	fail.Store(false)
	e.start()
	publish(8, 10)
	v := e.getSub("durable")
	if v.Topic != "ledger" || len(v.Filters) != 1 || *v.Delivery.Retries != 100 {
		t.Fatalf("after restart %+v", v)
	}
	eventually(t, "every event", func() bool {
		seen := map[string]bool{}
		for _, id := range sk.ids() {
			seen[id] = true
		}
		for i := range 10 {
			if !seen[fmt.Sprintf("l-%d", i)] {
				return false
			}
		}
		return true
	})
	eventually(t, "no lag", func() bool { return e.getSub("durable").Status.Lag == 0 })
	// Delivered in order per partition: the first success of each id
	// comes in publishing order.
	var firsts []string
	seen := map[string]bool{}
	for _, r := range sk.received() {
		id := r.header.Get("Ce-Id")
		if !seen[id] {
			seen[id] = true
			firsts = append(firsts, id)
		}
	}
	for i, id := range firsts {
		if id != fmt.Sprintf("l-%d", i) {
			t.Fatalf("order %v", firsts)
		}
	}
}

func TestSubscriptionCRUD(t *testing.T) {
	e := newEnv(t)
	sk := newSink(t, nil)
	body := func(name, topic string, extra string) []byte {
		return fmt.Appendf(nil, `{"name":%q,"topic":%q,"sink":%q%s}`, name, topic, sk.srv.URL, extra)
	}
	e.ensureTopic("crud")
	r := e.do(http.MethodPost, "/subscriptions", body("a", "crud", ""))
	if r.status != 201 || r.header.Get("Location") != "/subscriptions/a" {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	if r := e.do(http.MethodPost, "/subscriptions", body("a", "crud", "")); r.status != 409 {
		t.Fatalf("duplicate: %d", r.status)
	}
	// PUT replaces, keeping the creation time.
	r = e.do(http.MethodPut, "/subscriptions/a", body("", "crud", `,"delivery":{"retries":7,"timeout":"PT2S"}`))
	var v SubscriptionView
	r.json(t, &v)
	if r.status != 200 || *v.Delivery.Retries != 7 || time.Duration(v.Delivery.Timeout) != 2*time.Second || v.UpdatedAt.Before(v.CreatedAt) {
		t.Fatalf("replace: %d %s", r.status, r.body)
	}
	if r := e.do(http.MethodPut, "/subscriptions/a", body("a", "other", "")); r.status != 409 {
		t.Fatalf("topic change: %d %s", r.status, r.body)
	}
	if r := e.do(http.MethodPut, "/subscriptions/b", body("b", "crud", "")); r.status != 201 {
		t.Fatalf("create by PUT: %d %s", r.status, r.body)
	}
	r = e.do(http.MethodPost, "/subscriptions", fmt.Appendf(nil, `{"topic":"crud","sink":%q}`, sk.srv.URL))
	r.json(t, &v)
	if r.status != 201 || !strings.HasPrefix(v.Name, "sub-") {
		t.Fatalf("generated name: %d %s", r.status, r.body)
	}
	var list subscriptionList
	r = e.do(http.MethodGet, "/subscriptions", nil)
	r.json(t, &list)
	if len(list.Subscriptions) != 3 || list.Subscriptions[0].Name != "a" || list.Subscriptions[1].Name != "b" {
		t.Fatalf("list %s", r.body)
	}
	if r := e.do(http.MethodDelete, "/subscriptions/b", nil); r.status != 204 {
		t.Fatalf("delete: %d", r.status)
	}
	if r := e.do(http.MethodGet, "/subscriptions/b", nil); r.status != 404 || r.apiErr(t).Code != codeNotFound {
		t.Fatalf("get deleted: %d", r.status)
	}
	if r := e.do(http.MethodDelete, "/subscriptions/b", nil); r.status != 404 {
		t.Fatalf("delete again: %d", r.status)
	}
	if groups := e.committedOffsets("weir-sub-b"); len(groups) != 0 {
		t.Fatalf("deleted subscription's offsets remain: %v", groups)
	}
	e.restart()
	r = e.do(http.MethodGet, "/subscriptions", nil)
	r.json(t, &list)
	if len(list.Subscriptions) != 2 || list.Subscriptions[0].Name != "a" || *list.Subscriptions[0].Delivery.Retries != 7 {
		t.Fatalf("after restart %s", r.body)
	}

	for _, c := range []struct{ name, body string }{
		{"bad name", `{"name":"no spaces","topic":"t","sink":"http://x/"}`},
		{"no sink", `{"name":"n","topic":"t"}`},
		{"ftp sink", `{"name":"n","topic":"t","sink":"ftp://x/"}`},
		{"bad topic", `{"name":"n","topic":"a b","sink":"http://x/"}`},
		{"internal topic", `{"name":"n","topic":"__weir_subscriptions","sink":"http://x/"}`},
		{"unknown field", `{"name":"n","topic":"t","sink":"http://x/","bogus":1}`},
		{"two dialects", `{"name":"n","topic":"t","sink":"http://x/","filters":[{"exact":{"type":"a"},"prefix":{"type":"b"}}]}`},
		{"empty any", `{"name":"n","topic":"t","sink":"http://x/","filters":[{"any":[]}]}`},
		{"bad attribute", `{"name":"n","topic":"t","sink":"http://x/","filters":[{"exact":{"Type":"a"}}]}`},
		{"bad policy", `{"name":"n","topic":"t","sink":"http://x/","delivery":{"backoffPolicy":"random"}}`},
		{"bad duration", `{"name":"n","topic":"t","sink":"http://x/","delivery":{"timeout":"soon"}}`},
		{"negative retries", `{"name":"n","topic":"t","sink":"http://x/","delivery":{"retries":-1}}`},
		{"dlq is the topic", `{"name":"n","topic":"t","sink":"http://x/","delivery":{"deadLetterTopic":"t"}}`},
		{"bad startFrom", `{"name":"n","topic":"t","sink":"http://x/","startFrom":"now"}`},
		{"not JSON", `{`},
	} {
		if r := e.do(http.MethodPost, "/subscriptions", []byte(c.body)); r.status != 400 || r.apiErr(t).Code != codeInvalidRequest {
			t.Errorf("%s: %d %s", c.name, r.status, r.body)
		}
	}
	if r := e.do(http.MethodPatch, "/subscriptions", nil); r.status != 405 || r.header.Get("Allow") != "GET, POST" {
		t.Errorf("PATCH list: %d", r.status)
	}
	if r := e.do(http.MethodPost, "/subscriptions/a", nil); r.status != 405 {
		t.Errorf("POST one: %d", r.status)
	}
}

// TestSubscriptionStartFromEarliest: a subscription may start at the
// beginning of the topic.
func TestSubscriptionStartFromEarliest(t *testing.T) {
	e := newEnv(t)
	e.mustAccept(e.postBinary("history", "old", "x"))
	sk := newSink(t, nil)
	late := newSink(t, nil)
	e.createSub(fmt.Sprintf(`{"name":"replay","topic":"history","sink":%q,"startFrom":"earliest"}`, sk.srv.URL))
	e.createSub(fmt.Sprintf(`{"name":"fresh","topic":"history","sink":%q}`, late.srv.URL))
	e.mustAccept(e.postBinary("history", "new", "x"))
	eventually(t, "both events", func() bool { return len(sk.ids()) == 2 })
	eventually(t, "the new event", func() bool { return len(late.ids()) == 1 })
	if ids := late.ids(); ids[0] != "new" {
		t.Fatalf("latest subscription got %v", ids)
	}
}

// TestSubscriptionUnknownTopic: a subscription to a missing topic is 404,
// whether or not the node auto-creates topics: reading never creates one.
func TestSubscriptionUnknownTopic(t *testing.T) {
	for _, auto := range []bool{false, true} {
		e := newEnv(t, withBroker(func(o *broker.Options) { o.AutoCreateTopics = auto }))
		r := e.do(http.MethodPost, "/subscriptions", []byte(`{"name":"n","topic":"missing","sink":"http://127.0.0.1:1/"}`))
		if r.status != 404 || r.apiErr(t).Code != codeUnknownTopic {
			t.Fatalf("auto-create %v: %d %s", auto, r.status, r.body)
		}
		if _, err := e.b.Topic("missing"); err == nil {
			t.Fatalf("auto-create %v: the subscription created the topic", auto)
		}
	}
}

// TestPushTopicRecreated: a subscription keeps delivering when its topic
// is deleted and created again (its offsets start over).
func TestPushTopicRecreated(t *testing.T) {
	e := newEnv(t)
	sk := newSink(t, nil)
	e.createSub(fmt.Sprintf(`{"name":"phoenix","topic":"phoenix","sink":%q}`, sk.srv.URL))
	for i := range 3 {
		e.mustAccept(e.postBinary("phoenix", fmt.Sprintf("old-%d", i), "x"))
	}
	eventually(t, "the first events", func() bool { return len(sk.ids()) == 3 })
	eventually(t, "the commit", func() bool { return e.committedOffsets("weir-sub-phoenix")[0] == 3 })
	if err := e.b.DeleteTopic("phoenix"); err != nil {
		t.Fatal(err)
	}
	e.mustAccept(e.postBinary("phoenix", "new-0", "x"))
	e.mustAccept(e.postBinary("phoenix", "new-1", "x"))
	eventually(t, "the events of the new topic", func() bool { return len(sk.ids()) == 5 })
	if ids := sk.ids(); ids[3] != "new-0" || ids[4] != "new-1" {
		t.Fatalf("delivered %v", ids)
	}
}

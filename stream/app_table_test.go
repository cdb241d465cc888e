package stream_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weirhq/weir/stream"
)

// shop enriches orders ("customer:item", keyed by order id) with the
// customers table read from its compacted topic, and keeps an upper-case
// copy of the table in an upsert sink.
func shop() *stream.Topology {
	topo := stream.NewTopology()
	customers := stream.TableSource(topo, "customers", S, S, stream.SourceName("customers"))
	orders := stream.Map(stream.Source(topo, "orders", S, S), func(_, v string) (string, string) {
		c, item, _ := strings.Cut(v, ":")
		return c, item
	})
	enriched := stream.LeftJoinTable(orders, customers, S, func(c, item, name string, ok bool) string {
		if !ok {
			name = "unknown " + c
		}
		return name + " bought " + item
	}, stream.Named("enrich"))
	stream.To(enriched, "enriched", S, S)
	stream.ToTable(stream.MapTableValues(customers, func(_, n string) string { return strings.ToUpper(n) }), "customers-upper", S, S)
	return topo
}

// TestAppEnrichmentRestoresTableFromSource: bounded runs of one
// application, each a restart. The customers table is restored from its
// own topic up to the committed offsets (no changelog topic exists), so
// orders arriving in a later run meet the customers of earlier runs, with
// their updates and deletions.
func TestAppEnrichmentRestoresTableFromSource(t *testing.T) {
	c := newCluster(t)
	compact := "compact"
	for _, topic := range []string{"customers", "orders"} {
		var cfg map[string]*string
		if topic == "customers" {
			cfg = map[string]*string{"cleanup.policy": &compact}
		}
		if _, err := c.adm.CreateTopic(c.ctx, 2, 1, cfg, topic); err != nil {
			t.Fatal(err)
		}
	}
	ts := recent
	rec := func(topic, k, v string) *kgo.Record {
		ts = ts.Add(time.Second)
		r := &kgo.Record{Topic: topic, Key: []byte(k), Timestamp: ts}
		if v != "" {
			r.Value = []byte(v)
		}
		return r
	}
	run := func() {
		t.Helper()
		app, err := stream.New(shop(), stream.Config{Brokers: []string{c.b.Addr()}, ApplicationID: "shop", Bounded: true, CommitInterval: 50 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		if err := app.Run(c.ctx); err != nil {
			t.Fatal(err)
		}
	}
	enriched := func() []string {
		var out []string
		for _, r := range c.readAll("enriched") {
			out = append(out, string(r.Value))
		}
		slices.Sort(out)
		return out
	}

	c.produce(rec("customers", "c1", "Ann"), rec("customers", "c2", "Bob"), rec("customers", "c3", "Cy"))
	run()
	c.produce(rec("orders", "o1", "c1:tea"), rec("orders", "o2", "c2:jam"), rec("orders", "o3", "c4:pie"))
	run() // restores c1..c3 from "customers"
	if got, want := enriched(), []string{"Ann bought tea", "Bob bought jam", "unknown c4 bought pie"}; !slices.Equal(got, want) {
		t.Fatalf("second run: %v, want %v", got, want)
	}
	c.produce(rec("customers", "c1", "Anna"), rec("customers", "c2", "")) // an update and a deletion
	run()
	c.produce(rec("orders", "o4", "c1:cake"), rec("orders", "o5", "c2:pie"))
	run()
	if got, want := enriched(), []string{"Ann bought tea", "Anna bought cake", "Bob bought jam", "unknown c2 bought pie", "unknown c4 bought pie"}; !slices.Equal(got, want) {
		t.Fatalf("fourth run: %v, want %v", got, want)
	}

	// No changelog topic for the table; the upsert sink was created
	// compacted and holds the updates and the deletion.
	topics, err := c.adm.ListTopics(c.ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range topics.Names() {
		if strings.HasSuffix(name, "-changelog") {
			t.Fatalf("a changelog topic was created: %s", name)
		}
	}
	cfgs, err := c.adm.DescribeTopicConfigs(c.ctx, "customers-upper")
	if err != nil {
		t.Fatal(err)
	}
	rc, err := cfgs.On("customers-upper", nil)
	if err != nil {
		t.Fatal(err)
	}
	policy := ""
	for _, cf := range rc.Configs {
		if cf.Key == "cleanup.policy" && cf.Value != nil {
			policy = *cf.Value
		}
	}
	if policy != "compact" {
		t.Fatalf("customers-upper cleanup.policy %q, want compact", policy)
	}
	var upper []string
	for _, r := range c.readAll("customers-upper") {
		v := string(r.Value)
		if r.Value == nil {
			v = "<nil>"
		}
		upper = append(upper, string(r.Key)+"="+v)
	}
	slices.Sort(upper)
	if want := []string{"c1=ANN", "c1=ANNA", "c2=<nil>", "c2=BOB", "c3=CY"}; !slices.Equal(upper, want) {
		t.Fatalf("customers-upper %v, want %v", upper, want)
	}
}

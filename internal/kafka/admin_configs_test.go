package kafka

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weirhq/weir/internal/broker"
)

func describeResource(typ kmsg.ConfigResourceType, name string, configNames ...string) kmsg.DescribeConfigsRequestResource {
	rr := kmsg.NewDescribeConfigsRequestResource()
	rr.ResourceType, rr.ResourceName, rr.ConfigNames = typ, name, configNames
	return rr
}

func configsByName[T any](entries []T, name func(T) string) map[string]T {
	out := make(map[string]T, len(entries))
	for _, e := range entries {
		out[name(e)] = e
	}
	return out
}

func describedByName(cs []kmsg.DescribeConfigsResponseResourceConfig) map[string]kmsg.DescribeConfigsResponseResourceConfig {
	return configsByName(cs, func(c kmsg.DescribeConfigsResponseResourceConfig) string { return c.Name })
}

// topicConfigs returns the broker's view of a topic's configs.
func topicConfigs(t *testing.T, b *broker.Broker, topic string) map[string]broker.ConfigEntry {
	t.Helper()
	entries, err := b.DescribeConfigs(topic)
	if err != nil {
		t.Fatalf("DescribeConfigs(%s): %v", topic, err)
	}
	return configsByName(entries, func(e broker.ConfigEntry) string { return e.Name })
}

func wantTopicConfig(t *testing.T, b *broker.Broker, topic, name, value string, source broker.ConfigSource) {
	t.Helper()
	e := topicConfigs(t, b, topic)[name]
	if e.Value != value || e.Source != source {
		t.Errorf("%s %s = %q (source %d), want %q (source %d)", topic, name, e.Value, e.Source, value, source)
	}
}

func TestDescribeConfigsV0(t *testing.T) {
	ts := startServer(t, Options{})
	cl := dial(t, ts.addr)
	b := ts.opts.Broker
	if _, err := b.CreateTopic("t", 1, map[string]string{"cleanup.policy": "compact"}, false); err != nil {
		t.Fatal(err)
	}
	req := kmsg.NewPtrDescribeConfigsRequest()
	req.Version = 0
	req.Resources = []kmsg.DescribeConfigsRequestResource{
		describeResource(kmsg.ConfigResourceTypeTopic, "t"),
		describeResource(kmsg.ConfigResourceTypeTopic, "missing"),
		describeResource(kmsg.ConfigResourceTypeTopic, "bad/name"),
		describeResource(kmsg.ConfigResourceTypeBroker, "0"),
		describeResource(kmsg.ConfigResourceTypeBroker, ""),
		describeResource(kmsg.ConfigResourceTypeBroker, "7"),
		describeResource(32, "g"),
	}
	resp := cl.roundTrip(req).(*kmsg.DescribeConfigsResponse)
	if len(resp.Resources) != len(req.Resources) {
		t.Fatalf("%d resources in response, want %d", len(resp.Resources), len(req.Resources))
	}
	for i, w := range []struct {
		code int16
		msg  string
	}{
		{0, ""},
		{kerr.UnknownTopicOrPartition.Code, "unknown topic"},
		{kerr.InvalidTopicException.Code, "may contain only"},
		{0, ""},
		{0, ""},
		{kerr.InvalidRequest.Code, `unexpected broker id "7"`},
		{kerr.InvalidRequest.Code, "unsupported config resource type 32"},
	} {
		r := resp.Resources[i]
		if r.ResourceName != req.Resources[i].ResourceName || r.ResourceType != req.Resources[i].ResourceType {
			t.Errorf("resource %d is %d/%q, want %d/%q", i, r.ResourceType, r.ResourceName, req.Resources[i].ResourceType, req.Resources[i].ResourceName)
		}
		wantError(t, "resource "+r.ResourceName, r.ErrorCode, r.ErrorMessage, w.code, true, w.msg)
		if w.code != 0 && len(r.Configs) != 0 {
			t.Errorf("resource %d failed but lists %d configs", i, len(r.Configs))
		}
	}

	topic := describedByName(resp.Resources[0].Configs)
	if len(topic) != len(topicConfigs(t, b, "t")) {
		t.Errorf("%d topic configs, want %d", len(topic), len(topicConfigs(t, b, "t")))
	}
	for name, w := range map[string]struct {
		value     string
		isDefault bool
	}{
		"cleanup.policy":    {"compact", false},
		"retention.ms":      {"604800000", true},
		"max.message.bytes": {"1048588", true},
	} {
		c := topic[name]
		if c.Value == nil || *c.Value != w.value || c.IsDefault != w.isDefault || c.ReadOnly || c.IsSensitive {
			t.Errorf("v0 %s = %+v, want %q default=%v", name, c, w.value, w.isDefault)
		}
		if c.Source != -1 || c.ConfigSynonyms != nil || c.ConfigType != 0 || c.Documentation != nil {
			t.Errorf("v0 %s carries v1+ fields: %+v", name, c)
		}
	}

	static := describedByName(resp.Resources[3].Configs)
	for name, value := range map[string]string{
		"broker.id":                 "0",
		"num.partitions":            "1",
		"auto.create.topics.enable": "true",
		"log.retention.ms":          "604800000",
		"log.segment.bytes":         "1073741824",
		"message.max.bytes":         "1048588",
		"log.cleanup.policy":        "delete",
	} {
		c, ok := static[name]
		if !ok || *c.Value != value || !c.ReadOnly || c.IsDefault {
			t.Errorf("broker config %s = %+v (present %v), want %q read-only, not default", name, c, ok, value)
		}
	}
	if n := len(resp.Resources[4].Configs); n != 0 {
		t.Errorf(`broker "" lists %d configs, want none (no dynamic defaults)`, n)
	}
}

func TestDescribeConfigsV4(t *testing.T) {
	ts := startServer(t, Options{NodeID: 2})
	cl := dial(t, ts.addr)
	if _, err := ts.opts.Broker.CreateTopic("t", 1, map[string]string{"cleanup.policy": "compact"}, false); err != nil {
		t.Fatal(err)
	}
	req := kmsg.NewPtrDescribeConfigsRequest()
	req.Version = 4
	req.IncludeSynonyms = true
	req.IncludeDocumentation = true
	req.Resources = []kmsg.DescribeConfigsRequestResource{
		describeResource(kmsg.ConfigResourceTypeTopic, "t", "cleanup.policy", "segment.bytes", "no.such.config"),
		describeResource(kmsg.ConfigResourceTypeBroker, "2", "log.retention.ms", "broker.id"),
		describeResource(kmsg.ConfigResourceTypeBroker, "0"),
		describeResource(kmsg.ConfigResourceTypeTopic, "missing"),
		describeResource(kmsg.ConfigResourceTypeTopic, "t", []string{}...),
	}
	resp := cl.roundTrip(req).(*kmsg.DescribeConfigsResponse)
	if len(resp.Resources) != 5 {
		t.Fatalf("%d resources, want 5", len(resp.Resources))
	}
	type want struct {
		value    string
		source   kmsg.ConfigSource
		typ      kmsg.ConfigType
		readOnly bool
		synonyms []string // names, in order
	}
	check := func(what string, got []kmsg.DescribeConfigsResponseResourceConfig, wants map[string]want) {
		t.Helper()
		if len(got) != len(wants) {
			t.Errorf("%s: %d configs, want %d", what, len(got), len(wants))
		}
		for name, w := range wants {
			c, ok := describedByName(got)[name]
			switch {
			case !ok:
				t.Errorf("%s: %s missing", what, name)
				continue
			case c.Value == nil || *c.Value != w.value || c.Source != w.source || c.ConfigType != w.typ || c.ReadOnly != w.readOnly:
				t.Errorf("%s: %s = %+v, want %+v", what, name, c, w)
			case c.Documentation == nil || *c.Documentation == "":
				t.Errorf("%s: %s has no documentation", what, name)
			}
			if len(c.ConfigSynonyms) != len(w.synonyms) {
				t.Errorf("%s: %s synonyms %+v, want %v", what, name, c.ConfigSynonyms, w.synonyms)
				continue
			}
			for i, syn := range c.ConfigSynonyms {
				if syn.Name != w.synonyms[i] || syn.Value == nil || i == 0 && (*syn.Value != w.value || syn.Source != w.source) {
					t.Errorf("%s: %s synonym %d = %+v, want %s (the first with the value and source)", what, name, i, syn, w.synonyms[i])
				}
			}
		}
	}
	check("topic", resp.Resources[0].Configs, map[string]want{
		"cleanup.policy": {"compact", kmsg.ConfigSourceDynamicTopicConfig, kmsg.ConfigTypeList, false, []string{"cleanup.policy", "log.cleanup.policy"}},
		"segment.bytes":  {"1073741824", kmsg.ConfigSourceDefaultConfig, kmsg.ConfigTypeInt, false, []string{"log.segment.bytes"}},
	})
	check("broker", resp.Resources[1].Configs, map[string]want{
		"log.retention.ms": {"604800000", kmsg.ConfigSourceStaticBrokerConfig, kmsg.ConfigTypeLong, true, []string{"log.retention.ms"}},
		"broker.id":        {"2", kmsg.ConfigSourceStaticBrokerConfig, kmsg.ConfigTypeInt, true, []string{"broker.id"}},
	})
	r := resp.Resources[2]
	wantError(t, "broker 0 on node 2", r.ErrorCode, r.ErrorMessage, kerr.InvalidRequest.Code, true, "expected 2")
	r = resp.Resources[3]
	wantError(t, "missing", r.ErrorCode, r.ErrorMessage, kerr.UnknownTopicOrPartition.Code, true, `"missing"`)
	if n, all := len(resp.Resources[4].Configs), len(topicConfigs(t, ts.opts.Broker, "t")); n != all {
		t.Errorf("empty ConfigNames listed %d configs, want all %d", n, all)
	}

	// v1 without synonyms or documentation: sources only.
	req.Version = 1
	req.IncludeSynonyms = false
	req.Resources = req.Resources[:1]
	resp = cl.roundTrip(req).(*kmsg.DescribeConfigsResponse)
	c := describedByName(resp.Resources[0].Configs)["cleanup.policy"]
	if c.Source != kmsg.ConfigSourceDynamicTopicConfig || len(c.ConfigSynonyms) != 0 || c.Documentation != nil || c.ConfigType != 0 {
		t.Errorf("v1 cleanup.policy = %+v, want source 1 and no synonyms, docs or type", c)
	}
}

func alterResource(typ kmsg.ConfigResourceType, name string, kv ...*string) kmsg.AlterConfigsRequestResource {
	rr := kmsg.NewAlterConfigsRequestResource()
	rr.ResourceType, rr.ResourceName = typ, name
	for i := 0; i+1 < len(kv); i += 2 {
		c := kmsg.NewAlterConfigsRequestResourceConfig()
		c.Name, c.Value = *kv[i], kv[i+1]
		rr.Configs = append(rr.Configs, c)
	}
	return rr
}

func TestAlterConfigs(t *testing.T) {
	ts := startServer(t, Options{})
	cl := dial(t, ts.addr)
	b := ts.opts.Broker
	for _, name := range []string{"t", "u"} {
		if _, err := b.CreateTopic(name, 1, map[string]string{"cleanup.policy": "compact"}, false); err != nil {
			t.Fatal(err)
		}
	}
	topic, brk := kmsg.ConfigResourceTypeTopic, kmsg.ConfigResourceTypeBroker
	alter := func(version int16, validateOnly bool, rs ...kmsg.AlterConfigsRequestResource) *kmsg.AlterConfigsResponse {
		req := kmsg.NewPtrAlterConfigsRequest()
		req.Version, req.ValidateOnly, req.Resources = version, validateOnly, rs
		resp := cl.roundTrip(req).(*kmsg.AlterConfigsResponse)
		if len(resp.Resources) != len(rs) {
			t.Fatalf("%d resources in response, want %d", len(resp.Resources), len(rs))
		}
		for i, r := range resp.Resources {
			if r.ResourceName != rs[i].ResourceName || r.ResourceType != rs[i].ResourceType {
				t.Errorf("resource %d is %d/%q, want %d/%q", i, r.ResourceType, r.ResourceName, rs[i].ResourceType, rs[i].ResourceName)
			}
		}
		return resp
	}

	// v0: the whole set is replaced, so cleanup.policy reverts to delete.
	resp := alter(0, false, alterResource(topic, "t", strp("retention.ms"), strp("1000")))
	wantError(t, "v0 t", resp.Resources[0].ErrorCode, resp.Resources[0].ErrorMessage, 0, true, "")
	wantTopicConfig(t, b, "t", "retention.ms", "1000", broker.SourceTopic)
	wantTopicConfig(t, b, "t", "cleanup.policy", "delete", broker.SourceDefaultConfig)

	// One resource per request: a resource named twice is refused.
	for _, c := range []struct {
		r    kmsg.AlterConfigsRequestResource
		code int16
		msg  string
	}{
		{alterResource(topic, "missing", strp("retention.ms"), strp("1")), kerr.UnknownTopicOrPartition.Code, "unknown topic"},
		{alterResource(topic, "u", strp("retention.ms"), strp("soon")), kerr.InvalidConfig.Code, "retention.ms"},
		{alterResource(topic, "u", strp("retention.ms"), nil), kerr.InvalidRequest.Code, "null value not supported for: retention.ms"},
		{alterResource(topic, "t", strp("retention.ms"), strp("1"), strp("retention.ms"), strp("2")), kerr.InvalidRequest.Code, "duplicate config names: retention.ms"},
		{alterResource(topic, ""), kerr.InvalidRequest.Code, "default topic"},
		{alterResource(topic, "bad name"), kerr.InvalidTopicException.Code, "may contain only"},
		{alterResource(brk, "0", strp("log.retention.ms"), strp("1")), kerr.InvalidRequest.Code, "static"},
		{alterResource(brk, "0"), 0, ""},
		{alterResource(brk, "5"), kerr.InvalidRequest.Code, "expected 0"},
		{alterResource(kmsg.ConfigResourceTypeBrokerLogger, "0"), kerr.InvalidRequest.Code, "unsupported config resource type 8"},
	} {
		r := alter(2, false, c.r).Resources[0]
		wantError(t, "v2 "+r.ResourceName, r.ErrorCode, r.ErrorMessage, c.code, true, c.msg)
	}
	wantTopicConfig(t, b, "u", "cleanup.policy", "compact", broker.SourceTopic)
	wantTopicConfig(t, b, "t", "retention.ms", "1000", broker.SourceTopic)

	// Validate only, and a resource named twice.
	resp = alter(1, true, alterResource(topic, "u", strp("segment.bytes"), strp("2048")),
		alterResource(topic, "t"), alterResource(topic, "t"))
	wantError(t, "validate u", resp.Resources[0].ErrorCode, resp.Resources[0].ErrorMessage, 0, true, "")
	for _, r := range resp.Resources[1:] {
		wantError(t, "dup t", r.ErrorCode, r.ErrorMessage, kerr.InvalidRequest.Code, true, "more than once")
	}
	wantTopicConfig(t, b, "u", "segment.bytes", "1073741824", broker.SourceDefaultConfig)
	wantTopicConfig(t, b, "u", "cleanup.policy", "compact", broker.SourceTopic)
	wantTopicConfig(t, b, "t", "retention.ms", "1000", broker.SourceTopic)
}

func incResource(typ kmsg.ConfigResourceType, name string, ops ...kmsg.IncrementalAlterConfigsRequestResourceConfig) kmsg.IncrementalAlterConfigsRequestResource {
	rr := kmsg.NewIncrementalAlterConfigsRequestResource()
	rr.ResourceType, rr.ResourceName, rr.Configs = typ, name, ops
	return rr
}

func incOp(op kmsg.IncrementalAlterConfigOp, name string, value *string) kmsg.IncrementalAlterConfigsRequestResourceConfig {
	c := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
	c.Op, c.Name, c.Value = op, name, value
	return c
}

func TestIncrementalAlterConfigs(t *testing.T) {
	ts := startServer(t, Options{})
	cl := dial(t, ts.addr)
	b := ts.opts.Broker
	if _, err := b.CreateTopic("t", 1, map[string]string{"segment.bytes": "4096"}, false); err != nil {
		t.Fatal(err)
	}
	const (
		set   = kmsg.IncrementalAlterConfigOpSet
		del   = kmsg.IncrementalAlterConfigOpDelete
		app   = kmsg.IncrementalAlterConfigOpAppend
		sub   = kmsg.IncrementalAlterConfigOpSubtract
		topic = kmsg.ConfigResourceTypeTopic
		brk   = kmsg.ConfigResourceTypeBroker
	)
	alter := func(version int16, validateOnly bool, rs ...kmsg.IncrementalAlterConfigsRequestResource) []kmsg.IncrementalAlterConfigsResponseResource {
		req := kmsg.NewPtrIncrementalAlterConfigsRequest()
		req.Version, req.ValidateOnly, req.Resources = version, validateOnly, rs
		resp := cl.roundTrip(req).(*kmsg.IncrementalAlterConfigsResponse)
		if len(resp.Resources) != len(rs) {
			t.Fatalf("%d resources in response, want %d", len(resp.Resources), len(rs))
		}
		return resp.Resources
	}

	rs := alter(0, false, incResource(topic, "t",
		incOp(set, "retention.ms", strp("5000")),
		incOp(app, "cleanup.policy", strp("compact")),
		incOp(del, "segment.bytes", nil),
	))
	wantError(t, "v0", rs[0].ErrorCode, rs[0].ErrorMessage, 0, true, "")
	wantTopicConfig(t, b, "t", "retention.ms", "5000", broker.SourceTopic)
	wantTopicConfig(t, b, "t", "cleanup.policy", "delete,compact", broker.SourceTopic)
	wantTopicConfig(t, b, "t", "segment.bytes", "1073741824", broker.SourceDefaultConfig)

	rs = alter(1, false, incResource(topic, "t", incOp(sub, "cleanup.policy", strp("delete"))))
	wantError(t, "v1 subtract", rs[0].ErrorCode, rs[0].ErrorMessage, 0, true, "")
	wantTopicConfig(t, b, "t", "cleanup.policy", "compact", broker.SourceTopic)

	// One resource per request: a resource named twice is refused.
	for _, c := range []struct {
		r    kmsg.IncrementalAlterConfigsRequestResource
		code int16
		msg  string
	}{
		{incResource(topic, "t", incOp(set, "retention.ms", nil)), kerr.InvalidRequest.Code, "null value not supported for: retention.ms"},
		{incResource(topic, "t", incOp(app, "retention.ms", strp("1"))), kerr.InvalidConfig.Code, "not a list config"},
		{incResource(topic, "t", incOp(9, "retention.ms", strp("1"))), kerr.InvalidRequest.Code, "unknown operation 9"},
		{incResource(topic, "t", incOp(set, "no.such.config", strp("1"))), kerr.InvalidConfig.Code, "no.such.config"},
		{incResource(topic, "t", incOp(set, "retention.ms", strp("1")), incOp(del, "retention.ms", nil)), kerr.InvalidRequest.Code, "duplicate config names: retention.ms"},
		{incResource(topic, "missing", incOp(set, "retention.ms", strp("1"))), kerr.UnknownTopicOrPartition.Code, "unknown topic"},
		{incResource(brk, "0", incOp(set, "log.retention.ms", strp("1"))), kerr.InvalidRequest.Code, "static"},
		{incResource(brk, "", incOp(del, "log.retention.ms", nil)), kerr.InvalidRequest.Code, "static"},
		{incResource(brk, "0"), 0, ""},
		{incResource(brk, "x"), kerr.InvalidRequest.Code, `unexpected broker id "x"`},
		{incResource(7, "t"), kerr.InvalidRequest.Code, "unsupported config resource type 7"},
	} {
		r := alter(1, false, c.r)[0]
		if r.ResourceName != c.r.ResourceName || r.ResourceType != c.r.ResourceType {
			t.Errorf("result names %d/%q, want %d/%q", r.ResourceType, r.ResourceName, c.r.ResourceType, c.r.ResourceName)
		}
		wantError(t, "v1 "+r.ResourceName, r.ErrorCode, r.ErrorMessage, c.code, true, c.msg)
	}
	wantTopicConfig(t, b, "t", "retention.ms", "5000", broker.SourceTopic)

	// Validate only changes nothing; a resource named twice is refused.
	rs = alter(1, true, incResource(topic, "t", incOp(del, "cleanup.policy", nil)))
	wantError(t, "validate", rs[0].ErrorCode, rs[0].ErrorMessage, 0, true, "")
	wantTopicConfig(t, b, "t", "cleanup.policy", "compact", broker.SourceTopic)
	rs = alter(0, false, incResource(topic, "t"), incResource(topic, "t"))
	for _, r := range rs {
		wantError(t, "dup", r.ErrorCode, r.ErrorMessage, kerr.InvalidRequest.Code, true, "more than once")
	}
}

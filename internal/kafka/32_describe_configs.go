package kafka

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weirhq/weir/internal/broker"
)

// DescribeConfigs v0-4: v1 adds synonyms and sources (v0 has IsDefault), v3
// documentation and config types. Topics and this broker are described;
// other resource types are refused with INVALID_REQUEST.
//
// Kafka Connect reads cleanup.policy of its internal topics here and fails
// on anything but "compact", so values, sources and synonyms come straight
// from the broker's config table. Synonyms follow Kafka: a topic config
// lists its own setting when the topic has one, then the broker-level
// setting its default comes from; a broker config lists itself.
func init() {
	register(api{Key: 32, MinVersion: 0, MaxVersion: 4, Handle: (*Server).handleDescribeConfigs})
}

func (s *Server) handleDescribeConfigs(_ *Conn, r kmsg.Request) Reply {
	req := r.(*kmsg.DescribeConfigsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeConfigsResponse)
	for _, rr := range req.Resources {
		res := kmsg.NewDescribeConfigsResponseResource()
		res.ResourceType, res.ResourceName = rr.ResourceType, rr.ResourceName
		entries, err := s.describeResource(rr.ResourceType, rr.ResourceName)
		if err != nil {
			res.ErrorCode = errorCode(err)
			res.ErrorMessage = s.errorMessage(err)
			resp.Resources = append(resp.Resources, res)
			continue
		}
		for _, e := range entries {
			// Null or empty ConfigNames ask for every config, as in Kafka.
			if len(rr.ConfigNames) == 0 || slices.Contains(rr.ConfigNames, e.Name) {
				res.Configs = append(res.Configs, describedConfig(req, e))
			}
		}
		resp.Resources = append(resp.Resources, res)
	}
	return Respond(resp)
}

// describeResource returns every config of one resource.
func (s *Server) describeResource(typ kmsg.ConfigResourceType, name string) ([]broker.ConfigEntry, error) {
	b := s.opts.Broker
	switch typ {
	case kmsg.ConfigResourceTypeTopic:
		if err := broker.ValidateTopicName(name); err != nil {
			return nil, err
		}
		return b.DescribeConfigs(name)
	case kmsg.ConfigResourceTypeBroker:
		empty, err := s.checkBrokerResource(name)
		if err != nil || empty {
			// The empty name asks for the cluster-wide dynamic
			// defaults, of which Weir has none.
			return nil, err
		}
		id := strconv.Itoa(int(s.opts.NodeID))
		entries := append(b.StaticConfigs(), broker.ConfigEntry{
			Name: "broker.id", Value: id, Source: broker.SourceStaticBroker, ReadOnly: true,
			Doc: "the node id of this broker", Type: broker.TypeInt, Honoured: true,
			Synonyms: []broker.ConfigSynonym{{Name: "broker.id", Value: id, Source: broker.SourceStaticBroker}},
		})
		slices.SortFunc(entries, func(x, y broker.ConfigEntry) int { return strings.Compare(x.Name, y.Name) })
		return entries, nil
	default:
		return nil, fmt.Errorf("%w: unsupported config resource type %d", broker.ErrInvalidRequest, typ)
	}
}

// describedConfig turns one broker config entry into the response entry
// for req's version and flags.
func describedConfig(req *kmsg.DescribeConfigsRequest, e broker.ConfigEntry) kmsg.DescribeConfigsResponseResourceConfig {
	c := kmsg.NewDescribeConfigsResponseResourceConfig()
	c.Name = e.Name
	if !e.Sensitive {
		v := e.Value
		c.Value = &v
	}
	c.ReadOnly = e.ReadOnly
	c.IsDefault = e.Source == broker.SourceDefaultConfig // v0 only
	c.Source = kmsg.ConfigSource(e.Source)
	c.IsSensitive = e.Sensitive
	if req.IncludeSynonyms {
		for _, syn := range e.Synonyms {
			cs := kmsg.NewDescribeConfigsResponseResourceConfigConfigSynonym()
			cs.Name, cs.Source = syn.Name, kmsg.ConfigSource(syn.Source)
			if !e.Sensitive {
				v := syn.Value
				cs.Value = &v
			}
			c.ConfigSynonyms = append(c.ConfigSynonyms, cs)
		}
	}
	c.ConfigType = kmsg.ConfigType(e.Type)
	if req.IncludeDocumentation {
		doc := e.Doc
		c.Documentation = &doc
	}
	return c
}

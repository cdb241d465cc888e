package kafka

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weirhq/weir/internal/broker"
)

// AlterConfigs v0-2, the legacy whole-set replace: a topic's explicit
// configs become exactly the ones given; the rest revert to defaults.
// Broker configs are static and cannot be changed.
func init() {
	register(api{Key: 33, MinVersion: 0, MaxVersion: 2, Handle: (*Server).handleAlterConfigs})
}

func (s *Server) handleAlterConfigs(_ *Conn, r kmsg.Request) Reply {
	req := r.(*kmsg.AlterConfigsRequest)
	resp := req.ResponseKind().(*kmsg.AlterConfigsResponse)
	key := func(rr kmsg.AlterConfigsRequestResource) string {
		return fmt.Sprintf("%d/%s", rr.ResourceType, rr.ResourceName)
	}
	dups := duplicates(req.Resources, key)
	for _, rr := range req.Resources {
		res := kmsg.NewAlterConfigsResponseResource()
		res.ResourceType, res.ResourceName = rr.ResourceType, rr.ResourceName
		var err error
		if dups[key(rr)] {
			err = errDuplicate("resource", rr.ResourceName)
		} else {
			err = s.alterConfigs(rr, req.ValidateOnly)
		}
		res.ErrorCode = errorCode(err)
		res.ErrorMessage = s.errorMessage(err)
		resp.Resources = append(resp.Resources, res)
	}
	return Respond(resp)
}

func (s *Server) alterConfigs(rr kmsg.AlterConfigsRequestResource, validateOnly bool) error {
	names := make([]string, 0, len(rr.Configs))
	var nulls []string
	configs := make(map[string]string, len(rr.Configs))
	for _, c := range rr.Configs {
		names = append(names, c.Name)
		if c.Value == nil {
			nulls = append(nulls, c.Name)
			continue
		}
		configs[c.Name] = *c.Value
	}
	if err := errDuplicateConfigs(names); err != nil {
		return err
	}
	if err := errNullValues(nulls); err != nil {
		return err
	}
	switch rr.ResourceType {
	case kmsg.ConfigResourceTypeTopic:
		if err := s.checkAlterTopic(rr.ResourceName); err != nil {
			return err
		}
		return s.opts.Broker.AlterConfigs(rr.ResourceName, configs, validateOnly)
	case kmsg.ConfigResourceTypeBroker:
		if _, err := s.checkBrokerResource(rr.ResourceName); err != nil {
			return err
		}
		if len(configs) > 0 {
			return errStaticBroker
		}
		return nil // replacing no dynamic configs with none
	default:
		return fmt.Errorf("%w: unsupported config resource type %d", broker.ErrInvalidRequest, rr.ResourceType)
	}
}

package kafka

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weirhq/weir/internal/broker"
)

// IncrementalAlterConfigs v0-1: SET, DELETE, APPEND and SUBTRACT on topic
// configs (APPEND and SUBTRACT apply to list configs: cleanup.policy and
// the replication throttle lists).
// Broker configs are static and cannot be changed.
func init() {
	register(api{Key: 44, MinVersion: 0, MaxVersion: 1, Handle: (*Server).handleIncrementalAlterConfigs})
}

func (s *Server) handleIncrementalAlterConfigs(_ *Conn, r kmsg.Request) Reply {
	req := r.(*kmsg.IncrementalAlterConfigsRequest)
	resp := req.ResponseKind().(*kmsg.IncrementalAlterConfigsResponse)
	key := func(rr kmsg.IncrementalAlterConfigsRequestResource) string {
		return fmt.Sprintf("%d/%s", rr.ResourceType, rr.ResourceName)
	}
	dups := duplicates(req.Resources, key)
	for _, rr := range req.Resources {
		res := kmsg.NewIncrementalAlterConfigsResponseResource()
		res.ResourceType, res.ResourceName = rr.ResourceType, rr.ResourceName
		var err error
		if dups[key(rr)] {
			err = errDuplicate("resource", rr.ResourceName)
		} else {
			err = s.incrementalAlterConfigs(rr, req.ValidateOnly)
		}
		res.ErrorCode = errorCode(err)
		res.ErrorMessage = s.errorMessage(err)
		resp.Resources = append(resp.Resources, res)
	}
	return Respond(resp)
}

func (s *Server) incrementalAlterConfigs(rr kmsg.IncrementalAlterConfigsRequestResource, validateOnly bool) error {
	names := make([]string, 0, len(rr.Configs))
	var nulls []string
	ops := make([]broker.ConfigOp, 0, len(rr.Configs))
	for _, c := range rr.Configs {
		names = append(names, c.Name)
		if c.Op < kmsg.IncrementalAlterConfigOpSet || c.Op > kmsg.IncrementalAlterConfigOpSubtract {
			return fmt.Errorf("%w: unknown operation %d for config %q", broker.ErrInvalidRequest, c.Op, c.Name)
		}
		op := broker.ConfigOp{Name: c.Name, Op: broker.OpType(c.Op)}
		switch {
		case c.Value != nil:
			op.Value = *c.Value
		case c.Op != kmsg.IncrementalAlterConfigOpDelete:
			nulls = append(nulls, c.Name)
		}
		ops = append(ops, op)
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
		return s.opts.Broker.IncrementalAlterConfigs(rr.ResourceName, ops, validateOnly)
	case kmsg.ConfigResourceTypeBroker:
		if _, err := s.checkBrokerResource(rr.ResourceName); err != nil {
			return err
		}
		if len(ops) > 0 {
			return errStaticBroker
		}
		return nil
	default:
		return fmt.Errorf("%w: unsupported config resource type %d", broker.ErrInvalidRequest, rr.ResourceType)
	}
}

package kafka

import (
	"fmt"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weirhq/weir/internal/broker"
)

// CreateTopics v0-7: v1 adds ValidateOnly and error messages, v4 broker
// defaults (-1), v5 the resulting configs and counts, v7 topic ids.
// Replication is always 1 on a single node.
func init() {
	register(api{Key: 19, MinVersion: 0, MaxVersion: 7, Handle: (*Server).handleCreateTopics})
}

func (s *Server) handleCreateTopics(_ *Conn, r kmsg.Request) Reply {
	req := r.(*kmsg.CreateTopicsRequest)
	resp := req.ResponseKind().(*kmsg.CreateTopicsResponse)
	dups := duplicates(req.Topics, func(t kmsg.CreateTopicsRequestTopic) string { return t.Topic })
	for _, rt := range req.Topics {
		t := kmsg.NewCreateTopicsResponseTopic()
		t.Topic = rt.Topic
		var (
			created    *broker.Topic
			partitions int32
			err        error
		)
		if dups[rt.Topic] {
			err = errDuplicate("topic", rt.Topic)
		} else {
			created, partitions, err = s.createTopic(rt, req.ValidateOnly)
		}
		if err != nil {
			t.ErrorCode = errorCode(err)
			t.ErrorMessage = s.errorMessage(err)
			resp.Topics = append(resp.Topics, t)
			continue
		}
		t.TopicID = created.ID // zero for a validate-only request
		t.NumPartitions = partitions
		t.ReplicationFactor = 1
		for _, e := range s.opts.Broker.ConfigEntries(created) {
			c := kmsg.NewCreateTopicsResponseTopicConfig()
			c.Name = e.Name
			if !e.Sensitive {
				v := e.Value
				c.Value = &v
			}
			c.ReadOnly = e.ReadOnly
			c.Source = int8(e.Source)
			c.IsSensitive = e.Sensitive
			t.Configs = append(t.Configs, c)
		}
		resp.Topics = append(resp.Topics, t)
	}
	return Respond(resp)
}

// createTopic checks one requested topic in Kafka's order (name, existence,
// collision, replication or assignment, then partitions and configs in the
// broker) and creates it unless validateOnly. It returns the topic and its
// partition count.
func (s *Server) createTopic(rt kmsg.CreateTopicsRequestTopic, validateOnly bool) (*broker.Topic, int32, error) {
	b := s.opts.Broker
	if err := broker.ValidateTopicName(rt.Topic); err != nil {
		return nil, 0, err
	}
	if _, err := b.Topic(rt.Topic); err == nil {
		return nil, 0, fmt.Errorf("%w: %q", broker.ErrTopicExists, rt.Topic)
	}
	// Kafka's metric names turn '.' into '_', so it refuses names that
	// differ from an existing one only there.
	folded := strings.ReplaceAll(rt.Topic, ".", "_")
	for _, t := range b.Topics() {
		if strings.ReplaceAll(t.Name, ".", "_") == folded {
			return nil, 0, fmt.Errorf("%w: %q collides with existing topic %q", broker.ErrInvalidTopic, rt.Topic, t.Name)
		}
	}
	partitions, err := s.newTopicPartitions(rt)
	if err != nil {
		return nil, 0, err
	}
	// A null value leaves the config at its default.
	configs := make(map[string]string, len(rt.Configs))
	for _, c := range rt.Configs {
		if c.Value != nil {
			configs[c.Name] = *c.Value
		}
	}
	t, err := b.CreateTopic(rt.Topic, partitions, configs, validateOnly)
	if err != nil {
		return nil, 0, err
	}
	if partitions == -1 {
		partitions = b.DefaultPartitions()
	}
	return t, partitions, nil
}

// newTopicPartitions returns the partition count a request asks for (-1 for
// the broker default), after checking its replication factor or manual
// assignment against what a single node can hold.
func (s *Server) newTopicPartitions(rt kmsg.CreateTopicsRequestTopic) (int32, error) {
	if len(rt.ReplicaAssignment) == 0 {
		if rt.ReplicationFactor != -1 && rt.ReplicationFactor != 1 {
			return 0, fmt.Errorf("%w: %d; a single node holds one replica (use 1, or -1 for the default)",
				broker.ErrInvalidReplication, rt.ReplicationFactor)
		}
		return rt.NumPartitions, nil
	}
	if rt.NumPartitions != -1 || rt.ReplicationFactor != -1 {
		return 0, fmt.Errorf("%w: with a manual replica assignment, NumPartitions and ReplicationFactor must be -1",
			broker.ErrInvalidRequest)
	}
	seen := make([]bool, len(rt.ReplicaAssignment))
	for _, a := range rt.ReplicaAssignment {
		if a.Partition < 0 || int(a.Partition) >= len(seen) || seen[a.Partition] {
			return 0, fmt.Errorf("%w: partitions must be numbered 0 to %d, each once", errInvalidReplicaAssignment, len(seen)-1)
		}
		seen[a.Partition] = true
		if !s.onThisNode(a.Replicas) {
			return 0, s.errManualAssignment(a.Replicas)
		}
	}
	return int32(len(seen)), nil
}

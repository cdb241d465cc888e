package kafka

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weirhq/weir/internal/broker"
)

// DeleteTopics v0-6: v5 adds error messages, v6 names topics by name or by
// topic id. A topic's data is removed before the response is sent. Unlike
// Kafka, whose check is only in its CLI, the broker refuses to delete
// __consumer_offsets, on which the running group coordinator writes.
func init() {
	register(api{Key: 20, MinVersion: 0, MaxVersion: 6, Handle: (*Server).handleDeleteTopics})
}

func (s *Server) handleDeleteTopics(_ *Conn, r kmsg.Request) Reply {
	req := r.(*kmsg.DeleteTopicsRequest)
	resp := req.ResponseKind().(*kmsg.DeleteTopicsResponse)
	targets := req.Topics
	if req.Version < 6 {
		targets = make([]kmsg.DeleteTopicsRequestTopic, 0, len(req.TopicNames))
		for _, name := range req.TopicNames {
			rt := kmsg.NewDeleteTopicsRequestTopic()
			rt.Topic = &name
			targets = append(targets, rt)
		}
	}
	// A topic named twice is answered once, as Kafka does.
	answered := map[string]bool{}
	for _, rt := range targets {
		key := fmt.Sprintf("%x", rt.TopicID)
		if rt.Topic != nil {
			key += "/" + *rt.Topic
		}
		if answered[key] {
			continue
		}
		answered[key] = true

		t := kmsg.NewDeleteTopicsResponseTopic()
		t.Topic, t.TopicID = rt.Topic, rt.TopicID
		name, id, err := s.deleteTopic(rt)
		if name != "" {
			t.Topic = &name
		}
		t.TopicID = id
		t.ErrorCode = errorCode(err)
		t.ErrorMessage = s.errorMessage(err)
		resp.Topics = append(resp.Topics, t)
	}
	return Respond(resp)
}

// deleteTopic deletes the topic rt names by name or by id, returning its
// name and id where known.
func (s *Server) deleteTopic(rt kmsg.DeleteTopicsRequestTopic) (string, [16]byte, error) {
	b := s.opts.Broker
	var name string
	switch {
	case rt.Topic != nil && rt.TopicID != [16]byte{}:
		return "", rt.TopicID, fmt.Errorf("%w: give a topic name or a topic id, not both", broker.ErrInvalidRequest)
	case rt.Topic != nil:
		name = *rt.Topic
	case rt.TopicID != [16]byte{}:
		t, err := b.TopicByID(rt.TopicID)
		if err != nil {
			return "", rt.TopicID, fmt.Errorf("%w %x", errUnknownTopicID, rt.TopicID)
		}
		name = t.Name
	default:
		return "", rt.TopicID, fmt.Errorf("%w: a topic name or a topic id is required", broker.ErrInvalidRequest)
	}
	t, err := b.Topic(name)
	if err != nil {
		return name, [16]byte{}, err
	}
	return name, t.ID, b.DeleteTopic(name)
}

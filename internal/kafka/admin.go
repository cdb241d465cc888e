package kafka

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/weirhq/weir/internal/broker"
)

// Helpers shared by the admin API handlers (19_create_topics.go and the
// files after it).

// Failures the protocol defines that have no broker counterpart; errors.go
// maps them to their Kafka codes.
var (
	errUnknownTopicID           = errors.New("kafka: unknown topic id")
	errInvalidReplicaAssignment = errors.New("kafka: invalid replica assignment")
	errUnsupportedEndpointType  = errors.New("kafka: unsupported endpoint type")
)

// errorMessage returns the text for a response's ErrorMessage field, or
// nil for no error: err's text as fit for a client, without server paths
// (broker.Broker.ClientMessage, which logs what it withholds).
func (s *Server) errorMessage(err error) *string {
	if err == nil {
		return nil
	}
	msg := s.opts.Broker.ClientMessage(err)
	return &msg
}

// duplicates returns the keys occurring more than once in items. Kafka
// refuses every entry of a name given twice in one admin request.
func duplicates[T any](items []T, key func(T) string) map[string]bool {
	seen := make(map[string]bool, len(items))
	var dups map[string]bool
	for _, it := range items {
		k := key(it)
		if seen[k] {
			if dups == nil {
				dups = map[string]bool{}
			}
			dups[k] = true
		}
		seen[k] = true
	}
	return dups
}

// errDuplicate is the error for an entry named more than once.
func errDuplicate(what, name string) error {
	return fmt.Errorf("%w: %s %q appears more than once in the request", broker.ErrInvalidRequest, what, name)
}

// onThisNode reports whether a manual replica list is exactly this node,
// the only assignment a single node can honour.
func (s *Server) onThisNode(replicas []int32) bool {
	return len(replicas) == 1 && replicas[0] == s.opts.NodeID
}

// errManualAssignment is the error for a replica assignment naming other
// nodes or more than one replica.
func (s *Server) errManualAssignment(replicas []int32) error {
	return fmt.Errorf("%w: manual replica assignment %v is not supported; a single node accepts only [%d]",
		broker.ErrInvalidRequest, replicas, s.opts.NodeID)
}

// checkBrokerResource checks a config resource naming a broker: it must be
// this node's id. empty reports whether the name is "", which stands for
// the cluster-wide dynamic defaults.
func (s *Server) checkBrokerResource(name string) (empty bool, err error) {
	if name == "" {
		return true, nil
	}
	if id, err := strconv.ParseInt(name, 10, 32); err != nil || int32(id) != s.opts.NodeID {
		return false, fmt.Errorf("%w: unexpected broker id %q, expected %d or an empty name", broker.ErrInvalidRequest, name, s.opts.NodeID)
	}
	return false, nil
}

// checkAlterTopic checks a topic config resource to alter: a valid name of
// an existing topic, as Kafka checks before looking at the configs.
func (s *Server) checkAlterTopic(name string) error {
	if name == "" {
		return fmt.Errorf("%w: default topic config resources are not supported", broker.ErrInvalidRequest)
	}
	if err := broker.ValidateTopicName(name); err != nil {
		return err
	}
	_, err := s.opts.Broker.Topic(name)
	return err
}

// errStaticBroker is the error for an attempt to change broker configs.
var errStaticBroker = fmt.Errorf("%w: broker configs are static in Weir; change them in its configuration and restart", broker.ErrInvalidRequest)

// errNullValues returns the error for config entries without a value where
// one is required, or nil if names is empty.
func errNullValues(names []string) error {
	if len(names) == 0 {
		return nil
	}
	return fmt.Errorf("%w: null value not supported for: %s", broker.ErrInvalidRequest, strings.Join(names, ", "))
}

// errDuplicateConfigs returns the error for config names given twice in one
// resource, or nil if there are none.
func errDuplicateConfigs(names []string) error {
	dups := duplicates(names, func(n string) string { return n })
	if len(dups) == 0 {
		return nil
	}
	list := make([]string, 0, len(dups))
	for n := range dups {
		list = append(list, n)
	}
	slices.Sort(list)
	return fmt.Errorf("%w: duplicate config names: %s", broker.ErrInvalidRequest, strings.Join(list, ", "))
}

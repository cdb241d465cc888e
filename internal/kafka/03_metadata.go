package kafka

import (
	"errors"
	"net"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weirhq/weir/internal/broker"
)

// Metadata v0-12: v10+ carries stable topic ids; v13 only adds a
// top-level error code and is left out until needed.
func init() {
	register(api{Key: 3, MinVersion: 0, MaxVersion: 12, Handle: (*Server).handleMetadata})
}

// authorizedOpsUnset is Kafka's "not requested" value for authorized
// operations (INT32_MIN).
const authorizedOpsUnset = -2147483648

func (s *Server) handleMetadata(c *Conn, r kmsg.Request) Reply {
	req := r.(*kmsg.MetadataRequest)
	resp := req.ResponseKind().(*kmsg.MetadataResponse)
	b := s.opts.Broker

	host, port := s.advertisedFor(c)
	bk := kmsg.NewMetadataResponseBroker()
	bk.NodeID, bk.Host, bk.Port = s.opts.NodeID, host, port
	resp.Brokers = []kmsg.MetadataResponseBroker{bk}
	cid := b.ClusterID()
	resp.ClusterID = &cid
	resp.ControllerID = s.opts.NodeID
	resp.AuthorizedOperations = authorizedOpsUnset

	// v0 asks for all topics with an empty list, v1+ with a null one.
	all := req.Topics == nil || (req.Version == 0 && len(req.Topics) == 0)
	if all {
		for _, t := range b.Topics() {
			resp.Topics = append(resp.Topics, s.metadataTopic(t, nil))
		}
		return Respond(resp)
	}
	autoCreate := req.Version < 4 || req.AllowAutoTopicCreation
	for _, rt := range req.Topics {
		var (
			t   *broker.Topic
			err error
		)
		switch {
		case rt.Topic == nil && rt.TopicID != [16]byte{}:
			t, err = b.TopicByID(rt.TopicID)
		case rt.Topic == nil:
			err = broker.ErrInvalidTopic
		default:
			if err = broker.ValidateTopicName(*rt.Topic); err == nil {
				if autoCreate {
					t, err = b.EnsureTopic(*rt.Topic)
				} else {
					t, err = b.Topic(*rt.Topic)
				}
			}
		}
		if err != nil {
			mt := kmsg.NewMetadataResponseTopic()
			mt.Topic, mt.TopicID = rt.Topic, rt.TopicID
			mt.ErrorCode = errorCode(err)
			if errors.Is(err, broker.ErrInvalidTopic) {
				mt.ErrorCode = kerr.InvalidTopicException.Code
			}
			mt.AuthorizedOperations = authorizedOpsUnset
			resp.Topics = append(resp.Topics, mt)
			continue
		}
		resp.Topics = append(resp.Topics, s.metadataTopic(t, nil))
	}
	return Respond(resp)
}

func (s *Server) metadataTopic(t *broker.Topic, _ error) kmsg.MetadataResponseTopic {
	mt := kmsg.NewMetadataResponseTopic()
	name := t.Name
	mt.Topic = &name
	mt.TopicID = t.ID
	mt.IsInternal = t.IsInternal()
	mt.AuthorizedOperations = authorizedOpsUnset
	for _, p := range t.Partitions() {
		mp := kmsg.NewMetadataResponseTopicPartition()
		mp.Partition = p.Index()
		mp.Leader = s.opts.NodeID
		// Leader epochs are -1 throughout: clients then skip
		// OffsetForLeaderEpoch validation, which a single node never needs.
		mp.LeaderEpoch = -1
		mp.Replicas = []int32{s.opts.NodeID}
		mp.ISR = []int32{s.opts.NodeID}
		mp.OfflineReplicas = []int32{}
		if p.Err() != nil {
			mp.ErrorCode = kerr.KafkaStorageError.Code
		}
		mt.Partitions = append(mt.Partitions, mp)
	}
	return mt
}

// advertisedFor returns the host and port to advertise to this client:
// the configured address, or the local address the client reached.
func (s *Server) advertisedFor(c *Conn) (string, int32) {
	host, port := s.opts.AdvertisedHost, s.opts.AdvertisedPort
	if host != "" && port != 0 {
		return host, port
	}
	if la := c.LocalAddr(); la != nil {
		if h, p, err := net.SplitHostPort(la.String()); err == nil {
			if host == "" {
				host = h
			}
			if port == 0 {
				n, _ := strconv.Atoi(p)
				port = int32(n)
			}
		}
	}
	return host, port
}

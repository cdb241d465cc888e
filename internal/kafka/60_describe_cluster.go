package kafka

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeCluster v0-1: this node is the one broker and the controller.
// v1's EndpointType may only ask for brokers (1); v2 (fenced brokers) is
// left out.
func init() {
	register(api{Key: 60, MinVersion: 0, MaxVersion: 1, Handle: (*Server).handleDescribeCluster})
}

// clusterOperations is the cluster's authorized-operations bitfield with
// every operation Kafka defines on a cluster allowed (ALTER 4, CREATE 7,
// DESCRIBE 8, CLUSTER_ACTION 9, DESCRIBE_CONFIGS 10, ALTER_CONFIGS 11,
// IDEMPOTENT_WRITE 12): Weir has no authorizer yet, and Kafka without one
// answers the same.
const clusterOperations = 1<<4 | 1<<7 | 1<<8 | 1<<9 | 1<<10 | 1<<11 | 1<<12

// endpointTypeBrokers is DescribeCluster's EndpointType for brokers.
const endpointTypeBrokers = 1

func (s *Server) handleDescribeCluster(c *Conn, r kmsg.Request) Reply {
	req := r.(*kmsg.DescribeClusterRequest)
	resp := req.ResponseKind().(*kmsg.DescribeClusterResponse)
	if req.Version >= 1 && req.EndpointType != endpointTypeBrokers {
		err := fmt.Errorf("%w %d: a broker describes only brokers (1)", errUnsupportedEndpointType, req.EndpointType)
		resp.ErrorCode = errorCode(err)
		resp.ErrorMessage = s.errorMessage(err)
		resp.EndpointType = req.EndpointType
		return Respond(resp)
	}
	resp.EndpointType = endpointTypeBrokers
	resp.ClusterID = s.opts.Broker.ClusterID()
	resp.ControllerID = s.opts.NodeID
	host, port := s.advertisedFor(c)
	bk := kmsg.NewDescribeClusterResponseBroker()
	bk.NodeID, bk.Host, bk.Port = s.opts.NodeID, host, port
	resp.Brokers = []kmsg.DescribeClusterResponseBroker{bk}
	resp.ClusterAuthorizedOperations = authorizedOpsUnset
	if req.IncludeClusterAuthorizedOperations {
		resp.ClusterAuthorizedOperations = clusterOperations
	}
	return Respond(resp)
}

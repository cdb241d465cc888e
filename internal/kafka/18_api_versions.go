package kafka

import "github.com/twmb/franz-go/pkg/kmsg"

func init() {
	register(api{Key: 18, MinVersion: 0, MaxVersion: 3, Handle: (*Server).handleApiVersions})
}

// handleApiVersions answers ApiVersions v0-3 with the table of supported APIs.
//
// An unsupported ApiVersions version never reaches here: the connection
// answers it per KIP-511. The v3+ client software name and version are
// recorded on the connection without the format check Kafka applies (Kafka
// answers INVALID_REQUEST to names outside [a-zA-Z0-9.-]).
func (s *Server) handleApiVersions(c *Conn, kreq kmsg.Request) Reply {
	req := kreq.(*kmsg.ApiVersionsRequest)
	if req.Version >= 3 {
		c.softwareName, c.softwareVersion = req.ClientSoftwareName, req.ClientSoftwareVersion
	}
	resp := req.ResponseKind().(*kmsg.ApiVersionsResponse)
	resp.ApiKeys = s.apiVersionsKeys()
	return Respond(resp)
}

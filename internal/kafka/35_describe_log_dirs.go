package kafka

import (
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeLogDirs v0-4: one log directory (the data directory) holding
// every partition, with each partition's size on disk. Disk totals are
// reported as -1 (unknown).
func init() {
	register(api{Key: 35, MinVersion: 0, MaxVersion: 4, Handle: (*Server).handleDescribeLogDirs})
}

func (s *Server) handleDescribeLogDirs(_ *Conn, r kmsg.Request) Reply {
	req := r.(*kmsg.DescribeLogDirsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeLogDirsResponse)
	b := s.opts.Broker
	dir := kmsg.NewDescribeLogDirsResponseDir()
	dir.Dir = b.Dir()
	dir.TotalBytes, dir.UsableBytes = -1, -1
	add := func(topic string, parts []int32) {
		t, err := b.Topic(topic)
		if err != nil {
			return // Kafka omits unknown partitions
		}
		rt := kmsg.NewDescribeLogDirsResponseDirTopic()
		rt.Topic = topic
		all := t.Partitions()
		for _, p := range parts {
			if p < 0 || int(p) >= len(all) {
				continue
			}
			rp := kmsg.NewDescribeLogDirsResponseDirTopicPartition()
			rp.Partition, rp.Size = p, all[p].Size()
			rt.Partitions = append(rt.Partitions, rp)
		}
		dir.Topics = append(dir.Topics, rt)
	}
	if req.Topics == nil {
		for _, t := range b.Topics() {
			parts := make([]int32, len(t.Partitions()))
			for i := range parts {
				parts[i] = int32(i)
			}
			add(t.Name, parts)
		}
	} else {
		for _, rt := range req.Topics {
			add(rt.Topic, rt.Partitions)
		}
	}
	resp.Dirs = []kmsg.DescribeLogDirsResponseDir{dir}
	return Respond(resp)
}

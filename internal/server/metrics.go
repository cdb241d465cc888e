package server

import (
	"context"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/weirhq/weir/internal/batch"
	"github.com/weirhq/weir/internal/broker"
	"github.com/weirhq/weir/internal/commitlog"
	"github.com/weirhq/weir/internal/group"
	"github.com/weirhq/weir/internal/metrics"
)

// newLogMetrics exports the partition logs' fsync observations.
func newLogMetrics(r *metrics.Registry) *commitlog.Metrics {
	fsync := r.Histogram("weir_log_fsync_duration_seconds",
		"Latency of each partition log data fdatasync (group commits and the syncs at segment roll and close).",
		metrics.LatencyBuckets)
	records := r.Histogram("weir_log_group_commit_records",
		"Records made durable by one partition log fdatasync: the group-commit batch size.",
		metrics.SizeBuckets)
	return &commitlog.Metrics{
		FsyncDuration:      func(d time.Duration) { fsync.Observe(d.Seconds()) },
		GroupCommitRecords: func(n int64) { records.Observe(float64(n)) },
	}
}

// partitionCollector reports every partition's offsets and size at scrape
// time, under Weir's names and kafka_exporter's, at no cost on the hot
// path.
type partitionCollector struct {
	b      *broker.Broker
	nodeID int32

	logStart, logEnd, size, unstable, partitions *prometheus.Desc
	// kafka_exporter names.
	xBrokers, xPartitions, xCurrent, xOldest, xReplicas, xISR, xLeader, xPreferred, xUnder *prometheus.Desc
}

func newPartitionCollector(b *broker.Broker, nodeID int32) *partitionCollector {
	tp := []string{"topic", "partition"}
	return &partitionCollector{
		b:        b,
		nodeID:   nodeID,
		logStart: prometheus.NewDesc("weir_partition_log_start_offset", "First offset still readable in the partition (the low watermark).", tp, nil),
		logEnd:   prometheus.NewDesc("weir_partition_log_end_offset", "Offset after the last record consumers may read (the high watermark).", tp, nil),
		size:     prometheus.NewDesc("weir_partition_size_bytes", "Size of the partition's log segments on disk.", tp, nil),
		unstable: prometheus.NewDesc("weir_partition_unstable_records",
			"Offsets between the partition's last stable offset and its high watermark: records read_committed consumers cannot read yet because an open transaction holds them back.", tp, nil),
		partitions: prometheus.NewDesc("weir_topic_partitions", "Number of partitions of the topic.", []string{"topic"}, nil),

		xBrokers:    prometheus.NewDesc("kafka_brokers", "Number of Brokers in the Kafka Cluster.", nil, nil),
		xPartitions: prometheus.NewDesc("kafka_topic_partitions", "Number of partitions for this Topic", []string{"topic"}, nil),
		xCurrent:    prometheus.NewDesc("kafka_topic_partition_current_offset", "Current Offset of a Broker at Topic/Partition", tp, nil),
		xOldest:     prometheus.NewDesc("kafka_topic_partition_oldest_offset", "Oldest Offset of a Broker at Topic/Partition", tp, nil),
		xReplicas:   prometheus.NewDesc("kafka_topic_partition_replicas", "Number of Replicas for this Topic/Partition", tp, nil),
		xISR:        prometheus.NewDesc("kafka_topic_partition_in_sync_replica", "Number of In-Sync Replicas for this Topic/Partition", tp, nil),
		xLeader:     prometheus.NewDesc("kafka_topic_partition_leader", "Leader Broker ID of this Topic/Partition", tp, nil),
		xPreferred:  prometheus.NewDesc("kafka_topic_partition_leader_is_preferred", "1 if Topic/Partition is using the Preferred Broker", tp, nil),
		xUnder:      prometheus.NewDesc("kafka_topic_partition_under_replicated_partition", "1 if Topic/Partition is under Replicated", tp, nil),
	}
}

func (c *partitionCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.logStart, c.logEnd, c.size, c.unstable, c.partitions,
		c.xBrokers, c.xPartitions, c.xCurrent, c.xOldest, c.xReplicas, c.xISR, c.xLeader, c.xPreferred, c.xUnder} {
		ch <- d
	}
}

func (c *partitionCollector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	gauge(c.xBrokers, 1)
	for _, t := range c.b.Topics() {
		parts := t.Partitions()
		gauge(c.partitions, float64(len(parts)), t.Name)
		gauge(c.xPartitions, float64(len(parts)), t.Name)
		for _, p := range parts {
			idx := strconv.Itoa(int(p.Index()))
			// The LSO first: the high watermark read after it is not below it.
			lso := p.LastStableOffset()
			hw := p.HighWatermark()
			start, end := float64(p.LogStartOffset()), float64(hw)
			gauge(c.logStart, start, t.Name, idx)
			gauge(c.logEnd, end, t.Name, idx)
			gauge(c.unstable, float64(max(hw-lso, 0)), t.Name, idx)
			gauge(c.size, float64(p.Size()), t.Name, idx)
			gauge(c.xCurrent, end, t.Name, idx)
			gauge(c.xOldest, start, t.Name, idx)
			gauge(c.xReplicas, 1, t.Name, idx)
			gauge(c.xISR, 1, t.Name, idx)
			gauge(c.xLeader, float64(c.nodeID), t.Name, idx)
			gauge(c.xPreferred, 1, t.Name, idx)
			gauge(c.xUnder, 0, t.Name, idx)
		}
	}
}

// groupStates are reported as a state set: one series per state, 1 for the
// group's current one.
var groupStates = []group.State{group.Empty, group.PreparingRebalance, group.CompletingRebalance, group.Stable, group.Dead}

// groupCollector reports consumer groups at scrape time: members, state,
// committed offsets and lag in records and in seconds, under Weir's names
// and kafka_exporter's.
type groupCollector struct {
	g       *group.Service
	b       *broker.Broker
	now     func() time.Time
	timeout time.Duration

	members, state, committed, lag, lagSeconds *prometheus.Desc
	// kafka_exporter names.
	xCurrent, xCurrentSum, xLag, xLagSum, xMembers *prometheus.Desc
}

func newGroupCollector(g *group.Service, b *broker.Broker) *groupCollector {
	gtp := []string{"group", "topic", "partition"}
	xgtp := []string{"consumergroup", "topic", "partition"}
	return &groupCollector{
		g:       g,
		b:       b,
		now:     time.Now,
		timeout: 5 * time.Second,

		members:    prometheus.NewDesc("weir_group_members", "Members of the consumer group.", []string{"group"}, nil),
		state:      prometheus.NewDesc("weir_group_state", "1 for the consumer group's current state, 0 for the others.", []string{"group", "state"}, nil),
		committed:  prometheus.NewDesc("weir_group_committed_offset", "Offset the consumer group committed for the partition.", gtp, nil),
		lag:        prometheus.NewDesc("weir_group_lag_records", "Records of the partition the consumer group has not consumed: high watermark minus committed offset.", gtp, nil),
		lagSeconds: prometheus.NewDesc("weir_group_lag_seconds", "Age of the oldest record the consumer group has not consumed (now minus its timestamp); 0 when caught up.", gtp, nil),

		xCurrent:    prometheus.NewDesc("kafka_consumergroup_current_offset", "Current Offset of a ConsumerGroup at Topic/Partition", xgtp, nil),
		xCurrentSum: prometheus.NewDesc("kafka_consumergroup_current_offset_sum", "Current Offset of a ConsumerGroup at Topic for all partitions", []string{"consumergroup", "topic"}, nil),
		xLag:        prometheus.NewDesc("kafka_consumergroup_lag", "Current Approximate Lag of a ConsumerGroup at Topic/Partition", xgtp, nil),
		xLagSum:     prometheus.NewDesc("kafka_consumergroup_lag_sum", "Current Approximate Lag of a ConsumerGroup at Topic for all partitions", []string{"consumergroup", "topic"}, nil),
		xMembers:    prometheus.NewDesc("kafka_consumergroup_members", "Amount of members in a consumer group", []string{"consumergroup"}, nil),
	}
}

func (c *groupCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.members, c.state, c.committed, c.lag, c.lagSeconds,
		c.xCurrent, c.xCurrentSum, c.xLag, c.xLagSum, c.xMembers} {
		ch <- d
	}
}

func (c *groupCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	listing, err := c.g.List(ctx, nil)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.members, err)
		return
	}
	ids := make([]string, len(listing))
	for i, l := range listing {
		ids[i] = l.Group
	}
	descs, err := c.g.Describe(ctx, ids)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.members, err)
		return
	}
	now := c.now()
	for _, d := range descs {
		gauge(c.members, float64(len(d.Members)), d.Group)
		gauge(c.xMembers, float64(len(d.Members)), d.Group)
		for _, s := range groupStates {
			v := 0.0
			if s == d.State {
				v = 1
			}
			gauge(c.state, v, d.Group, s.String())
		}
		offsets, err := c.g.Committed(ctx, d.Group, nil)
		if err != nil {
			ch <- prometheus.NewInvalidMetric(c.committed, err)
			continue
		}
		type sums struct{ current, lag int64 }
		perTopic := map[string]*sums{}
		for tp, o := range offsets {
			p, err := c.b.Partition(tp.Topic, tp.Partition)
			if err != nil || o.Offset < 0 {
				continue // topic deleted, or no position committed
			}
			hw := p.HighWatermark()
			lag := max(hw-o.Offset, 0)
			idx := strconv.Itoa(int(tp.Partition))
			gauge(c.committed, float64(o.Offset), d.Group, tp.Topic, idx)
			gauge(c.lag, float64(lag), d.Group, tp.Topic, idx)
			gauge(c.xCurrent, float64(o.Offset), d.Group, tp.Topic, idx)
			gauge(c.xLag, float64(lag), d.Group, tp.Topic, idx)
			if secs, ok := lagSeconds(p, o.Offset, hw, now); ok {
				gauge(c.lagSeconds, secs, d.Group, tp.Topic, idx)
			}
			s := perTopic[tp.Topic]
			if s == nil {
				s = &sums{}
				perTopic[tp.Topic] = s
			}
			s.current += o.Offset
			s.lag += lag
		}
		for topic, s := range perTopic {
			gauge(c.xCurrentSum, float64(s.current), d.Group, topic)
			gauge(c.xLagSum, float64(s.lag), d.Group, topic)
		}
	}
}

// lagSeconds is the age of the first record at or after committed that is
// still in the log: now minus its timestamp, 0 when nothing is left to
// consume. ok is false if the record cannot be read.
func lagSeconds(p *broker.Partition, committed, hw int64, now time.Time) (float64, bool) {
	off := max(committed, p.LogStartOffset())
	if off >= hw {
		return 0, true
	}
	data, err := p.Read(off, 1)
	if err != nil || len(data) == 0 {
		return 0, false
	}
	one, _, err := batch.Split(data)
	if err != nil {
		return 0, false
	}
	h, recs, err := batch.RecordsCompacted(one, 64<<20)
	if err != nil {
		return 0, false
	}
	for _, r := range recs {
		if r.Offset(h) >= off {
			age := now.Sub(time.UnixMilli(r.Timestamp(h))).Seconds()
			return max(age, 0), true
		}
	}
	return 0, false
}

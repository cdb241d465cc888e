package main

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func newTopicCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "topic",
		Aliases: []string{"topics"},
		Short:   "Create, list, describe, configure and delete topics",
	}
	cmd.AddCommand(
		newTopicCreateCmd(a),
		newTopicListCmd(a),
		newTopicDescribeCmd(a),
		newTopicAlterConfigCmd(a),
		newTopicAddPartitionsCmd(a),
		newTopicDeleteCmd(a),
	)
	return cmd
}

// parseKV parses key=value for the flag named flag.
func parseKV(flag, s string) (string, string, error) {
	k, v, ok := strings.Cut(s, "=")
	if !ok || strings.TrimSpace(k) == "" {
		return "", "", fmt.Errorf("bad %s %q: want key=value", flag, s)
	}
	return strings.TrimSpace(k), v, nil
}

// completeTopics completes topic names from the cluster (quietly giving up
// if it cannot be reached quickly).
func completeTopics(a *app) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
		if err := a.preRun(cmd, args); err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		ctx, cancel := context.WithTimeout(cmd.Context(), 2*time.Second)
		defer cancel()
		adm, cl, err := a.admin(ctx)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		defer cl.Close()
		td, err := adm.ListTopics(ctx)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return td.Names(), cobra.ShellCompDirectiveNoFileComp
	}
}

func opContext(cmd *cobra.Command) (context.Context, context.CancelFunc) {
	return context.WithTimeout(cmd.Context(), opTimeout)
}

type topicCreated struct {
	Topic      string `json:"topic"`
	Partitions int32  `json:"partitions"`
	Replicas   int16  `json:"replicas"`
	DryRun     bool   `json:"dry_run,omitempty"`
}

func newTopicCreateCmd(a *app) *cobra.Command {
	var (
		partitions int32
		replicas   int16
		configs    []string
		dryRun     bool
	)
	cmd := &cobra.Command{
		Use:   "create TOPIC...",
		Short: "Create topics",
		Example: `  weir topic create orders -p 3
  weir topic create logs -c retention.ms=3600000 -c cleanup.policy=delete`,
		Args: wantArgs(1, -1, "TOPIC names"),
		RunE: func(cmd *cobra.Command, topics []string) error {
			cfg := map[string]*string{}
			for _, c := range configs {
				k, v, err := parseKV("-c", c)
				if err != nil {
					return err
				}
				cfg[k] = kadm.StringPtr(v)
			}
			if partitions == 0 || partitions < -1 {
				return fmt.Errorf("--partitions %d: want at least 1 (or -1 for the broker default)", partitions)
			}
			ctx, adm, _, release, err := a.adminFor(cmd)
			if err != nil {
				return err
			}
			defer release()
			create := adm.CreateTopics
			if dryRun {
				create = adm.ValidateCreateTopics
			}
			resp, err := create(ctx, partitions, replicas, cfg, topics...)
			if err != nil {
				return a.explain("create topics", err)
			}
			var (
				done []topicCreated
				errs []error
			)
			for _, t := range topics {
				r, ok := resp[t]
				switch {
				case !ok:
					errs = append(errs, fmt.Errorf("topic %q: missing from the broker's answer", t))
				case r.Err != nil:
					errs = append(errs, topicError(t, r.Err, r.ErrMessage))
				default:
					p, rf := r.NumPartitions, r.ReplicationFactor
					if p <= 0 {
						p = partitions
					}
					if rf <= 0 {
						rf = replicas
					}
					done = append(done, topicCreated{Topic: t, Partitions: p, Replicas: rf, DryRun: dryRun})
				}
			}
			if err := printCreated(cmd, a, done); err != nil {
				return err
			}
			return joinErrors(errs)
		},
	}
	f := cmd.Flags()
	f.Int32VarP(&partitions, "partitions", "p", 1, "number of partitions (-1: the broker's default)")
	f.Int16VarP(&replicas, "replicas", "r", -1, "replication factor (-1: the broker's default)")
	f.StringArrayVarP(&configs, "config", "c", nil, "topic config key=value (repeatable), e.g. retention.ms=86400000")
	f.BoolVar(&dryRun, "dry-run", false, "only validate the request; create nothing")
	return cmd
}

func printCreated(cmd *cobra.Command, a *app, done []topicCreated) error {
	if a.json() {
		if done == nil {
			done = []topicCreated{}
		}
		return writeJSON(cmd.OutOrStdout(), done)
	}
	if len(done) == 0 {
		return nil
	}
	t := newTable(cmd.OutOrStdout(), "TOPIC", "PARTITIONS", "REPLICAS", "STATUS")
	for _, d := range done {
		status := "created"
		if d.DryRun {
			status = "valid (dry run, not created)"
		}
		t.row(d.Topic, d.Partitions, d.Replicas, status)
	}
	return t.flush()
}

type topicListed struct {
	Name       string `json:"name"`
	Partitions int    `json:"partitions"`
	Replicas   int    `json:"replicas"`
	Internal   bool   `json:"internal"`
}

func newTopicListCmd(a *app) *cobra.Command {
	var internal bool
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List topics",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, adm, _, release, err := a.adminFor(cmd)
			if err != nil {
				return err
			}
			defer release()
			td, err := adm.ListTopicsWithInternal(ctx)
			if err != nil {
				return a.explain("list topics", err)
			}
			list := []topicListed{}
			for _, d := range td.Sorted() {
				if d.IsInternal && !internal {
					continue
				}
				list = append(list, topicListed{d.Topic, len(d.Partitions), d.Partitions.NumReplicas(), d.IsInternal})
			}
			if a.json() {
				return writeJSON(cmd.OutOrStdout(), list)
			}
			t := newTable(cmd.OutOrStdout(), "NAME", "PARTITIONS", "REPLICAS")
			for _, l := range list {
				name := l.Name
				if l.Internal {
					name += " (internal)"
				}
				t.row(name, l.Partitions, l.Replicas)
			}
			return t.flush()
		},
	}
	cmd.Flags().BoolVarP(&internal, "internal", "i", false, "include internal topics")
	return cmd
}

type topicDescribed struct {
	Name       string               `json:"name"`
	ID         string               `json:"id"`
	Internal   bool                 `json:"internal"`
	Replicas   int                  `json:"replicas"`
	Partitions []partitionDescribed `json:"partitions"`
	Configs    []configDescribed    `json:"configs"`
}

type partitionDescribed struct {
	Partition     int32   `json:"partition"`
	Leader        int32   `json:"leader"`
	Replicas      []int32 `json:"replicas"`
	LogStart      int64   `json:"log_start_offset"`
	HighWatermark int64   `json:"high_watermark"`
	// SizeBytes is null when the broker does not report log sizes
	// (DescribeLogDirs).
	SizeBytes *int64 `json:"size_bytes"`
	// LocalStart and ArchivedEnd are set for tiered topics
	// (remote.storage.enable=true): the first offset still on the
	// broker's disk (ListOffsets -4) and the offset after the last one in
	// the archive (-5 plus one; 0 when nothing is archived yet).
	LocalStart  *int64 `json:"local_start_offset,omitempty"`
	ArchivedEnd *int64 `json:"archived_end_offset,omitempty"`
}

type configDescribed struct {
	Key       string  `json:"key"`
	Value     *string `json:"value"`
	Source    string  `json:"source"`
	Sensitive bool    `json:"sensitive"`
}

func newTopicDescribeCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "describe TOPIC...",
		Aliases: []string{"info"},
		Short:   "Show topics' partitions (offsets, sizes) and configs (with their source)",
		Args:    wantArgs(1, -1, "TOPIC names"),
		RunE: func(cmd *cobra.Command, topics []string) error {
			ctx, adm, cl, release, err := a.adminFor(cmd)
			if err != nil {
				return err
			}
			defer release()
			td, err := existingTopics(ctx, a, adm, topics...)
			if err != nil {
				return err
			}
			bounds, err := listBounds(ctx, a, adm, topics...)
			if err != nil {
				return err
			}
			rcs, err := adm.DescribeTopicConfigs(ctx, topics...)
			if err != nil {
				return a.explain("describe configs", err)
			}
			// Sizes are optional: not every broker answers DescribeLogDirs.
			sizes := map[string]map[int32]int64{}
			if logDirs, err := adm.DescribeAllLogDirs(ctx, td.TopicsSet()); err == nil {
				logDirs.Each(func(d kadm.DescribedLogDir) {
					for _, ps := range d.Topics {
						for _, p := range ps {
							if sizes[p.Topic] == nil {
								sizes[p.Topic] = map[int32]int64{}
							}
							sizes[p.Topic][p.Partition] += p.Size
						}
					}
				})
			}
			var out []topicDescribed
			for _, name := range topics {
				d := td[name]
				desc := topicDescribed{
					Name: name, ID: base64.RawURLEncoding.EncodeToString(d.ID[:]), Internal: d.IsInternal,
					Replicas: d.Partitions.NumReplicas(), Partitions: []partitionDescribed{}, Configs: []configDescribed{},
				}
				for _, p := range d.Partitions.Sorted() {
					b := bounds[name][p.Partition]
					pd := partitionDescribed{Partition: p.Partition, Leader: p.Leader, Replicas: p.Replicas,
						LogStart: b.start, HighWatermark: b.end}
					if s, ok := sizes[name][p.Partition]; ok {
						pd.SizeBytes = &s
					}
					desc.Partitions = append(desc.Partitions, pd)
				}
				rc, err := rcs.On(name, nil)
				if err != nil {
					return topicError(name, err, "")
				}
				if rc.Err != nil {
					return topicError(name, rc.Err, rc.ErrMessage)
				}
				tiered := false
				for _, c := range rc.Configs {
					desc.Configs = append(desc.Configs, configDescribed{c.Key, c.Value, c.Source.String(), c.Sensitive})
					tiered = tiered || c.Key == "remote.storage.enable" && c.Value != nil && *c.Value == "true"
				}
				if tiered {
					addTieredRanges(ctx, cl, name, desc.Partitions)
				}
				sort.Slice(desc.Configs, func(i, j int) bool { return desc.Configs[i].Key < desc.Configs[j].Key })
				out = append(out, desc)
			}
			if a.json() {
				return writeJSON(cmd.OutOrStdout(), out)
			}
			return printTopicDescriptions(cmd, out)
		},
		ValidArgsFunction: completeTopics(a),
	}
	return cmd
}

func printTopicDescriptions(cmd *cobra.Command, out []topicDescribed) error {
	w := cmd.OutOrStdout()
	for i, d := range out {
		if i > 0 {
			fmt.Fprintln(w)
		}
		section(w, "SUMMARY")
		t := newTable(w)
		t.row("NAME", d.Name)
		if d.Internal {
			t.row("INTERNAL", "true")
		}
		t.row("ID", d.ID)
		t.row("PARTITIONS", len(d.Partitions))
		t.row("REPLICAS", d.Replicas)
		if err := t.flush(); err != nil {
			return err
		}
		fmt.Fprintln(w)
		section(w, "CONFIGS")
		t = newTable(w, "KEY", "VALUE", "SOURCE")
		for _, c := range d.Configs {
			v := "-"
			switch {
			case c.Sensitive:
				v = "(sensitive)"
			case c.Value != nil:
				v = *c.Value
			}
			t.row(c.Key, v, c.Source)
		}
		if err := t.flush(); err != nil {
			return err
		}
		fmt.Fprintln(w)
		section(w, "PARTITIONS")
		tiered := len(d.Partitions) > 0 && d.Partitions[0].LocalStart != nil
		headers := []string{"PARTITION", "LEADER", "REPLICAS", "LOG-START", "HIGH-WATERMARK", "SIZE"}
		if tiered {
			headers = append(headers, "LOCAL-START", "ARCHIVED")
		}
		t = newTable(w, headers...)
		for _, p := range d.Partitions {
			size := "-"
			if p.SizeBytes != nil {
				size = humanBytes(*p.SizeBytes)
			}
			cells := []any{p.Partition, p.Leader, fmt.Sprint(p.Replicas), p.LogStart, p.HighWatermark, size}
			if tiered {
				archived := "-"
				if p.ArchivedEnd != nil && *p.ArchivedEnd > p.LogStart {
					archived = fmt.Sprintf("%d-%d", p.LogStart, *p.ArchivedEnd-1)
				}
				local := "-"
				if p.LocalStart != nil {
					local = fmt.Sprint(*p.LocalStart)
				}
				cells = append(cells, local, archived)
			}
			t.row(cells...)
		}
		if err := t.flush(); err != nil {
			return err
		}
	}
	return nil
}

type configChange struct {
	Topic  string  `json:"topic"`
	Key    string  `json:"key"`
	Op     string  `json:"op"`
	Value  *string `json:"value,omitempty"`
	Status string  `json:"status"`
}

func newTopicAlterConfigCmd(a *app) *cobra.Command {
	var sets, deletes []string
	cmd := &cobra.Command{
		Use:   "alter-config TOPIC...",
		Short: "Set or delete topic configs (incrementally; other configs are kept)",
		Example: `  weir topic alter-config orders --set retention.ms=86400000
  weir topic alter-config orders --delete retention.ms   # back to the default`,
		Args: wantArgs(1, -1, "TOPIC names"),
		RunE: func(cmd *cobra.Command, topics []string) error {
			var alters []kadm.AlterConfig
			var changes []configChange
			for _, s := range sets {
				k, v, err := parseKV("--set", s)
				if err != nil {
					return err
				}
				alters = append(alters, kadm.AlterConfig{Op: kadm.SetConfig, Name: k, Value: kadm.StringPtr(v)})
				changes = append(changes, configChange{Key: k, Op: "set", Value: kadm.StringPtr(v)})
			}
			for _, k := range deletes {
				if strings.TrimSpace(k) == "" || strings.Contains(k, "=") {
					return fmt.Errorf("bad --delete %q: want a config name", k)
				}
				alters = append(alters, kadm.AlterConfig{Op: kadm.DeleteConfig, Name: k})
				changes = append(changes, configChange{Key: k, Op: "delete"})
			}
			if len(alters) == 0 {
				return errors.New("nothing to change: use --set key=value or --delete key")
			}
			ctx, adm, _, release, err := a.adminFor(cmd)
			if err != nil {
				return err
			}
			defer release()
			if _, err := existingTopics(ctx, a, adm, topics...); err != nil {
				return err
			}
			resp, err := adm.AlterTopicConfigs(ctx, alters, topics...)
			if err != nil {
				return a.explain("alter configs", err)
			}
			var (
				done []configChange
				errs []error
			)
			for _, t := range topics {
				var r *kadm.AlterConfigsResponse
				for i := range resp {
					if resp[i].Name == t {
						r = &resp[i]
					}
				}
				switch {
				case r == nil:
					errs = append(errs, fmt.Errorf("topic %q: missing from the broker's answer", t))
				case r.Err != nil:
					errs = append(errs, topicError(t, r.Err, r.ErrMessage))
				default:
					for _, c := range changes {
						c.Topic = t
						c.Status = map[string]string{"set": "set", "delete": "deleted (default restored)"}[c.Op]
						done = append(done, c)
					}
				}
			}
			if a.json() {
				if done == nil {
					done = []configChange{}
				}
				if err := writeJSON(cmd.OutOrStdout(), done); err != nil {
					return err
				}
			} else if len(done) > 0 {
				tb := newTable(cmd.OutOrStdout(), "TOPIC", "KEY", "VALUE", "STATUS")
				for _, c := range done {
					v := "-"
					if c.Value != nil {
						v = *c.Value
					}
					tb.row(c.Topic, c.Key, v, c.Status)
				}
				if err := tb.flush(); err != nil {
					return err
				}
			}
			return joinErrors(errs)
		},
		ValidArgsFunction: completeTopics(a),
	}
	cmd.Flags().StringArrayVarP(&sets, "set", "s", nil, "set config key=value (repeatable)")
	cmd.Flags().StringArrayVarP(&deletes, "delete", "d", nil, "delete config key, restoring its default (repeatable)")
	return cmd
}

type partitionsAdded struct {
	Topic      string `json:"topic"`
	Added      int    `json:"added"`
	Partitions int    `json:"partitions"`
}

func newTopicAddPartitionsCmd(a *app) *cobra.Command {
	var num int
	cmd := &cobra.Command{
		Use:     "add-partitions TOPIC...",
		Short:   "Add partitions to topics (keyed records may then map to other partitions)",
		Example: `  weir topic add-partitions orders -n 3`,
		Args:    wantArgs(1, -1, "TOPIC names"),
		RunE: func(cmd *cobra.Command, topics []string) error {
			if num < 1 {
				return fmt.Errorf("--num %d: want at least 1", num)
			}
			ctx, adm, _, release, err := a.adminFor(cmd)
			if err != nil {
				return err
			}
			defer release()
			td, err := existingTopics(ctx, a, adm, topics...)
			if err != nil {
				return err
			}
			resp, err := adm.CreatePartitions(ctx, num, topics...)
			if err != nil {
				return a.explain("add partitions", err)
			}
			var (
				done []partitionsAdded
				errs []error
			)
			for _, t := range topics {
				r, ok := resp[t]
				switch {
				case !ok:
					errs = append(errs, fmt.Errorf("topic %q: missing from the broker's answer", t))
				case r.Err != nil:
					errs = append(errs, topicError(t, r.Err, r.ErrMessage))
				default:
					done = append(done, partitionsAdded{t, num, len(td[t].Partitions) + num})
				}
			}
			if a.json() {
				if done == nil {
					done = []partitionsAdded{}
				}
				if err := writeJSON(cmd.OutOrStdout(), done); err != nil {
					return err
				}
			} else if len(done) > 0 {
				tb := newTable(cmd.OutOrStdout(), "TOPIC", "ADDED", "PARTITIONS")
				for _, d := range done {
					tb.row(d.Topic, d.Added, d.Partitions)
				}
				if err := tb.flush(); err != nil {
					return err
				}
			}
			return joinErrors(errs)
		},
		ValidArgsFunction: completeTopics(a),
	}
	cmd.Flags().IntVarP(&num, "num", "n", 1, "how many partitions to add")
	return cmd
}

type topicDeleted struct {
	Topic   string `json:"topic"`
	Deleted bool   `json:"deleted"`
}

func newTopicDeleteCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "delete TOPIC...",
		Aliases: []string{"rm"},
		Short:   "Delete topics and all their records",
		Args:    wantArgs(1, -1, "TOPIC names"),
		RunE: func(cmd *cobra.Command, topics []string) error {
			ctx, adm, _, release, err := a.adminFor(cmd)
			if err != nil {
				return err
			}
			defer release()
			resp, err := adm.DeleteTopics(ctx, topics...)
			if err != nil {
				return a.explain("delete topics", err)
			}
			var (
				done []string
				errs []error
			)
			for _, t := range topics {
				r, ok := resp[t]
				switch {
				case !ok:
					errs = append(errs, fmt.Errorf("topic %q does not exist", t))
				case r.Err != nil:
					errs = append(errs, topicError(t, r.Err, r.ErrMessage))
				default:
					done = append(done, t)
				}
			}
			if err := a.writeDeleted(cmd.OutOrStdout(), "TOPIC", done, func(t string) any { return topicDeleted{t, true} }); err != nil {
				return err
			}
			return joinErrors(errs)
		},
		ValidArgsFunction: completeTopics(a),
	}
	return cmd
}

// addTieredRanges fills the local start and archived end of a tiered
// topic's partitions with ListOffsets -4 (earliest local) and -5 (latest
// tiered), KIP-405's timestamps (ListOffsets v8 and v9). A broker that
// does not answer them leaves the fields unset.
func addTieredRanges(ctx context.Context, cl *kgo.Client, topic string, parts []partitionDescribed) {
	for _, ts := range []int64{-4, -5} {
		req := kmsg.NewPtrListOffsetsRequest()
		req.Version = 9
		req.ReplicaID = -1
		rt := kmsg.NewListOffsetsRequestTopic()
		rt.Topic = topic
		for _, p := range parts {
			rp := kmsg.NewListOffsetsRequestTopicPartition()
			rp.Partition, rp.Timestamp, rp.CurrentLeaderEpoch = p.Partition, ts, -1
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, cl)
		if err != nil || len(resp.Topics) != 1 {
			return
		}
		for _, rp := range resp.Topics[0].Partitions {
			if rp.ErrorCode != 0 {
				continue
			}
			for i := range parts {
				if parts[i].Partition != rp.Partition {
					continue
				}
				off := rp.Offset
				if ts == -4 {
					parts[i].LocalStart = &off
				} else {
					end := max(off+1, 0)
					parts[i].ArchivedEnd = &end
				}
			}
		}
	}
}

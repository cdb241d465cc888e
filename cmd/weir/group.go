package main

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
)

func newGroupCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "group",
		Aliases: []string{"groups"},
		Short:   "List, describe (members, offsets, lag), seek and delete consumer groups",
	}
	cmd.AddCommand(newGroupListCmd(a), newGroupDescribeCmd(a), newGroupSeekCmd(a), newGroupDeleteCmd(a))
	return cmd
}

// completeGroups completes group names from the cluster.
func completeGroups(a *app) cobra.CompletionFunc {
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
		gs, err := adm.ListGroups(ctx)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return gs.Groups(), cobra.ShellCompDirectiveNoFileComp
	}
}

type groupListed struct {
	Group        string `json:"group"`
	State        string `json:"state"`
	ProtocolType string `json:"protocol_type"`
}

func newGroupListCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List consumer groups",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, adm, _, release, err := a.adminFor(cmd)
			if err != nil {
				return err
			}
			defer release()
			gs, err := adm.ListGroups(ctx)
			if err != nil {
				return a.explain("list groups", err)
			}
			list := []groupListed{}
			for _, g := range gs.Sorted() {
				list = append(list, groupListed{g.Group, g.State, g.ProtocolType})
			}
			if a.json() {
				return writeJSON(cmd.OutOrStdout(), list)
			}
			t := newTable(cmd.OutOrStdout(), "GROUP", "STATE", "PROTOCOL-TYPE")
			for _, g := range list {
				t.row(g.Group, g.State, g.ProtocolType)
			}
			return t.flush()
		},
	}
}

type groupDescribed struct {
	Group        string              `json:"group"`
	State        string              `json:"state"`
	ProtocolType string              `json:"protocol_type"`
	Protocol     string              `json:"protocol"`
	Members      []memberDescribed   `json:"members"`
	Partitions   []groupPartitionLag `json:"partitions"`
	TotalLag     int64               `json:"total_lag"`
}

type memberDescribed struct {
	MemberID    string             `json:"member_id"`
	InstanceID  *string            `json:"instance_id"`
	ClientID    string             `json:"client_id"`
	Host        string             `json:"host"`
	Assignments map[string][]int32 `json:"assignments"`
}

type groupPartitionLag struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	// Committed is null when the group has not committed on the partition.
	Committed *int64 `json:"committed_offset"`
	LogStart  int64  `json:"log_start_offset"`
	LogEnd    int64  `json:"log_end_offset"`
	Lag       int64  `json:"lag"`
	MemberID  string `json:"member_id"`
	ClientID  string `json:"client_id"`
	Host      string `json:"host"`
	Error     string `json:"error,omitempty"`
}

func newGroupDescribeCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:     "describe GROUP...",
		Aliases: []string{"info"},
		Short:   "Show a group's members, assignments, committed offsets and lag per partition",
		Long: `Show a consumer group: its state, its members and what each is assigned,
and per partition the committed offset, the log end offset (high watermark)
and the lag between them (records not yet consumed by the group).`,
		Args: wantArgs(1, -1, "GROUP names"),
		RunE: func(cmd *cobra.Command, groups []string) error {
			ctx, adm, _, release, err := a.adminFor(cmd)
			if err != nil {
				return err
			}
			defer release()
			lags, err := adm.Lag(ctx, groups...)
			if err != nil {
				return a.explain("describe groups", err)
			}
			var out []groupDescribed
			for _, g := range groups {
				l, ok := lags[g]
				if !ok {
					return fmt.Errorf("group %q: missing from the broker's answer", g)
				}
				if err := l.Error(); err != nil {
					return groupError(g, err)
				}
				if (l.State == "Dead" || l.State == "") && len(l.Members) == 0 && len(l.Lag.Sorted()) == 0 {
					return fmt.Errorf("group %q does not exist", g)
				}
				out = append(out, describeGroup(l))
			}
			if a.json() {
				return writeJSON(cmd.OutOrStdout(), out)
			}
			return printGroupDescriptions(cmd, out)
		},
		ValidArgsFunction: completeGroups(a),
	}
}

func describeGroup(l kadm.DescribedGroupLag) groupDescribed {
	d := groupDescribed{
		Group: l.Group, State: l.State, ProtocolType: l.ProtocolType, Protocol: l.Protocol,
		Members: []memberDescribed{}, Partitions: []groupPartitionLag{},
	}
	for _, m := range l.Members {
		md := memberDescribed{MemberID: m.MemberID, InstanceID: m.InstanceID, ClientID: m.ClientID,
			Host: m.ClientHost, Assignments: map[string][]int32{}}
		if c, ok := m.Assigned.AsConsumer(); ok {
			for _, t := range c.Topics {
				ps := append([]int32(nil), t.Partitions...)
				sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
				md.Assignments[t.Topic] = ps
			}
		}
		d.Members = append(d.Members, md)
	}
	for _, ml := range l.Lag.Sorted() {
		p := groupPartitionLag{Topic: ml.Topic, Partition: ml.Partition, LogStart: ml.Start.Offset,
			LogEnd: ml.End.Offset, Lag: ml.Lag}
		if ml.Commit.At >= 0 {
			at := ml.Commit.At
			p.Committed = &at
		}
		if ml.Member != nil {
			p.MemberID, p.ClientID, p.Host = ml.Member.MemberID, ml.Member.ClientID, ml.Member.ClientHost
		}
		if ml.Err != nil {
			p.Error = kafkaMessage(ml.Err, "")
		}
		if ml.Lag > 0 {
			d.TotalLag += ml.Lag
		}
		d.Partitions = append(d.Partitions, p)
	}
	return d
}

func printGroupDescriptions(cmd *cobra.Command, out []groupDescribed) error {
	w := cmd.OutOrStdout()
	for i, d := range out {
		if i > 0 {
			fmt.Fprintln(w)
		}
		t := newTable(w)
		t.row("GROUP", d.Group)
		t.row("STATE", d.State)
		if d.Protocol != "" {
			t.row("BALANCER", d.Protocol)
		}
		t.row("MEMBERS", len(d.Members))
		t.row("TOTAL-LAG", d.TotalLag)
		if err := t.flush(); err != nil {
			return err
		}
		if len(d.Members) > 0 {
			fmt.Fprintln(w)
			t = newTable(w, "MEMBER-ID", "CLIENT-ID", "HOST", "ASSIGNED")
			for _, m := range d.Members {
				var as []string
				for _, topic := range sortedKeys(m.Assignments) {
					as = append(as, fmt.Sprintf("%s%v", topic, m.Assignments[topic]))
				}
				t.row(m.MemberID, m.ClientID, m.Host, strings.Join(as, " "))
			}
			if err := t.flush(); err != nil {
				return err
			}
		}
		if len(d.Partitions) > 0 {
			fmt.Fprintln(w)
			// Member columns only while the group has members.
			members := len(d.Members) > 0
			headers := []string{"TOPIC", "PARTITION", "COMMITTED", "LOG-END", "LAG"}
			if members {
				headers = append(headers, "MEMBER-ID", "CLIENT-ID", "HOST")
			}
			t = newTable(w, headers...)
			for _, p := range d.Partitions {
				lag := fmt.Sprint(p.Lag)
				if p.Error != "" {
					lag = "error: " + p.Error
				}
				row := []any{p.Topic, p.Partition, p.Committed, p.LogEnd, lag}
				if members {
					row = append(row, p.MemberID, p.ClientID, p.Host)
				}
				t.row(row...)
			}
			if err := t.flush(); err != nil {
				return err
			}
		}
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

type seekRow struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Current   *int64 `json:"current_offset"`
	New       int64  `json:"new_offset"`
	Lag       int64  `json:"lag"`
}

type seekResult struct {
	Group      string    `json:"group"`
	Executed   bool      `json:"executed"`
	Partitions []seekRow `json:"partitions"`
}

func newGroupSeekCmd(a *app) *cobra.Command {
	var (
		to      string
		topics  []string
		execute bool
	)
	cmd := &cobra.Command{
		Use:   "seek GROUP --to POSITION",
		Short: "Move a group's committed offsets (a dry-run preview unless --execute)",
		Long: `Move a consumer group's committed offsets, to re-read or to skip records.
By default this previews the change; --execute commits it. The group must
have no active members when executing: stop its consumers first.

--to is one of: ` + positionHelp + `, or a shift from the committed offset ("+5", "-5").
Offsets are clamped to each partition's log. Without --topic, the topics the
group has committed offsets for (or is assigned) are moved.`,
		Example: `  weir group seek workers --to beginning             # preview
  weir group seek workers --to beginning --execute   # apply
  weir group seek workers --to 2025-01-02T15:00:00Z --topic orders --execute`,
		Args: wantArgs(1, 1, "one GROUP"),
		RunE: func(cmd *cobra.Command, args []string) error {
			group := args[0]
			if to == "" {
				return fmt.Errorf("--to is required: %s", positionHelp)
			}
			pos, err := parsePosition(to, time.Now(), true)
			if err != nil {
				return fmt.Errorf("--to: %w", err)
			}
			ctx, adm, _, release, err := a.adminFor(cmd)
			if err != nil {
				return err
			}
			defer release()
			described, err := adm.DescribeGroups(ctx, group)
			if err != nil {
				return a.explain("describe group "+group, err)
			}
			dg := described[group]
			if dg.Err != nil {
				return groupError(group, dg.Err)
			}
			fetched, err := adm.FetchOffsets(ctx, group)
			if err != nil {
				return a.explain("fetch offsets of group "+group, err)
			}
			committed := map[string]map[int32]int64{}
			fetched.Each(func(o kadm.OffsetResponse) {
				if o.Err == nil && o.At >= 0 {
					if committed[o.Topic] == nil {
						committed[o.Topic] = map[int32]int64{}
					}
					committed[o.Topic][o.Partition] = o.At
				}
			})
			if execute && len(dg.Members) > 0 {
				return fmt.Errorf("group %q has %d active member(s); stop its consumers before seeking", group, len(dg.Members))
			}
			if len(topics) == 0 {
				set := dg.AssignedPartitions()
				for t := range committed {
					set.Add(t)
				}
				topics = set.Topics()
				if len(topics) == 0 {
					return fmt.Errorf("group %q has no committed offsets; name the topics to seek with --topic", group)
				}
			}
			if _, err := existingTopics(ctx, a, adm, topics...); err != nil {
				return err
			}
			bounds, err := listBounds(ctx, a, adm, topics...)
			if err != nil {
				return err
			}
			res := seekResult{Group: group, Partitions: []seekRow{}}
			var offsets kadm.Offsets
			for _, t := range topics {
				resolved, err := pos.resolve(ctx, a, adm, t, bounds[t], committed[t])
				if err != nil {
					return err
				}
				for _, p := range sortedPartitions(resolved) {
					row := seekRow{Topic: t, Partition: p, New: resolved[p], Lag: bounds[t][p].end - resolved[p]}
					if c, ok := committed[t][p]; ok {
						row.Current = &c
					}
					res.Partitions = append(res.Partitions, row)
					offsets.AddOffset(t, p, resolved[p], -1)
				}
			}
			stderr := cmd.ErrOrStderr()
			if execute {
				resp, err := adm.CommitOffsets(ctx, group, offsets)
				if err != nil {
					return a.explain("commit offsets of group "+group, err)
				}
				if err := resp.Error(); err != nil {
					return groupError(group, err)
				}
				res.Executed = true
			}
			if a.json() {
				return writeJSON(cmd.OutOrStdout(), res)
			}
			t := newTable(cmd.OutOrStdout(), "TOPIC", "PARTITION", "CURRENT", "NEW", "LAG")
			for _, r := range res.Partitions {
				t.row(r.Topic, r.Partition, r.Current, r.New, r.Lag)
			}
			if err := t.flush(); err != nil {
				return err
			}
			switch {
			case execute:
				fmt.Fprintf(stderr, "Committed the new offsets for group %s.\n", group)
			case len(dg.Members) > 0:
				fmt.Fprintf(stderr, "Dry run: nothing changed. Group %s has %d active member(s): stop them, then re-run with --execute.\n", group, len(dg.Members))
			default:
				fmt.Fprintln(stderr, "Dry run: nothing changed. Re-run with --execute to apply.")
			}
			return nil
		},
		ValidArgsFunction: completeGroups(a),
	}
	f := cmd.Flags()
	f.StringVar(&to, "to", "", "target position (see above)")
	f.StringArrayVarP(&topics, "topic", "t", nil, "topic to move (repeatable; default: the group's committed topics)")
	f.BoolVar(&execute, "execute", false, "commit the new offsets (default: preview only)")
	_ = cmd.RegisterFlagCompletionFunc("to", cobra.FixedCompletions([]string{"beginning", "end"}, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("topic", completeTopics(a))
	return cmd
}

func sortedPartitions[V any](m map[int32]V) []int32 {
	ps := make([]int32, 0, len(m))
	for p := range m {
		ps = append(ps, p)
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
	return ps
}

type groupDeleted struct {
	Group   string `json:"group"`
	Deleted bool   `json:"deleted"`
}

func newGroupDeleteCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:     "delete GROUP...",
		Aliases: []string{"rm"},
		Short:   "Delete consumer groups and their committed offsets",
		Args:    wantArgs(1, -1, "GROUP names"),
		RunE: func(cmd *cobra.Command, groups []string) error {
			ctx, adm, _, release, err := a.adminFor(cmd)
			if err != nil {
				return err
			}
			defer release()
			resp, err := adm.DeleteGroups(ctx, groups...)
			if err != nil {
				return a.explain("delete groups", err)
			}
			var (
				done []string
				errs []error
			)
			for _, g := range groups {
				r, ok := resp[g]
				switch {
				case !ok:
					errs = append(errs, fmt.Errorf("group %q: missing from the broker's answer", g))
				case r.Err != nil:
					errs = append(errs, groupError(g, r.Err))
				default:
					done = append(done, g)
				}
			}
			if err := a.writeDeleted(cmd.OutOrStdout(), "GROUP", done, func(g string) any { return groupDeleted{g, true} }); err != nil {
				return err
			}
			return joinErrors(errs)
		},
		ValidArgsFunction: completeGroups(a),
	}
}

package main

import (
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
)

func newGenerateCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "generate",
		Short: "Generate files for operating Weir (Grafana dashboard)",
		Args:  cobra.NoArgs,
	}
	var (
		out   string
		title string
		uid   string
	)
	dash := &cobra.Command{
		Use:   "grafana-dashboard",
		Short: "Write a Grafana dashboard (JSON) for Weir's /metrics",
		Long: `Write a Grafana dashboard for the metrics Weir serves on its HTTP port at
/metrics: requests, errors and latency per Kafka API, bytes and records per
topic, partition sizes, fsync latency and group-commit size, consumer-group
lag in records and seconds, members and state, and the process.

Import it in Grafana (Dashboards > New > Import) and pick the Prometheus data
source that scrapes Weir. Consumer-group lag is also exported under
kafka_exporter's names (kafka_consumergroup_lag...), so existing
kafka_exporter dashboards and alerts work too.`,
		Example: `  weir generate grafana-dashboard > weir-dashboard.json
  weir generate grafana-dashboard -o weir.json --title "Weir (prod)"`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var w io.Writer = cmd.OutOrStdout()
			if out != "" && out != "-" {
				f, err := os.Create(out)
				if err != nil {
					return err
				}
				defer f.Close()
				w = f
			}
			if err := writeJSON(w, grafanaDashboard(title, uid)); err != nil {
				return err
			}
			if out != "" && out != "-" {
				fmt.Fprintf(cmd.ErrOrStderr(), "wrote %s\n", out)
			}
			return nil
		},
	}
	dash.Flags().StringVarP(&out, "output", "o", "", "file to write (default: standard output)")
	dash.Flags().StringVar(&title, "title", "Weir", "dashboard title")
	dash.Flags().StringVar(&uid, "uid", "weir-overview", "dashboard uid (stable across imports)")
	cmd.AddCommand(dash)
	return cmd
}

// dashPanel is one panel before layout: a title, a unit and its queries
// (PromQL, legend).
type dashPanel struct {
	title, unit, desc string
	kind              string // "timeseries" (default) or "stat"
	queries           [][2]string
}

type dashRow struct {
	title  string
	panels []dashPanel
}

// rate is the PromQL rate window Grafana picks for the scrape interval.
const rateWin = "[$__rate_interval]"

func dashboardRows() []dashRow {
	inst := `instance=~"$instance"`
	topic := inst + `,topic=~"$topic"`
	grp := inst + `,group=~"$group"`
	q := func(expr, legend string) [2]string { return [2]string{expr, legend} }
	quant := func(p, metric, by, sel string) string {
		return fmt.Sprintf(`histogram_quantile(%s, sum by (%s) (rate(%s_bucket{%s}%s)))`, p, by, metric, sel, rateWin)
	}
	return []dashRow{
		{"Kafka API", []dashPanel{
			{title: "Requests by API", unit: "reqps", queries: [][2]string{
				q(`sum by (api) (rate(weir_kafka_requests_total{`+inst+`}`+rateWin+`))`, "{{api}}")}},
			{title: "Errors by API and code", unit: "reqps", desc: "Non-zero error codes in responses, one per partition or resource.", queries: [][2]string{
				q(`sum by (api, error) (rate(weir_kafka_request_errors_total{`+inst+`}`+rateWin+`))`, "{{api}} {{error}}")}},
			{title: "Request latency p99 by API", unit: "s", desc: "Frame read to response written; Fetch includes long-polls, Produce acks=all the fsync.", queries: [][2]string{
				q(quant("0.99", "weir_kafka_request_duration_seconds", "api, le", inst), "{{api}}")}},
			{title: "Produce latency", unit: "s", queries: [][2]string{
				q(quant("0.5", "weir_kafka_request_duration_seconds", "le", inst+`,api="Produce"`), "p50"),
				q(quant("0.99", "weir_kafka_request_duration_seconds", "le", inst+`,api="Produce"`), "p99"),
				q(quant("0.999", "weir_kafka_request_duration_seconds", "le", inst+`,api="Produce"`), "p99.9")}},
			{title: "Open connections", unit: "short", queries: [][2]string{
				q(`sum by (instance) (weir_kafka_connections{`+inst+`})`, "{{instance}}")}},
			{title: "Connections accepted and rejected", unit: "cps", queries: [][2]string{
				q(`sum(rate(weir_kafka_connections_accepted_total{`+inst+`}`+rateWin+`))`, "accepted"),
				q(`sum(rate(weir_kafka_connections_rejected_total{`+inst+`}`+rateWin+`))`, "rejected")}},
		}},
		{"Topics", []dashPanel{
			{title: "Bytes in by topic", unit: "Bps", queries: [][2]string{
				q(`sum by (topic) (rate(weir_topic_bytes_in_total{`+topic+`}`+rateWin+`))`, "{{topic}}")}},
			{title: "Bytes out by topic", unit: "Bps", queries: [][2]string{
				q(`sum by (topic) (rate(weir_topic_bytes_out_total{`+topic+`}`+rateWin+`))`, "{{topic}}")}},
			{title: "Records in by topic", unit: "short", queries: [][2]string{
				q(`sum by (topic) (rate(weir_topic_records_in_total{`+topic+`}`+rateWin+`))`, "{{topic}}")}},
			{title: "Records out by topic", unit: "short", queries: [][2]string{
				q(`sum by (topic) (rate(weir_topic_records_out_total{`+topic+`}`+rateWin+`))`, "{{topic}}")}},
			{title: "Size on disk by topic", unit: "bytes", queries: [][2]string{
				q(`sum by (topic) (weir_partition_size_bytes{`+topic+`})`, "{{topic}}")}},
			{title: "Records retained by topic", unit: "short", desc: "Log end offset minus log start offset, summed over partitions.", queries: [][2]string{
				q(`sum by (topic) (weir_partition_log_end_offset{`+topic+`} - weir_partition_log_start_offset{`+topic+`})`, "{{topic}}")}},
		}},
		{"Storage", []dashPanel{
			{title: "fsync latency", unit: "s", queries: [][2]string{
				q(quant("0.5", "weir_log_fsync_duration_seconds", "le", inst), "p50"),
				q(quant("0.99", "weir_log_fsync_duration_seconds", "le", inst), "p99"),
				q(quant("0.999", "weir_log_fsync_duration_seconds", "le", inst), "p99.9")}},
			{title: "Group commit: records per fsync", unit: "short", queries: [][2]string{
				q(`sum(rate(weir_log_group_commit_records_sum{`+inst+`}`+rateWin+`)) / sum(rate(weir_log_group_commit_records_count{`+inst+`}`+rateWin+`))`, "mean"),
				q(quant("0.99", "weir_log_group_commit_records", "le", inst), "p99")}},
			{title: "fsyncs per second", unit: "ops", queries: [][2]string{
				q(`sum(rate(weir_log_fsync_duration_seconds_count{`+inst+`}`+rateWin+`))`, "fsyncs")}},
		}},
		{"Consumer groups", []dashPanel{
			{title: "Lag (records) by group and topic", unit: "short", queries: [][2]string{
				q(`sum by (group, topic) (weir_group_lag_records{`+grp+`})`, "{{group}} {{topic}}")}},
			{title: "Lag (seconds): age of the oldest unconsumed record", unit: "s", queries: [][2]string{
				q(`max by (group, topic) (weir_group_lag_seconds{`+grp+`})`, "{{group}} {{topic}}")}},
			{title: "Members by group", unit: "short", queries: [][2]string{
				q(`sum by (group) (weir_group_members{`+grp+`})`, "{{group}}")}},
			{title: "Groups by state", unit: "short", kind: "stat", queries: [][2]string{
				q(`sum by (state) (weir_group_state{`+grp+`})`, "{{state}}")}},
		}},
		{"Transactions", []dashPanel{
			{title: "Transactions by result", unit: "ops", desc: "Decided per second: committed, aborted by the producer, timed out, fenced.", queries: [][2]string{
				q(`sum by (result) (rate(weir_transactions_total{`+inst+`}`+rateWin+`))`, "{{result}}")}},
			{title: "Open transactions and the oldest one's age", unit: "short", queries: [][2]string{
				q(`sum(weir_transactions_open{`+inst+`})`, "open"),
				q(`max(weir_transactions_oldest_open_seconds{`+inst+`})`, "oldest (s)")}},
			{title: "Records held back from read_committed (hw - lso) by topic", unit: "short",
				desc: "Offsets open transactions hold back; one that keeps growing is a hanging transaction (weir txn abort).", queries: [][2]string{
					q(`sum by (topic) (weir_partition_unstable_records{`+inst+`})`, "{{topic}}")}},
		}},
		{"Process", []dashPanel{
			{title: "CPU", unit: "percentunit", queries: [][2]string{
				q(`rate(process_cpu_seconds_total{`+inst+`}`+rateWin+`)`, "{{instance}}")}},
			{title: "Memory", unit: "bytes", queries: [][2]string{
				q(`process_resident_memory_bytes{`+inst+`}`, "RSS {{instance}}"),
				q(`go_memstats_heap_inuse_bytes{`+inst+`}`, "heap {{instance}}")}},
			{title: "Goroutines", unit: "short", queries: [][2]string{
				q(`go_goroutines{`+inst+`}`, "{{instance}}")}},
			{title: "Open file descriptors", unit: "short", queries: [][2]string{
				q(`process_open_fds{`+inst+`}`, "{{instance}}")}},
		}},
	}
}

// grafanaDashboard builds the dashboard model (Grafana schema 39): rows of
// panels two abreast, a Prometheus data source variable and instance,
// topic and group filters.
func grafanaDashboard(title, uid string) map[string]any {
	ds := map[string]any{"type": "prometheus", "uid": "${datasource}"}
	var panels []any
	id, y := 1, 0
	for _, row := range dashboardRows() {
		panels = append(panels, map[string]any{
			"type": "row", "id": id, "title": row.title, "collapsed": false,
			"gridPos": map[string]any{"h": 1, "w": 24, "x": 0, "y": y}, "panels": []any{},
		})
		id++
		y++
		for i, p := range row.panels {
			kind := p.kind
			if kind == "" {
				kind = "timeseries"
			}
			var targets []any
			for j, qq := range p.queries {
				targets = append(targets, map[string]any{
					"datasource": ds, "expr": qq[0], "legendFormat": qq[1], "refId": string(rune('A' + j)),
				})
			}
			panel := map[string]any{
				"type": kind, "id": id, "title": p.title, "datasource": ds, "targets": targets,
				"gridPos":     map[string]any{"h": 8, "w": 12, "x": 12 * (i % 2), "y": y + 8*(i/2)},
				"fieldConfig": map[string]any{"defaults": map[string]any{"unit": p.unit}, "overrides": []any{}},
				"options":     map[string]any{"legend": map[string]any{"displayMode": "list", "placement": "bottom", "showLegend": true}},
			}
			if p.desc != "" {
				panel["description"] = p.desc
			}
			panels = append(panels, panel)
			id++
		}
		y += 8 * ((len(row.panels) + 1) / 2)
	}
	variable := func(name, label, query string) map[string]any {
		return map[string]any{
			"name": name, "label": label, "type": "query", "datasource": ds,
			"query":      map[string]any{"query": query, "refId": "PrometheusVariableQueryEditor-VariableQuery"},
			"definition": query, "refresh": 2, "multi": true, "includeAll": true, "allValue": ".*",
			"current": map[string]any{"selected": true, "text": []string{"All"}, "value": []string{"$__all"}},
			"sort":    1,
		}
	}
	return map[string]any{
		"title":         title,
		"uid":           uid,
		"description":   "Weir broker: Kafka API, topics, storage, consumer groups. Generated by weir generate grafana-dashboard.",
		"tags":          []string{"weir", "kafka"},
		"schemaVersion": 39,
		"version":       1,
		"editable":      true,
		"graphTooltip":  1,
		"time":          map[string]any{"from": "now-1h", "to": "now"},
		"refresh":       "30s",
		"timezone":      "",
		"panels":        panels,
		"annotations":   map[string]any{"list": []any{}},
		"links":         []any{},
		"templating": map[string]any{"list": []any{
			map[string]any{"name": "datasource", "label": "Data source", "type": "datasource", "query": "prometheus",
				"current": map[string]any{}, "hide": 0, "refresh": 1},
			variable("instance", "Instance", "label_values(weir_kafka_connections, instance)"),
			variable("topic", "Topic", "label_values(weir_topic_partitions, topic)"),
			variable("group", "Group", "label_values(weir_group_members, group)"),
		}},
	}
}

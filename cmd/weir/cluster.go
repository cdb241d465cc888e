package main

import (
	"fmt"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kversion"
)

func newClusterCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cluster",
		Short: "Inspect the cluster",
	}
	cmd.AddCommand(newClusterInfoCmd(a))
	return cmd
}

type clusterInfo struct {
	ClusterID  string          `json:"cluster_id"`
	Client     string          `json:"client_version"`
	Controller int32           `json:"controller"`
	Brokers    []brokerInfoRow `json:"brokers"`
	Topics     int             `json:"topics"`
}

type brokerInfoRow struct {
	ID   int32   `json:"id"`
	Host string  `json:"host"`
	Port int32   `json:"port"`
	Rack *string `json:"rack"`
	// APIs is how many Kafka API keys the broker supports.
	APIs int `json:"api_keys"`
	// KafkaVersion is franz-go's guess of the Kafka release whose versions
	// of those APIs the broker matches (the protocol carries no software
	// version).
	KafkaVersion string `json:"kafka_version_guess"`
}

func newClusterInfoCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "info",
		Short: "Show the cluster's id, brokers, Kafka API version and topic count",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, adm, _, release, err := a.adminFor(cmd)
			if err != nil {
				return err
			}
			defer release()
			m, err := adm.BrokerMetadata(ctx)
			if err != nil {
				return a.explain("describe cluster", err)
			}
			td, err := adm.ListTopics(ctx)
			if err != nil {
				return a.explain("list topics", err)
			}
			versions, err := adm.ApiVersions(ctx)
			if err != nil {
				return a.explain("api versions", err)
			}
			info := clusterInfo{ClusterID: m.Cluster, Client: version, Controller: m.Controller, Brokers: []brokerInfoRow{}, Topics: len(td)}
			for _, b := range m.Brokers {
				row := brokerInfoRow{ID: b.NodeID, Host: b.Host, Port: b.Port, Rack: b.Rack, KafkaVersion: "unknown"}
				if v, ok := versions[b.NodeID]; ok && v.Err == nil {
					row.APIs, row.KafkaVersion = guessVersion(v)
				}
				info.Brokers = append(info.Brokers, row)
			}
			if a.json() {
				return writeJSON(cmd.OutOrStdout(), info)
			}
			w := cmd.OutOrStdout()
			t := newTable(w)
			t.row("CLUSTER", info.ClusterID)
			t.row("CONTROLLER", info.Controller)
			t.row("BROKERS", len(info.Brokers))
			t.row("TOPICS", info.Topics)
			t.row("CLIENT", "weir "+info.Client)
			if err := t.flush(); err != nil {
				return err
			}
			fmt.Fprintln(w)
			t = newTable(w, "ID", "HOST", "PORT", "RACK", "APIS", "KAFKA-API")
			for _, b := range info.Brokers {
				id := fmt.Sprint(b.ID)
				if b.ID == info.Controller {
					id += "*"
				}
				rack := "-"
				if b.Rack != nil {
					rack = *b.Rack
				}
				t.row(id, b.Host, b.Port, rack, b.APIs, "≈ "+b.KafkaVersion)
			}
			return t.flush()
		},
	}
}

// guessVersion counts the broker's API keys and guesses the Kafka release
// they match, judging only the APIs the broker has: a broker that leaves
// out some (as Weir leaves out transactions) is not taken for an ancient one.
func guessVersion(v kadm.BrokerApiVersions) (int, string) {
	kv := kversion.FromApiVersionsResponse(v.Raw())
	var skip []int16
	n := 0
	for k := int16(0); k < 200; k++ {
		if kv.HasKey(k) {
			n++
		} else {
			skip = append(skip, k)
		}
	}
	return n, kv.VersionGuess(kversion.SkipKeys(skip...))
}

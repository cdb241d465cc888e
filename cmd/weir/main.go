// Command weir runs the Weir event streaming platform and its tools.
package main

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

func main() {
	if err := newRootCmd().Execute(); err != nil {
		var ee exitError
		if errors.As(err, &ee) {
			os.Exit(ee.code)
		}
		fmt.Fprintln(os.Stderr, "weir:", oneLine(err))
		os.Exit(1)
	}
}

type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit %d", e.code) }

// oneLine folds a multi-line error (cobra's "Did you mean this?" suggestions)
// into the single line weir prints.
func oneLine(err error) string {
	lines := strings.Split(strings.TrimSpace(err.Error()), "\n")
	out := strings.TrimSpace(lines[0])
	var sugg []string
	for _, l := range lines[1:] {
		l = strings.TrimSpace(l)
		switch {
		case l == "", strings.HasPrefix(l, "Did you mean"):
		case strings.HasPrefix(l, "Run '"):
			out += "; " + strings.TrimSuffix(l, ".")
		default:
			sugg = append(sugg, fmt.Sprintf("%q", l))
		}
	}
	if len(sugg) > 0 {
		out += "; did you mean " + strings.Join(sugg, " or ") + "?"
	}
	return out
}

// newRootCmd builds the command tree reading the process environment.
func newRootCmd() *cobra.Command { return newRootCmdEnv(os.Getenv) }

// newRootCmdEnv builds the command tree with getenv as the environment, so
// tests can set WEIR_BROKERS without touching the process.
func newRootCmdEnv(getenv func(string) string) *cobra.Command {
	a := &app{getenv: getenv}
	root := &cobra.Command{
		Use:   "weir",
		Short: "Weir: a durable event streaming platform that speaks the Kafka protocol",
		Long: `Weir is a durable, partitioned, append-only log in one binary that speaks the
Kafka wire protocol. This command runs it (serve, dev) and is a client for it
and for any Kafka cluster (topic, produce, consume, group, txn, cluster).

Client commands connect to --brokers (or $WEIR_BROKERS), localhost:9092 by
default, and print aligned tables, or stable JSON with --format json.`,
		SilenceUsage:      true,
		SilenceErrors:     true,
		PersistentPreRunE: a.preRun,
	}
	pf := root.PersistentFlags()
	pf.StringVarP(&a.brokers, "brokers", "b", defaultBrokers, "comma-separated seed brokers (env WEIR_BROKERS)")
	pf.StringVar(&a.format, "format", "text", "output format: text (aligned tables) or json")
	_ = root.RegisterFlagCompletionFunc("format", cobra.FixedCompletions([]string{"text", "json"}, cobra.ShellCompDirectiveNoFileComp))
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return fmt.Errorf("%w (see '%s --help')", err, c.CommandPath())
	})
	root.AddGroup(
		&cobra.Group{ID: "run", Title: "Run Weir:"},
		&cobra.Group{ID: "client", Title: "Work with a cluster (Weir or any Kafka):"},
	)
	for _, c := range []*cobra.Command{newServeCmd(), newDevCmd()} {
		c.GroupID = "run"
		root.AddCommand(c)
	}
	for _, c := range []*cobra.Command{newTopicCmd(a), newProduceCmd(a), newConsumeCmd(a), newGroupCmd(a), newTxnCmd(a), newClusterCmd(a), newArchiveCmd(a), newNexmarkCmd(a)} {
		c.GroupID = "client"
		root.AddCommand(c)
	}
	root.AddCommand(newVersionCmd(a), newGenDocsCmd())
	addObservabilityCmds(root, a)
	root.InitDefaultCompletionCmd()
	return root
}

func newVersionCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print Weir's version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if a.json() {
				return writeJSON(cmd.OutOrStdout(), struct {
					Version string `json:"version"`
					Go      string `json:"go"`
				}{version, runtime.Version()})
			}
			_, err := fmt.Fprintln(cmd.OutOrStdout(), "weir", version)
			return err
		},
	}
}

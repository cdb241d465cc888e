package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/weirhq/weir/internal/config"
	"github.com/weirhq/weir/internal/server"
)

func newDevCmd() *cobra.Command {
	d := config.Defaults()
	var (
		dataDir   string
		kafkaAddr string
		httpAddr  string
		regAddr   string
		logLevel  string
	)
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run a local broker with development defaults and show how to use it",
		Long: `Run a durable Weir broker on loopback for development: the same server as
'weir serve' with its defaults (topics auto-created, acks=all fsynced, data
in ./weir-data), except that consumer groups start without the initial
rebalance delay and logs are quiet. It prints the addresses and a command to
try next. Ctrl-C stops it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg := config.Defaults()
			cfg.DataDir, cfg.KafkaAddr, cfg.HTTPAddr, cfg.LogLevel = dataDir, kafkaAddr, httpAddr, logLevel
			cfg.RegistryAddr = regAddr
			cfg.GroupInitialRebalanceDelay = 0 // consumers get partitions at once
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			srv, err := server.Start(cfg, server.Options{Logger: newLogger(cfg)})
			if err != nil {
				return err
			}
			addr := srv.KafkaAddr()
			flag := ""
			if addr != d.KafkaAddr {
				flag = " -b " + addr
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "Weir %s is running (dev mode).\n\n", version)
			t := newTable(w)
			t.row("  Kafka API", addr)
			t.row("  HTTP", "http://"+srv.HTTPAddr()+" (/metrics, /healthz, /readyz)")
			t.row("  Schema registry", "http://"+srv.RegistryAddr())
			t.row("  Data", cfg.DataDir+" (durable: acknowledged writes are fsynced)")
			_ = t.flush()
			fmt.Fprintf(w, "\nNext, in another terminal:\n\n  echo hello | weir produce demo%s && weir consume demo%s -n 1\n\n", flag, flag)
			fmt.Fprintln(w, "Any Kafka client works too: point it at the Kafka API address. Ctrl-C stops Weir.")
			return srv.Wait(ctx)
		},
	}
	f := cmd.Flags()
	f.StringVar(&dataDir, "data-dir", d.DataDir, "directory for all durable state")
	f.StringVar(&kafkaAddr, "kafka-addr", d.KafkaAddr, "Kafka protocol listen address")
	f.StringVar(&httpAddr, "http-addr", d.HTTPAddr, "HTTP listen address (metrics, health)")
	f.StringVar(&regAddr, "registry-addr", d.RegistryAddr, "schema registry listen address")
	f.StringVar(&logLevel, "log-level", "warn", "debug, info, warn or error")
	return cmd
}

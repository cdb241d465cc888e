package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/weirhq/weir/internal/server"
)

// The archive commands reach the node's HTTP listener (GET /archive/TOPIC,
// POST /archive/TOPIC/verify): the Kafka protocol has no request that
// lists a partition's remote segments.

const defaultHTTP = "localhost:8080"

type archiveCmd struct {
	a    *app
	http string
}

func newArchiveCmd(a *app) *cobra.Command {
	ac := &archiveCmd{a: a}
	cmd := &cobra.Command{
		Use:   "archive",
		Short: "Inspect, verify and restore tiered storage (topics with remote.storage.enable=true)",
		Long: `Inspect and verify the archive of a node started with --archive URL (ls and verify talk
to the node's HTTP address: --http, env WEIR_HTTP), and replay a time range of a topic, archived
records included, into a new topic (restore, over the Kafka protocol: --brokers).`,
	}
	cmd.PersistentFlags().StringVar(&ac.http, "http", defaultHTTP, "the node's HTTP address (env WEIR_HTTP)")
	cmd.AddCommand(ac.lsCmd(), ac.verifyCmd(), newArchiveRestoreCmd(a))
	return cmd
}

// base returns the node's HTTP base URL.
func (ac *archiveCmd) base(cmd *cobra.Command) string {
	addr := ac.http
	if f := cmd.Flags().Lookup("http"); f != nil && !f.Changed {
		if env := strings.TrimSpace(ac.a.getenv("WEIR_HTTP")); env != "" {
			addr = env
		}
	}
	if strings.HasPrefix(addr, "http://") || strings.HasPrefix(addr, "https://") {
		return strings.TrimSuffix(addr, "/")
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		addr = net.JoinHostPort(addr, "8080")
	}
	return "http://" + addr
}

// call sends one request and decodes its JSON answer into out.
func (ac *archiveCmd) call(ctx context.Context, cmd *cobra.Command, method, path string, out any) error {
	u := ac.base(cmd) + path
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) && ue.Timeout() {
			return fmt.Errorf("%s: no answer in time", ac.base(cmd))
		}
		return fmt.Errorf("cannot reach the node's HTTP address %s (set --http or WEIR_HTTP)", ac.base(cmd))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			return errors.New(e.Error)
		}
		return fmt.Errorf("%s %s: HTTP %d", method, path, resp.StatusCode)
	}
	return json.Unmarshal(body, out)
}

func (ac *archiveCmd) lsCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "ls TOPIC",
		Short: "List a topic's archived segments per partition (offsets, sizes, times)",
		Args:  wantArgs(1, 1, "a TOPIC name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := opContext(cmd)
			defer cancel()
			var out server.ArchiveListJSON
			if err := ac.call(ctx, cmd, http.MethodGet, "/archive/"+url.PathEscape(args[0]), &out); err != nil {
				return fmt.Errorf("archive ls %s: %w", args[0], err)
			}
			if ac.a.json() {
				return writeJSON(cmd.OutOrStdout(), out)
			}
			w := cmd.OutOrStdout()
			section(w, "PARTITIONS")
			t := newTable(w, "PARTITION", "LOG-START", "LOCAL-START", "HIGH-WATERMARK", "ARCHIVED", "SEGMENTS", "BYTES")
			for _, p := range out.Partitions {
				archived := "-"
				if len(p.Segments) > 0 {
					archived = fmt.Sprintf("%d-%d", p.ArchiveStartOffset, p.ArchiveEndOffset-1)
				}
				t.row(p.Partition, p.LogStartOffset, p.LocalLogStartOffset, p.HighWatermark, archived, len(p.Segments), p.ArchivedBytes)
			}
			if err := t.flush(); err != nil {
				return err
			}
			fmt.Fprintln(w)
			section(w, "SEGMENTS")
			t = newTable(w, "PARTITION", "BASE", "LAST", "BYTES", "FIRST-TIMESTAMP", "MAX-TIMESTAMP", "UPLOADED", "CRC32C")
			for _, p := range out.Partitions {
				for _, s := range p.Segments {
					t.row(p.Partition, s.BaseOffset, s.LastOffset, s.Size, msTime(s.FirstTimestamp), msTime(s.MaxTimestamp), msTime(s.UploadTime), s.CRC32C)
				}
			}
			return t.flush()
		},
	}
}

func msTime(ms int64) string {
	if ms < 0 {
		return "-"
	}
	return time.UnixMilli(ms).UTC().Format(timeLayout)
}

func (ac *archiveCmd) verifyCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "verify TOPIC",
		Short: "Read every archived segment of a topic, checking checksums and gaps",
		Args:  wantArgs(1, 1, "a TOPIC name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), 30*time.Minute)
			defer cancel()
			var out server.ArchiveVerifyJSON
			if err := ac.call(ctx, cmd, http.MethodPost, "/archive/"+url.PathEscape(args[0])+"/verify", &out); err != nil {
				return fmt.Errorf("archive verify %s: %w", args[0], err)
			}
			if ac.a.json() {
				if err := writeJSON(cmd.OutOrStdout(), out); err != nil {
					return err
				}
			} else {
				w := cmd.OutOrStdout()
				fmt.Fprintf(w, "%s: %d segments, %d bytes read\n", out.Topic, out.Segments, out.Bytes)
				if len(out.Problems) > 0 {
					t := newTable(w, "PARTITION", "BASE", "PROBLEM")
					for _, p := range out.Problems {
						t.row(p.Partition, p.BaseOffset, p.Problem)
					}
					if err := t.flush(); err != nil {
						return err
					}
				}
			}
			if !out.OK {
				return fmt.Errorf("archive verify %s: %d problems", args[0], len(out.Problems))
			}
			return nil
		},
	}
}

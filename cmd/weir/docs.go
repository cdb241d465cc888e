package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
)

// newGenDocsCmd writes docs/cli.md from the command tree (make docs).
func newGenDocsCmd() *cobra.Command {
	return &cobra.Command{
		Use:    "gen-docs [DIR]",
		Short:  "Write the command reference DIR/cli.md (default DIR: docs)",
		Hidden: true,
		Args:   cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := "docs"
			if len(args) == 1 {
				dir = args[0]
			}
			var b bytes.Buffer
			if err := genMarkdown(cmd.Root(), &b); err != nil {
				return err
			}
			path := filepath.Join(dir, "cli.md")
			if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
				return err
			}
			fmt.Fprintln(cmd.ErrOrStderr(), "wrote", path)
			return nil
		},
	}
}

// docCommands lists root and its visible descendants, depth first.
func docCommands(c *cobra.Command) []*cobra.Command {
	out := []*cobra.Command{c}
	for _, sub := range c.Commands() {
		if !sub.IsAvailableCommand() || sub.IsAdditionalHelpTopicCommand() || sub.Name() == "help" {
			continue
		}
		out = append(out, docCommands(sub)...)
	}
	return out
}

func anchor(s string) string { return strings.ReplaceAll(strings.ToLower(s), " ", "-") }

// genMarkdown renders the reference for root and every visible subcommand
// in one Markdown file, in the spirit of cobra/doc's GenMarkdownTree.
func genMarkdown(root *cobra.Command, w io.Writer) error {
	var b bytes.Buffer
	b.WriteString("# weir command reference\n\n")
	b.WriteString("<!-- Generated from the cobra commands by `make docs`; do not edit. -->\n\n")
	cmds := docCommands(root)
	for _, c := range cmds {
		indent := strings.Repeat("  ", strings.Count(c.CommandPath(), " "))
		fmt.Fprintf(&b, "%s- [%s](#%s) — %s\n", indent, c.CommandPath(), anchor(c.CommandPath()), c.Short)
	}
	for _, c := range cmds {
		c.InitDefaultHelpFlag()
		fmt.Fprintf(&b, "\n## %s\n\n%s\n\n", c.CommandPath(), c.Short)
		if c.Runnable() {
			fmt.Fprintf(&b, "```\n%s\n```\n\n", c.UseLine())
		}
		if c.Long != "" {
			fmt.Fprintf(&b, "%s\n\n", strings.TrimSpace(c.Long))
		}
		if len(c.Aliases) > 0 {
			fmt.Fprintf(&b, "Aliases: %s\n\n", strings.Join(c.Aliases, ", "))
		}
		if c.Example != "" {
			fmt.Fprintf(&b, "Examples:\n\n```\n%s\n```\n\n", strings.TrimRight(c.Example, "\n"))
		}
		if subs := c.Commands(); c.HasAvailableSubCommands() {
			b.WriteString("Subcommands:\n\n")
			for _, s := range subs {
				if s.IsAvailableCommand() && s.Name() != "help" {
					fmt.Fprintf(&b, "- [%s](#%s) — %s\n", s.CommandPath(), anchor(s.CommandPath()), s.Short)
				}
			}
			b.WriteString("\n")
		}
		if f := c.NonInheritedFlags(); f.HasAvailableFlags() {
			fmt.Fprintf(&b, "Flags:\n\n```\n%s```\n\n", f.FlagUsages())
		}
		if f := c.InheritedFlags(); f.HasAvailableFlags() {
			fmt.Fprintf(&b, "Global flags:\n\n```\n%s```\n\n", f.FlagUsages())
		}
	}
	out := strings.TrimRight(b.String(), "\n") + "\n"
	_, err := io.WriteString(w, out)
	return err
}

package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// writeJSON writes v as indented JSON: the stable, scriptable output of
// --format json.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// table writes aligned columns, headers in capitals as rpk and kubectl do.
type table struct{ tw *tabwriter.Writer }

func newTable(w io.Writer, headers ...string) *table {
	t := &table{tw: tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)}
	if len(headers) > 0 {
		t.row(toAny(headers)...)
	}
	return t
}

func toAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

func (t *table) row(cells ...any) {
	for i, c := range cells {
		if i > 0 {
			_, _ = io.WriteString(t.tw, "\t")
		}
		_, _ = io.WriteString(t.tw, cell(c))
	}
	_, _ = io.WriteString(t.tw, "\n")
}

func (t *table) flush() error { return t.tw.Flush() }

// cell renders one table cell; tabs and newlines would break alignment.
func cell(c any) string {
	var s string
	switch v := c.(type) {
	case string:
		s = v
	case *int64:
		if v == nil {
			return "-"
		}
		s = strconv.FormatInt(*v, 10)
	default:
		s = fmt.Sprint(v)
	}
	if s == "" {
		return "-"
	}
	return strings.NewReplacer("\t", " ", "\n", " ").Replace(s)
}

// section writes a titled block, as rpk's describe commands do.
func section(w io.Writer, title string) {
	fmt.Fprintf(w, "%s\n%s\n", title, strings.Repeat("=", len(title)))
}

// humanBytes renders a size in binary units.
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// isTerminal reports whether w is an interactive terminal (for progress
// and prompts, never for output that scripts read).
func isTerminal(v any) bool {
	f, ok := v.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// progress prints a self-overwriting counter on an interactive stderr for
// operations that can take a while; elsewhere it is silent.
type progress struct {
	w     io.Writer
	label string
	on    bool
	last  time.Time
	shown bool
}

func newProgress(w io.Writer, label string) *progress {
	return &progress{w: w, label: label, on: isTerminal(w), last: time.Now()}
}

// update shows n at most every 200ms, and only once the operation has run
// for a moment, so quick commands print nothing.
func (p *progress) update(n int) {
	if !p.on || time.Since(p.last) < 200*time.Millisecond {
		return
	}
	p.last = time.Now()
	p.shown = true
	fmt.Fprintf(p.w, "\r%s %d…", p.label, n)
}

func (p *progress) done() {
	if p.shown {
		fmt.Fprint(p.w, "\r\033[K")
	}
}

// recordJSON is one consumed record in --format json (JSON lines).
type recordJSON struct {
	Topic     string       `json:"topic"`
	Partition int32        `json:"partition"`
	Offset    int64        `json:"offset"`
	Timestamp int64        `json:"timestamp"`
	Key       *string      `json:"key"`
	Value     *string      `json:"value"`
	Headers   []headerJSON `json:"headers"`
}

type headerJSON struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

func newRecordJSON(r *kgo.Record) recordJSON {
	j := recordJSON{
		Topic:     r.Topic,
		Partition: r.Partition,
		Offset:    r.Offset,
		Timestamp: r.Timestamp.UnixMilli(),
		Headers:   []headerJSON{},
	}
	if r.Key != nil {
		k := string(r.Key)
		j.Key = &k
	}
	if r.Value != nil {
		v := string(r.Value)
		j.Value = &v
	}
	for _, h := range r.Headers {
		j.Headers = append(j.Headers, headerJSON{h.Key, string(h.Value)})
	}
	return j
}

// recordTemplate formats records like kcat's -f: a format string with
// %-verbs for record fields and backslash escapes.
type recordTemplate []templatePart

type templatePart struct {
	lit  string
	verb byte
}

// templateVerbs documents the verbs (for help text and errors).
const templateVerbs = `%v value, %k key, %h headers (k=v,k=v), %t topic, %p partition, ` +
	`%o offset, %T timestamp (Unix ms), %d timestamp (RFC 3339), %V value length, %K key length, %% a percent sign; ` +
	`\n \t \r \\ escapes`

// parseTemplate compiles s. A newline is added unless s ends with one, so
// each record is a line.
func parseTemplate(s string) (recordTemplate, error) {
	var (
		parts recordTemplate
		lit   strings.Builder
	)
	flush := func() {
		if lit.Len() > 0 {
			parts = append(parts, templatePart{lit: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '\\':
			if i+1 == len(s) {
				return nil, fmt.Errorf("template %q ends with a lone backslash", s)
			}
			i++
			switch s[i] {
			case 'n':
				lit.WriteByte('\n')
			case 't':
				lit.WriteByte('\t')
			case 'r':
				lit.WriteByte('\r')
			case '\\':
				lit.WriteByte('\\')
			default:
				return nil, fmt.Errorf("template %q: unknown escape \\%c", s, s[i])
			}
		case '%':
			if i+1 == len(s) {
				return nil, fmt.Errorf("template %q ends with a lone %%", s)
			}
			i++
			switch v := s[i]; v {
			case '%':
				lit.WriteByte('%')
			case 's': // kcat's name for the value
				flush()
				parts = append(parts, templatePart{verb: 'v'})
			case 'S':
				flush()
				parts = append(parts, templatePart{verb: 'V'})
			case 'v', 'k', 'h', 't', 'p', 'o', 'T', 'd', 'V', 'K':
				flush()
				parts = append(parts, templatePart{verb: v})
			default:
				return nil, fmt.Errorf("template %q: unknown verb %%%c (want %s)", s, v, templateVerbs)
			}
		default:
			lit.WriteByte(c)
		}
	}
	if !strings.HasSuffix(lit.String(), "\n") {
		lit.WriteByte('\n')
	}
	flush()
	return parts, nil
}

func (t recordTemplate) write(b *bytes.Buffer, r *kgo.Record) {
	for _, p := range t {
		switch p.verb {
		case 0:
			b.WriteString(p.lit)
		case 'v':
			b.Write(r.Value)
		case 'k':
			b.Write(r.Key)
		case 'h':
			for i, h := range r.Headers {
				if i > 0 {
					b.WriteByte(',')
				}
				b.WriteString(h.Key)
				b.WriteByte('=')
				b.Write(h.Value)
			}
		case 't':
			b.WriteString(r.Topic)
		case 'p':
			b.WriteString(strconv.Itoa(int(r.Partition)))
		case 'o':
			b.WriteString(strconv.FormatInt(r.Offset, 10))
		case 'T':
			b.WriteString(strconv.FormatInt(r.Timestamp.UnixMilli(), 10))
		case 'd':
			b.WriteString(r.Timestamp.UTC().Format(time.RFC3339Nano))
		case 'V':
			b.WriteString(strconv.Itoa(len(r.Value)))
		case 'K':
			b.WriteString(strconv.Itoa(len(r.Key)))
		}
	}
}

// writeJSONCompact writes v as one line of JSON (JSON lines).
func writeJSONCompact(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// writeDeleted reports what a delete command removed: a JSON array of
// item(name) (empty, not null, when nothing was deleted), or a table of
// names marked deleted.
func (a *app) writeDeleted(w io.Writer, header string, names []string, item func(string) any) error {
	if a.json() {
		out := make([]any, 0, len(names))
		for _, n := range names {
			out = append(out, item(n))
		}
		return writeJSON(w, out)
	}
	if len(names) == 0 {
		return nil
	}
	t := newTable(w, header, "STATUS")
	for _, n := range names {
		t.row(n, "deleted")
	}
	return t.flush()
}

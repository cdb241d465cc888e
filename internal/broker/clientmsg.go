package broker

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/weirhq/weir/internal/commitlog"
)

// dataDirPlaceholder stands for the data directory in text sent to
// clients.
const dataDirPlaceholder = "<data-dir>"

// ClientMessage returns the text to send a client for err (an error
// message field of a Kafka response, an HTTP error body), which must not
// tell the client where the server keeps its files:
//
//   - a storage error (ErrStorage, commitlog.ErrCorrupt), whose text
//     names files, becomes a fixed sentence naming at most the partition,
//     and err itself is logged at error level for the operator (once a
//     minute for one error text, so that a failed log refusing every
//     produce does not log every request);
//   - any other error's text is returned with the data directory, as
//     configured and as an absolute path, replaced by "<data-dir>".
//
// ClientMessage(nil) is "".
func (b *Broker) ClientMessage(err error) string {
	if err == nil {
		return ""
	}
	text := err.Error()
	storage, corrupt := errors.Is(err, ErrStorage), errors.Is(err, commitlog.ErrCorrupt)
	if !storage && !corrupt {
		return b.redactDir(text)
	}
	what := "storage error"
	if corrupt {
		what = "corrupt data"
	}
	where := ""
	if topic, p, ok := b.partitionIn(text); ok {
		where = fmt.Sprintf(" in partition %s-%d", topic, p)
	}
	b.logWithheld(err, text)
	return what + " on this broker" + where + "; the broker's log has the details"
}

// dataDirForms returns the ways the data directory is written in error
// texts, longest first: as configured, cleaned, and absolute. Forms that
// would match too much ("", ".", "/") are left out.
func dataDirForms(dir string) []string {
	forms := []string{dir, filepath.Clean(dir)}
	if abs, err := filepath.Abs(dir); err == nil {
		forms = append(forms, abs)
	}
	out := forms[:0]
	for _, f := range forms {
		f = strings.TrimSuffix(f, string(filepath.Separator))
		if len(f) > 1 && f != "." && !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	slices.SortStableFunc(out, func(a, b string) int { return len(b) - len(a) })
	return out
}

// redactDir replaces the data directory in text by "<data-dir>" where it
// stands as a path: not inside a longer name, and, for a relative form,
// only where a path continues it ("weir-data/logs/..."), so that a
// directory named like a common word ("data") does not eat that word.
func (b *Broker) redactDir(text string) string {
	for _, dir := range b.dataDirs {
		text = replacePath(text, dir, dataDirPlaceholder, filepath.IsAbs(dir))
	}
	return text
}

func replacePath(text, dir, repl string, abs bool) string {
	var out strings.Builder
	for {
		i := strings.Index(text, dir)
		if i < 0 {
			break
		}
		j := i + len(dir)
		before := i == 0 || !isPathByte(text[i-1])
		after := j < len(text) && text[j] == filepath.Separator ||
			abs && (j == len(text) || !isPathByte(text[j]))
		out.WriteString(text[:i])
		if before && after {
			out.WriteString(repl)
		} else {
			out.WriteString(dir)
		}
		text = text[j:]
	}
	if out.Len() == 0 {
		return text
	}
	out.WriteString(text)
	return out.String()
}

// isPathByte reports whether c may be part of a file name in a path Weir
// writes (topic names and ids, numbers, the usual punctuation).
func isPathByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '.' || c == '_' || c == '-' || c == '/' || c == filepath.Separator
}

// partitionIn finds the partition whose log directory,
// logs/<topic-id>/<p>, text names, if it is a topic of this broker.
func (b *Broker) partitionIn(text string) (topic string, p int32, ok bool) {
	prefix := b.logsDir() + string(filepath.Separator)
	i := strings.Index(text, prefix)
	if i < 0 {
		return "", 0, false
	}
	rest := text[i+len(prefix):]
	idHex, rest, ok := strings.Cut(rest, string(filepath.Separator))
	if !ok {
		return "", 0, false
	}
	id, err := parseID(idHex)
	if err != nil {
		return "", 0, false
	}
	end := strings.IndexFunc(rest, func(r rune) bool { return r < '0' || r > '9' })
	if end < 0 {
		end = len(rest)
	}
	n, err := strconv.ParseInt(rest[:end], 10, 32)
	if err != nil {
		return "", 0, false
	}
	t, err := b.TopicByID(id)
	if err != nil {
		return "", 0, false
	}
	return t.Name, int32(n), true
}

// withheldLogEvery is how often one withheld error text is logged.
const withheldLogEvery = time.Minute

// withheldLog remembers when each error text ClientMessage withheld from
// a client was last logged.
type withheldLog struct {
	mu     sync.Mutex
	logged map[string]time.Time
}

// logWithheld logs err, whose text a client was not given, unless the
// same text was logged within withheldLogEvery.
func (b *Broker) logWithheld(err error, text string) {
	now := b.opts.Now()
	w := &b.withheld
	w.mu.Lock()
	last, seen := w.logged[text]
	due := !seen || now.Sub(last) >= withheldLogEvery
	if due {
		if w.logged == nil || len(w.logged) >= 1024 {
			w.logged = map[string]time.Time{} // bounded: forget the lot
		}
		w.logged[text] = now
	}
	w.mu.Unlock()
	if due {
		b.opts.Logger.Error("broker: storage error answered to a client without its details", "err", err)
	}
}

package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/dustin/go-humanize"
)

// table is a bordered text table in the style etcdutl prints: centred
// upper-case headers, right-aligned cells.
type table struct {
	headers []string
	rows    [][]string
}

func (t *table) add(cells ...string) { t.rows = append(t.rows, cells) }

func (t *table) render(w io.Writer) error {
	widths := make([]int, len(t.headers))
	for i, h := range t.headers {
		widths[i] = utf8.RuneCountInString(h)
	}
	for _, r := range t.rows {
		for i, c := range r {
			widths[i] = max(widths[i], utf8.RuneCountInString(c))
		}
	}
	var b strings.Builder
	sep := func() {
		for _, wd := range widths {
			b.WriteString("+" + strings.Repeat("-", wd+2))
		}
		b.WriteString("+\n")
	}
	sep()
	for i, h := range t.headers {
		h = strings.ToUpper(h)
		pad := widths[i] - utf8.RuneCountInString(h)
		fmt.Fprintf(&b, "| %s%s%s ", strings.Repeat(" ", pad-pad/2), h, strings.Repeat(" ", pad/2))
	}
	b.WriteString("|\n")
	sep()
	for _, r := range t.rows {
		for i, c := range r {
			fmt.Fprintf(&b, "| %*s ", widths[i], c)
		}
		b.WriteString("|\n")
	}
	sep()
	_, err := io.WriteString(w, b.String())
	return err
}

// writeJSON prints v as indented JSON.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// size humanizes bytes as etcdutl does ("25 kB").
func size(n int64) string {
	if n < 0 {
		return "-"
	}
	return humanize.Bytes(uint64(n))
}

// progress shows bytes done on stderr when it is a terminal.
func (e *env) progress(what string) func(done, total int64) {
	if !e.tty {
		return nil
	}
	var (
		mu   sync.Mutex
		last time.Time
	)
	return func(done, total int64) {
		mu.Lock()
		defer mu.Unlock()
		if now := time.Now(); now.Sub(last) < 200*time.Millisecond && done != total {
			return
		} else {
			last = now
		}
		if total > 0 {
			fmt.Fprintf(e.stderr, "\r%s: %s of %s (%d%%)   ", what, size(done), size(total), done*100/total)
		} else {
			fmt.Fprintf(e.stderr, "\r%s: %s   ", what, size(done))
		}
	}
}

// endProgress ends the progress line, if one was drawn.
func (e *env) endProgress() {
	if e.tty {
		fmt.Fprintln(e.stderr)
	}
}

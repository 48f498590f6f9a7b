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

// table is a bordered text table, as snapkit prints them.
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
		fmt.Fprintf(&b, "| %-*s ", widths[i], strings.ToUpper(h))
	}
	b.WriteString("|\n")
	sep()
	for _, r := range t.rows {
		for i, c := range r {
			fmt.Fprintf(&b, "| %-*s ", widths[i], c)
		}
		b.WriteString("|\n")
	}
	sep()
	_, err := io.WriteString(w, b.String())
	return err
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func size(n int64) string { return humanize.Bytes(uint64(max(n, 0))) }

func ageOf(now, t time.Time) string {
	d := now.Sub(t)
	switch {
	case d < time.Minute:
		return d.Round(time.Second).String()
	case d < 48*time.Hour:
		return d.Round(time.Minute).String()
	}
	return fmt.Sprintf("%dd%dh", int(d.Hours())/24, int(d.Hours())%24)
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

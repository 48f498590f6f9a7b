package clikit

import (
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// Table is a bordered text table with upper-case headers. By default it
// is in the style etcdutl prints: centred headers, right-aligned cells;
// Left aligns both to the left.
type Table struct {
	Headers []string
	Rows    [][]string
	Left    bool
}

// Add appends a row.
func (t *Table) Add(cells ...string) { t.Rows = append(t.Rows, cells) }

// Render writes the table to w.
func (t *Table) Render(w io.Writer) error {
	widths := make([]int, len(t.Headers))
	for i, h := range t.Headers {
		widths[i] = utf8.RuneCountInString(h)
	}
	for _, r := range t.Rows {
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
	for i, h := range t.Headers {
		h = strings.ToUpper(h)
		if t.Left {
			fmt.Fprintf(&b, "| %-*s ", widths[i], h)
		} else {
			pad := widths[i] - utf8.RuneCountInString(h)
			fmt.Fprintf(&b, "| %s%s%s ", strings.Repeat(" ", pad-pad/2), h, strings.Repeat(" ", pad/2))
		}
	}
	b.WriteString("|\n")
	sep()
	for _, r := range t.Rows {
		for i, c := range r {
			if t.Left {
				fmt.Fprintf(&b, "| %-*s ", widths[i], c)
			} else {
				fmt.Fprintf(&b, "| %*s ", widths[i], c)
			}
		}
		b.WriteString("|\n")
	}
	sep()
	_, err := io.WriteString(w, b.String())
	return err
}

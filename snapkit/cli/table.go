package cli

import (
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
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

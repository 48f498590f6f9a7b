// Package components holds lbtop's screen parts that know nothing of etcd:
// a table whose columns drop by priority when the terminal is narrow, a
// quota bar and a sparkline.
package components

import (
	"strings"

	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/x/ansi"
)

// Seg is a run of text in one style.
type Seg struct {
	Text  string
	Style lipgloss.Style
}

// Cell is a table cell: one or more runs of text.
type Cell []Seg

// Plain is a cell of one run.
func Plain(text string, st lipgloss.Style) Cell { return Cell{{Text: text, Style: st}} }

// Width is the cell's width in terminal cells.
func (c Cell) Width() int {
	w := 0
	for _, s := range c {
		w += ansi.StringWidth(s.Text)
	}
	return w
}

// String is the cell's text without styles.
func (c Cell) String() string {
	var b strings.Builder
	for _, s := range c {
		b.WriteString(s.Text)
	}
	return b.String()
}

// truncate cuts the cell to width, ending it with "…" if it was cut.
func (c Cell) truncate(width int) Cell {
	if c.Width() <= width {
		return c
	}
	if width <= 0 {
		return nil
	}
	var out Cell
	left := width - 1 // room for the ellipsis
	for _, s := range c {
		w := ansi.StringWidth(s.Text)
		if w <= left {
			out = append(out, s)
			left -= w
			continue
		}
		out = append(out, Seg{Text: ansi.Truncate(s.Text, left, ""), Style: s.Style})
		break
	}
	st := lipgloss.NewStyle()
	if len(out) > 0 {
		st = out[len(out)-1].Style
	}
	return append(out, Seg{Text: "…", Style: st})
}

// Column describes one column.
type Column struct {
	Title string
	// Priority decides which columns go first when the table does not fit:
	// the highest number first, the rightmost first among equals; 0 never.
	Priority int
	Right    bool // right-aligned
	// Flex marks the column that takes the width left over, down to
	// MinWidth, truncating its cells.
	Flex     bool
	MinWidth int
}

// Row is one row; Style is inherited by its cells (the selected row's
// reverse video, say).
type Row struct {
	Cells []Cell
	Style lipgloss.Style
}

// Table is a table laid out for a width.
type Table struct {
	Columns []Column
	Rows    []Row
	Width   int
	Header  lipgloss.Style
}

// Gap is the space between columns.
const Gap = 2

// Layout returns the columns shown at t.Width, in order, and their widths.
func (t *Table) Layout() (cols, widths []int) {
	natural := make([]int, len(t.Columns))
	for i, c := range t.Columns {
		natural[i] = ansi.StringWidth(c.Title)
		for _, r := range t.Rows {
			if i < len(r.Cells) {
				natural[i] = max(natural[i], r.Cells[i].Width())
			}
		}
	}
	minimum := func(i int) int {
		if t.Columns[i].Flex {
			return min(natural[i], max(t.Columns[i].MinWidth, ansi.StringWidth(t.Columns[i].Title)))
		}
		return natural[i]
	}
	for i := range t.Columns {
		cols = append(cols, i)
	}
	total := func() int {
		w := Gap * (len(cols) - 1)
		for _, i := range cols {
			w += minimum(i)
		}
		return w
	}
	for total() > t.Width {
		drop := -1
		for k, i := range cols {
			if p := t.Columns[i].Priority; p > 0 && (drop < 0 || p >= t.Columns[cols[drop]].Priority) {
				drop = k
			}
		}
		if drop < 0 {
			break
		}
		cols = append(cols[:drop], cols[drop+1:]...)
	}
	spare := t.Width - total()
	for _, i := range cols {
		w := minimum(i)
		if t.Columns[i].Flex && spare > 0 {
			grow := min(spare, natural[i]-w)
			w += grow
			spare -= grow
		}
		widths = append(widths, w)
	}
	return cols, widths
}

// Render returns the header and the rows as lines no wider than t.Width.
func (t *Table) Render() []string {
	cols, widths := t.Layout()
	header := Row{Style: t.Header}
	for _, c := range t.Columns {
		header.Cells = append(header.Cells, Plain(c.Title, lipgloss.NewStyle()))
	}
	lines := []string{t.line(header, cols, widths)}
	for _, r := range t.Rows {
		lines = append(lines, t.line(r, cols, widths))
	}
	return lines
}

func (t *Table) line(r Row, cols, widths []int) string {
	var b strings.Builder
	pad := func(n int) {
		if n > 0 {
			b.WriteString(r.Style.Render(strings.Repeat(" ", n)))
		}
	}
	for k, i := range cols {
		if k > 0 {
			pad(Gap)
		}
		var cell Cell
		if i < len(r.Cells) {
			cell = r.Cells[i].truncate(widths[k])
		}
		space := widths[k] - cell.Width()
		if t.Columns[i].Right {
			pad(space)
		}
		for _, s := range cell {
			b.WriteString(s.Style.Inherit(r.Style).Render(s.Text))
		}
		if !t.Columns[i].Right && k < len(cols)-1 {
			pad(space)
		} else if !t.Columns[i].Right && r.Style.GetReverse() {
			pad(space) // the selection runs to the end of the last column
		}
	}
	return ansi.Truncate(b.String(), t.Width, "")
}

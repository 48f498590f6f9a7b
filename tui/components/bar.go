package components

import (
	"strings"

	"charm.land/lipgloss/v2"
)

// BarStyles colour the bar's parts.
type BarStyles struct {
	Used, Free, Empty lipgloss.Style
	// Warn and Bad replace Used when the db holds more than 70% and 90% of
	// its quota.
	Warn, Bad lipgloss.Style
}

// Bar draws a db against its quota in width cells: █ bytes in use, ▒
// allocated but free (what a defragment would give back), ░ quota not yet
// allocated. A db at or over its quota fills the bar in the Bad style.
func Bar(size, inUse, quota int64, width int, st BarStyles) Cell {
	if quota <= 0 || width <= 0 {
		return nil
	}
	cells := func(n int64) int {
		return int(min(int64(width), (n*int64(width)+quota/2)/quota))
	}
	total, used := cells(size), cells(min(inUse, size))
	usedStyle := st.Used
	switch {
	case size*10 >= quota*9:
		usedStyle = st.Bad
	case size*10 >= quota*7:
		usedStyle = st.Warn
	}
	var c Cell
	add := func(glyph string, n int, s lipgloss.Style) {
		if n > 0 {
			c = append(c, Seg{Text: strings.Repeat(glyph, n), Style: s})
		}
	}
	add("█", used, usedStyle)
	add("▒", total-used, st.Free)
	add("░", width-total, st.Empty)
	return c
}

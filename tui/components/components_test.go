package components

import (
	"math"
	"slices"
	"strings"
	"testing"

	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/x/ansi"
)

func TestTableDropsColumnsByPriority(t *testing.T) {
	none := lipgloss.NewStyle()
	cols := []Column{
		{Title: "NAME"},            // 0: never dropped
		{Title: "ID", Priority: 3}, // drops first
		{Title: "HEALTH"},          // 0
		{Title: "A", Priority: 2},  // drops after ID
		{Title: "B", Priority: 2},  // drops before A (rightmost among equals)
		{Title: "ERRORS", Priority: 1, Flex: true, MinWidth: 6},
	}
	row := Row{Cells: []Cell{
		Plain("m1", none), Plain("8e9e05c52164694d", none), Plain("true", none),
		Plain("aaaa", none), Plain("bbbb", none), Plain("connection refused", none),
	}}
	for _, tc := range []struct {
		width int
		cols  []string
		line  string
	}{
		{100, []string{"NAME", "ID", "HEALTH", "A", "B", "ERRORS"}, "m1    8e9e05c52164694d  true    aaaa  bbbb  connection refused"},
		// ERRORS shrinks to its minimum before anything drops.
		{50, []string{"NAME", "ID", "HEALTH", "A", "B", "ERRORS"}, "m1    8e9e05c52164694d  true    aaaa  bbbb  conne…"},
		{40, []string{"NAME", "HEALTH", "A", "B", "ERRORS"}, "m1    true    aaaa  bbbb  connection re…"},
		{30, []string{"NAME", "HEALTH", "A", "ERRORS"}, "m1    true    aaaa  connectio…"},
		{20, []string{"NAME", "HEALTH", "ERRORS"}, "m1    true    conne…"},
		{12, []string{"NAME", "HEALTH"}, "m1    true"},
		// Columns of priority 0 stay; the line is cut at the width.
		{8, []string{"NAME", "HEALTH"}, "m1    tr"},
	} {
		tab := Table{Columns: cols, Rows: []Row{row}, Width: tc.width}
		idx, _ := tab.Layout()
		var got []string
		for _, i := range idx {
			got = append(got, cols[i].Title)
		}
		if !slices.Equal(got, tc.cols) {
			t.Errorf("width %d: columns %v, want %v", tc.width, got, tc.cols)
		}
		lines := tab.Render()
		if l := strings.TrimRight(ansi.Strip(lines[1]), " "); l != tc.line {
			t.Errorf("width %d: row %q, want %q", tc.width, l, tc.line)
		}
		for _, l := range lines {
			if ansi.StringWidth(l) > tc.width {
				t.Errorf("width %d: %q is wider", tc.width, l)
			}
		}
	}
}

func TestBar(t *testing.T) {
	st := BarStyles{}
	for _, tc := range []struct {
		size, inUse, quota int64
		want               string
	}{
		{0, 0, 100, "░░░░░░░░░░"},
		{50, 30, 100, "███▒▒░░░░░"},
		{100, 100, 100, "██████████"},
		{300, 200, 100, "██████████"}, // over quota: full
		{1, 1, 2 << 30, "░░░░░░░░░░"},
	} {
		if got := Bar(tc.size, tc.inUse, tc.quota, 10, st).String(); got != tc.want {
			t.Errorf("Bar(%d, %d, %d) = %q, want %q", tc.size, tc.inUse, tc.quota, got, tc.want)
		}
	}
	if Bar(1, 1, 0, 10, st) != nil {
		t.Error("a bar without a quota")
	}
}

func TestSparkline(t *testing.T) {
	nan := math.NaN()
	for _, tc := range []struct {
		values []float64
		width  int
		want   string
	}{
		{[]float64{1, 2, 3, 4, 5, 6, 7, 8}, 8, "▁▂▃▄▅▆▇█"},
		{[]float64{5, 5, 5}, 8, "▁▁▁"},
		{[]float64{0, nan, 10}, 8, "▁ █"},
		{[]float64{0, 100, 1, 2}, 2, "▁█"}, // the last width values
		{nil, 8, ""},
	} {
		if got := Sparkline(tc.values, tc.width); got != tc.want {
			t.Errorf("Sparkline(%v, %d) = %q, want %q", tc.values, tc.width, got, tc.want)
		}
	}
}

package tui

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/x/ansi"
	"github.com/dustin/go-humanize"

	"github.com/lifeboat-dev/lifeboat/tui/components"
)

// View renders the screen in the alternate screen buffer.
func (m *Model) View() tea.View {
	v := tea.NewView(m.Render())
	v.AltScreen = true
	v.WindowTitle = "lbtop"
	return v
}

// Render is the screen's text, styled; lines are cut to the width and the
// screen to the height.
func (m *Model) Render() string {
	var lines []string
	lines = append(lines, m.titleLine())
	switch {
	case m.showHelp:
		lines = append(lines, "", m.c.Styles.Title.Render("keys"), "")
		lines = append(lines, strings.Split(m.help.FullHelpView(m.c.KeyMap.FullHelp()), "\n")...)
	case m.page == pageDetail && m.selectedMember() != nil:
		lines = append(lines, m.clusterLines()...)
		lines = append(lines, "")
		lines = append(lines, m.detailLines()...)
	default:
		lines = append(lines, m.clusterLines()...)
		lines = append(lines, "")
		lines = append(lines, m.tableLines()...)
		if b := m.Backup(); b != nil {
			lines = append(lines, "")
			lines = append(lines, m.backupLines(b)...)
		}
	}
	var foot []string
	if m.filtering || m.filter.Value() != "" {
		foot = append(foot, m.filter.View())
	}
	foot = append(foot, m.help.ShortHelpView(m.c.KeyMap.ShortHelp()))
	if h := m.c.Height; h > 0 && len(lines)+1+len(foot) > h {
		lines = lines[:max(0, h-1-len(foot))]
	}
	lines = append(lines, "")
	lines = append(lines, foot...)
	for i, l := range lines {
		lines[i] = ansi.Truncate(l, m.c.Width, "")
	}
	return strings.Join(lines, "\n")
}

func (m *Model) titleLine() string {
	st := m.c.Styles
	parts := []string{st.Title.Render("lbtop"), "every " + every(m.refresh)}
	if cs, ok := m.Cluster(); ok {
		parts = append(parts, "updated "+age(cs.Updated)+" ago")
	}
	if m.polling {
		parts = append(parts, st.Dim.Render("refreshing…"))
	}
	return strings.Join(parts, "  ")
}

// clusterLines flow the cluster line's parts into the width.
func (m *Model) clusterLines() []string {
	st := m.c.Styles
	cs, ok := m.Cluster()
	if !ok {
		return []string{st.Dim.Render("waiting for the first refresh…")}
	}
	none := lipgloss.NewStyle()
	var parts []components.Cell
	add := func(s lipgloss.Style, format string, args ...any) {
		parts = append(parts, components.Plain(fmt.Sprintf(format, args...), s))
	}
	add(none, "cluster %s", idText(cs.ClusterID))
	add(none, "%d members", cs.Members)
	switch {
	case cs.QuorumOK:
		add(st.Good, "%d/%d voters up, quorum ok", cs.VotersUp, cs.Voters)
	case cs.Voters > 0 && cs.VotersUp >= cs.Voters/2+1:
		add(st.Bad, "%d/%d voters up, NO LEADER", cs.VotersUp, cs.Voters)
	default:
		add(st.Bad, "%d/%d voters up, QUORUM LOST", cs.VotersUp, cs.Voters)
	}
	if cs.Leader != "" {
		add(none, "leader %s", cs.Leader)
	} else {
		add(st.Bad, "no leader")
	}
	add(none, "%d leader %s", cs.LeaderChanges, plural(cs.LeaderChanges, "change", "changes"))
	if cs.RateKnown {
		add(none, "%.1f rev/s", cs.Rate)
	} else {
		add(st.Dim, "- rev/s")
	}
	if len(cs.Alarms) > 0 {
		add(st.Bad, "ALARM %s", strings.Join(cs.Alarms, " "))
	}
	switch h := cs.Hash; {
	case h == nil:
	case h.Problem != "":
		add(st.Dim, "hashkv not compared: %s", h.Problem)
	case h.Agree():
		add(st.Good, "hashkv agree at rev %d, %s ago", h.Revision, age(cs.HashAge))
	default:
		add(st.Bad, "hashkv DIFFERS at rev %d, %s ago: %s", h.Revision, age(cs.HashAge), strings.Join(cs.HashDiffer, ", "))
	}
	return flow(parts, m.c.Width)
}

// flow lays cells out left to right, two spaces apart, starting a new
// line when the next does not fit.
func flow(parts []components.Cell, width int) []string {
	var lines []string
	var b strings.Builder
	w := 0
	for _, p := range parts {
		pw := p.Width()
		if w > 0 && w+components.Gap+pw > width {
			lines = append(lines, b.String())
			b.Reset()
			w = 0
		}
		if w > 0 {
			b.WriteString(strings.Repeat(" ", components.Gap))
			w += components.Gap
		}
		for _, s := range p {
			b.WriteString(s.Style.Render(s.Text))
		}
		w += pw
	}
	return append(lines, b.String())
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// The members table's columns, with etcdctl's names. Priorities: what an
// operator needs first (name, health, leader, lag, alarms) stays longest.
var memberColumns = []components.Column{
	{Title: " "},
	{Title: "NAME"},
	{Title: "ID", Priority: 5},
	{Title: "ENDPOINT", Priority: 4},
	{Title: "HEALTH"},
	{Title: "IS LEADER", Priority: 1},
	{Title: "IS LEARNER", Priority: 6},
	{Title: "VERSION", Priority: 7},
	{Title: "DB SIZE / IN USE / QUOTA", Priority: 2},
	{Title: "RAFT TERM", Priority: 6, Right: true},
	{Title: "RAFT INDEX", Priority: 3, Right: true},
	{Title: "RAFT APPLIED INDEX", Priority: 5, Right: true},
	{Title: "LAG", Priority: 1, Right: true},
	{Title: "RTT", Priority: 4, Right: true},
	{Title: "ALARMS", Priority: 1},
	{Title: "ERRORS", Priority: 2, Flex: true, MinWidth: 20},
}

// barWidth is the quota bar's width in cells.
const barWidth = 10

func (m *Model) tableLines() []string {
	st := m.c.Styles
	none := lipgloss.NewStyle()
	t := components.Table{Columns: memberColumns, Width: m.c.Width, Header: st.Header}
	for _, r := range m.Rows() {
		row := components.Row{}
		if r.Selected {
			row.Style = st.Selected
		}
		bad := none
		if !r.Healthy {
			bad = st.Down
		}
		dash := components.Plain("-", st.Dim)
		marker := " "
		if r.Selected {
			marker = "›"
		}
		cells := []components.Cell{
			components.Plain(marker, none),
			components.Plain(orDash(r.Name), bad),
			components.Plain(idText(r.ID), none),
			components.Plain(r.Endpoint, none),
			components.Plain(strconv.FormatBool(r.Healthy), bad),
		}
		if r.Up {
			leader := none
			if r.Leader {
				leader = st.Good
			}
			cells = append(cells,
				components.Plain(strconv.FormatBool(r.Leader), leader),
				components.Plain(strconv.FormatBool(r.Learner), none),
				components.Plain(r.Version, none),
				m.dbCell(r),
				m.numberCell(r.Term, r.TermChange),
				m.numberCell(r.Index, r.IndexChange),
				m.numberCell(r.Applied, r.AppliedChange),
				m.lagCell(r),
				components.Plain(rtt(r.RTT), none),
			)
		} else {
			cells = append(cells, dash, components.Plain(strconv.FormatBool(r.Learner), none), dash, dash, dash, dash, dash, dash, dash)
		}
		cells = append(cells,
			components.Plain(strings.Join(r.Alarms, " "), st.Bad),
			components.Plain(strings.Join(r.Errors, "; "), bad),
		)
		row.Cells = cells
		t.Rows = append(t.Rows, row)
	}
	return t.Render()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func (m *Model) lagCell(r MemberRow) components.Cell {
	if r.Lag < 0 {
		return components.Plain("- ", m.c.Styles.Dim)
	}
	c := m.numberCell(uint64(r.Lag), r.LagChange)
	if r.Lag > 0 {
		c[0].Style = m.c.Styles.Warn
	}
	return c
}

// numberCell is a number with its change mark.
func (m *Model) numberCell(v uint64, c Change) components.Cell {
	cell := components.Plain(strconv.FormatUint(v, 10), lipgloss.NewStyle())
	switch c {
	case Rose:
		cell = append(cell, components.Seg{Text: "↑", Style: m.c.Styles.Up})
	case Fell:
		cell = append(cell, components.Seg{Text: "↓", Style: m.c.Styles.DownMark})
	default:
		cell = append(cell, components.Seg{Text: " "})
	}
	return cell
}

func (m *Model) dbCell(r MemberRow) components.Cell {
	st := m.c.Styles
	cell := components.Bar(r.DBSize, r.DBInUse, r.Quota, barWidth, components.BarStyles{
		Used: st.BarUsed, Free: st.BarFree, Empty: st.BarEmpty, Warn: st.Warn, Bad: st.Bad,
	})
	cell = append(cell, components.Seg{Text: " " + byteSize(r.DBSize) + "/" + byteSize(r.DBInUse) + "/" + byteSize(r.Quota)})
	switch r.DBSizeChange {
	case Rose:
		cell = append(cell, components.Seg{Text: "↑", Style: st.Up})
	case Fell:
		cell = append(cell, components.Seg{Text: "↓", Style: st.DownMark})
	}
	return cell
}

// byteSize formats a size as etcdctl does (SI units).
func byteSize(n int64) string { return humanize.Bytes(uint64(max(n, 0))) }

func rtt(d time.Duration) string {
	return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
}

// every formats an interval without its zero tails: 2h, 1h30m, 2s.
func every(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// age formats a duration for a person: 42s, 12m, 3h05m, 2d04h.
func age(d time.Duration) string {
	d = max(d, 0)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d/time.Minute))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d/time.Hour), int(d%time.Hour/time.Minute))
	default:
		return fmt.Sprintf("%dd%02dh", int(d/(24*time.Hour)), int(d%(24*time.Hour)/time.Hour))
	}
}

// drilled names the backup a drill restored.
func drilled(d *Drill) string {
	if d.ID == "" {
		return ""
	}
	return "  of " + d.ID
}

func (m *Model) backupLines(b *BackupView) []string {
	st := m.c.Styles
	lines := []string{st.Title.Render("BACKUP") + "  " + b.Name}
	if b.Err != nil {
		return append(lines, "  "+st.Bad.Render("cannot read the bucket: "+b.Err.Error()))
	}
	label := func(s string) string { return "  " + st.Dim.Render(fmt.Sprintf("%-17s", s)) }
	if b.Newest == nil {
		lines = append(lines, label("newest verified")+st.Bad.Render("NONE"))
	} else {
		lines = append(lines, label("newest verified")+fmt.Sprintf("%s ago  revision %d  %s  (%d kept)",
			age(b.Age), b.Newest.Revision, byteSize(b.Newest.Size), b.Kept))
	}
	sched := "every " + every(b.Interval)
	if b.Interval == 0 {
		sched = "interval unknown, age not judged"
	}
	switch {
	case b.Stale && b.Newest != nil:
		sched += ": " + st.Bad.Render("STALE, newest is "+age(b.Age)+" old")
	case b.Stale:
		sched += ": " + st.Bad.Render("STALE, no verified backup")
	default:
		sched += ": " + st.Good.Render("ok")
	}
	lines = append(lines, label("schedule")+sched)
	switch d := b.LastDrill; {
	case d == nil:
		lines = append(lines, label("last drill")+st.Dim.Render("none recorded"))
	case d.OK:
		lines = append(lines, label("last drill")+st.Good.Render("ok")+" "+age(b.DrillAge)+" ago"+drilled(d))
	default:
		lines = append(lines, label("last drill")+st.Bad.Render("FAILED")+" "+age(b.DrillAge)+" ago"+drilled(d)+": "+d.Err)
	}
	return lines
}

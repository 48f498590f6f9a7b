package tui

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/charmbracelet/x/ansi"

	"github.com/lifeboat-dev/lifeboat/tui/components"
)

// detailLines are the selected member's page: its health and alarms,
// sparklines of its last refreshes, and its full Status.
func (m *Model) detailLines() []string {
	st := m.c.Styles
	mem := m.selectedMember()
	lines := []string{st.Title.Render("member "+memberName(mem)) + "  " + st.Dim.Render("(esc: back)")}
	// Values wrap under themselves: a dial error is long.
	const keyWidth = 20
	kv := func(k, v string) {
		wrapped := strings.Split(ansi.Wrap(v, max(10, m.c.Width-2-keyWidth), " "), "\n")
		lines = append(lines, "  "+st.Dim.Render(fmt.Sprintf("%-*s", keyWidth, k))+wrapped[0])
		for _, w := range wrapped[1:] {
			lines = append(lines, strings.Repeat(" ", 2+keyWidth)+w)
		}
	}
	kv("ID", idText(mem.ID))
	kv("endpoint", mem.Endpoint)
	kv("peer URLs", strings.Join(mem.PeerURLs, ", "))
	kv("client URLs", strings.Join(mem.ClientURLs, ", "))
	health := st.Good.Render("true")
	if !mem.Healthy() {
		health = st.Down.Render("false")
		if mem.Health != nil {
			health += ": " + errorText(mem.Health)
		}
	}
	kv("health", health)
	kv("alarms", orNone(strings.Join(mem.Alarms, " ")))
	if mem.Err != nil {
		kv("down", st.Down.Render(errorText(mem.Err)))
	}
	if h := m.history[rowKey(mem)]; h != nil {
		width := max(8, min(m.historyLen, m.c.Width-40))
		lines = append(lines, "", "  "+st.Title.Render(fmt.Sprintf("last %d refreshes", len(h.raftIndex))))
		spark := func(name string, vs []float64, format func(float64) string) {
			lo, hi, ok := bounds(vs)
			span := st.Dim.Render("no answers")
			if ok {
				span = format(lo) + " … " + format(hi)
			}
			kv(name, fmt.Sprintf("%-*s  %s", width, components.Sparkline(vs, width), span))
		}
		spark("raft index", h.raftIndex, func(v float64) string { return strconv.FormatInt(int64(v), 10) })
		spark("db size", h.dbSize, func(v float64) string { return byteSize(int64(v)) })
		spark("round trip", h.rttMs, func(v float64) string { return fmt.Sprintf("%.1fms", v) })
	}
	if s := mem.Status; s != nil {
		lines = append(lines, "", "  "+st.Title.Render("Status"))
		leader := idText(s.Leader)
		if l := m.cur.Member(s.Leader); l != nil {
			leader += " (" + memberName(l) + ")"
		}
		kv("cluster ID", idText(s.Header.GetClusterId()))
		kv("member ID", idText(s.Header.GetMemberId()))
		kv("revision", strconv.FormatInt(s.Header.GetRevision(), 10))
		kv("version", s.Version)
		kv("storage version", s.StorageVersion)
		kv("leader", leader)
		kv("raft term", strconv.FormatUint(s.RaftTerm, 10))
		kv("raft index", strconv.FormatUint(s.RaftIndex, 10))
		kv("raft applied index", strconv.FormatUint(s.RaftAppliedIndex, 10))
		kv("lag", lagText(lag(m.cur, mem)))
		kv("db size", fmt.Sprintf("%s (%d bytes)", byteSize(s.DbSize), s.DbSize))
		kv("db size in use", fmt.Sprintf("%s (%d bytes)", byteSize(s.DbSizeInUse), s.DbSizeInUse))
		kv("db size quota", fmt.Sprintf("%s (%d bytes)", byteSize(s.DbSizeQuota), s.DbSizeQuota))
		kv("is learner", strconv.FormatBool(s.IsLearner))
		kv("errors", orNone(strings.Join(s.Errors, "; ")))
		if d := s.DowngradeInfo; d != nil && (d.Enabled || d.TargetVersion != "") {
			kv("downgrade", fmt.Sprintf("to %s (enabled %v)", d.TargetVersion, d.Enabled))
		} else {
			kv("downgrade", "none")
		}
		kv("round trip", rtt(mem.RTT))
	}
	return lines
}

func lagText(l int64) string {
	if l < 0 {
		return "-"
	}
	return strconv.FormatInt(l, 10)
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// bounds are the lowest and highest of the values that are not NaN.
func bounds(vs []float64) (lo, hi float64, ok bool) {
	for _, v := range vs {
		if math.IsNaN(v) {
			continue
		}
		if !ok {
			lo, hi, ok = v, v, true
		}
		lo, hi = min(lo, v), max(hi, v)
	}
	return lo, hi, ok
}

package tui

import (
	"fmt"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/lifeboat-dev/lifeboat/tui/internal/testcluster"
	"github.com/lifeboat-dev/lifeboat/tui/poll"
)

// sampleOf runs a poll command and returns its sample.
func sampleOf(t *testing.T, cmd tea.Cmd) poll.Sample {
	t.Helper()
	if cmd == nil {
		t.Fatal("no command")
	}
	msg, ok := cmd().(sampleMsg)
	if !ok {
		t.Fatalf("command gave %T, not a sample", msg)
	}
	return msg.s
}

func selectedName(m *Model) string {
	if mem := m.selectedMember(); mem != nil {
		return mem.Name
	}
	return ""
}

// The keys, refreshes, change marks, leader changes and resizes, on a
// real cluster polled by the model's own commands.
func TestModelDrivesARealCluster(t *testing.T) {
	c := testcluster.StartLifeboat(t, testcluster.Options{})
	c.MoveLeader(0)
	p, err := poll.New(poll.Config{Endpoints: []string{c.URL(0)}, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	m := New(Options{Poller: p})
	m.Update(tea.WindowSizeMsg{Width: 200, Height: 40})

	cmd := m.Init()
	if !m.polling {
		t.Fatal("Init did not start a poll")
	}
	_, next := m.Update(sampleMsg{sampleOf(t, cmd)})
	if m.polling || next == nil || len(m.Rows()) != 3 {
		t.Fatalf("after the first sample: polling %v, next %v, rows %d", m.polling, next, len(m.Rows()))
	}

	t.Run("select", func(t *testing.T) {
		for _, step := range []struct{ key, want string }{
			{"", "m1"}, {"down", "m2"}, {"j", "m3"}, {"j", "m3"}, {"k", "m2"}, {"up", "m1"}, {"up", "m1"},
		} {
			if step.key != "" {
				press(m, step.key)
			}
			if got := selectedName(m); got != step.want {
				t.Fatalf("after %q: selected %q, want %q", step.key, got, step.want)
			}
		}
	})
	t.Run("detail", func(t *testing.T) {
		press(m, "enter")
		if m.page != pageDetail || !strings.Contains(ansi.Strip(m.Render()), "member m1") {
			t.Fatalf("enter: page %v", m.page)
		}
		press(m, "esc")
		if m.page != pageMembers {
			t.Fatalf("esc: page %v", m.page)
		}
	})
	t.Run("filter", func(t *testing.T) {
		press(m, "/", "m", "3")
		if !m.filtering || len(m.Rows()) != 1 || selectedName(m) != "m3" {
			t.Fatalf("typing m3: filtering %v, rows %+v, selected %q", m.filtering, m.Rows(), selectedName(m))
		}
		press(m, "q") // typed into the filter, not quit
		if m.filter.Value() != "m3q" || len(m.Rows()) != 0 {
			t.Fatalf("filter %q, rows %d", m.filter.Value(), len(m.Rows()))
		}
		m.filter.SetValue("m3")
		press(m, "enter")
		if m.filtering || len(m.Rows()) != 1 {
			t.Fatalf("enter: filtering %v, rows %d", m.filtering, len(m.Rows()))
		}
		press(m, "esc")
		if m.filter.Value() != "" || len(m.Rows()) != 3 || selectedName(m) != "m3" {
			t.Fatalf("esc: filter %q, rows %d, selected %q", m.filter.Value(), len(m.Rows()), selectedName(m))
		}
	})
	t.Run("help", func(t *testing.T) {
		press(m, "?")
		if !m.showHelp || !strings.Contains(ansi.Strip(m.Render()), "back / clear filter") {
			t.Fatal("? did not show the help")
		}
		press(m, "?")
		if m.showHelp {
			t.Fatal("? did not hide the help")
		}
	})
	t.Run("refresh now, twice", func(t *testing.T) {
		seq := m.tickSeq
		first := press(m, "r")
		if !m.polling || m.tickSeq == seq {
			t.Fatal("r did not start a poll")
		}
		// The tick scheduled before no longer polls.
		if _, cmd := m.Update(tickMsg{seq}); cmd != nil {
			t.Fatal("a stale tick polled")
		}
		if press(m, "r"); !m.again {
			t.Fatal("r while polling was not remembered")
		}
		// The writes show as rising raft indexes on the next refresh.
		for i := range 5 {
			c.Put(0, fmt.Sprintf("k%d", i), "v")
		}
		_, second := m.Update(sampleMsg{sampleOf(t, first)})
		if cs, _ := m.Cluster(); !cs.RateKnown || cs.Rate <= 0 {
			t.Errorf("write rate %v known %v after 5 writes", cs.Rate, cs.RateKnown)
		}
		if !m.polling || m.again {
			t.Fatal("the remembered refresh did not start when the poll ended")
		}
		m.Update(sampleMsg{sampleOf(t, second)})
	})
	t.Run("marks", func(t *testing.T) {
		before := p.Poll(m.ctx)
		m.Update(sampleMsg{before})
		c.Put(0, "more", "v")
		// The next sample the model sees is one where every member has
		// applied the write.
		for range 50 {
			s := p.Poll(m.ctx)
			applied := true
			for i := range s.Members {
				applied = applied && s.Members[i].Up() && s.Members[i].Status.RaftAppliedIndex > before.Members[i].Status.RaftAppliedIndex
			}
			if applied {
				m.Update(sampleMsg{s})
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		for _, r := range m.Rows() {
			if r.IndexChange != Rose || r.AppliedChange != Rose {
				t.Errorf("%s: index %d change %v, applied change %v", r.Name, r.Index, r.IndexChange, r.AppliedChange)
			}
		}
		if !strings.Contains(ansi.Strip(m.Render()), "↑") {
			t.Error("no ↑ on the screen")
		}
	})
	t.Run("leader change", func(t *testing.T) {
		c.MoveLeader(1)
		m.Update(sampleMsg{p.Poll(m.ctx)})
		if cs, _ := m.Cluster(); cs.LeaderChanges != 1 || cs.Leader != "m2" {
			t.Errorf("leader %q, changes %d", cs.Leader, cs.LeaderChanges)
		}
	})
	t.Run("resize", func(t *testing.T) {
		for _, w := range []int{200, 90, 50, 30} {
			m.Update(tea.WindowSizeMsg{Width: w, Height: 12})
			lines := strings.Split(m.Render(), "\n")
			if len(lines) > 12 {
				t.Errorf("width %d: %d lines for a height of 12", w, len(lines))
			}
			for _, l := range lines {
				if ansi.StringWidth(l) > w {
					t.Errorf("width %d: line %q is %d wide", w, ansi.Strip(l), ansi.StringWidth(l))
				}
			}
		}
	})
	t.Run("member killed", func(t *testing.T) {
		c.Stop(2)
		m.Update(sampleMsg{p.Poll(m.ctx)})
		r := m.Rows()[2]
		if r.Up || r.Healthy {
			t.Errorf("stopped m3: %+v", r)
		}
	})
	t.Run("quit", func(t *testing.T) {
		cmd := press(m, "q")
		if cmd == nil {
			t.Fatal("q gave no command")
		}
		if _, ok := cmd().(tea.QuitMsg); !ok {
			t.Fatal("q did not quit")
		}
	})
}

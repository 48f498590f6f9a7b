package tui

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"
	"google.golang.org/grpc/status"

	"github.com/lifeboat-dev/lifeboat/tui/internal/testcluster"
	"github.com/lifeboat-dev/lifeboat/tui/poll"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// t0 is the injected clock of the golden screens.
var t0 = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

// scenario brings a real 3-member cluster into a state, polls it with the
// real poller, and checks the model built from the samples: its state with
// the real values, and its screen, once the values that differ between
// runs are replaced (see stabilizer), against testdata/<name>.golden. etcd
// and lifeboat must draw the same screen.
type scenario struct {
	name string
	opts testcluster.Options
	// setup brings the cluster into the state; ready accepts a sample that
	// shows it (the cluster may take a few refreshes to get there).
	setup func(t *testing.T, c *testcluster.Cluster)
	ready func(s *poll.Sample) bool
	check func(t *testing.T, c *testcluster.Cluster, m *Model)
	// screens are more golden screens of the stabilized model, by name.
	screens []screenStep
}

// screenStep changes the model (keys, a resize) before a golden screen.
type screenStep struct {
	name string
	fn   func(g *Model)
}

var scenarios = []scenario{
	{
		name:  "healthy",
		setup: func(t *testing.T, c *testcluster.Cluster) { c.Put(0, "k", "v") },
		ready: func(s *poll.Sample) bool { return s.Hash != nil && s.Hash.Agree() },
		check: func(t *testing.T, c *testcluster.Cluster, m *Model) {
			cs := mustCluster(t, m)
			if !cs.QuorumOK || cs.VotersUp != 3 || cs.Leader != "m1" || !cs.Hash.Agree() || len(cs.Alarms) != 0 {
				t.Errorf("cluster: %+v", cs)
			}
			for i, r := range m.Rows() {
				if !r.Healthy || r.Name != c.Name(i) || r.ID != c.ID(i) || r.Leader != (i == 0) || r.Quota != 2<<30 || r.Lag < 0 {
					t.Errorf("row %d: %+v", i, r)
				}
			}
		},
		screens: []screenStep{
			// Columns drop by priority; the cluster line wraps.
			{"width-120", func(g *Model) { g.Update(tea.WindowSizeMsg{Width: 120, Height: 40}) }},
			{"width-60", func(g *Model) { g.Update(tea.WindowSizeMsg{Width: 60, Height: 40}) }},
			{"detail", func(g *Model) {
				g.Update(tea.WindowSizeMsg{Width: 100, Height: 40})
				press(g, "down", "enter")
			}},
			{"help", func(g *Model) { press(g, "esc", "?") }},
		},
	},
	{
		name:  "dead-member",
		setup: func(t *testing.T, c *testcluster.Cluster) { c.Stop(2) },
		ready: func(s *poll.Sample) bool { return s.QuorumOK() && !s.Members[2].Up() },
		check: func(t *testing.T, c *testcluster.Cluster, m *Model) {
			cs := mustCluster(t, m)
			if !cs.QuorumOK || cs.VotersUp != 2 || cs.Voters != 3 || cs.Leader != "m1" {
				t.Errorf("cluster: %+v", cs)
			}
			rows := m.Rows()
			if r := rows[2]; r.Up || r.Healthy || r.Lag != -1 || len(r.Errors) == 0 {
				t.Errorf("dead m3: %+v", r)
			}
			for _, r := range rows[:2] {
				if !r.Healthy {
					t.Errorf("%s: %+v", r.Name, r)
				}
			}
		},
		screens: []screenStep{
			{"detail", func(g *Model) {
				g.Update(tea.WindowSizeMsg{Width: 100, Height: 40})
				press(g, "down", "down", "enter")
			}},
		},
	},
	{
		name: "quorum-lost",
		setup: func(t *testing.T, c *testcluster.Cluster) {
			c.Stop(1)
			c.Stop(2)
		},
		// The survivor needs an election timeout to notice.
		ready: func(s *poll.Sample) bool { return s.Members[0].Up() && s.Members[0].Status.Leader == 0 },
		check: func(t *testing.T, c *testcluster.Cluster, m *Model) {
			cs := mustCluster(t, m)
			if cs.QuorumOK || cs.VotersUp != 1 || cs.Voters != 3 || cs.Leader != "" {
				t.Errorf("cluster: %+v", cs)
			}
			rows := m.Rows()
			if r := rows[0]; !r.Up || r.Healthy || r.Leader {
				t.Errorf("survivor m1: %+v", r)
			}
			for _, r := range rows[1:] {
				if r.Up {
					t.Errorf("%s up: %+v", r.Name, r)
				}
			}
		},
	},
	{
		name: "nospace",
		opts: testcluster.Options{Quota: 8 << 20},
		setup: func(t *testing.T, c *testcluster.Cluster) {
			c.FillUntilNoSpace(0)
		},
		// Every member has committed the writes (a db's size is its last
		// commit's, up to 100ms behind what it applied).
		ready: func(s *poll.Sample) bool {
			for _, m := range s.Members {
				if !m.Up() || m.Status.DbSize*10 < m.Status.DbSizeQuota*9 {
					return false
				}
			}
			return slices.Contains(s.Members[0].Alarms, "NOSPACE") && len(s.Members[1].Alarms)+len(s.Members[2].Alarms) == 0
		},
		check: func(t *testing.T, c *testcluster.Cluster, m *Model) {
			cs := mustCluster(t, m)
			if !slices.Equal(cs.Alarms, []string{"NOSPACE"}) || !cs.QuorumOK {
				t.Errorf("cluster: %+v", cs)
			}
			for i, r := range m.Rows() {
				// etcdctl's endpoint health: every member is unhealthy
				// while an alarm is raised.
				if r.Healthy || !r.Up || r.Quota != 8<<20 {
					t.Errorf("row %d: %+v", i, r)
				}
				if want := []string{"NOSPACE"}; i == 0 && !slices.Equal(r.Alarms, want) || i > 0 && len(r.Alarms) != 0 {
					t.Errorf("%s alarms %v", r.Name, r.Alarms)
				}
			}
			if r := m.Rows()[0]; r.DBSize*10 < r.Quota*9 {
				t.Errorf("m1 db %d of quota %d when NOSPACE was raised", r.DBSize, r.Quota)
			}
		},
	},
	{
		name: "hash-differs",
		setup: func(t *testing.T, c *testcluster.Cluster) {
			c.Put(0, "k", "v")
			c.CorruptValue(2, "k")
			c.MoveLeader(0)
		},
		ready: func(s *poll.Sample) bool { return s.Hash != nil && len(s.Hash.Differ) > 0 },
		check: func(t *testing.T, c *testcluster.Cluster, m *Model) {
			cs := mustCluster(t, m)
			if !slices.Equal(cs.HashDiffer, []string{"m3"}) || !cs.QuorumOK || cs.Hash.Revision < 2 {
				t.Errorf("cluster: %+v (hash %+v)", cs, cs.Hash)
			}
			for _, r := range m.Rows() {
				if !r.Healthy {
					t.Errorf("%s: %+v", r.Name, r)
				}
			}
		},
	},
}

func mustCluster(t *testing.T, m *Model) ClusterStatus {
	t.Helper()
	cs, ok := m.Cluster()
	if !ok {
		t.Fatal("no sample")
	}
	return cs
}

func TestScenarios(t *testing.T) {
	for _, b := range testcluster.Backends {
		t.Run(b.Name, func(t *testing.T) {
			for _, sc := range scenarios {
				t.Run(sc.name, func(t *testing.T) {
					c := b.Start(t, sc.opts)
					c.MoveLeader(0)
					sc.setup(t, c)
					s1, s2 := twoSamples(t, c, sc.ready)

					m := newTestModel(200, 40)
					feed(m, s1, s2)
					sc.check(t, c, m)

					st := newStabilizer(c, s1)
					g := newTestModel(200, 40)
					feed(g, st.sample(s1, 0), st.sample(s2, 1))
					golden(t, sc.name, screen(g))
					for _, step := range sc.screens {
						step.fn(g)
						golden(t, sc.name+"-"+step.name, screen(g))
					}
				})
			}
		})
	}
}

// twoSamples polls through m1 alone until ready accepts a sample in which
// the members that answer have applied the same entries, then takes one
// more: the model shows the second and compares it with the
// first. The hashes are compared on every refresh, not every 30s, so that
// a comparison made while a follower still applies the last write is not
// kept.
func twoSamples(t *testing.T, c *testcluster.Cluster, ready func(*poll.Sample) bool) (poll.Sample, poll.Sample) {
	t.Helper()
	p, err := poll.New(poll.Config{Endpoints: []string{c.URL(0)}, Timeout: time.Second, HashInterval: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	var last poll.Sample
	for range 60 {
		last = p.Poll(context.Background())
		if len(last.Members) == c.Size() && ready(&last) && settled(&last) {
			return last, p.Poll(context.Background())
		}
		time.Sleep(100 * time.Millisecond)
	}
	var got []string
	for _, m := range last.Members {
		got = append(got, fmt.Sprintf("%s up %v health %v alarms %v err %v", m.Name, m.Up(), m.Health, m.Alarms, m.Err))
	}
	t.Fatalf("the cluster never reached the scenario's state; last sample: leader %x, hash %+v\n%s", last.Leader, last.Hash, strings.Join(got, "\n"))
	return poll.Sample{}, poll.Sample{}
}

func settled(s *poll.Sample) bool {
	var applied []uint64
	for _, m := range s.Members {
		if m.Up() {
			applied = append(applied, m.Status.RaftAppliedIndex)
		}
	}
	return len(slices.Compact(applied)) <= 1
}

func newTestModel(w, h int) *Model {
	m := New(Options{Now: func() time.Time { return t0.Add(2 * time.Second) }})
	m.Update(tea.WindowSizeMsg{Width: w, Height: h})
	return m
}

// press sends key presses by name: "down", "up", "enter", "esc", or a
// character.
func press(m *Model, keys ...string) tea.Cmd {
	var cmds []tea.Cmd
	for _, k := range keys {
		var msg tea.KeyPressMsg
		switch k {
		case "down":
			msg.Code = tea.KeyDown
		case "up":
			msg.Code = tea.KeyUp
		case "enter":
			msg.Code = tea.KeyEnter
		case "esc":
			msg.Code = tea.KeyEscape
		default:
			msg.Code, msg.Text = []rune(k)[0], k
		}
		_, cmd := m.Update(msg)
		cmds = append(cmds, cmd)
	}
	return tea.Batch(cmds...)
}

func feed(m *Model, ss ...poll.Sample) {
	for _, s := range ss {
		m.Update(sampleMsg{s})
	}
}

// screen is the rendered screen without ANSI styles and trailing spaces.
func screen(m *Model) string {
	lines := strings.Split(ansi.Strip(m.View().Content), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " ")
	}
	return strings.Join(lines, "\n") + "\n"
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./tui -update to write it)", err)
	}
	if got != string(want) {
		t.Errorf("screen differs from %s:\n--- got\n%s--- want\n%s", path, got, want)
	}
}

// stabilizer replaces what differs from run to run in a sample, so that the
// rendered screen can be compared with a golden file: member and cluster
// IDs (derived from random ports) become 1111…, 2222…, cccc…; ports become
// the demo cluster's (2379/2380, 22379/22380, …) in URLs and error texts;
// raft term, index and revision (which depend on elections and timing)
// become fixed numbers; a db within 10% of its quota fills it, any other
// db is 32 kB with 16 kB in use; round trips are 1ms; times are t0 plus
// two seconds a refresh. Health, leadership, alarms, errors and hash
// agreement, what the screens are about, are kept as they are.
type stabilizer struct {
	ids   map[uint64]uint64
	text  *strings.Replacer
	decID *regexp.Regexp
}

func newStabilizer(c *testcluster.Cluster, s poll.Sample) *stabilizer {
	st := &stabilizer{ids: map[uint64]uint64{s.ClusterID: 0xcccccccccccccccc}, decID: regexp.MustCompile(`memberID:(\d+)`)}
	var pairs []string
	for i, mem := range s.Members {
		st.ids[mem.ID] = 0x1111111111111111 * uint64(i+1)
		prefix := []string{"", "2", "3", "4", "5"}[i]
		for _, u := range mem.ClientURLs {
			pairs = append(pairs, hostPort(u), "127.0.0.1:"+prefix+"2379")
		}
		for _, u := range mem.PeerURLs {
			pairs = append(pairs, hostPort(u), "127.0.0.1:"+prefix+"2380")
		}
	}
	st.text = strings.NewReplacer(pairs...)
	return st
}

func hostPort(u string) string { return u[strings.Index(u, "://")+3:] }

func (st *stabilizer) id(id uint64) uint64 {
	if v, ok := st.ids[id]; ok {
		return v
	}
	return id
}

func (st *stabilizer) str(s string) string {
	s = st.text.Replace(s)
	return st.decID.ReplaceAllStringFunc(s, func(m string) string {
		var id uint64
		fmt.Sscanf(m, "memberID:%d", &id)
		return fmt.Sprintf("memberID:%d", st.id(id))
	})
}

func (st *stabilizer) err(err error) error {
	if err == nil || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, poll.ErrNoLeader) || errors.Is(err, poll.ErrAlarm) {
		return err
	}
	if s, ok := status.FromError(err); ok {
		return status.Error(s.Code(), st.str(s.Message()))
	}
	return errors.New(st.str(err.Error()))
}

func (st *stabilizer) strs(ss []string) []string {
	var out []string
	for _, s := range ss {
		out = append(out, st.str(s))
	}
	return out
}

func (st *stabilizer) sample(s poll.Sample, n int) poll.Sample {
	out := s
	out.At, out.Took = t0.Add(time.Duration(n)*2*time.Second), 0
	out.ClusterID, out.Leader = st.id(s.ClusterID), st.id(s.Leader)
	if s.Revision > 0 {
		out.Revision = 10
	}
	out.Members = nil
	for _, mem := range s.Members {
		m := mem
		m.ID = st.id(mem.ID)
		m.Endpoint = st.str(mem.Endpoint)
		m.PeerURLs, m.ClientURLs = st.strs(mem.PeerURLs), st.strs(mem.ClientURLs)
		m.Err, m.Health = st.err(mem.Err), st.err(mem.Health)
		m.Errors = st.strs(mem.Errors)
		if mem.Up() {
			m.RTT = time.Millisecond
			cp := *mem.Status
			hdr := *mem.Status.Header
			cp.Header = &hdr
			hdr.ClusterId, hdr.MemberId, hdr.Revision = st.id(hdr.ClusterId), st.id(hdr.MemberId), 10
			cp.Leader = st.id(cp.Leader)
			cp.RaftTerm, cp.RaftIndex, cp.RaftAppliedIndex = 2, 100, 100
			hdr.RaftTerm = 2
			cp.DbSize, cp.DbSizeInUse = 32<<10, 16<<10
			if mem.Status.DbSize*10 >= mem.Status.DbSizeQuota*9 {
				cp.DbSize, cp.DbSizeInUse = cp.DbSizeQuota, cp.DbSizeQuota
			}
			cp.Errors = st.strs(cp.Errors)
			m.Status = &cp
		}
		out.Members = append(out.Members, m)
	}
	if s.Hash != nil {
		h := *s.Hash
		h.At, h.Revision = t0, 10
		h.Hashes = nil
		for _, mh := range s.Hash.Hashes {
			mh.ID, mh.Err = st.id(mh.ID), st.err(mh.Err)
			h.Hashes = append(h.Hashes, mh)
		}
		h.Differ = nil
		for _, id := range s.Hash.Differ {
			h.Differ = append(h.Differ, st.id(id))
		}
		out.Hash = &h
	}
	return out
}

package tui

import (
	"errors"
	"slices"
	"strings"
	"time"

	"google.golang.org/grpc/status"

	"github.com/lifeboat-dev/lifeboat/tui/poll"
)

// Change marks a value that rose or fell since the last refresh.
type Change int

// Changes.
const (
	Same Change = iota
	Rose
	Fell
)

func change(cur, prev uint64, known bool) Change {
	switch {
	case !known || cur == prev:
		return Same
	case cur > prev:
		return Rose
	default:
		return Fell
	}
}

// MemberRow is one row of the members table, as a report.
type MemberRow struct {
	Key      string
	Selected bool
	Name     string
	ID       uint64
	Endpoint string
	Up       bool
	Healthy  bool
	// The rest is known only when Up.
	Leader, Learner bool
	Version         string
	DBSize, DBInUse int64
	Quota           int64
	Term, Index     uint64
	Applied         uint64
	Lag             int64 // applied entries behind the leader; -1: unknown
	RTT             time.Duration
	Alarms          []string
	Errors          []string
	TermChange      Change
	IndexChange     Change
	AppliedChange   Change
	DBSizeChange    Change
	LagChange       Change
}

// Rows are the members table's rows (filtered), with the changes since the
// previous refresh.
func (m *Model) Rows() []MemberRow {
	var rows []MemberRow
	for _, mem := range m.visible() {
		r := MemberRow{
			Key: rowKey(mem), Selected: rowKey(mem) == m.selected,
			Name: mem.Name, ID: mem.ID, Endpoint: mem.Endpoint, Learner: mem.IsLearner,
			Up: mem.Up(), Healthy: mem.Healthy(), Lag: -1, Alarms: mem.Alarms,
			Errors: memberErrors(mem),
		}
		if st := mem.Status; st != nil {
			r.Leader = st.Leader == mem.ID
			r.Learner = st.IsLearner
			r.Version = st.Version
			r.DBSize, r.DBInUse, r.Quota = st.DbSize, st.DbSizeInUse, st.DbSizeQuota
			r.Term, r.Index, r.Applied = st.RaftTerm, st.RaftIndex, st.RaftAppliedIndex
			r.RTT = mem.RTT
			r.Lag = lag(m.cur, mem)
		}
		if m.prev != nil {
			if p := m.prev.Member(mem.ID); p != nil && p.Up() && r.Up {
				ps := p.Status
				r.TermChange = change(r.Term, ps.RaftTerm, true)
				r.IndexChange = change(r.Index, ps.RaftIndex, true)
				r.AppliedChange = change(r.Applied, ps.RaftAppliedIndex, true)
				r.DBSizeChange = change(uint64(r.DBSize), uint64(ps.DbSize), true)
				pl := lag(m.prev, p)
				r.LagChange = change(uint64(max(r.Lag, 0)), uint64(max(pl, 0)), r.Lag >= 0 && pl >= 0)
			}
		}
		rows = append(rows, r)
	}
	return rows
}

// lag is how many entries mem has applied fewer than the leader, or -1
// when either is unknown.
func lag(s *poll.Sample, mem *poll.Member) int64 {
	lead := s.Member(s.Leader)
	if lead == nil || !lead.Up() || !mem.Up() {
		return -1
	}
	return max(0, int64(lead.Status.RaftAppliedIndex)-int64(mem.Status.RaftAppliedIndex))
}

// memberErrors are what the ERRORS column says, each in its short form:
// why the member is down, its Status errors, and a failed health read (a
// missing leader and alarms are said elsewhere already). The detail page
// has them in full.
func memberErrors(mem *poll.Member) []string {
	var out []string
	if mem.Err != nil {
		out = append(out, shortError(errorText(mem.Err)))
	}
	for _, e := range mem.Errors {
		out = append(out, shortError(e))
	}
	if h := mem.Health; h != nil && !errors.Is(h, poll.ErrNoLeader) && !errors.Is(h, poll.ErrAlarm) {
		out = append(out, "health: "+shortError(errorText(h)))
	}
	return out
}

// errorText is an error as an operator reads it: a gRPC status by its
// message.
func errorText(err error) string {
	if s, ok := status.FromError(err); ok {
		return s.Message()
	}
	return err.Error()
}

// shortError keeps the innermost part of an error text, after its last
// ": ": "connection refused" of a whole gRPC dial error, "no leader" of
// "etcdserver: no leader".
func shortError(s string) string {
	s = strings.Trim(s, `" `)
	if i := strings.LastIndex(s, ": "); i >= 0 {
		s = s[i+2:]
	}
	return strings.Trim(s, `" `)
}

// ClusterStatus is the cluster line, as a report.
type ClusterStatus struct {
	ClusterID     uint64
	Members       int
	VotersUp      int
	Voters        int
	QuorumOK      bool
	Leader        string // the leader's name ("" none)
	LeaderChanges int    // seen since lbtop started
	Rate          float64
	RateKnown     bool
	Alarms        []string // raised anywhere in the cluster
	Hash          *poll.HashCheck
	HashDiffer    []string // names of the members whose hash differs
	HashAge       time.Duration
	Refreshes     int
	Updated       time.Duration // since the last sample started
}

// Cluster reports the cluster line; ok is false before the first sample.
func (m *Model) Cluster() (cs ClusterStatus, ok bool) {
	s := m.cur
	if s == nil {
		return cs, false
	}
	cs = ClusterStatus{
		ClusterID: s.ClusterID, Members: len(s.Members), QuorumOK: s.QuorumOK(),
		LeaderChanges: m.leaderChanges, Rate: m.rate, RateKnown: m.rateKnown,
		Alarms: alarmsOf(s), Hash: s.Hash, Refreshes: m.refreshes, Updated: m.c.Now().Sub(s.At),
	}
	cs.VotersUp, cs.Voters = s.Voters()
	if l := s.Member(s.Leader); l != nil {
		cs.Leader = memberName(l)
	}
	if s.Hash != nil {
		cs.HashAge = m.c.Now().Sub(s.Hash.At)
		for _, id := range s.Hash.Differ {
			if mem := s.Member(id); mem != nil {
				cs.HashDiffer = append(cs.HashDiffer, memberName(mem))
			} else {
				cs.HashDiffer = append(cs.HashDiffer, idText(id))
			}
		}
	}
	return cs, true
}

func memberName(mem *poll.Member) string {
	if mem.Name != "" {
		return mem.Name
	}
	return idText(mem.ID)
}

// Backup reports the backup panel; nil without a BackupSource or before
// the first read.
func (m *Model) Backup() *BackupView {
	if m.backup == nil || (m.backupState == nil && m.backupErr == nil) {
		return nil
	}
	return backupView(m.backup.Name(), m.backupState, m.backupErr, m.c.Now())
}

// alarmsOf lists the alarm names raised anywhere in the sample.
func alarmsOf(s *poll.Sample) []string {
	var out []string
	for _, mem := range s.Members {
		out = append(out, mem.Alarms...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

package restore

import (
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/lifeboat-dev/lifeboat/internal/fixture"
	"github.com/lifeboat-dev/lifeboat/snapkit"
	"github.com/lifeboat-dev/lifeboat/snapkit/datadir"
	"github.com/lifeboat-dev/lifeboat/snapkit/schema"
	"github.com/lifeboat-dev/lifeboat/walkit"
)

// The fixture cluster: its snapshot holds index 667 at term 2, and m1's
// WAL the entries 1-667, committed.
const (
	fixtureIndex = 667
	fixtureTerm  = 2
)

// fixtureBase writes the fixture snapshot with its consistent index and
// term set as given, then edit applied, and a new SHA-256 trailer.
func fixtureBase(t *testing.T, index, term uint64, edit func(tx *bolt.Tx) error) string {
	t.Helper()
	src, err := snapkit.Resolve(fixture.Path("v3.6", "snapshot.db"))
	if err != nil {
		t.Fatal(err)
	}
	in, err := os.Open(src.DBPath)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	path := filepath.Join(t.TempDir(), "base.db")
	out, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, io.LimitReader(in, src.DBSize)); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := schema.Open(path, schema.Options{})
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		if err := schema.SetConsistentIndex(tx, index); err != nil {
			return err
		}
		if err := schema.SetTerm(tx, term); err != nil {
			return err
		}
		if edit != nil {
			return edit(tx)
		}
		return nil
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	// A snapshot file, as etcdctl snapshot save writes it.
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	if err := os.WriteFile(path, append(b, sum[:]...), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// fixtureWAL reads the fixture m1's WAL.
func fixtureWAL(t *testing.T) (walkit.Metadata, raftpb.HardState, []raftpb.Entry) {
	t.Helper()
	w, err := walkit.OpenForRead(nil, fixture.WALDir(t, "v3.6", "m1"), walkit.Snapshot{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	md, hs, ents, err := w.ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	meta, err := walkit.ParseMetadata(md)
	if err != nil {
		t.Fatal(err)
	}
	if hs.Commit != fixtureIndex || ents[len(ents)-1].Index != fixtureIndex {
		t.Fatalf("fixture WAL: commit %d, %d entries", hs.Commit, len(ents))
	}
	return meta, hs, ents
}

// walOnlyDir writes a data dir holding only a WAL: md, a snapshot record
// at the entry before ents (if not the first), ents and hs.
func walOnlyDir(t *testing.T, md walkit.Metadata, hs raftpb.HardState, ents []raftpb.Entry) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "survivor")
	l := datadir.New(dir, "")
	if err := os.MkdirAll(l.SnapDir(), 0o700); err != nil {
		t.Fatal(err)
	}
	w, err := walkit.Create(nil, l.WALDir(), md.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	if first := ents[0].Index; first > 1 {
		cs := raftpb.ConfState{}
		if err := w.SaveSnapshot(walkit.Snapshot{Index: first - 1, Term: ents[0].Term, ConfState: &cs}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Save(hs, ents); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

// A WAL that cannot roll a base forward is refused, by RollForward before
// it writes anything and by the plan, which says why and restores the base
// into a new cluster instead: the entries after the base are not all there
// (gap), the WAL's term at the base's index is not the base's (diverged),
// its member is not one of the base's (another cluster) or was removed,
// or it commits nothing past the base.
func TestRollForwardRefuses(t *testing.T) {
	meta, hs, ents := fixtureWAL(t)
	self := meta.NodeID
	tests := []struct {
		name        string
		index, term uint64
		edit        func(tx *bolt.Tx) error
		node        uint64 // the WAL's member, if not m1
		first       uint64 // the WAL's first entry, if not 1
		want        error
		note        string
	}{
		{name: "gap", index: 600, term: fixtureTerm, first: 640, want: ErrWALGap, note: "does not hold the entries from 601 on"},
		{name: "diverged", index: 600, term: fixtureTerm + 1, want: ErrDiverged, note: "at index 600 the db has term 3"},
		{name: "other cluster", index: 600, term: fixtureTerm, node: 0x1234, want: ErrOtherCluster, note: "member 1234 (cluster 1d048c2eadc12ecc) is not among"},
		{name: "removed member", index: 600, term: fixtureTerm, edit: func(tx *bolt.Tx) error { return schema.RemoveMember(tx, self) },
			want: ErrOtherCluster, note: "was removed"},
		{name: "nothing past", index: fixtureIndex, term: fixtureTerm, want: ErrWALGap, note: "commits nothing past"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := fixtureBase(t, tt.index, tt.term, tt.edit)
			md := meta
			if tt.node != 0 {
				md.NodeID = tt.node
			}
			first := max(tt.first, 1)
			survivor := walOnlyDir(t, md, hs, ents[first-1:])
			out := filepath.Join(t.TempDir(), "out")
			_, err := RollForward(context.Background(), testLogger(), RollForwardOptions{Base: base, DataDir: survivor, OutputDir: out})
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.note) {
				t.Fatalf("roll-forward: %v; want %v saying %q", err, tt.want, tt.note)
			}
			if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the refused roll-forward left %s: %v", out, err)
			}
			p, err := MakePlan(context.Background(), testLogger(), PlanOptions{From: []string{survivor, base}, AcceptLoss: true})
			if err != nil {
				t.Fatal(err)
			}
			if p.Strategy != StrategyNewCluster || p.Sources[p.Chosen].Source != base {
				t.Errorf("plan %s from %s; want new-cluster from the base\n%s", p.Strategy, p.Sources[p.Chosen].Source, p.Reason)
			}
			rf := p.RollForward
			if tt.index == fixtureIndex {
				if rf != nil {
					t.Errorf("roll-forward reported for a WAL that holds nothing past the base: %+v", rf)
				}
				return
			}
			if rf == nil || rf.Available || !strings.Contains(rf.Note, tt.note) || !strings.Contains(p.Reason, tt.note) {
				t.Errorf("roll-forward %+v, reason %q; want it refused saying %q", rf, p.Reason, tt.note)
			}
		})
	}
}

// The plan rolls a base forward when a surviving WAL commits past every
// intact survivor, and keeps an intact survivor (force-new-cluster) when
// it holds as much.
func TestPlanRollForwardOrForceNewCluster(t *testing.T) {
	meta, hs, ents := fixtureWAL(t)
	base := fixtureBase(t, 600, fixtureTerm, nil)
	survivor := walOnlyDir(t, meta, hs, ents)
	intact := fixture.DataDir(t, "v3.6", "m2")
	tests := []struct {
		name string
		from []string
		want string
	}{
		{name: "the WAL commits past every survivor", from: []string{survivor, base}, want: StrategyRollForward},
		{name: "an intact survivor holds as much", from: []string{survivor, base, intact}, want: StrategyForceNewCluster},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := MakePlan(context.Background(), testLogger(), PlanOptions{From: tt.from})
			if err != nil {
				t.Fatalf("plan: %v\n%+v", err, p)
			}
			if p.Strategy != tt.want || p.Loss.Entries != 0 || p.ClusterID != "1d048c2eadc12ecc" {
				t.Fatalf("plan %s, loss %+v, cluster %s; want %s, no loss\n%s", p.Strategy, p.Loss, p.ClusterID, tt.want, p.Reason)
			}
			if tt.want != StrategyRollForward {
				return
			}
			rf := p.RollForward
			if p.Sources[p.Chosen].Source != base || rf == nil || !rf.Available || rf.From != 601 || rf.To != fixtureIndex ||
				rf.Entries != fixtureIndex-600 || rf.MemberID != schema.FormatID(meta.NodeID) || rf.Name != "m1" {
				t.Errorf("roll-forward %+v from %s\n%s", rf, p.Sources[p.Chosen].Source, p.Reason)
			}
			var names []string
			for _, m := range p.Members {
				names = append(names, m.Name)
				if m.Survivor != (m.Name == "m1") || (m.Survivor && m.DataDir != survivor) {
					t.Errorf("member %s: survivor %v, dir %s", m.Name, m.Survivor, m.DataDir)
				}
			}
			if strings.Join(names, ",") != "m1,m2,m3" {
				t.Errorf("members %v", names)
			}
		})
	}
}

// A WAL damaged other than by a torn tail rolls a base forward with the
// entries before the damage only, as far as the HardStates before it
// commit them, read from a cut copy; the WAL itself is not changed.
func TestRollForwardReadsUpToDamage(t *testing.T) {
	walDir := fixture.WALDir(t, "v3.6", "m1")
	rd, err := walkit.NewReader(walDir)
	if err != nil {
		t.Fatal(err)
	}
	var at walkit.Position
	for at.Segment == "" {
		rec, pos, err := rd.Next()
		if err != nil {
			t.Fatal(err)
		}
		var e raftpb.Entry
		if rec.Type == walkit.EntryType && e.Unmarshal(rec.Data) == nil && e.Index == 650 {
			at = pos
		}
	}
	rd.Close()
	segment := filepath.Join(walDir, at.Segment)
	flipByte(t, segment, at.Offset+12) // inside the record
	before, err := os.ReadFile(segment)
	if err != nil {
		t.Fatal(err)
	}
	base := &baseDB{index: 600, term: fixtureTerm}
	rl, err := readReplay(testLogger(), walDir, filepath.Join(t.TempDir(), "cut"), base)
	if err != nil {
		t.Fatal(err)
	}
	if rl.repair == nil || rl.repair.Damage == nil || rl.repair.Damage.Kind == walkit.TornTail || rl.repair.LastKeptIndex != 649 {
		t.Fatalf("repair %+v", rl.repair)
	}
	if rl.to <= 600 || rl.to > 649 || len(rl.ents) != int(rl.to-600) || rl.ents[0].Index != 601 || rl.ents[len(rl.ents)-1].Index != rl.to {
		t.Errorf("replays to %d, %d entries", rl.to, len(rl.ents))
	}
	if after, err := os.ReadFile(segment); err != nil || string(after) != string(before) {
		t.Errorf("the WAL was changed: %v", err)
	}
}

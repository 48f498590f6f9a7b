package restore

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/lifeboat-dev/lifeboat/internal/fixture"
	"github.com/lifeboat-dev/lifeboat/server"
	"github.com/lifeboat-dev/lifeboat/snapkit/datadir"
	"github.com/lifeboat-dev/lifeboat/snapkit/schema"
	"github.com/lifeboat-dev/lifeboat/walkit"
)

// unpackInto unpacks a fixture member as the data dir dst.
func unpackInto(t *testing.T, set, member, dst string) {
	t.Helper()
	tmp := t.TempDir()
	if err := fixture.Unpack(fixture.Path(set, member+".tar.gz"), tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(tmp, member), dst); err != nil {
		t.Fatal(err)
	}
}

// A member started with --force-new-cluster, and the same member written
// by ForceNewCluster and started plainly, serve the same membership (one
// member, the old cluster ID) and the same data, on lifeboat and on real
// etcd.
func TestForceNewClusterMatchesTheServers(t *testing.T) {
	for _, set := range fixture.Sets {
		for _, kind := range []string{"lifeboat", "etcd"} {
			t.Run(set+"/"+kind, func(t *testing.T) {
				var bin string
				if kind == "etcd" {
					bin = etcdBinary(t)
				}
				online := newTestCluster(t, 1, bin, "--force-new-cluster")
				unpackInto(t, set, "m1", online.layout.Members[0].DataDir)
				offline := newTestCluster(t, 1, bin)
				input := fixture.DataDir(t, set, "m1")
				res, err := ForceNewCluster(context.Background(), nil, ForceNewClusterOptions{DataDir: input, OutputDir: offline.layout.Members[0].DataDir})
				if err != nil {
					t.Fatal(err)
				}
				if len(res.Removed) != 2 || res.AddedSelf {
					t.Errorf("result %+v", res)
				}
				var want, got served
				if kind == "etcd" {
					online.startEtcd()
					offline.startEtcd()
				} else {
					online.startLifeboat(func(c *server.Config) { c.ForceNewCluster = true })
					offline.startLifeboat(nil)
				}
				want, got = online.serve(0), offline.serve(0)
				if len(want.Members) != 1 || len(want.KVs) < 300 {
					t.Fatalf("--force-new-cluster serves members %q and %d keys", want.Members, len(want.KVs))
				}
				if d := got.diff(want); d != "" {
					t.Errorf("the offline form serves other than --force-new-cluster: %s", d)
				}
				if d := viewDir(t, input); len(d.Entries) == 0 {
					t.Error("input unreadable after the run")
				}
			})
		}
	}
}

func TestForceNewClusterRefusals(t *testing.T) {
	t.Run("in use", func(t *testing.T) {
		tc := newTestCluster(t, 1, "")
		m := tc.layout.Members[0]
		if _, err := Snapshot(context.Background(), nil, SnapshotOptions{Path: fixture.Path("v3.6", "snapshot.db"), Name: m.Name, Cluster: tc.specs(), DataDir: m.DataDir}); err != nil {
			t.Fatal(err)
		}
		tc.startLifeboat(nil)
		out := filepath.Join(t.TempDir(), "out")
		if _, err := ForceNewCluster(context.Background(), nil, ForceNewClusterOptions{DataDir: m.DataDir, OutputDir: out}); !errors.Is(err, ErrInUse) {
			t.Fatalf("err = %v, want ErrInUse", err)
		}
	})
	t.Run("damaged WAL", func(t *testing.T) {
		in := fixture.DataDir(t, "v3.6", "m1")
		zeroRange(t, filepath.Join(datadir.New(in, "").WALDir(), "0000000000000000-0000000000000000.wal"), 20000, 20001)
		out := filepath.Join(t.TempDir(), "out")
		if _, err := ForceNewCluster(context.Background(), nil, ForceNewClusterOptions{DataDir: in, OutputDir: out}); !errors.Is(err, ErrWALDamaged) {
			t.Fatalf("err = %v, want ErrWALDamaged", err)
		}
		if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("refusal left %s", out)
		}
		// With --repair-wal the copy is cut at the damage; the db is then
		// ahead of what is left.
		_, err := ForceNewCluster(context.Background(), nil, ForceNewClusterOptions{DataDir: in, OutputDir: out, RepairWAL: true})
		if !errors.Is(err, ErrDBAheadOfWAL) {
			t.Fatalf("err = %v, want ErrDBAheadOfWAL", err)
		}
	})
}

// appendUncommitted writes a put at the index after the WAL's last entry
// without committing it, as a leader that lost its followers would.
func appendUncommitted(t *testing.T, dataDir, key string) {
	t.Helper()
	dir := datadir.New(dataDir, "").WALDir()
	v := viewDir(t, dataDir)
	last := v.Entries[len(v.Entries)-1]
	w, err := walkit.Open(nil, dir, v.WALSnaps[0])
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, _, _, err := w.ReadAll(); err != nil {
		t.Fatal(err)
	}
	data, err := (&etcdserverpb.InternalRaftRequest{Header: &etcdserverpb.RequestHeader{ID: 99}, Put: &etcdserverpb.PutRequest{Key: []byte(key), Value: []byte("x")}}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Save(raftpb.HardState{}, []raftpb.Entry{{Term: last.Term, Index: last.Index + 1, Data: data}}); err != nil {
		t.Fatal(err)
	}
}

// An entry above the commit index is dropped by both forms.
func TestForceNewClusterDropsUncommitted(t *testing.T) {
	input := fixture.DataDir(t, "v3.6", "m1")
	appendUncommitted(t, input, "/uncommitted")
	online := newTestCluster(t, 1, "")
	unpackInto(t, "v3.6", "m1", online.layout.Members[0].DataDir)
	appendUncommitted(t, online.layout.Members[0].DataDir, "/uncommitted")
	offline := newTestCluster(t, 1, "")
	res, err := ForceNewCluster(context.Background(), nil, ForceNewClusterOptions{DataDir: input, OutputDir: offline.layout.Members[0].DataDir})
	if err != nil {
		t.Fatal(err)
	}
	if res.Dropped != 1 {
		t.Errorf("dropped %d entries, want 1", res.Dropped)
	}
	online.startLifeboat(func(c *server.Config) { c.ForceNewCluster = true })
	offline.startLifeboat(nil)
	want, got := online.serve(0), offline.serve(0)
	if d := got.diff(want); d != "" {
		t.Errorf("the offline form serves other than --force-new-cluster: %s", d)
	}
	for _, kv := range got.KVs {
		if strings.Contains(kv, "/uncommitted") {
			t.Errorf("the uncommitted put was applied: %s", kv)
		}
	}
}

// A learner cannot be kept by force-new-cluster (etcd's would remove
// every voter): ForceNewCluster refuses it with ErrLearner, and the plan
// does not choose it as a survivor, saying why, but restores its db into
// a new cluster. A learner whose promotion its WAL commits is a voter.
func TestLearnerIsNotForced(t *testing.T) {
	specs := []MemberSpec{{Name: "a", PeerURLs: []string{"http://127.0.0.1:1"}}, {Name: "b", PeerURLs: []string{"http://127.0.0.1:2"}, Learner: true}}
	for _, tt := range []struct {
		name, member string
		promote      bool
		forced       bool // ForceNewCluster and the plan keep it
	}{
		{name: "voter", member: "a", forced: true},
		{name: "learner", member: "b"},
		{name: "learner promoted in the WAL", member: "b", promote: true, forced: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), tt.member)
			res, err := Snapshot(context.Background(), nil, SnapshotOptions{Path: fixture.Path("v3.6", "snapshot.db"), Name: tt.member, Cluster: specs, DataDir: dir})
			if err != nil {
				t.Fatal(err)
			}
			if tt.promote {
				appendCommitted(t, dir, raftpb.ConfChange{Type: raftpb.ConfChangeAddNode, NodeID: memberID(t, res.Members, "b")})
			}
			_, err = ForceNewCluster(context.Background(), nil, ForceNewClusterOptions{DataDir: dir, OutputDir: filepath.Join(t.TempDir(), "out")})
			if tt.forced != (err == nil) || !tt.forced && !errors.Is(err, ErrLearner) {
				t.Errorf("ForceNewCluster: %v; want refused with ErrLearner: %v", err, !tt.forced)
			}
			p, err := MakePlan(context.Background(), nil, PlanOptions{From: []string{dir}, MemberDirs: map[string]string{"a": filepath.Join(t.TempDir(), "a"), tt.member: dir}})
			if err != nil {
				t.Fatal(err)
			}
			src := p.Sources[p.Chosen]
			why := strings.Join(src.Why, "; ")
			if tt.forced {
				if p.Strategy != StrategyForceNewCluster || !src.CanForce || strings.Contains(why, "learner") {
					t.Errorf("plan %s, can force %v, why %q; want force-new-cluster", p.Strategy, src.CanForce, why)
				}
				return
			}
			if p.Strategy != StrategyNewCluster || src.CanForce || !src.Usable || !strings.Contains(why, "is a learner: etcd cannot force a new cluster from a learner") ||
				!strings.Contains(p.Reason, "is a learner") {
				t.Errorf("plan %s, can force %v, usable %v, why %q, reason %q; want new-cluster, the learner said", p.Strategy, src.CanForce, src.Usable, why, p.Reason)
			}
		})
	}
}

// memberID is the ID of the member called name.
func memberID(t *testing.T, ms []schema.Member, name string) uint64 {
	t.Helper()
	for _, m := range ms {
		if m.Name == name {
			return m.ID
		}
	}
	t.Fatalf("no member %s in %+v", name, ms)
	return 0
}

// appendCommitted appends a ConfChange after the WAL's last entry and a
// HardState committing it, as a member that logged it and stopped before
// applying it would leave them.
func appendCommitted(t *testing.T, dataDir string, cc raftpb.ConfChange) {
	t.Helper()
	v := viewDir(t, dataDir)
	last := v.Entries[len(v.Entries)-1]
	w, err := walkit.Open(nil, datadir.New(dataDir, "").WALDir(), v.WALSnaps[len(v.WALSnaps)-1])
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, _, _, err := w.ReadAll(); err != nil {
		t.Fatal(err)
	}
	data, err := cc.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	hs := v.HardState
	hs.Commit = last.Index + 1
	if err := w.Save(hs, []raftpb.Entry{{Type: raftpb.EntryConfChange, Term: last.Term, Index: last.Index + 1, Data: data}}); err != nil {
		t.Fatal(err)
	}
}

// With KeepPastCommit the entries past the recorded commit are kept and
// committed, where etcd's --force-new-cluster drops them: the member
// serves the put that only its WAL's tail held.
func TestForceNewClusterKeepsPastCommit(t *testing.T) {
	input := fixture.DataDir(t, "v3.6", "m1")
	appendUncommitted(t, input, "/past-commit")
	offline := newTestCluster(t, 1, "")
	res, err := ForceNewCluster(context.Background(), nil, ForceNewClusterOptions{DataDir: input, OutputDir: offline.layout.Members[0].DataDir, KeepPastCommit: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Dropped != 0 || res.KeptPastCommit != 1 {
		t.Errorf("dropped %d, kept %d entries past the commit; want 0 and 1", res.Dropped, res.KeptPastCommit)
	}
	offline.startLifeboat(nil)
	got := offline.serve(0)
	if !slices.ContainsFunc(got.KVs, func(kv string) bool { return strings.Contains(kv, "/past-commit") }) {
		t.Errorf("the put past the commit is not served (%d keys)", len(got.KVs))
	}
}

package restore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/lifeboat-dev/lifeboat/internal/fixture"
	"github.com/lifeboat-dev/lifeboat/snapkit/datadir"
	"github.com/lifeboat-dev/lifeboat/snapkit/save"
	"github.com/lifeboat-dev/lifeboat/walkit"
)

// startCluster starts a fresh cluster of n members, on lifeboat or real etcd.
func startCluster(t *testing.T, kind string, n int) *testCluster {
	t.Helper()
	var bin string
	if kind == "etcd" {
		bin = etcdBinary(t)
	}
	tc := newTestCluster(t, n, bin)
	if kind == "etcd" {
		tc.startEtcd()
	} else {
		tc.startLifeboat(nil)
	}
	return tc
}

// workload writes keys, overwrites and deletes some, and attaches one to a
// lease, and returns the revision of the last write.
func workload(t *testing.T, cli *clientv3.Client, prefix string, n int) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var rev int64
	for i := range n {
		r, err := cli.Put(ctx, fmt.Sprintf("%s/k%03d", prefix, i%(n/2+1)), fmt.Sprintf("v%d", i))
		if err != nil {
			t.Fatal(err)
		}
		rev = r.Header.Revision
	}
	d, err := cli.Delete(ctx, prefix+"/k000")
	if err != nil {
		t.Fatal(err)
	}
	l, err := cli.Grant(ctx, 3600)
	if err != nil {
		t.Fatal(err)
	}
	p, err := cli.Put(ctx, prefix+"/leased", "x", clientv3.WithLease(l.ID))
	if err != nil {
		t.Fatal(err)
	}
	return max(rev, d.Header.Revision, p.Header.Revision)
}

// stop stops every member of the cluster.
func (c *testCluster) stop(kind string) {
	c.t.Helper()
	if kind == "etcd" {
		if err := c.layout.Stop(); err != nil {
			c.t.Fatal(err)
		}
		return
	}
	c.stopServers()
	c.servers = nil
}

// loseDisk moves a member's data dir away, as if its disk died.
func (c *testCluster) loseDisk(i int) {
	c.t.Helper()
	d := c.layout.Members[i].DataDir
	if err := os.Rename(d, d+".lost"); err != nil {
		c.t.Fatal(err)
	}
}

func mustPlan(t *testing.T, o PlanOptions) *Plan {
	t.Helper()
	p, err := MakePlan(context.Background(), testLogger(), o)
	if err != nil {
		t.Fatalf("plan: %v (plan %+v)", err, p)
	}
	// Through the file, as an operator would.
	path := filepath.Join(t.TempDir(), "plan.json")
	if err := WritePlan(p, path); err != nil {
		t.Fatal(err)
	}
	p, err = ReadPlan(path)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func mustApply(t *testing.T, p *Plan, o ApplyOptions) *ApplyResult {
	t.Helper()
	res, err := Apply(context.Background(), testLogger(), p, o)
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
	return res
}

// Drill A: one member survives. The plan keeps it with force-new-cluster
// (same cluster ID, nothing rewound); it serves everything the cluster
// committed, alone; on lifeboat another member then joins it.
func TestDrillOneSurvivor(t *testing.T) {
	for _, kind := range []string{"lifeboat", "etcd"} {
		t.Run(kind, func(t *testing.T) {
			tc := startCluster(t, kind, 3)
			workload(t, tc.client(), "/drill-a", 200)
			before := tc.serve(0)
			tc.stop(kind)
			tc.loseDisk(1)
			tc.loseDisk(2)
			survivor := tc.layout.Members[0]

			p := mustPlan(t, PlanOptions{From: []string{survivor.DataDir}})
			if p.Strategy != StrategyForceNewCluster || p.Loss.Entries != 0 || p.ClusterID != fmt.Sprintf("%x", before.ClusterID) {
				t.Fatalf("plan: %s, loss %+v, cluster %s; want force-new-cluster of %x, no loss\n%s", p.Strategy, p.Loss, p.ClusterID, before.ClusterID, p.Reason)
			}
			mustApply(t, p, ApplyOptions{})
			if _, err := os.Stat(aside(survivor.DataDir, p)); err != nil {
				t.Errorf("the old dir was not kept: %v", err)
			}
			if kind == "etcd" {
				ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
				defer cancel()
				if err := survivor.Start(); err != nil {
					t.Fatal(err)
				}
				if err := survivor.WaitHealthy(ctx); err != nil {
					t.Fatal(err)
				}
			} else {
				cfg := tc.lifeboatConfig(0)
				cfg.InitialCluster = map[string][]string{survivor.Name: {survivor.PeerURL}}
				tc.startServer(cfg)
			}
			after := tc.serveAt([]string{survivor.ClientURL}, 0)
			if len(after.Members) != 1 || !strings.Contains(after.Members[0], " m1=") {
				t.Errorf("members after: %q", after.Members)
			}
			after.Members, before.Members = nil, nil
			if d := after.diff(before); d != "" {
				t.Errorf("after the restore: %s", d)
			}
			if kind == "lifeboat" {
				joinLifeboat(t, tc, 1, before)
			}
		})
	}
}

// joinLifeboat does the plan's join, start and promote steps for member
// i: added to the running survivor as a learner, started empty, promoted
// once it has caught up.
func joinLifeboat(t *testing.T, tc *testCluster, i int, want served) {
	t.Helper()
	m0, m := tc.layout.Members[0], tc.layout.Members[i]
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cli := tc.clientOf([]string{m0.ClientURL})
	add, err := cli.MemberAddAsLearner(ctx, []string{m.PeerURL})
	if err != nil {
		t.Fatal(err)
	}
	cfg := tc.lifeboatConfig(i)
	cfg.NewCluster = false
	cfg.InitialCluster = map[string][]string{m0.Name: {m0.PeerURL}, m.Name: {m.PeerURL}}
	tc.startServer(cfg)
	for {
		_, err := cli.MemberPromote(ctx, add.Member.ID)
		if err == nil {
			break
		}
		if !strings.Contains(err.Error(), "learner") || ctx.Err() != nil {
			t.Fatalf("promote: %v", err)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("promote: %v", err)
		case <-time.After(100 * time.Millisecond):
		}
	}
	// The promotion reaches the new member when it applies it.
	cli2 := tc.clientOf([]string{m.ClientURL})
	for {
		_, err := cli2.Get(ctx, "x")
		if err == nil {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the joined member does not serve: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
	got := tc.serveAt([]string{m.ClientURL}, 0)
	if fmt.Sprint(got.KVs) != fmt.Sprint(want.KVs) || len(got.Members) != 2 || strings.Contains(strings.Join(got.Members, ","), "learner=true") {
		t.Errorf("the joined member serves %d keys and members %q", len(got.KVs), got.Members)
	}
}

// Drill C: only the backup is left. The plan restores it into a new
// logical cluster (new IDs, bumped and compacted revision); every member
// starts from it and serves the planned revision and HashKV.
func TestDrillOnlyTheBackup(t *testing.T) {
	for _, kind := range []string{"lifeboat", "etcd"} {
		t.Run(kind, func(t *testing.T) {
			var bin string
			if kind == "etcd" {
				bin = etcdBinary(t)
			}
			tc := newTestCluster(t, 3, bin)
			dirs := map[string]string{}
			for _, m := range tc.layout.Members {
				dirs[m.Name] = m.DataDir
			}
			p := mustPlan(t, PlanOptions{From: []string{fixture.Path("v3.6", "snapshot.db")}, Cluster: tc.specs(), MemberDirs: dirs})
			if p.Strategy != StrategyNewCluster || p.BumpRevision <= 0 || p.ClusterID == "1d048c2eadc12ecc" {
				t.Fatalf("plan %s bump %d cluster %s", p.Strategy, p.BumpRevision, p.ClusterID)
			}
			mustApply(t, p, ApplyOptions{})
			if kind == "etcd" {
				tc.startEtcd()
			} else {
				tc.startLifeboat(nil)
			}
			got := tc.serve(p.Revision)
			if got.Revision != p.Revision || got.HashRevision != p.Revision || got.Hash != p.HashKV || fmt.Sprintf("%x", got.ClusterID) != p.ClusterID {
				t.Errorf("serves revision %d, HashKV %d at %d, cluster %x; planned %d, %d, %s", got.Revision, got.Hash, got.HashRevision, got.ClusterID, p.Revision, p.HashKV, p.ClusterID)
			}
			if len(got.KVs) < 300 || len(got.Members) != 3 {
				t.Errorf("%d keys, members %q", len(got.KVs), got.Members)
			}
			for _, m := range p.Members {
				if !strings.Contains(strings.Join(got.Members, "\n"), m.ID+" "+m.Name+"=") {
					t.Errorf("member %s %s not in %q", m.ID, m.Name, got.Members)
				}
			}
		})
	}
}

// Drill B: the dbs are lost, one WAL survives with a torn tail, and there
// is an older backup. Roll-forward would replay the WAL over the backup;
// until it is built, the plan says so, counts what restoring the backup
// alone loses, and will not be written without accepting that loss.
func TestDrillWALSurvivesDBLost(t *testing.T) {
	tc := startCluster(t, "lifeboat", 3)
	cli := tc.client()
	workload(t, cli, "/drill-b/before", 100)
	snapPath := filepath.Join(t.TempDir(), "backup.db")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := save.Snapshot(ctx, nil, clientv3.Config{Endpoints: tc.layout.Endpoints()[:1], DialTimeout: 5 * time.Second}, snapPath, nil); err != nil {
		t.Fatal(err)
	}
	last := workload(t, cli, "/drill-b/after", 60)
	tc.serve(0) // every member has applied it
	tc.stop("lifeboat")
	tc.loseDisk(1)
	tc.loseDisk(2)
	m1 := datadir.New(tc.layout.Members[0].DataDir, "")
	if err := os.Remove(m1.DBPath()); err != nil {
		t.Fatal(err)
	}
	rep, err := walkit.Verify(m1.WALDir(), walkit.VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tail := rep.Segments[len(rep.Segments)-1]
	zeroRange(t, filepath.Join(m1.WALDir(), tail.Name), tail.DataEnd-40, tail.DataEnd)

	dirs := map[string]string{}
	fresh := newTestCluster(t, 3, "")
	for _, m := range fresh.layout.Members {
		dirs[m.Name] = m.DataDir
	}
	o := PlanOptions{From: []string{m1.DataDir, snapPath}, Cluster: fresh.specs(), MemberDirs: dirs}
	p, err := MakePlan(context.Background(), nil, o)
	if !errors.Is(err, ErrLoss) {
		t.Fatalf("plan without --accept-loss: %v, want ErrLoss", err)
	}
	if p.Strategy != StrategyNewCluster || p.Sources[p.Chosen].Source != snapPath {
		t.Fatalf("plan %s from %s, want new-cluster from the backup\n%s", p.Strategy, p.Sources[p.Chosen].Source, p.Reason)
	}
	rf := p.RollForward
	if rf == nil || rf.Available || rf.From != p.Sources[p.Chosen].Index+1 || rf.Writes == 0 {
		t.Fatalf("roll-forward %+v", rf)
	}
	if p.Loss.Entries == 0 || p.Loss.Revisions < 60 || p.Revision <= last {
		t.Errorf("loss %+v, restored revision %d (the cluster reached %d)", p.Loss, p.Revision, last)
	}
	if _, err := Apply(context.Background(), nil, p, ApplyOptions{}); !errors.Is(err, ErrBadPlan) {
		t.Errorf("apply of a plan with unaccepted loss: %v", err)
	}
	o.AcceptLoss = true
	p = mustPlan(t, o)
	mustApply(t, p, ApplyOptions{})
	fresh.startLifeboat(nil)
	got := fresh.serve(p.Revision)
	if got.Revision != p.Revision || got.Hash != p.HashKV {
		t.Errorf("serves revision %d hash %d; planned %d %d", got.Revision, got.Hash, p.Revision, p.HashKV)
	}
}

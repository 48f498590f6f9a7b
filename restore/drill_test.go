package restore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/lifeboat-dev/lifeboat/internal/etcdproc"
	"github.com/lifeboat-dev/lifeboat/internal/interoptest"
	"github.com/lifeboat-dev/lifeboat/snapkit/datadir"
	"github.com/lifeboat-dev/lifeboat/snapkit/save"
	"github.com/lifeboat-dev/lifeboat/walkit"
)

// drillKinds are what the drills run on: lifeboat's and real etcd's
// binaries, each member a process of its own that a drill kills with
// SIGKILL.
var drillKinds = []string{"lifeboat", "etcd"}

// startCluster starts a fresh cluster of n member processes of kind.
func startCluster(t *testing.T, kind string, n int) *testCluster {
	t.Helper()
	tc := newTestCluster(t, n, drillBinary(t, kind))
	tc.startEtcd()
	return tc
}

// drillBinary is the member binary of kind: real etcd, or cmd/lifeboat
// built for the tests.
func drillBinary(t *testing.T, kind string) string {
	if kind == "etcd" {
		return etcdBinary(t)
	}
	return interoptest.Tool(t, "lifeboat")
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

// Drill A: one member survives; every member is killed (SIGKILL) and two
// dirs are lost. The plan keeps the survivor with force-new-cluster (same
// cluster ID, nothing rewound) and estimates no loss; it serves everything
// the cluster committed, alone; the two other members then join it by the
// plan's steps, and etcdctl reads everything back from each. A survivor
// killed before it recorded the commit of its last entries (real etcd
// records it only with its next synced write) keeps them: the plan's
// force-new-cluster keeps the entries past the recorded commit, where
// etcd's own drops them (Loss.PastCommit, with a warning).
func TestDrillOneSurvivor(t *testing.T) {
	for _, kind := range drillKinds {
		t.Run(kind, func(t *testing.T) {
			tc := startCluster(t, kind, 3)
			workload(t, tc.client(), "/drill-a", 200)
			before := tc.serve(0)
			tc.kill()
			tc.loseDisk(1)
			tc.loseDisk(2)
			survivor := tc.layout.Members[0]
			dirs := map[string]string{}
			for _, m := range tc.layout.Members[1:] {
				dirs[m.Name] = m.DataDir
			}

			p := mustPlan(t, PlanOptions{From: []string{survivor.DataDir}, MemberDirs: dirs})
			if p.Strategy != StrategyForceNewCluster || p.Loss.Entries != 0 || p.ClusterID != fmt.Sprintf("%x", before.ClusterID) {
				t.Fatalf("plan: %s, loss %+v, cluster %s; want force-new-cluster of %x, no loss\n%s", p.Strategy, p.Loss, p.ClusterID, before.ClusterID, p.Reason)
			}
			mustApply(t, p, ApplyOptions{})
			if _, err := os.Stat(aside(survivor.DataDir, p)); err != nil {
				t.Errorf("the old dir was not kept: %v", err)
			}
			tc.startSurvivor(0)
			after := tc.serveAt([]string{survivor.ClientURL}, 0)
			if len(after.Members) != 1 || !strings.Contains(after.Members[0], " m1=") {
				t.Errorf("members after: %q", after.Members)
			}
			after.Members, before.Members = nil, nil
			if d := after.diff(before); d != "" {
				t.Errorf("after the restore: %s", d)
			}
			if p.Loss.PastCommit > 0 {
				// Real etcd's survivor, killed, had not yet recorded the
				// commit of its last entries; the plan kept them.
				t.Logf("the survivor's WAL held %d entries past its recorded commit: %q", p.Loss.PastCommit, p.Warnings)
			}
			joinMembers(t, tc, p, after)
		})
	}
}

// startSurvivor starts member i alone from the dir the plan's apply wrote
// (the plan's start step: its own name, dir and URLs), and waits until it
// serves.
func (c *testCluster) startSurvivor(i int) {
	c.t.Helper()
	m := c.layout.Members[i]
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := m.Start(); err != nil {
		c.t.Fatal(err)
	}
	if err := m.WaitHealthy(ctx); err != nil {
		c.t.Fatal(err)
	}
}

// joinMembers carries out the plan's join, start and promote steps for
// every member but the survivor, in the plan's order, on real etcd or
// lifeboat: the join and promote commands run through etcdctl as the plan
// prints them, against the running survivor; each member starts empty
// with the plan's start flags, which must be those member add prints;
// then etcdctl reads back from it every key (want's) and the membership
// (the survivor and the joined members, all started voters).
func joinMembers(t *testing.T, tc *testCluster, p *Plan, want served) {
	t.Helper()
	joined := 1
	for _, pm := range p.Members {
		if !pm.Survivor {
			joined++
			joinMember(t, tc, pm, p.ClusterID, joined, want)
		}
	}
	if joined != len(tc.layout.Members) {
		t.Fatalf("the plan has %d members, the cluster %d", joined, len(tc.layout.Members))
	}
}

// joinMember joins the plan's member pm to cluster, as the size-th member.
func joinMember(t *testing.T, tc *testCluster, pm PlanMember, cluster string, size int, want served) {
	t.Helper()
	etcdctl := interoptest.Binary(t, "etcdctl")
	i := slices.IndexFunc(tc.layout.Members, func(m *etcdproc.Member) bool { return m.Name == pm.Name })
	if i < 0 {
		t.Fatalf("the plan's member %s is not in the cluster", pm.Name)
	}
	m := tc.layout.Members[i]
	steps := map[string]Step{}
	for _, st := range pm.Steps {
		steps[st.Name] = st
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// A member added right after another waits for it to be connected
	// long enough (strict reconfiguration checks).
	out := runPlanned(ctx, t, etcdctl, steps["join"], "unhealthy cluster")
	var id, addedCluster string
	if _, err := fmt.Sscanf(out, "Member %s added as learner to cluster %s", &id, &addedCluster); err != nil || addedCluster != cluster {
		t.Fatalf("member add printed %q (%v); want a learner added to cluster %s", out, err, cluster)
	}
	flags := stepFlags(t, steps["start"])
	printed := envLine(t, out, "ETCD_INITIAL_CLUSTER")
	if flags["--name"] != m.Name || flags["--data-dir"] != m.DataDir || flags["--initial-cluster-state"] != "existing" ||
		flags["--initial-advertise-peer-urls"] != m.PeerURL || !sameSet(flags["--initial-cluster"], printed) {
		t.Fatalf("the plan starts %s with %v; member add says --initial-cluster %s", m.Name, flags, printed)
	}
	if _, err := tc.layout.Rejoin(m.Name, flags["--initial-cluster"]); err != nil {
		t.Fatal(err)
	}
	if err := m.Start(); err != nil {
		t.Fatal(err)
	}
	promote := steps["promote"]
	promote.Run = strings.Replace(promote.Run, "<the ID member add printed>", id, 1)
	runPlanned(ctx, t, etcdctl, promote, "learner")
	// The promotion reaches the new member when it applies it; until then
	// it refuses linearizable reads.
	var kvs etcdserverpb.RangeResponse
	for {
		out, err := etcdctlRun(ctx, etcdctl, "--endpoints", m.ClientURL, "get", "", "--prefix", "-w", "json")
		if err == nil {
			if err := json.Unmarshal([]byte(out), &kvs); err != nil {
				t.Fatalf("etcdctl get: %v\n%s", err, out)
			}
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the joined member %s does not serve: %v", m.Name, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
	var got []string
	for _, kv := range kvs.Kvs {
		got = append(got, formatKV(kv))
	}
	if !slices.Equal(got, want.KVs) {
		t.Errorf("etcdctl reads %d keys from the joined %s, want %d", len(got), m.Name, len(want.KVs))
	}
	// The member publishes its name once it has started: wait for it, so
	// that the next member add prints it.
	for {
		out, err := etcdctlRun(ctx, etcdctl, "--endpoints", m.ClientURL, "member", "list", "-w", "json")
		if err != nil {
			t.Fatal(err)
		}
		var ml etcdserverpb.MemberListResponse
		if err := json.Unmarshal([]byte(out), &ml); err != nil {
			t.Fatalf("etcdctl member list: %v\n%s", err, out)
		}
		voters, learners := 0, 0
		for _, mm := range ml.Members {
			switch {
			case mm.IsLearner:
				learners++
			case mm.Name != "":
				voters++
			}
		}
		if learners > 0 || len(ml.Members) != size {
			t.Fatalf("after %s joined, etcdctl lists %d members, %d of them learners; want %d voters: %s", m.Name, len(ml.Members), learners, size, out)
		}
		if voters == size {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("after %s joined, etcdctl lists %d started members; want %d: %s", m.Name, voters, size, out)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// runPlanned runs a plan's etcdctl step with the etcdctl binary, again
// while its output says transient, and returns what it printed.
func runPlanned(ctx context.Context, t *testing.T, etcdctl string, st Step, transient string) string {
	t.Helper()
	args := strings.Fields(st.Run)
	if len(args) == 0 || args[0] != "etcdctl" {
		t.Fatalf("step %s runs %q, not etcdctl", st.Name, st.Run)
	}
	var out string
	retryWhile(ctx, t, st.Run, transient, func() (err error) {
		out, err = etcdctlRun(ctx, etcdctl, args[1:]...)
		return err
	})
	return out
}

// etcdctlRun runs etcdctl; the error carries what it printed.
func etcdctlRun(ctx context.Context, etcdctl string, args ...string) (string, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, etcdctl, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("etcdctl %s: %w: %s%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String(), nil
}

// stepFlags are the --flag value pairs of a step's command.
func stepFlags(t *testing.T, st Step) map[string]string {
	t.Helper()
	args := strings.Fields(st.Run)
	out := map[string]string{}
	for j := 1; j < len(args); j++ {
		if strings.HasPrefix(args[j], "--") && j+1 < len(args) {
			out[args[j]] = args[j+1]
			j++
		}
	}
	return out
}

// envLine is the value of NAME="value" in what member add printed.
func envLine(t *testing.T, out, name string) string {
	t.Helper()
	for line := range strings.Lines(out) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), name+"="); ok {
			return strings.Trim(v, `"`)
		}
	}
	t.Fatalf("no %s in %q", name, out)
	return ""
}

// sameSet says whether two comma-separated lists hold the same items.
func sameSet(a, b string) bool {
	x, y := strings.Split(a, ","), strings.Split(b, ",")
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(x, y)
}

// retryWhile calls fn until it succeeds, while its error contains
// transient, until ctx ends.
func retryWhile(ctx context.Context, t *testing.T, what, transient string, fn func() error) {
	t.Helper()
	for {
		err := fn()
		if err == nil {
			return
		}
		if !strings.Contains(err.Error(), transient) {
			t.Fatalf("%s: %v", what, err)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: %v", what, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Drill C: only the backup is left. A cluster takes writes, a snapshot is
// saved part way, more writes follow; every member is killed and every
// data dir is lost. The plan restores the snapshot into a new logical
// cluster: new member IDs and cluster ID, the revision bumped past the
// highest the cluster reached (which no source shows: the margin covers
// it) and marked compacted. Every member starts from the dir apply wrote;
// etcdctl reads back every key the snapshot held, at the planned revision
// and HashKV; a watch from a revision of the old cluster is told it is
// compacted.
func TestDrillOnlyTheBackup(t *testing.T) {
	for _, kind := range drillKinds {
		t.Run(kind, func(t *testing.T) {
			tc := startCluster(t, kind, 3)
			workload(t, tc.client(), "/drill-c/before", 100)
			snapPath := tc.saveBackup()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			atSnapshot := tc.serve(0)
			lastRev := workload(t, tc.client(), "/drill-c/after", 60)
			old := tc.serve(0)
			tc.kill()
			dirs := map[string]string{}
			for _, m := range tc.layout.Members {
				if err := os.RemoveAll(m.DataDir); err != nil {
					t.Fatal(err)
				}
				dirs[m.Name] = m.DataDir
			}

			p := mustPlan(t, PlanOptions{From: []string{snapPath}, Cluster: tc.specs(), MemberDirs: dirs})
			oldID := fmt.Sprintf("%x", old.ClusterID)
			if p.Strategy != StrategyNewCluster || p.ClusterID == oldID || !slices.Contains(p.OldClusterIDs, oldID) {
				t.Fatalf("plan %s, cluster %s (old %v); want a new cluster, not %s\n%s", p.Strategy, p.ClusterID, p.OldClusterIDs, oldID, p.Reason)
			}
			if p.Revision <= lastRev {
				t.Fatalf("the plan bumps the revision to %d, not past the old cluster's %d", p.Revision, lastRev)
			}
			mustApply(t, p, ApplyOptions{})
			tc.startEtcd()
			got := tc.serve(p.Revision)
			if got.Revision != p.Revision || got.HashRevision != p.Revision || got.Hash != p.HashKV || fmt.Sprintf("%x", got.ClusterID) != p.ClusterID {
				t.Errorf("serves revision %d, HashKV %d at %d, cluster %x; planned %d, %d, %s", got.Revision, got.Hash, got.HashRevision, got.ClusterID, p.Revision, p.HashKV, p.ClusterID)
			}
			if len(got.Members) != 3 {
				t.Errorf("members %q", got.Members)
			}
			for _, m := range p.Members {
				if !strings.Contains(strings.Join(got.Members, "\n"), m.ID+" "+m.Name+"=") {
					t.Errorf("member %s %s not in %q", m.ID, m.Name, got.Members)
				}
			}
			etcdctl := interoptest.Binary(t, "etcdctl")
			for _, m := range tc.layout.Members {
				out, err := etcdctlRun(ctx, etcdctl, "--endpoints", m.ClientURL, "get", "", "--prefix", "-w", "json")
				if err != nil {
					t.Fatalf("etcdctl get from %s: %v\n%s", m.Name, err, out)
				}
				var kvs etcdserverpb.RangeResponse
				if err := json.Unmarshal([]byte(out), &kvs); err != nil {
					t.Fatalf("etcdctl get: %v\n%s", err, out)
				}
				var read []string
				for _, kv := range kvs.Kvs {
					read = append(read, formatKV(kv))
				}
				if !slices.Equal(read, atSnapshot.KVs) {
					t.Errorf("etcdctl reads %d keys from %s, the snapshot held %d", len(read), m.Name, len(atSnapshot.KVs))
				}
			}
			// A watcher of the old cluster resumes from its last revision.
			wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
			defer wcancel()
			wr, ok := <-tc.client().Watch(wctx, "/drill-c", clientv3.WithPrefix(), clientv3.WithRev(lastRev))
			if !ok || !errors.Is(wr.Err(), rpctypes.ErrCompacted) || wr.CompactRevision != p.Revision {
				t.Errorf("watch from the old revision %d: %v (compact revision %d, open %v); want compacted at %d", lastRev, wr.Err(), wr.CompactRevision, ok, p.Revision)
			}
		})
	}
}

// Drill B: every db is lost or damaged, one WAL survives with a torn
// tail, and there is an older backup. The plan rolls the backup forward
// with the WAL's committed entries (lifeboat replays them, whatever wrote
// the WAL), keeping the WAL's member and the cluster ID and losing
// nothing up to the WAL's commit; the survivor then serves every key
// acknowledged before the tear (applied at or below that commit), with
// its revisions, and the two other members join it again by the plan's
// steps.
func TestDrillWALSurvivesDBLost(t *testing.T) {
	for _, kind := range drillKinds {
		t.Run(kind, func(t *testing.T) {
			tc := startCluster(t, kind, 3)
			workload(t, tc.client(), "/drill-b/before", 100)
			snapPath := tc.saveBackup()
			acks := ackedWrites(t, tc, 1, "/drill-b/after", 60)
			m1 := tc.layout.Members[0]
			// The survivor's HardState carries the commit of the last write.
			waitCommitted(t, tc.clientOf([]string{m1.ClientURL}), m1.ClientURL, acks[len(acks)-1].applied)
			before := tc.serve(0)
			tc.kill()
			survivor := datadir.New(m1.DataDir, "")
			if err := os.Remove(survivor.DBPath()); err != nil {
				t.Fatal(err)
			}
			tearTail(t, survivor.WALDir())
			m2 := datadir.New(tc.layout.Members[1].DataDir, "")
			flipByte(t, m2.DBPath(), 16) // the first meta page's magic
			if err := os.RemoveAll(m2.WALDir()); err != nil {
				t.Fatal(err)
			}
			tc.loseDisk(2)
			r, err := Inspect(context.Background(), nil, m1.DataDir, InspectOptions{})
			if err != nil || r.WAL == nil || len(r.WAL.Damage) != 1 || r.WAL.Damage[0].Kind != walkit.TornTail {
				t.Fatalf("the survivor's WAL: %+v, %v", r.WAL, err)
			}
			commit := r.WAL.HardState.Commit

			dirs := map[string]string{}
			for _, m := range tc.layout.Members[1:] {
				dirs[m.Name] = m.DataDir
			}
			p := mustPlan(t, PlanOptions{From: []string{m1.DataDir, m2.DataDir, snapPath}, MemberDirs: dirs})
			rf := p.RollForward
			if p.Strategy != StrategyRollForward || p.Sources[p.Chosen].Source != snapPath || rf == nil || !rf.Available ||
				rf.WAL != m1.DataDir || rf.From != p.Sources[p.Chosen].Index+1 || rf.To != commit || rf.Name != m1.Name {
				t.Fatalf("plan %s from %s, roll-forward %+v; want roll-forward of the backup to %d with %s's WAL\n%s", p.Strategy, p.Sources[p.Chosen].Source, rf, commit, m1.Name, p.Reason)
			}
			if p.Loss.Entries != 0 || p.Loss.Revisions != 0 || p.ClusterID != fmt.Sprintf("%x", before.ClusterID) {
				t.Errorf("loss %+v, cluster %s; want none, cluster %x", p.Loss, p.ClusterID, before.ClusterID)
			}
			if n := acked(acks, commit); n < len(acks)/2 || rf.From > acks[0].applied {
				t.Fatalf("the test is too weak: %d of %d writes acknowledged at commit %d, the backup at %d", n, len(acks), commit, rf.From-1)
			}
			t.Logf("%d of %d writes acknowledged at the WAL's commit %d; plan: %s", acked(acks, commit), len(acks), commit, p.Reason)
			mustApply(t, p, ApplyOptions{})
			// Again: every step is found done, the dir checked again.
			for _, m := range mustApply(t, p, ApplyOptions{}).Members {
				for _, st := range m.Steps {
					if st.Now != (st.Name == "check") {
						t.Errorf("second apply, %s: %+v", m.Name, st)
					}
				}
			}
			for _, m := range tc.layout.Members[:2] {
				if _, err := os.Stat(aside(m.DataDir, p)); err != nil {
					t.Errorf("the old dir of %s was not kept: %v", m.Name, err)
				}
			}
			tc.startSurvivor(0)
			after := tc.serveAt([]string{m1.ClientURL}, 0)
			if after.ClusterID != before.ClusterID || len(after.Members) != 1 || !strings.Contains(after.Members[0], " m1=") {
				t.Errorf("cluster %x members %q after; want %x, m1 alone", after.ClusterID, after.Members, before.ClusterID)
			}
			checkAcked(t, before, after, acks, commit)
			joinMembers(t, tc, p, after)
		})
	}
}

// ackedWrite is a put the cluster acknowledged, and the applied index of
// the member that served it right after: the put's index is at most that.
type ackedWrite struct {
	key     string
	applied uint64
}

// ackedWrites puts n distinct keys through member i, one at a time.
func ackedWrites(t *testing.T, tc *testCluster, i int, prefix string, n int) []ackedWrite {
	t.Helper()
	url := tc.layout.Members[i].ClientURL
	cli := tc.clientOf([]string{url})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out []ackedWrite
	for j := range n {
		key := fmt.Sprintf("%s/k%03d", prefix, j)
		if _, err := cli.Put(ctx, key, fmt.Sprintf("v%d", j)); err != nil {
			t.Fatal(err)
		}
		st, err := cli.Status(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, ackedWrite{key: key, applied: st.RaftAppliedIndex})
	}
	return out
}

// acked counts the writes acknowledged at or below commit.
func acked(acks []ackedWrite, commit uint64) int {
	n := 0
	for _, a := range acks {
		if a.applied <= commit {
			n++
		}
	}
	return n
}

// checkAcked checks that after serves what before served, but for the
// writes not acknowledged at or below commit, which may or may not be
// there.
func checkAcked(t *testing.T, before, after served, acks []ackedWrite, commit uint64) {
	t.Helper()
	maybe := map[string]bool{}
	for _, a := range acks {
		if a.applied > commit {
			maybe[fmt.Sprintf("%q", a.key)] = true
		}
	}
	key := func(kv string) string { return kv[:strings.Index(kv, "=")] }
	got := map[string]bool{}
	for _, kv := range after.KVs {
		got[kv] = true
	}
	want := map[string]bool{}
	for _, kv := range before.KVs {
		want[kv] = true
		if !got[kv] && !maybe[key(kv)] {
			t.Errorf("acknowledged %s is not served after the restore", kv)
		}
	}
	for _, kv := range after.KVs {
		if !want[kv] {
			t.Errorf("%s is served after the restore, never before", kv)
		}
	}
}

// waitCommitted waits until the member at url has committed index.
func waitCommitted(t *testing.T, cli *clientv3.Client, url string, index uint64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		st, err := cli.Status(ctx, url)
		if err == nil && st.RaftIndex >= index {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s has not committed %d: %v, %v", url, index, st, err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// saveBackup saves a snapshot from the first member, as
// `etcdctl snapshot save` does, to a file of the test's, and returns its path.
func (c *testCluster) saveBackup() string {
	c.t.Helper()
	path := filepath.Join(c.t.TempDir(), "backup.db")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := save.Snapshot(ctx, nil, clientv3.Config{Endpoints: c.layout.Endpoints()[:1], DialTimeout: 5 * time.Second}, path, nil); err != nil {
		c.t.Fatal(err)
	}
	return path
}

// kill ends every member process with SIGKILL.
func (c *testCluster) kill() {
	c.t.Helper()
	for _, m := range c.layout.Members {
		if err := m.Kill(); err != nil {
			c.t.Fatal(err)
		}
	}
}

// tearTail cuts the WAL's last segment inside its last record, as a crash
// during the write would leave it.
func tearTail(t *testing.T, walDir string) {
	t.Helper()
	rep, err := walkit.Verify(walDir, walkit.VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tail := rep.Segments[len(rep.Segments)-1]
	if err := os.Truncate(filepath.Join(walDir, tail.Name), tail.DataEnd-3); err != nil {
		t.Fatal(err)
	}
}

// flipByte inverts the byte at off in the file at path.
func flipByte(t *testing.T, path string, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0xff
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

package restore

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lifeboat-dev/lifeboat/internal/fixture"
	"github.com/lifeboat-dev/lifeboat/internal/interoptest"
)

// restoreCase is one set of `snapshot restore` flags.
type restoreCase struct {
	name     string
	cluster  string // --initial-cluster
	self     string // --name
	token    string
	bump     int64
	compact  bool // --compact (lifeboat only)
	learners []string
}

var restoreCases = []restoreCase{
	{name: "one", cluster: "a=http://127.0.0.1:2380", self: "a", token: "t1"},
	{name: "three-bumped", cluster: "a=http://127.0.0.1:1,b=http://127.0.0.1:2,c=http://127.0.0.1:3,c=http://127.0.0.2:3", self: "b", token: "t3", bump: 1000},
	{name: "three-bumped-compacted", cluster: "a=http://127.0.0.1:1,b=http://127.0.0.1:2,c=http://127.0.0.1:3,c=http://127.0.0.2:3", self: "b", token: "t3", bump: 1000, compact: true},
}

func (c restoreCase) etcdutlArgs(snapshot, dataDir string) []string {
	args := []string{"snapshot", "restore", snapshot, "--data-dir", dataDir, "--name", c.self,
		"--initial-cluster", c.cluster, "--initial-cluster-token", c.token}
	var self []string
	for part := range strings.SplitSeq(c.cluster, ",") {
		if n, u, _ := strings.Cut(part, "="); n == c.self {
			self = append(self, u)
		}
	}
	args = append(args, "--initial-advertise-peer-urls", strings.Join(self, ","))
	if c.bump > 0 {
		args = append(args, "--bump-revision", fmt.Sprint(c.bump), "--mark-compacted")
	}
	return args
}

func (c restoreCase) options(t *testing.T, snapshot, dataDir string) SnapshotOptions {
	t.Helper()
	specs, err := ParseInitialCluster(c.cluster, c.learners)
	if err != nil {
		t.Fatal(err)
	}
	return SnapshotOptions{Path: snapshot, Name: c.self, Cluster: specs, Token: c.token, DataDir: dataDir,
		BumpRevision: c.bump, MarkCompacted: c.bump > 0, Compact: c.compact}
}

// Restore writes the same WAL, .snap and db (keys, members, meta, hashkv)
// as etcdutl snapshot restore, for both fixture sets, with and without a
// bump; with --compact, the db as etcdutl's is once the member has
// finished the compaction at the bumped revision that it starts with (only
// the last put of each live key, and the bump marker). Only meta/confState
// differs: etcdutl leaves the old cluster's.
func TestSnapshotMatchesEtcdutl(t *testing.T) {
	etcdutl := interoptest.Binary(t, "etcdutl")
	for _, set := range fixture.Sets {
		for _, c := range restoreCases {
			t.Run(set+"/"+c.name, func(t *testing.T) {
				snapshot := fixture.Path(set, "snapshot.db")
				dir := t.TempDir()
				want := filepath.Join(dir, "etcdutl")
				if out, err := exec.Command(etcdutl, c.etcdutlArgs(snapshot, want)...).CombinedOutput(); err != nil {
					t.Fatalf("etcdutl: %v\n%s", err, out)
				}
				got := filepath.Join(dir, "lifeboat")
				res, err := Snapshot(context.Background(), nil, c.options(t, snapshot, got))
				if err != nil {
					t.Fatal(err)
				}
				if !res.HashChecked {
					t.Error("the trailer was not checked")
				}
				// Compacted, the db is written as the member holds it once
				// it has finished the compaction it starts with.
				wantView := viewDir(t, want)
				if c.compact {
					wantView = viewDirStarted(t, want)
				}
				for _, d := range diffViews(wantView, viewDir(t, got)) {
					t.Error(d)
				}
			})
		}
	}
}

// Real etcd and lifeboat, started on what Snapshot wrote, serve the keys,
// revision (bumped) and HashKV that real etcd serves after etcdutl
// snapshot restore of the same file.
func TestSnapshotServesWhatEtcdutlServes(t *testing.T) {
	const bump = 1000
	etcd := etcdBinary(t)
	etcdutl := interoptest.Binary(t, "etcdutl")
	snapshot := fixture.Path("v3.6", "snapshot.db")

	ref := newTestCluster(t, 1, etcd)
	c := restoreCase{cluster: ref.initialCluster(), self: "m1", token: "ref", bump: bump}
	if out, err := exec.Command(etcdutl, c.etcdutlArgs(snapshot, ref.layout.Members[0].DataDir)...).CombinedOutput(); err != nil {
		t.Fatalf("etcdutl: %v\n%s", err, out)
	}
	ref.startEtcd()
	want := ref.serve(657 + bump)
	if len(want.KVs) < 300 {
		t.Fatalf("etcd after etcdutl serves %d keys", len(want.KVs))
	}
	if want.Revision != 657+bump || want.CompactRevision != 657+bump {
		t.Fatalf("etcd after etcdutl: revision %d compact %d, want %d", want.Revision, want.CompactRevision, 657+bump)
	}

	for _, run := range []struct {
		kind    string
		compact bool
	}{{"etcd", false}, {"lifeboat", false}, {"etcd", true}, {"lifeboat", true}} {
		kind := run.kind
		t.Run(fmt.Sprintf("%s/compact=%v", kind, run.compact), func(t *testing.T) {
			tc := newTestCluster(t, 1, etcd)
			m := tc.layout.Members[0]
			o := SnapshotOptions{Path: snapshot, Name: m.Name, Cluster: tc.specs(), Token: "ref", DataDir: m.DataDir, BumpRevision: bump, MarkCompacted: true, Compact: run.compact}
			if _, err := Snapshot(context.Background(), nil, o); err != nil {
				t.Fatal(err)
			}
			if kind == "etcd" {
				tc.startEtcd()
			} else {
				tc.startLifeboat(nil)
			}
			got := tc.serve(657 + bump)
			// Other ports, so other member and cluster IDs.
			got.Members, want.Members = nil, nil
			got.ClusterID = want.ClusterID
			if d := got.diff(want); d != "" {
				t.Errorf("%s serves other data than etcd after etcdutl: %s", kind, d)
			}
		})
	}
}

// A cluster restored with a learner (which etcdutl cannot do) starts on
// real etcd and on lifeboat with that learner, serves the snapshot's data
// and takes writes.
func TestSnapshotWithLearner(t *testing.T) {
	snapshot := fixture.Path("v3.6", "snapshot.db")
	for _, kind := range []string{"etcd", "lifeboat"} {
		t.Run(kind, func(t *testing.T) {
			var bin string
			if kind == "etcd" {
				bin = etcdBinary(t)
			}
			tc := newTestCluster(t, 3, bin)
			specs := tc.specs("m3")
			var token string
			for _, m := range tc.layout.Members {
				res, err := Snapshot(context.Background(), nil, SnapshotOptions{Path: snapshot, Name: m.Name, Cluster: specs, DataDir: m.DataDir})
				if err != nil {
					t.Fatal(err)
				}
				if token != "" && res.Token != token {
					t.Fatalf("members restored from one file got tokens %s and %s", token, res.Token)
				}
				token = res.Token
			}
			if kind == "etcd" {
				tc.startEtcd()
			} else {
				tc.startLifeboat(nil)
			}
			got := tc.serve(0, "m3")
			if got.Revision != 657 || got.CompactRevision != 407 || len(got.KVs) < 300 {
				t.Errorf("serves revision %d, compact %d, %d keys; want 657, 407 and the fixture's keys", got.Revision, got.CompactRevision, len(got.KVs))
			}
			var learners []string
			for _, m := range got.Members {
				if strings.HasSuffix(m, "learner=true") {
					learners = append(learners, m)
				}
			}
			if len(got.Members) != 3 || len(learners) != 1 || !strings.Contains(learners[0], " m3=") {
				t.Errorf("members: %q, want m3 alone a learner", got.Members)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if _, err := tc.client("m3").Put(ctx, "after-restore", "x"); err != nil {
				t.Fatal(err)
			}
		})
	}
}

package e2e

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/lifeboat-dev/lifeboat/internal/interoptest"
)

// snapshotStatus is what `etcdutl snapshot status -w json` prints; snapkit
// status prints the same fields.
type snapshotStatus struct {
	Hash      uint32 `json:"hash"`
	Revision  int64  `json:"revision"`
	TotalKey  int    `json:"totalKey"`
	TotalSize int64  `json:"totalSize"`
	Version   string `json:"version"`
}

func statusOf(t *testing.T, r result, what string) snapshotStatus {
	t.Helper()
	if r.code != 0 {
		t.Fatalf("%s: exit %d\n%s%s", what, r.code, r.stdout, r.stderr)
	}
	var s snapshotStatus
	if err := json.Unmarshal([]byte(r.stdout), &s); err != nil {
		t.Fatalf("%s: %v\n%s", what, err, r.stdout)
	}
	return s
}

// TestDataDirReadByTools writes through a cluster, saves a snapshot with real
// etcdctl, stops the cluster, and reads what it wrote with real etcdutl,
// snapkit and walkit: the snapshot's numbers must agree between etcdutl and
// snapkit, and each member's data dir must verify and hold the last revision.
func TestDataDirReadByTools(t *testing.T) {
	forEachSystem(t, func(t *testing.T, bin string) {
		ctl, utl := interoptest.Binary(t, "etcdctl"), interoptest.Binary(t, "etcdutl")
		walkitBin, snapkitBin := tool(t, "walkit"), tool(t, "snapkit")
		c := startCluster(t, bin, interoptest.Options{})
		ctx := timeout(t, time.Minute)
		cli := newClient(t, c.Endpoints()...)
		for i := range 100 {
			if _, err := cli.Put(ctx, fmt.Sprintf("dd/%03d", i), fmt.Sprintf("v%d", i)); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := cli.Delete(ctx, "dd/01", clientv3.WithPrefix()); err != nil {
			t.Fatal(err)
		}
		if _, err := cli.Compact(ctx, 50); err != nil {
			t.Fatal(err)
		}
		waitSameRevision(t, c.Endpoints())
		st, err := cli.Status(ctx, c.Endpoints()[0])
		if err != nil {
			t.Fatal(err)
		}
		rev := st.Header.Revision

		snap := filepath.Join(t.TempDir(), "snap.db")
		if r := run(t, time.Minute, "", ctl, "--endpoints="+c.Endpoints()[0], "snapshot", "save", snap); r.code != 0 {
			t.Fatalf("etcdctl snapshot save: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		fromUtl := statusOf(t, run(t, time.Minute, "", utl, "snapshot", "status", snap, "-w", "json"), "etcdutl snapshot status")
		if fromUtl.Revision != rev {
			t.Errorf("etcdutl snapshot status: revision %d, want the cluster's %d", fromUtl.Revision, rev)
		}
		fromSnapkit := statusOf(t, run(t, time.Minute, "", snapkitBin, "status", snap, "-w", "json"), "snapkit status <snapshot>")
		if fromSnapkit != fromUtl {
			t.Errorf("snapkit status %+v, etcdutl snapshot status %+v: want the same numbers", fromSnapkit, fromUtl)
		}

		if err := c.Stop(); err != nil {
			t.Fatal(err)
		}
		for _, m := range c.Members {
			if r := run(t, time.Minute, "", walkitBin, "verify", m.DataDir); r.code != 0 {
				t.Errorf("walkit verify %s: exit %d\n%s%s", m.Name, r.code, r.stdout, r.stderr)
			}
			s := statusOf(t, run(t, time.Minute, "", snapkitBin, "status", m.DataDir, "-w", "json"), "snapkit status "+m.Name)
			if s.Revision != rev {
				t.Errorf("snapkit status %s: revision %d, want the cluster's %d", m.Name, s.Revision, rev)
			}
		}
	})
}

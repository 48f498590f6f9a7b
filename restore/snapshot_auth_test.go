package restore

import (
	"context"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lifeboat-dev/lifeboat/internal/interoptest"
	"github.com/lifeboat-dev/lifeboat/server"
	"github.com/lifeboat-dev/lifeboat/snapkit"
)

// waitHealthy waits, up to a minute, until GET url/health answers 200.
func waitHealthy(t *testing.T, url string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var last string
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/health", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s not healthy: %s", url, last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// authStatus is what snapkit status reports of the auth buckets of path.
func authStatus(t *testing.T, path string) snapkit.AuthStatus {
	t.Helper()
	rep, err := snapkit.Inspect(context.Background(), path, snapkit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		t.Fatalf("%s: %v", path, rep.Findings)
	}
	return rep.Auth
}

// A snapshot saved from an auth-enabled lifeboat cluster restores with its
// auth state: snapkit status reports it in the snapshot and in the
// restored data dir, and lifeboat and real etcd started there read the
// users, roles, permissions and auth status the cluster read (root logs
// in, bob is denied what the cluster denied him).
func TestSnapshotKeepsAuth(t *testing.T) {
	etcdctl := interoptest.Binary(t, "etcdctl")
	src := newTestCluster(t, 1, "")
	src.startLifeboat(func(cfg *server.Config) { cfg.BcryptCost = 4 })
	ep := src.layout.Members[0].ClientURL
	waitHealthy(t, ep)
	interoptest.RunEtcdctl(t, etcdctl, ep, interoptest.AuthSession)
	want := interoptest.RunEtcdctl(t, etcdctl, ep, interoptest.AuthStateSteps)
	if !strings.Contains(want[len(want)-1], "permission denied") {
		t.Fatalf("the cluster does not deny bob: %s", want[len(want)-1])
	}
	snapshot := filepath.Join(t.TempDir(), "auth.db")
	saved := interoptest.RunEtcdctl(t, etcdctl, ep, []interoptest.EtcdctlStep{{User: "root:rootpw2", Args: []string{"snapshot", "save", snapshot}}})
	if !strings.Contains(saved[0], ": exit 0\n") {
		t.Fatalf("snapshot save: %s", saved[0])
	}
	// AuthSession leaves users bob, carol and root, and roles r1 and root.
	saw := authStatus(t, snapshot)
	if !saw.Enabled || saw.Users != 3 || saw.Roles != 2 || saw.Revision < 2 {
		t.Fatalf("snapkit status of the snapshot: auth %+v, want enabled, 3 users, 2 roles, a revision above 1", saw)
	}

	for _, kind := range []string{"lifeboat", "etcd"} {
		t.Run(kind, func(t *testing.T) {
			var bin string
			if kind == "etcd" {
				bin = etcdBinary(t)
			}
			tc := newTestCluster(t, 1, bin)
			m := tc.layout.Members[0]
			if _, err := Snapshot(context.Background(), nil, SnapshotOptions{Path: snapshot, Name: m.Name, Cluster: tc.specs(), DataDir: m.DataDir}); err != nil {
				t.Fatal(err)
			}
			if got := authStatus(t, m.DataDir); got != saw {
				t.Errorf("snapkit status of the restored data dir: auth %+v, want %+v", got, saw)
			}
			if kind == "etcd" {
				tc.startEtcd()
			} else {
				tc.startLifeboat(nil)
				waitHealthy(t, m.ClientURL)
			}
			interoptest.CompareTranscripts(t, kind+" on the restored data dir, against the cluster", want,
				interoptest.RunEtcdctl(t, etcdctl, m.ClientURL, interoptest.AuthStateSteps))
		})
	}
}

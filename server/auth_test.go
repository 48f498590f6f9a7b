package server

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/lifeboat-dev/lifeboat/internal/interoptest"
)

// TestAuthSessionMatchesEtcd runs one etcdctl session of users, roles and
// permissions against real etcd and against lifeboat, with the same
// outputs; lifeboat's auth state then survives a restart, and real etcd
// started on lifeboat's data dir sees the same users and roles.
func TestAuthSessionMatchesEtcd(t *testing.T) {
	etcdctl := interoptest.Binary(t, "etcdctl")
	etcdBin := interoptest.Binary(t, "etcd")
	etcd := interoptest.StartEtcd(t, interoptest.Options{Members: 1})
	want := interoptest.RunEtcdctl(t, etcdctl, etcd.ClientURLs[0], interoptest.AuthSession)
	wantState := interoptest.RunEtcdctl(t, etcdctl, etcd.ClientURLs[0], interoptest.AuthStateSteps)

	c := newTestCluster(t, 1, func(cfg *Config) { cfg.BcryptCost = 4 })
	c.waitLeader()
	got := interoptest.RunEtcdctl(t, etcdctl, c.endpoint(0), interoptest.AuthSession)
	interoptest.CompareTranscripts(t, "session", want, got)
	interoptest.CompareTranscripts(t, "auth state", wantState, interoptest.RunEtcdctl(t, etcdctl, c.endpoint(0), interoptest.AuthStateSteps))

	c.stop(0)
	c.start(0)
	c.waitLeader()
	interoptest.CompareTranscripts(t, "auth state after a restart", wantState, interoptest.RunEtcdctl(t, etcdctl, c.endpoint(0), interoptest.AuthStateSteps))

	c.stop(0)
	cfg := c.cfgs[0]
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	logs := startEtcdOn(ctx, t, etcdBin, cfg)
	for {
		resp, err := http.Get(cfg.AdvertiseClientURLs[0] + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if ctx.Err() != nil {
			t.Fatalf("etcd did not serve the lifeboat data dir: %v\n%s", err, logs.String()[max(0, logs.Len()-4000):])
		}
		time.Sleep(200 * time.Millisecond)
	}
	interoptest.CompareTranscripts(t, "etcd on lifeboat's data dir", wantState, interoptest.RunEtcdctl(t, etcdctl, cfg.AdvertiseClientURLs[0], interoptest.AuthStateSteps))
}

package interoptest

import (
	"context"
	"testing"
	"time"

	"github.com/lifeboat-dev/lifeboat/internal/etcdproc"
)

// Options, EtcdCluster and Member are etcdproc's, which runs the processes.
type (
	Options     = etcdproc.Options
	EtcdCluster = etcdproc.Cluster
	Member      = etcdproc.Member
)

// StartEtcd starts a real etcd cluster on free 127.0.0.1 ports, with data
// dirs in t.TempDir(), waits until every member answers /health, and stops
// the members when the test ends. It fails the test if etcd does not come up;
// it skips it when the binary is unavailable (see Binary).
func StartEtcd(t testing.TB, opts Options) *EtcdCluster {
	t.Helper()
	if opts.Binary == "" {
		opts.Binary = Binary(t, "etcd")
	}
	dir := t.TempDir()
	c, err := etcdproc.New(dir, opts)
	if err != nil {
		t.Fatalf("interoptest: %v", err)
	}
	t.Cleanup(func() {
		if err := c.Stop(); err != nil {
			t.Errorf("interoptest: stopping etcd: %v", err)
		}
	})
	timeout := opts.StartTimeout
	if timeout == 0 {
		timeout = 60 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := c.Start(ctx); err != nil {
		t.Fatalf("interoptest: %v", err)
	}
	return c
}

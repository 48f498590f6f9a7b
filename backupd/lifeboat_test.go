package backupd

import (
	"os"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/lifeboat-dev/lifeboat/backupd/internal/clustertest"
	"github.com/lifeboat-dev/lifeboat/backupd/internal/objstoretest"
	"github.com/lifeboat-dev/lifeboat/internal/interoptest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	objstoretest.Cleanup()
	interoptest.RemoveTools()
	os.Exit(code)
}

var testLogger = clustertest.Logger

func startLifeboat(t *testing.T, n int) *clustertest.Lifeboat { return clustertest.NewLifeboat(t, n) }

func put(t *testing.T, endpoints []string, cfg clientv3.Config, prefix string, n int) {
	t.Helper()
	cfg.Endpoints = endpoints
	if err := clustertest.Put(cfg, prefix, n); err != nil {
		t.Fatal(err)
	}
}

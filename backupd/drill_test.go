package backupd_test

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/lifeboat-dev/lifeboat/backupd"
	"github.com/lifeboat-dev/lifeboat/backupd/codec"
	"github.com/lifeboat-dev/lifeboat/backupd/internal/clustertest"
	"github.com/lifeboat-dev/lifeboat/backupd/internal/drilltest"
	"github.com/lifeboat-dev/lifeboat/backupd/retention"
	"github.com/lifeboat-dev/lifeboat/backupd/store"
	"github.com/lifeboat-dev/lifeboat/internal/interoptest"
)

// A drill restores the latest backup of a real etcd with etcdutl, boots a
// lifeboat member on it, and finds the manifest's revision, key count and
// hashkv; a drill of a backup changed after upload fails and names it.
func TestDrill(t *testing.T) {
	etcdutl := interoptest.Binary(t, "etcdutl")
	c := interoptest.StartEtcd(t, interoptest.Options{Members: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cli, err := clientv3.New(clientv3.Config{Endpoints: c.Endpoints(), DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	for i := range 120 {
		if _, err := cli.Put(ctx, "drill/"+string(rune('a'+i%26))+string(rune('a'+i/26)), "v"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := cli.Delete(ctx, "drill/aa"); err != nil {
		t.Fatal(err)
	}
	s, err := store.Open(ctx, "file://"+t.TempDir(), "p", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	cfg := &backupd.Config{Client: clientv3.Config{Endpoints: c.Endpoints(), DialTimeout: 5 * time.Second}, Store: s,
		Codec: codec.Options{Codec: codec.Zstd}, SpoolDir: t.TempDir()}
	m, err := backupd.Backup(ctx, cfg, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []struct {
		name    string
		restore backupd.Restorer
	}{{"restore package (default)", nil}, {"etcdutl", drilltest.Etcdutl(etcdutl)}} {
		d := &backupd.Drill{Store: s, Restore: r.restore, WorkDir: t.TempDir()}
		rep, err := d.Run(ctx, "latest")
		if err != nil {
			t.Fatalf("%s: drill: %v (%+v)", r.name, err, rep)
		}
		if !rep.OK || rep.Revision != m.Revision || rep.Keys != 119 || rep.HashKV != m.HashKV {
			t.Errorf("%s: drill report %+v, manifest rev %d hashkv %d", r.name, rep, m.Revision, m.HashKV)
		}
	}
}

// run --drill-schedule drills the latest backup periodically; the result
// is exported as metrics and shown by /healthz.
func TestDaemonDrills(t *testing.T) {
	etcdutl := interoptest.Binary(t, "etcdutl")
	c := clustertest.NewLifeboat(t, 1)
	if err := clustertest.Put(clientv3.Config{Endpoints: c.Endpoints}, "k", 50); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	s, err := store.Open(ctx, "mem://", "drills", nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &backupd.Config{Client: clientv3.Config{Endpoints: c.Endpoints, DialTimeout: 5 * time.Second}, Store: s,
		Codec: codec.Options{Codec: codec.Zstd}, SpoolDir: t.TempDir()}
	every2s, _ := backupd.ParseSchedule("@every 2s")
	every3s, _ := backupd.ParseSchedule("@every 3s")
	d := &backupd.Daemon{
		Runner:   &backupd.Runner{Config: cfg, Holder: "d", PruneAfter: true, Policy: retention.Policy{Last: 5}},
		Schedule: every2s, Metrics: backupd.NewMetrics(),
		Drill:         &backupd.Drill{Store: s, Restore: drilltest.Etcdutl(etcdutl), WorkDir: t.TempDir()},
		DrillSchedule: every3s,
	}
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- d.Run(rctx) }()
	deadline := time.Now().Add(time.Minute)
	for testutil.ToFloat64(d.Metrics.Drills.WithLabelValues("ok")) < 1 {
		if time.Now().After(deadline) {
			t.Fatalf("no drill passed in a minute (failed: %v)", testutil.ToFloat64(d.Metrics.Drills.WithLabelValues("failed")))
		}
		time.Sleep(100 * time.Millisecond)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if testutil.ToFloat64(d.Metrics.DrillLastSuccess) == 0 || testutil.ToFloat64(d.Metrics.DrillLastRevision) < 51 {
		t.Error("drill metrics not set")
	}
	if h := d.Health(); h.LastDrill == nil || !h.LastDrill.OK {
		t.Errorf("health %+v", h)
	}
}

package backupd_test

import (
	"context"
	"errors"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/lifeboat-dev/lifeboat/backupd"
	"github.com/lifeboat-dev/lifeboat/backupd/codec"
	"github.com/lifeboat-dev/lifeboat/backupd/internal/drilltest"
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
	d := &backupd.Drill{Store: s, Restore: drilltest.Etcdutl(etcdutl), WorkDir: t.TempDir()}
	rep, err := d.Run(ctx, "latest")
	if err != nil {
		t.Fatalf("drill: %v (%+v)", err, rep)
	}
	if !rep.OK || rep.Revision != m.Revision || rep.Keys != 119 || rep.HashKV != m.HashKV {
		t.Errorf("drill report %+v, manifest rev %d hashkv %d", rep, m.Revision, m.HashKV)
	}
	if _, err := (&backupd.Drill{Store: s}).Run(ctx, "latest"); err == nil || errors.Is(err, backupd.ErrDrill) {
		t.Errorf("drill without a restorer: %v", err)
	}
}

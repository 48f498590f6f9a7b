package backupd_test

import (
	"context"
	"errors"
	"strings"
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

// The daemon records on the prefix what its watchers (backupd list, lbtop)
// need: its schedules, with their intervals, and each drill's outcome: the
// time, the backup drilled, ok or why not. A daemon started again keeps the
// last drill, and records that it schedules none.
func TestDaemonRecordsScheduleAndDrill(t *testing.T) {
	c := clustertest.NewLifeboat(t, 3)
	if err := clustertest.Put(clientv3.Config{Endpoints: c.Endpoints}, "k", 50); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		restore backupd.Restorer // nil: the restore package's
		wantErr string           // in the recorded reason; empty: ok
	}{
		{"ok", nil, ""},
		{"failed", func(context.Context, backupd.RestoreRequest) error { return errors.New("no space left on device") },
			"restore: no space left on device"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			s, err := store.Open(ctx, "file://"+t.TempDir(), "prod/etcd", nil)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			cfg := &backupd.Config{Client: clientv3.Config{Endpoints: c.Endpoints, DialTimeout: 5 * time.Second}, Store: s,
				Codec: codec.Options{Codec: codec.Zstd}, SpoolDir: t.TempDir(), Logger: clustertest.Logger()}
			every2s, _ := backupd.ParseSchedule("@every 2s")
			every3s, _ := backupd.ParseSchedule("@every 3s")
			d := &backupd.Daemon{
				Runner:   &backupd.Runner{Config: cfg, Holder: "d1", PruneAfter: true, Policy: retention.Policy{Within: time.Hour}},
				Schedule: every2s, Metrics: backupd.NewMetrics(),
				Drill:         &backupd.Drill{Store: s, Restore: tc.restore, WorkDir: t.TempDir(), Logger: clustertest.Logger()},
				DrillSchedule: every3s,
			}
			stop := runDaemon(t, ctx, d)
			waitInfo(t, ctx, s, "a drill of a backup recorded", func(i store.DaemonInfo) bool {
				return i.LastDrill != nil && i.LastDrill.ID != ""
			})
			stop()
			// What it recorded last (it may have drilled again meanwhile).
			info := waitInfo(t, ctx, s, "the record", func(store.DaemonInfo) bool { return true })

			want := store.ScheduleInfo{Spec: "@every 2s", Interval: store.Duration(2 * time.Second)}
			wantDrill := store.ScheduleInfo{Spec: "@every 3s", Interval: store.Duration(3 * time.Second)}
			if info.Holder != "d1" || info.Started.IsZero() || info.Schedule != want || info.Drill == nil || *info.Drill != wantDrill {
				t.Errorf("recorded %+v drill schedule %+v; want %+v and %+v", info, info.Drill, want, wantDrill)
			}
			dr := info.LastDrill
			if dr.OK != (tc.wantErr == "") || !strings.Contains(dr.Error, tc.wantErr) || (tc.wantErr == "") != (dr.Error == "") ||
				dr.Start.IsZero() || dr.End.Before(dr.Start) {
				t.Errorf("last drill %+v; want error %q", dr, tc.wantErr)
			}
			l, err := s.List(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := l.Find(dr.ID); err != nil {
				t.Errorf("the drilled backup %s is not in the bucket: %v", dr.ID, err)
			}

			// Started again without drills, the daemon keeps the last drill.
			d2 := &backupd.Daemon{Runner: &backupd.Runner{Config: cfg, Holder: "d2"}, Schedule: every3s, Metrics: backupd.NewMetrics()}
			stop = runDaemon(t, ctx, d2)
			again := waitInfo(t, ctx, s, "the second daemon's record", func(i store.DaemonInfo) bool { return i.Holder == "d2" })
			stop()
			if again.Drill != nil || again.Schedule.Spec != "@every 3s" || again.LastDrill == nil || *again.LastDrill != *dr {
				t.Errorf("after a restart: %+v, last drill %+v; want no drill schedule and the last drill %+v", again, again.LastDrill, dr)
			}
		})
	}
}

// runDaemon runs d until the returned stop is called.
func runDaemon(t *testing.T, ctx context.Context, d *backupd.Daemon) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	return func() {
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}

// waitInfo polls the prefix's DaemonInfo until cond holds, for a minute.
func waitInfo(t *testing.T, ctx context.Context, s *store.Store, what string, cond func(store.DaemonInfo) bool) store.DaemonInfo {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		info, found, err := s.DaemonInfo(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if found && cond(info) {
			return info
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s in a minute; the prefix has %+v (found %v)", what, info, found)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

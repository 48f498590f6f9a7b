package backupd

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/lifeboat-dev/lifeboat/backupd/internal/objstoretest"
	"github.com/lifeboat-dev/lifeboat/backupd/retention"
	"github.com/lifeboat-dev/lifeboat/backupd/store"
	"github.com/lifeboat-dev/lifeboat/internal/interoptest"
	"github.com/lifeboat-dev/lifeboat/internal/syncbuf"
)

// waitFor polls cond every 100ms until it holds or the deadline passes.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func newDaemon(t *testing.T, cfg *Config, holder, schedule string, p retention.Policy) *Daemon {
	t.Helper()
	sched, err := ParseSchedule(schedule)
	if err != nil {
		t.Fatal(err)
	}
	return &Daemon{
		Runner:   &Runner{Config: cfg, Holder: holder, LockTTL: time.Minute, Policy: p, PruneAfter: true},
		Schedule: sched, Metrics: NewMetrics(),
	}
}

func health(t *testing.T, url string) (int, Health) {
	t.Helper()
	resp, err := http.Get(url + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var h Health
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, h
}

// The daemon on a 2-second schedule takes a backup at each slot, applies
// retention after each (keep the last 2), and serves /healthz and /metrics.
func TestDaemonRunsOnSchedule(t *testing.T) {
	c := startLifeboat(t, 3)
	put(t, c.Endpoints, clientv3Config(), "k", 100)
	s := openStore(t, "file://"+t.TempDir(), "daemon")
	d := newDaemon(t, testConfig(t, c.Endpoints, s), "d1", "@every 2s", retention.Policy{Last: 2})
	srv := httptest.NewServer(d.Handler())
	defer srv.Close()
	ctx, cancel := context.WithCancel(testCtx(t))
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	waitFor(t, "4 committed backups and a retention deletion", time.Minute, func() bool {
		return testutil.ToFloat64(d.Metrics.Attempts.WithLabelValues("ok")) >= 4 && testutil.ToFloat64(d.Metrics.Deletions) >= 2
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	l, err := s.List(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Backups) != 2 {
		t.Errorf("%d backups kept, want 2", len(l.Backups))
	}
	for _, b := range l.Backups {
		if b.Manifest.Slot == nil || b.Manifest.Slot.UnixNano()%int64(2*time.Second) != 0 {
			t.Errorf("%s: slot %v is not on the 2s grid", b.Manifest.ID, b.Manifest.Slot)
		}
	}
	code, h := health(t, srv.URL)
	if code != http.StatusOK || !h.OK || h.LastID == "" {
		t.Errorf("healthz %d %+v", code, h)
	}
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"backupd_last_success_timestamp_seconds", `backupd_failures_total{cause="store"} 0`,
		"backupd_last_backup_revision", "backupd_retention_deletions_total", "backupd_drill_last_success_timestamp_seconds"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// Two daemons on one prefix never both take a backup in the same slot:
// every committed backup has its own slot, and each slot was taken once.
func TestTwoDaemonsOneSlot(t *testing.T) {
	c := startLifeboat(t, 3)
	put(t, c.Endpoints, clientv3Config(), "k", 50)
	for _, name := range []string{"file", "s3"} {
		t.Run(name, func(t *testing.T) {
			b, ok := objstoretest.Get(t, name)
			if !ok {
				t.Skip("no server")
			}
			b.Setenv(t)
			var ds []*Daemon
			var errorLog syncbuf.Buffer
			for _, holder := range []string{"a", "b"} {
				s := openStore(t, b.URL, "shared")
				cfg := testConfig(t, c.Endpoints, s)
				cfg.Logger = slog.New(slog.NewTextHandler(&errorLog, &slog.HandlerOptions{Level: slog.LevelError})).With("holder", holder)
				ds = append(ds, newDaemon(t, cfg, holder, "@every 2s", retention.Policy{Within: time.Hour}))
			}
			ctx, cancel := context.WithCancel(testCtx(t))
			var wg sync.WaitGroup
			for _, d := range ds {
				wg.Add(1)
				go func() { defer wg.Done(); _ = d.Run(ctx) }()
			}
			total := func(result string) (n float64) {
				for _, d := range ds {
					n += testutil.ToFloat64(d.Metrics.Attempts.WithLabelValues(result))
				}
				return n
			}
			waitFor(t, "4 slots", 90*time.Second, func() bool { return total("ok")+total("failed") >= 4 })
			cancel()
			wg.Wait()
			l, err := ds[0].Runner.Config.Store.List(testCtx(t))
			if err != nil {
				t.Fatal(err)
			}
			slots := map[time.Time]string{}
			for _, bk := range l.Backups {
				if prev, dup := slots[*bk.Manifest.Slot]; dup {
					t.Errorf("slot %s taken twice: %s and %s", bk.Manifest.Slot, prev, bk.Manifest.ID)
				}
				slots[*bk.Manifest.Slot] = bk.Manifest.ID
			}
			if float64(len(l.Backups)) != total("ok") || total("failed") != 0 || total("skipped") < total("ok")-1 {
				t.Errorf("%d backups; ok %v failed %v skipped %v; the daemons' errors:\n%s", len(l.Backups), total("ok"), total("failed"), total("skipped"), errorLog.String())
			}
		})
	}
}

// clock is a wall clock that a test can move forward.
type clock struct{ off atomic.Int64 }

func (c *clock) now() time.Time          { return time.Now().Add(time.Duration(c.off.Load())) }
func (c *clock) advance(d time.Duration) { c.off.Add(int64(d)) }

// faultRig is a daemon with one good backup, ready for a fault.
type faultRig struct {
	d     *Daemon
	clock *clock
	good  string
	slot  time.Time
}

func newFaultRig(t *testing.T, cfg *Config) *faultRig {
	t.Helper()
	r := &faultRig{clock: &clock{}}
	cfg.Now = r.clock.now
	r.d = newDaemon(t, cfg, "fault", "@every 1m", retention.Policy{Within: time.Nanosecond})
	r.d.start(testCtx(t))
	r.slot = r.d.Schedule.Next(r.clock.now())
	r.d.slot(testCtx(t), r.slot)
	if r.d.last.Err != nil || r.d.last.Manifest == nil {
		t.Fatalf("the good backup: %v", r.d.last.Err)
	}
	r.good = r.d.last.Manifest.ID
	return r
}

// failNext runs the next slot, which must fail with cause, and checks that
// no backup counts, the metrics and /healthz show it, and retention (that
// would otherwise delete the good backup) deletes nothing.
func (r *faultRig) failNext(t *testing.T, cause string, heal func()) {
	t.Helper()
	d := r.d
	r.slot = d.Schedule.Next(r.slot)
	d.slot(testCtx(t), r.slot)
	if heal != nil {
		heal()
	}
	if got := CauseOf(d.last.Err); got != cause {
		t.Fatalf("attempt: cause %q (%v), want %q", got, d.last.Err, cause)
	}
	s := d.Runner.Config.Store
	l, err := s.List(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Backups) != 1 || l.Backups[0].Manifest.ID != r.good {
		t.Errorf("after the fault %d backups count, want only %s", len(l.Backups), r.good)
	}
	st, _, err := s.State(testCtx(t))
	// A store that fails may not take the outcome either: "running" then
	// stays, which pauses retention as "failed" does.
	if err != nil || st.Result == store.ResultOK || (cause != CauseStore && (st.Result != store.ResultFailed || st.Cause != cause)) {
		t.Errorf("state %+v %v", st, err)
	}
	if n := testutil.ToFloat64(d.Metrics.Failures.WithLabelValues(cause)); n != 1 {
		t.Errorf("failures{cause=%s} = %v, want 1", cause, n)
	}
	srv := httptest.NewServer(d.Handler())
	defer srv.Close()
	r.clock.advance(3 * time.Minute) // the last success is now older than twice the interval
	code, h := health(t, srv.URL)
	if code != http.StatusServiceUnavailable || h.OK || h.LastCause != cause {
		t.Errorf("healthz %d %+v, want 503 naming %s", code, h, cause)
	}
	rep, err := d.Runner.Prune(testCtx(t), false)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Deleted != 0 || rep.Paused == "" {
		t.Errorf("retention after the failure deleted %d (paused %q)", rep.Deleted, rep.Paused)
	}
	if l, _ := s.List(testCtx(t)); len(l.Backups) != 1 {
		t.Errorf("retention deleted the last good backup")
	}
}

// A spool corrupted on purpose (a bit flipped between the stream and the
// verification) fails with cause verify.
func TestFaultSpoolCorrupt(t *testing.T) {
	c := startLifeboat(t, 3)
	put(t, c.Endpoints, clientv3Config(), "k", 200)
	cfg := testConfig(t, c.Endpoints, openStore(t, "mem://", "fault"))
	r := newFaultRig(t, cfg)
	cfg.AfterSpool = func(path string) error { return flipByte(path, 8192+100) }
	r.failNext(t, CauseVerify, nil)
}

// The store fails in the middle of the upload (a proxy in front of the S3
// server cuts every connection after 300 kB): cause store.
func TestFaultStoreMidUpload(t *testing.T) {
	b, ok := objstoretest.Get(t, "s3")
	if !ok {
		t.Skip("no S3 server")
	}
	p := objstoretest.NewProxy(t, b.Addr)
	pb := b.WithAddr(p.Addr)
	pb.Setenv(t)
	c := startLifeboat(t, 3)
	if err := putRandom(c.Endpoints, 300, 8<<10); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t, c.Endpoints, openStore(t, pb.URL, "fault"))
	r := newFaultRig(t, cfg)
	p.FailAfter(300_000)
	r.failNext(t, CauseStore, p.Heal)
}

// The member a backup streams from is killed (SIGKILL) in the middle of
// the stream: cause endpoint; the next attempt streams from another member.
func TestFaultEndpointKilledMidStream(t *testing.T) {
	c := interoptest.StartEtcd(t, interoptest.Options{Members: 3})
	if err := putRandom(c.Endpoints(), 400, 8<<10); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t, c.Endpoints(), openStore(t, "mem://", "fault"))
	r := newFaultRig(t, cfg)
	var (
		chosen atomic.Value
		killed atomic.Bool
	)
	cfg.Chosen = func(ch Choice) { chosen.Store(ch.Endpoint) }
	cfg.Progress = func(done, total int64) {
		if done < 512<<10 || killed.Swap(true) {
			return
		}
		for _, m := range c.Members {
			if strings.HasSuffix(m.ClientURL, chosen.Load().(string)) {
				if err := m.Kill(); err != nil {
					t.Error(err)
				}
			}
		}
	}
	r.failNext(t, CauseEndpoint, nil)
	if !killed.Load() {
		t.Fatal("the stream never reached 512 KiB")
	}
	dead := chosen.Load().(string)
	cfg.Progress = nil
	r.slot = r.d.Schedule.Next(r.slot)
	r.d.slot(testCtx(t), r.slot)
	if a := r.d.last; a.Err != nil || a.Manifest.Endpoint == dead {
		t.Fatalf("after the kill: %v, from %v (killed %s)", a.Err, a.Manifest, dead)
	}
}

// A failed attempt is retried within its slot by the daemon that made it,
// and the retry commits; another daemon does not take the slot meanwhile.
func TestSlotRetry(t *testing.T) {
	c := startLifeboat(t, 1)
	put(t, c.Endpoints, clientv3Config(), "k", 20)
	s := openStore(t, "mem://", "retry")
	cfg := testConfig(t, c.Endpoints, s)
	var spools atomic.Int32
	cfg.AfterSpool = func(path string) error {
		if spools.Add(1) == 1 {
			return flipByte(path, 8192+100)
		}
		return nil
	}
	d := newDaemon(t, cfg, "a", "@every 1h", retention.Policy{Within: time.Hour})
	d.SlotRetries = 1
	d.start(testCtx(t))
	slot := d.Schedule.Next(time.Now())
	d.slot(testCtx(t), slot)
	if d.last.Err != nil || d.last.Manifest == nil || !d.last.Manifest.Slot.Equal(slot) {
		t.Fatalf("the retry: %v", d.last.Err)
	}
	if f := testutil.ToFloat64(d.Metrics.Failures.WithLabelValues(CauseVerify)); f != 1 {
		t.Errorf("failures{verify} = %v, want 1", f)
	}
	other := newDaemon(t, testConfig(t, c.Endpoints, s), "b", "@every 1h", retention.Policy{Within: time.Hour})
	if a := other.Runner.Attempt(testCtx(t), slot); a.Skipped == "" {
		t.Errorf("another daemon took the slot again: %+v", a)
	}
}

// The staging object of a failed backup is an orphan: kept while retention
// is paused and while younger than the grace period, removed after it.
func TestOrphansRemovedAfterGrace(t *testing.T) {
	c := startLifeboat(t, 1)
	put(t, c.Endpoints, clientv3Config(), "k", 20)
	s := openStore(t, "mem://", "orphans")
	cfg := testConfig(t, c.Endpoints, s)
	clk := &clock{}
	cfg.Now = clk.now
	r := &Runner{Config: cfg, Holder: "o", Policy: retention.Policy{Within: 1000 * time.Hour}, Grace: 24 * time.Hour}
	cfg.AfterSpool = func(path string) error { return flipByte(path, 8192+100) }
	if a := r.Attempt(testCtx(t), time.Time{}); CauseOf(a.Err) != CauseVerify {
		t.Fatalf("corrupt attempt: %v", a.Err)
	}
	orphans := func(dryRun bool) (kept, removed int) {
		t.Helper()
		rep, err := r.Prune(testCtx(t), dryRun)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range rep.Orphans {
			if o.Remove {
				removed++
			} else {
				kept++
			}
		}
		return kept, removed
	}
	clk.advance(25 * time.Hour)
	if kept, removed := orphans(false); kept != 1 || removed != 0 {
		t.Errorf("paused: kept %d removed %d, want the orphan kept", kept, removed)
	}
	cfg.AfterSpool = nil
	clk.advance(-25 * time.Hour)
	if a := r.Attempt(testCtx(t), time.Time{}); a.Err != nil {
		t.Fatal(a.Err)
	}
	if kept, removed := orphans(false); kept != 1 || removed != 0 {
		t.Errorf("young: kept %d removed %d, want the orphan kept", kept, removed)
	}
	clk.advance(25 * time.Hour)
	if kept, removed := orphans(true); kept != 0 || removed != 1 {
		t.Errorf("dry run: kept %d removed %d", kept, removed)
	}
	if _, removed := orphans(false); removed != 1 {
		t.Errorf("old orphan not removed")
	}
	l, err := s.List(testCtx(t))
	if err != nil || len(l.Orphans) != 0 || len(l.Backups) != 1 {
		t.Errorf("after prune: %+v %v", l, err)
	}
}

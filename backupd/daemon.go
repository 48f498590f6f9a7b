package backupd

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/lifeboat-dev/lifeboat/backupd/internal/backoff"
	"github.com/lifeboat-dev/lifeboat/backupd/store"
)

// Daemon takes a backup at every slot of its schedule, retries a failed
// attempt within the slot, applies retention after each success, runs
// drills on their own schedule, and serves /healthz and /metrics.
type Daemon struct {
	Runner   *Runner
	Schedule Schedule
	Metrics  *Metrics
	// SlotRetries is how many times a failed attempt is tried again within
	// its slot, with backoff, before the next slot is due.
	SlotRetries int
	// Drill and DrillSchedule, if both set, restore the latest backup
	// periodically.
	Drill         *Drill
	DrillSchedule Schedule

	mu          sync.Mutex
	started     time.Time
	lastSuccess time.Time
	last        Attempt
	lastDrill   *DrillReport
	info        store.DaemonInfo // what the prefix was last told
}

// Health is what /healthz reports.
type Health struct {
	OK          bool         `json:"ok"`
	Reason      string       `json:"reason"`
	LastSuccess time.Time    `json:"lastSuccess,omitzero"`
	LastID      string       `json:"lastID,omitempty"`
	LastError   string       `json:"lastError,omitempty"`
	LastCause   string       `json:"lastCause,omitempty"`
	Interval    string       `json:"interval"`
	LastDrill   *DrillReport `json:"lastDrill,omitempty"`
}

// Health fails when the last success is older than twice the schedule's
// interval (or, before any success, when the daemon has run that long).
func (d *Daemon) Health() Health {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := d.Runner.Config.now()
	iv := Interval(d.Schedule, now)
	h := Health{LastSuccess: d.lastSuccess, Interval: iv.String(), LastDrill: d.lastDrill}
	if d.last.Err != nil {
		h.LastError, h.LastCause = d.last.Err.Error(), CauseOf(d.last.Err)
	}
	if d.last.Manifest != nil {
		h.LastID = d.last.Manifest.ID
	}
	since := d.lastSuccess
	if since.IsZero() {
		since = d.started
	}
	age := now.Sub(since)
	h.OK = age <= 2*iv
	switch {
	case h.OK && d.lastSuccess.IsZero():
		h.Reason = fmt.Sprintf("no backup yet; started %s ago", age.Round(time.Second))
	case h.OK:
		h.Reason = fmt.Sprintf("last backup %s ago", age.Round(time.Second))
	case d.lastSuccess.IsZero():
		h.Reason = fmt.Sprintf("no backup in the %s since start (twice the interval is %s)", age.Round(time.Second), 2*iv)
	default:
		h.Reason = fmt.Sprintf("last backup %s ago, older than twice the interval (%s)", age.Round(time.Second), 2*iv)
	}
	return h
}

// Handler serves /healthz (200 or 503, JSON) and /metrics.
func (d *Daemon) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		h := d.Health()
		w.Header().Set("Content-Type", "application/json")
		if !h.OK {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		_ = json.NewEncoder(w).Encode(h)
	})
	mux.Handle("/metrics", promhttp.HandlerFor(d.Metrics.Registry, promhttp.HandlerOpts{}))
	return mux
}

// Run takes backups until ctx ends. It first reads the newest committed
// backup, so that a restarted daemon's health starts from it, and records
// its schedules on the prefix (store.DaemonInfo, with the last drill kept),
// as it records each drill's outcome there afterwards.
func (d *Daemon) Run(ctx context.Context) error {
	d.start(ctx)
	var wg sync.WaitGroup
	if d.Drill != nil && d.DrillSchedule != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.drillLoop(ctx)
		}()
	}
	defer wg.Wait()
	cfg := d.Runner.Config
	for {
		slot := d.Schedule.Next(cfg.now())
		if !sleepUntil(ctx, cfg.now, slot) {
			return nil
		}
		d.slot(ctx, slot)
	}
}

// start notes the start time and the newest committed backup.
func (d *Daemon) start(ctx context.Context) {
	cfg := d.Runner.Config
	lg := cfg.logger()
	d.mu.Lock()
	d.started = cfg.now()
	d.mu.Unlock()
	d.Metrics.Interval.Set(Interval(d.Schedule, d.started).Seconds())
	if d.Drill != nil && d.DrillSchedule != nil {
		d.Metrics.DrillInterval.Set(Interval(d.DrillSchedule, d.started).Seconds())
	}
	if l, err := cfg.Store.List(ctx); err == nil {
		if b, err := l.Find("latest"); err == nil {
			d.mu.Lock()
			d.lastSuccess = b.Manifest.End
			d.mu.Unlock()
			d.Metrics.LastSuccess.Set(unix(b.Manifest.End))
			d.Metrics.Revision.Set(float64(b.Manifest.Revision))
		}
	} else {
		lg.Warn("listing the prefix at start", "error", err)
	}
	info, _, err := cfg.Store.DaemonInfo(ctx)
	if err != nil {
		lg.Warn("reading the daemon's record at start", "error", err)
	}
	info.Holder, info.Started = d.Runner.Holder, d.started.UTC()
	info.Schedule = scheduleInfo(d.Schedule, d.started)
	info.Drill = nil
	if d.Drill != nil && d.DrillSchedule != nil {
		di := scheduleInfo(d.DrillSchedule, d.started)
		info.Drill = &di
	}
	d.putInfo(ctx, info)
}

func scheduleInfo(s Schedule, t time.Time) store.ScheduleInfo {
	return store.ScheduleInfo{Spec: s.String(), Interval: store.Duration(Interval(s, t))}
}

// putInfo records info on the prefix; a failure is logged, and the next
// write carries it.
func (d *Daemon) putInfo(ctx context.Context, info store.DaemonInfo) {
	cfg := d.Runner.Config
	info.Updated = cfg.now().UTC()
	d.mu.Lock()
	d.info = info
	d.mu.Unlock()
	if err := cfg.Store.PutDaemonInfo(context.WithoutCancel(ctx), info); err != nil {
		cfg.logger().Error("recording the daemon's schedule and last drill", "error", err)
	}
}

// slot makes the attempts of one slot.
func (d *Daemon) slot(ctx context.Context, slot time.Time) {
	cfg := d.Runner.Config
	next := d.Schedule.Next(slot)
	wait := backoff.Policy{Attempts: 1, Initial: time.Second, Max: 30 * time.Second}
	delay := wait.Initial
	for try := 0; ; try++ {
		a := d.Runner.Attempt(ctx, slot)
		if a.Err != nil && ctx.Err() != nil {
			// The daemon is stopping: an attempt it cut short is not a
			// failure of the store or the cluster, and nothing counts.
			cfg.logger().Info("attempt interrupted by shutdown", "slot", slot, "error", a.Err)
			return
		}
		d.Metrics.observe(a)
		d.mu.Lock()
		d.last = a
		if a.Manifest != nil {
			d.lastSuccess = a.Manifest.End
		}
		d.mu.Unlock()
		if a.Err == nil || try >= d.SlotRetries || ctx.Err() != nil || !cfg.now().Add(delay).Before(next) {
			return
		}
		cfg.logger().Info("retrying the slot", "slot", slot, "in", delay, "try", try+1)
		if !sleepUntil(ctx, cfg.now, cfg.now().Add(delay)) {
			return
		}
		delay = min(2*delay, wait.Max)
	}
}

func (d *Daemon) drillLoop(ctx context.Context) {
	cfg := d.Runner.Config
	for {
		at := d.DrillSchedule.Next(cfg.now())
		if !sleepUntil(ctx, cfg.now, at) {
			return
		}
		rep, err := d.Drill.Run(ctx, "latest")
		if err != nil && ctx.Err() != nil {
			// Cut short by the daemon's stop: neither passed nor failed.
			cfg.logger().Info("drill interrupted by shutdown", "error", err)
			return
		}
		d.observeDrill(ctx, rep, err)
	}
}

func (d *Daemon) observeDrill(ctx context.Context, rep *DrillReport, err error) {
	lg := d.Runner.Config.logger()
	if err != nil {
		d.Metrics.Drills.WithLabelValues("failed").Inc()
		lg.Error("drill failed", "error", err)
	} else {
		d.Metrics.Drills.WithLabelValues("ok").Inc()
		d.Metrics.DrillLastSuccess.Set(unix(rep.End))
		d.Metrics.DrillLastRevision.Set(float64(rep.Revision))
		lg.Info("drill passed", "id", rep.ID, "revision", rep.Revision, "keys", rep.Keys, "took", rep.End.Sub(rep.Start))
	}
	if rep != nil {
		d.Metrics.DrillLastDuration.Set(rep.End.Sub(rep.Start).Seconds())
		res := &store.DrillResult{Start: rep.Start, End: rep.End, ID: rep.ID, OK: err == nil}
		if err != nil {
			res.Error = err.Error()
		}
		d.mu.Lock()
		d.lastDrill = rep
		info := d.info
		d.mu.Unlock()
		info.LastDrill = res
		d.putInfo(ctx, info)
	}
}

// sleepUntil waits for the clock to reach t; false if ctx ended first.
func sleepUntil(ctx context.Context, now func() time.Time, t time.Time) bool {
	for {
		d := t.Sub(now())
		if d <= 0 {
			return true
		}
		timer := time.NewTimer(d)
		select {
		case <-ctx.Done():
			timer.Stop()
			return false
		case <-timer.C:
		}
	}
}

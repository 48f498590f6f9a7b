package backupd

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics are backupd's Prometheus metrics, with etcd-backup-restore's
// essentials: the last success, duration, bytes, revision, failures by
// cause, retention deletions, and the last drill.
type Metrics struct {
	Registry *prometheus.Registry

	LastSuccess   prometheus.Gauge
	LastAttempt   prometheus.Gauge
	LastDuration  prometheus.Gauge
	Duration      prometheus.Histogram
	DBBytes       prometheus.Gauge
	StoredBytes   prometheus.Gauge
	Revision      prometheus.Gauge
	Attempts      *prometheus.CounterVec // result: ok, failed, skipped
	Failures      *prometheus.CounterVec // cause
	Deletions     prometheus.Counter
	OrphansPurged prometheus.Counter
	Stored        prometheus.Gauge

	Interval      prometheus.Gauge // the schedule's, for alerts
	DrillInterval prometheus.Gauge

	DrillLastSuccess  prometheus.Gauge
	DrillLastDuration prometheus.Gauge
	DrillLastRevision prometheus.Gauge
	Drills            *prometheus.CounterVec // result: ok, failed
}

// NewMetrics registers the metrics in a new registry, with the process and
// Go collectors.
func NewMetrics() *Metrics {
	g := func(name, help string) prometheus.Gauge {
		return prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "backupd", Name: name, Help: help})
	}
	m := &Metrics{
		Registry:     prometheus.NewRegistry(),
		LastSuccess:  g("last_success_timestamp_seconds", "Unix time the last backup committed."),
		LastAttempt:  g("last_attempt_timestamp_seconds", "Unix time the last backup attempt ended."),
		LastDuration: g("last_backup_duration_seconds", "How long the last committed backup took, stream to manifest."),
		Duration: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "backupd", Name: "backup_duration_seconds",
			Help: "Duration of committed backups.", Buckets: prometheus.ExponentialBuckets(0.1, 2, 16)}),
		DBBytes:     g("last_backup_db_bytes", "Size of the db in the last committed backup."),
		StoredBytes: g("last_backup_stored_bytes", "Size of the stored object of the last committed backup."),
		Revision:    g("last_backup_revision", "Revision of the last committed backup."),
		Attempts: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "backupd", Name: "attempts_total",
			Help: "Backup attempts by result (ok, failed, skipped: another daemon had the slot)."}, []string{"result"}),
		Failures: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "backupd", Name: "failures_total",
			Help: "Failed backup attempts by cause (endpoint, store, verify, spool, lock)."}, []string{"cause"}),
		Deletions: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "backupd", Name: "retention_deletions_total",
			Help: "Backups deleted by retention."}),
		OrphansPurged: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "backupd", Name: "orphans_removed_total",
			Help: "Objects of no committed backup removed after the grace period."}),
		Stored:            g("backups", "Committed backups under the prefix after the last retention pass."),
		Interval:          g("schedule_interval_seconds", "Time between two slots of the backup schedule."),
		DrillInterval:     g("drill_schedule_interval_seconds", "Time between two drills; 0 when drills are off."),
		DrillLastSuccess:  g("drill_last_success_timestamp_seconds", "Unix time of the last restore drill that passed."),
		DrillLastDuration: g("drill_last_duration_seconds", "How long the last restore drill took."),
		DrillLastRevision: g("drill_last_revision", "Revision of the backup the last passing drill restored."),
		Drills: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "backupd", Name: "drills_total",
			Help: "Restore drills by result (ok, failed)."}, []string{"result"}),
	}
	for _, r := range []string{"ok", "failed", "skipped"} {
		m.Attempts.WithLabelValues(r)
	}
	for _, c := range []string{CauseEndpoint, CauseStore, CauseVerify, CauseSpool, CauseLock} {
		m.Failures.WithLabelValues(c)
	}
	for _, r := range []string{"ok", "failed"} {
		m.Drills.WithLabelValues(r)
	}
	m.Registry.MustRegister(m.LastSuccess, m.LastAttempt, m.LastDuration, m.Duration, m.DBBytes, m.StoredBytes, m.Revision,
		m.Attempts, m.Failures, m.Deletions, m.OrphansPurged, m.Stored, m.Interval, m.DrillInterval,
		m.DrillLastSuccess, m.DrillLastDuration, m.DrillLastRevision, m.Drills,
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), collectors.NewGoCollector())
	return m
}

func unix(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

// observe records an attempt.
func (m *Metrics) observe(a Attempt) {
	switch {
	case a.Skipped != "":
		m.Attempts.WithLabelValues("skipped").Inc()
		return
	case a.Err != nil:
		m.Attempts.WithLabelValues("failed").Inc()
		m.Failures.WithLabelValues(CauseOf(a.Err)).Inc()
	default:
		mf := a.Manifest
		m.Attempts.WithLabelValues("ok").Inc()
		m.LastSuccess.Set(unix(mf.End))
		d := mf.End.Sub(mf.Start).Seconds()
		m.LastDuration.Set(d)
		m.Duration.Observe(d)
		m.DBBytes.Set(float64(mf.DBSize))
		m.StoredBytes.Set(float64(mf.Object.Size))
		m.Revision.Set(float64(mf.Revision))
	}
	m.LastAttempt.Set(unix(a.End))
	if p := a.Prune; p != nil {
		m.Deletions.Add(float64(p.Deleted))
		m.OrphansPurged.Add(float64(p.Removed))
		m.Stored.Set(float64(len(p.Decisions) - p.Deleted))
	}
}

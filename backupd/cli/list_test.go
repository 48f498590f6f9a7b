package cli

import (
	"strings"
	"testing"
	"time"

	"github.com/lifeboat-dev/lifeboat/backupd/store"
)

// list tells the daemon's schedule and last drill under its table, and a
// newest backup older than twice the recorded interval.
func TestListDaemonLines(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	started := now.Add(-time.Hour)
	sched := store.ScheduleInfo{Spec: "@every 30s", Interval: store.Duration(30 * time.Second)}
	drills := &store.ScheduleInfo{Spec: "@every 5m", Interval: store.Duration(5 * time.Minute)}
	id := "00000000000000ab/20261201T115900.000Z-r42"
	fresh, old := now.Add(-45*time.Second), now.Add(-61*time.Second)
	for _, tc := range []struct {
		name   string
		info   store.DaemonInfo
		newest *time.Time
		want   string
	}{
		{"no drills", store.DaemonInfo{Holder: "backupd@h:1", Started: started, Schedule: sched}, &fresh,
			"schedule @every 30s (every 30s), by backupd@h:1 since 2026-12-01T11:00:00Z\ndrills not scheduled, none recorded\n"},
		{"drill due", store.DaemonInfo{Holder: "backupd@h:1", Started: started, Schedule: sched, Drill: drills}, nil,
			"schedule @every 30s (every 30s), by backupd@h:1 since 2026-12-01T11:00:00Z\ndrills @every 5m, none recorded yet\n"},
		{"drill ok, stale", store.DaemonInfo{Holder: "backupd@h:1", Started: started, Schedule: sched, Drill: drills,
			LastDrill: &store.DrillResult{Start: now.Add(-3 * time.Minute), End: now.Add(-2 * time.Minute), ID: id, OK: true}}, &old,
			"schedule @every 30s (every 30s), by backupd@h:1 since 2026-12-01T11:00:00Z\n" +
				"newest backup is STALE: 1m0s old, more than twice the interval\n" +
				"last drill ok at 2026-12-01T11:58:00Z (2m0s ago) of " + id + "\n"},
		{"drill failed", store.DaemonInfo{Holder: "backupd@h:1", Started: started, Schedule: sched, Drill: drills,
			LastDrill: &store.DrillResult{Start: now.Add(-time.Minute), End: now.Add(-30 * time.Second), ID: id,
				Error: "backupd: drill failed: hashkv differs"}}, &fresh,
			"schedule @every 30s (every 30s), by backupd@h:1 since 2026-12-01T11:00:00Z\n" +
				"last drill FAILED at 2026-12-01T11:59:30Z (30s ago) of " + id + ": backupd: drill failed: hashkv differs\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b strings.Builder
			writeDaemon(&b, tc.info, tc.newest, now)
			if b.String() != tc.want {
				t.Errorf("got\n%s\nwant\n%s", b.String(), tc.want)
			}
		})
	}
}

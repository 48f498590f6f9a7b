package retention

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

var epoch = time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC) // a Monday

// simulate runs a daemon on a simulated clock: every interval from epoch
// for the duration it takes a backup (unless failing says the attempt at
// that time fails), then applies the policy to what it holds, as backupd
// run does after each attempt. It returns the times kept at the end.
func simulate(interval, duration time.Duration, p Policy, failing func(time.Time) bool) []time.Time {
	var held []Item
	lastFailed := false
	for now := epoch; now.Before(epoch.Add(duration)); now = now.Add(interval) {
		if failing != nil && failing(now) {
			lastFailed = true
		} else {
			held = append(held, Item{ID: now.Format(time.RFC3339), Time: now})
			lastFailed = false
		}
		paused := ""
		if lastFailed {
			paused = "the newest backup attempt failed"
		}
		var kept []Item
		for i, d := range Plan(held, now, p, paused) {
			if d.Keep {
				kept = append(kept, held[i])
			}
		}
		held = kept
	}
	var ts []time.Time
	for _, it := range held {
		ts = append(ts, it.Time)
	}
	return ts
}

func every(from time.Time, step time.Duration, n int) []time.Time {
	var ts []time.Time
	for i := range n {
		ts = append(ts, from.Add(time.Duration(i)*step))
	}
	return ts
}

func TestSimulatedClock(t *testing.T) {
	const day = 24 * time.Hour
	last := epoch.Add(10*day - 2*time.Hour) // the final backup of 10 days
	tests := []struct {
		name    string
		policy  Policy
		failing func(time.Time) bool
		want    []time.Time
	}{
		{
			// The default: every 2h, keep 2 days. The final run at
			// last keeps what is younger than 48h: 24 backups.
			name:   "every 2h keep 2 days for 10 days",
			policy: Policy{Within: 48 * time.Hour},
			want:   every(last.Add(-46*time.Hour), 2*time.Hour, 24),
		},
		{
			name:   "keep last 3",
			policy: Policy{Last: 3},
			want:   every(last.Add(-4*time.Hour), 2*time.Hour, 3),
		},
		{
			// Daily keeps the newest of each of the last 4 UTC days,
			// i.e. 22:00 of the three days before the last, and the last.
			name:   "daily 4",
			policy: Policy{Daily: 4},
			want:   append(every(epoch.Add(6*day+22*time.Hour), day, 3), last),
		},
		{
			// Weekly 2 over 10 days from a Monday: the newest of week 1
			// (Sunday 22:00) and the last.
			name:   "weekly 2 plus last 1",
			policy: Policy{Weekly: 2, Last: 1},
			want:   []time.Time{epoch.Add(6*day + 22*time.Hour), last},
		},
		{
			name:   "hourly 3 on a 2h schedule spans 6 hours",
			policy: Policy{Hourly: 3},
			want:   every(last.Add(-4*time.Hour), 2*time.Hour, 3),
		},
		{
			// Backups fail from day 3 on: nothing is deleted after the
			// first failure, so the last good one and everything within
			// 48h of it stays.
			name:    "days of failures never delete the last good one",
			policy:  Policy{Within: 48 * time.Hour},
			failing: func(t time.Time) bool { return !t.Before(epoch.Add(3 * day)) },
			want:    every(epoch.Add(3*day-48*time.Hour), 2*time.Hour, 24),
		},
		{
			name:   "zero policy keeps the newest only",
			policy: Policy{},
			want:   []time.Time{last},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := simulate(2*time.Hour, 10*day, tt.policy, tt.failing)
			if !slices.EqualFunc(got, tt.want, time.Time.Equal) {
				t.Errorf("kept %d:\n%s\nwant %d:\n%s", len(got), fmtTimes(got), len(tt.want), fmtTimes(tt.want))
			}
		})
	}
}

func fmtTimes(ts []time.Time) string {
	var b strings.Builder
	for _, t := range ts {
		fmt.Fprintf(&b, "  %s\n", t.Format(time.RFC3339))
	}
	return b.String()
}

// Every decision carries its reasons, and a paused plan deletes nothing
// even outside the window.
func TestPlanReasons(t *testing.T) {
	now := epoch.Add(100 * time.Hour)
	items := []Item{{"old", epoch}, {"mid", epoch.Add(90 * time.Hour)}, {"new", epoch.Add(99 * time.Hour)}}
	got := Plan(items, now, Policy{Within: 2 * time.Hour}, "")
	want := map[string]string{"old": "outside the policy", "mid": "outside the policy", "new": "newest backup"}
	for _, d := range got {
		if !strings.HasPrefix(d.Reasons[0], want[d.ID]) || d.Keep != (d.ID == "new") {
			t.Errorf("%s: keep %v %v", d.ID, d.Keep, d.Reasons)
		}
	}
	for _, d := range Plan(items, now, Policy{}, "the newest backup attempt failed") {
		if !d.Keep || !strings.Contains(d.Reasons[0], "paused") {
			t.Errorf("paused: %s keep %v %v", d.ID, d.Keep, d.Reasons)
		}
	}
	if got := Plan(nil, now, Policy{Last: 3}, ""); len(got) != 0 {
		t.Errorf("empty: %v", got)
	}
}

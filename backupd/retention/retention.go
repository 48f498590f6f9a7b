// Package retention decides which backups to keep: every backup younger
// than a window, plus grandfather-father-son keeps (the last N, and the
// newest of each of the last N hours, days and ISO weeks, in UTC). It never
// deletes the newest backup, and deletes nothing while the newest backup
// attempt failed. It is a pure function of the backups and a clock, so that
// an operator can read the plan (prune --dry-run) before it runs.
package retention

import (
	"fmt"
	"slices"
	"time"
)

// Policy is what to keep. The zero Policy keeps only the newest backup.
type Policy struct {
	Within time.Duration `json:"within"`
	Last   int           `json:"last"`
	Hourly int           `json:"hourly"`
	Daily  int           `json:"daily"`
	Weekly int           `json:"weekly"`
}

// String reads like the flags.
func (p Policy) String() string {
	return fmt.Sprintf("within %s, last %d, hourly %d, daily %d, weekly %d", p.Within, p.Last, p.Hourly, p.Daily, p.Weekly)
}

// Item is one committed backup.
type Item struct {
	ID   string
	Time time.Time
}

// Decision says whether to keep a backup, and why.
type Decision struct {
	ID      string    `json:"id"`
	Time    time.Time `json:"time"`
	Keep    bool      `json:"keep"`
	Reasons []string  `json:"reasons"`
}

// Plan decides for every item. paused, if not empty, is why nothing may
// be deleted (the newest attempt failed); every item is then kept. The
// decisions are in the items' order.
func Plan(items []Item, now time.Time, p Policy, paused string) []Decision {
	order := make([]int, len(items)) // indexes, newest first
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return items[b].Time.Compare(items[a].Time) })
	reasons := make([][]string, len(items))
	keep := func(i int, why string) { reasons[i] = append(reasons[i], why) }
	if paused != "" {
		for i := range items {
			keep(i, "retention paused: "+paused)
		}
	}
	if len(order) > 0 {
		keep(order[0], "newest backup")
	}
	for n, i := range order {
		if age := now.Sub(items[i].Time); age < p.Within {
			keep(i, "within "+p.Within.String())
		}
		if n < p.Last {
			keep(i, fmt.Sprintf("last %d", p.Last))
		}
	}
	buckets := []struct {
		n    int
		name string
		key  func(time.Time) string
	}{
		{p.Hourly, "hourly", func(t time.Time) string { return t.UTC().Format("2006-01-02T15") }},
		{p.Daily, "daily", func(t time.Time) string { return t.UTC().Format("2006-01-02") }},
		{p.Weekly, "weekly", func(t time.Time) string {
			y, w := t.UTC().ISOWeek()
			return fmt.Sprintf("%d-W%02d", y, w)
		}},
	}
	for _, b := range buckets {
		seen := map[string]bool{}
		for _, i := range order {
			if len(seen) == b.n {
				break
			}
			k := b.key(items[i].Time)
			if !seen[k] {
				seen[k] = true
				keep(i, fmt.Sprintf("%s %s", b.name, k))
			}
		}
	}
	out := make([]Decision, len(items))
	for i, it := range items {
		out[i] = Decision{ID: it.ID, Time: it.Time, Keep: len(reasons[i]) > 0, Reasons: reasons[i]}
		if !out[i].Keep {
			out[i].Reasons = []string{"outside the policy (" + p.String() + ")"}
		}
	}
	return out
}

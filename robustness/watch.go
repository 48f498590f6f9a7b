package robustness

import (
	"fmt"
	"slices"
	"sort"
	"time"
)

// EventLog is the union of what the watches delivered: the events of each
// revision, and the revisions that some watch is known to have covered
// without a gap (from its start to its last event or progress
// notification).
type EventLog struct {
	// Events holds each revision's events, as the first watch that
	// delivered them had them.
	Events map[int64][]Event
	// Covered is the sorted, merged list of revision intervals [a, b] that
	// some watch covered.
	Covered [][2]int64
	// keys holds each key's events in revision order.
	keys map[string][]keyEvent
}

type keyEvent struct {
	rev int64
	ev  Event
}

// covers reports whether the log is complete over [from, to].
func (l *EventLog) covers(from, to int64) bool {
	if from > to {
		return true
	}
	for _, c := range l.Covered {
		if c[0] <= from && to <= c[1] {
			return true
		}
	}
	return false
}

// Complete reports whether the log is complete from revision 2 to rev,
// so that the state at rev can be computed from it.
func (l *EventLog) Complete(rev int64) bool { return l.covers(2, rev) }

// At returns key's state at rev, from the log: the last event on it at or
// before rev; ok false if it did not exist.
func (l *EventLog) At(key string, rev int64) (KV, bool) {
	evs := l.keys[key]
	i := sort.Search(len(evs), func(i int) bool { return evs[i].rev > rev })
	if i == 0 || evs[i-1].ev.Delete {
		return KV{}, false
	}
	return evs[i-1].ev.KV, true
}

// RangeAt returns the keys of [key, end) at rev, as rangeKVs does.
func (l *EventLog) RangeAt(key, end string, rev int64) []KV {
	if end == "" {
		if kv, ok := l.At(key, rev); ok {
			return []KV{kv}
		}
		return nil
	}
	var out []KV
	for k := range l.keys {
		if k >= key && (end == "\x00" || k < end) {
			if kv, ok := l.At(k, rev); ok {
				out = append(out, kv)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// claimed is what one watch claims to have covered: from its start to its
// last event or progress notification, every event in [from, to].
func claimed(w *Watch) (from, to int64, ok bool) {
	if w.Start == 0 {
		return 0, 0, false // from "now": where it began is not known
	}
	from = max(w.Start, 2)
	to = from - 1
	for _, r := range w.Responses {
		if r.Compacted != 0 {
			return 0, 0, false
		}
		for _, e := range r.Events {
			to = max(to, e.KV.Mod)
		}
		if r.Progress() {
			to = max(to, r.Rev)
		}
	}
	return from, to, to >= from
}

// coverage is the part of what w claims that it delivered without a gap.
func coverage(w *Watch) (from, to int64, ok bool) {
	from, to, ok = claimed(w)
	if !ok {
		return 0, 0, false
	}
	_, evs := byRevision(w)
	for rev := from; rev <= to; rev++ {
		if _, ok := evs[rev]; !ok {
			return from, rev - 1, rev > from
		}
	}
	return from, to, true
}

// byRevision groups a watch's events by revision, in order.
func byRevision(w *Watch) ([]int64, map[int64][]Event) {
	var revs []int64
	m := map[int64][]Event{}
	for _, r := range w.Responses {
		for _, e := range r.Events {
			rev := e.KV.Mod
			if _, ok := m[rev]; !ok {
				revs = append(revs, rev)
			}
			m[rev] = append(m[rev], e)
		}
	}
	return revs, m
}

// BuildEventLog merges the watches of h, reporting watches that disagree
// on a revision's events.
func BuildEventLog(h History) (*EventLog, []Anomaly) {
	l := &EventLog{Events: map[int64][]Event{}, keys: map[string][]keyEvent{}}
	var anomalies []Anomaly
	from := map[int64]int{} // the watch each revision's events came from
	for _, w := range h.Watches {
		_, evs := byRevision(w)
		for rev, es := range evs {
			if first, ok := l.Events[rev]; !ok {
				l.Events[rev] = es
				from[rev] = w.ID
			} else if !sameEvents(first, es) {
				anomalies = append(anomalies, Anomaly{Check: "watch", Message: fmt.Sprintf(
					"watches disagree on revision %d: watch %d had %v, watch %d (on %s) had %v", rev, from[rev], first, w.ID, w.Endpoint, es)})
			}
		}
		if a, b, ok := coverage(w); ok {
			l.Covered = append(l.Covered, [2]int64{a, b})
		}
	}
	revs := make([]int64, 0, len(l.Events))
	for rev := range l.Events {
		revs = append(revs, rev)
	}
	slices.Sort(revs)
	for _, rev := range revs {
		for _, e := range l.Events[rev] {
			l.keys[e.KV.Key] = append(l.keys[e.KV.Key], keyEvent{rev, e})
		}
	}
	sort.Slice(l.Covered, func(i, j int) bool { return l.Covered[i][0] < l.Covered[j][0] })
	var merged [][2]int64
	for _, c := range l.Covered {
		if n := len(merged); n > 0 && c[0] <= merged[n-1][1]+1 {
			merged[n-1][1] = max(merged[n-1][1], c[1])
			continue
		}
		merged = append(merged, c)
	}
	l.Covered = merged
	return l, anomalies
}

// sameEvents compares the events of one revision. A prev_kv present in one
// and missing in the other is no difference: etcd leaves it out when the
// revision before the event has been compacted by the time it is sent
// (checkEvent checks it against the log).
func sameEvents(a, b []Event) bool {
	return slices.EqualFunc(a, b, func(x, y Event) bool {
		return x.Delete == y.Delete && x.KV == y.KV && (x.Prev == nil || y.Prev == nil || *x.Prev == *y.Prev)
	})
}

// CheckWatches checks each watch of h against etcd's guarantees and the
// merged log: events in revision order without duplicates; every
// revision from the start to what the watch covered present (a revision
// always has an event under KeyPrefix), with the log's events; each
// event's metadata and prev_kv consistent with the key's previous event;
// a compacted response only for a start below a revision that was
// compacted by then.
func CheckWatches(h History, l *EventLog) []Anomaly {
	var out []Anomaly
	add := func(w *Watch, format string, args ...any) {
		out = append(out, Anomaly{Check: "watch", Message: fmt.Sprintf("watch %d (client %d, on %s, from %d): ", w.ID, w.Client, w.Endpoint, w.Start) + fmt.Sprintf(format, args...)})
	}
	for _, w := range h.Watches {
		last := int64(0)
		seen := map[string]bool{}
		for _, r := range w.Responses {
			if r.Compacted != 0 {
				if w.Start >= r.Compacted {
					add(w, "compacted at %d, but it starts at or above it", r.Compacted)
				}
				if !compactedBy(h, r.Compacted, r.Time) {
					add(w, "compacted at %d at %v, before any compaction to %d was asked", r.Compacted, r.Time, r.Compacted)
				}
			}
			for _, e := range r.Events {
				rev := e.KV.Mod
				id := fmt.Sprintf("%d/%s", rev, e.KV.Key)
				switch {
				case rev < last:
					add(w, "event %v at revision %d after revision %d", e, rev, last)
				case seen[id]:
					add(w, "duplicate event %v", e)
				case w.Start > 0 && rev < w.Start:
					add(w, "event %v before the start revision", e)
				}
				seen[id] = true
				last = max(last, rev)
				for _, msg := range checkEvent(l, e, h) {
					add(w, "%s", msg)
				}
			}
		}
		from, to, ok := claimed(w)
		if !ok {
			continue
		}
		_, evs := byRevision(w)
		for rev := from; rev <= to; rev++ {
			got, ok := evs[rev]
			if !ok {
				add(w, "no event at revision %d, inside [%d, %d] that it covered", rev, from, to)
				break
			}
			if want := l.Events[rev]; !sameEvents(got, want) {
				add(w, "revision %d: %v, others saw %v", rev, got, want)
			}
		}
	}
	return out
}

// compactedBy reports whether a compaction to rev was asked before t.
func compactedBy(h History, rev int64, t time.Duration) bool {
	for _, c := range h.Compactions {
		if c.Rev == rev && c.Call <= t {
			return true
		}
	}
	return false
}

// checkEvent checks one event's metadata and prev_kv against the key's
// previous event in the log, where the log is complete up to it.
func checkEvent(l *EventLog, e Event, h History) []string {
	var out []string
	rev := e.KV.Mod
	if !e.Delete {
		switch {
		case e.KV.Version == 1 && e.KV.Create != rev:
			out = append(out, fmt.Sprintf("%v: version 1 but created at %d", e, e.KV.Create))
		case e.KV.Version > 1 && e.KV.Create >= rev:
			out = append(out, fmt.Sprintf("%v: version %d but created at %d", e, e.KV.Version, e.KV.Create))
		case e.KV.Version < 1:
			out = append(out, fmt.Sprintf("%v: version %d", e, e.KV.Version))
		}
	}
	if !l.Complete(rev - 1) {
		return out
	}
	prev, existed := l.At(e.KV.Key, rev-1)
	switch {
	case e.Delete && !existed:
		out = append(out, fmt.Sprintf("%v: deletes a key that did not exist", e))
	case !e.Delete && existed && (e.KV.Create != prev.Create || e.KV.Version != prev.Version+1):
		out = append(out, fmt.Sprintf("%v: does not follow %v", e, prev))
	case !e.Delete && !existed && e.KV.Version != 1:
		out = append(out, fmt.Sprintf("%v: the key did not exist", e))
	}
	switch {
	case e.Prev == nil && existed && rev-1 >= maxCompaction(h):
		// (below a compaction, etcd cannot read the previous revision)
		out = append(out, fmt.Sprintf("%v: no prev_kv, but the key was %v", e, prev))
	case e.Prev != nil && !existed:
		out = append(out, fmt.Sprintf("%v: prev_kv, but the key did not exist", e))
	case e.Prev != nil && *e.Prev != prev:
		out = append(out, fmt.Sprintf("%v: prev_kv, but the key was %v", e, prev))
	}
	return out
}

func maxCompaction(h History) int64 {
	var m int64
	for _, c := range h.Compactions {
		m = max(m, c.Rev)
	}
	return m
}

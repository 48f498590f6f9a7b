package mvcc

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

// watchLog collects a stream's responses by watcher: each event as
// evString, a compacted response as "compacted N".
type watchLog map[WatchID][]string

// collectUntil reads ws until every watcher in want has as many entries
// as want gives it, and returns them all; it fails if the channel closes
// or the bound runs out first.
func collectUntil(t *testing.T, ws *WatchStream, want map[WatchID]int) watchLog {
	t.Helper()
	return collectWhile(t, ws, func(got watchLog) bool {
		for id, n := range want {
			if len(got[id]) < n {
				return false
			}
		}
		return true
	})
}

// collectWhile reads ws until done holds.
func collectWhile(t *testing.T, ws *WatchStream, done func(watchLog) bool) watchLog {
	t.Helper()
	got := make(watchLog)
	bound := time.After(10 * time.Second)
	for !done(got) {
		select {
		case r, ok := <-ws.Chan():
			if !ok {
				t.Fatalf("stream closed; got %v", got)
			}
			if r.CompactRevision != 0 {
				got[r.WatchID] = append(got[r.WatchID], fmt.Sprint("compacted ", r.CompactRevision))
			}
			for _, ev := range r.Events {
				got[r.WatchID] = append(got[r.WatchID], evString(ev))
			}
		case <-bound:
			t.Fatalf("gave up waiting; got %v", got)
		}
	}
	return got
}

func mustWatch(t *testing.T, ws *WatchStream, key, end string, start int64, prevKV bool) WatchID {
	t.Helper()
	var e []byte
	if end != "" {
		e = []byte(end)
	}
	id, err := ws.Watch(AutoWatchID, []byte(key), e, start, prevKV)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// sharedHistory writes the same changes to a store: a follower's store (A)
// holds a prefix of the history of the leader's (B).
func sharedHistory(t *testing.T, ts *testStore) {
	t.Helper()
	ts.put(t, "a", "1") // 2
	ts.put(t, "b", "1") // 3
	ts.put(t, "a", "2") // 4
	ts.put(t, "c", "1") // 5
}

func TestAdoptWatchers(t *testing.T) {
	const slowN = 2 * watchChanSize // more than the slow stream's channel holds
	a := newTestStore(t, Config{WatchSyncInterval: time.Millisecond})
	sharedHistory(t, a)

	s1 := a.NewWatchStream()
	defer s1.Close()
	wa := mustWatch(t, s1, "a", "", 0, false)              // synced from 6
	wb := mustWatch(t, s1, "b", "c", 0, true)              // synced, prev_kv
	wBehind := mustWatch(t, s1, "a", "", 3, false)         // unsynced until the loop catches it up
	wFuture := mustWatch(t, s1, "a", "", 5+slowN+3, false) // synced, starts at the delete below
	slow := a.NewWatchStream()
	defer slow.Close()
	wk := mustWatch(t, slow, "k", "", 0, false)
	// Nobody reads the slow stream: its watcher falls behind on A.
	for i := range slowN {
		a.put(t, "k", fmt.Sprint(i)) // 6 .. 5+slowN
	}

	// B is the leader's store: the same history and more.
	b := newTestStore(t, Config{WatchSyncInterval: time.Millisecond})
	sharedHistory(t, b)
	for i := range slowN {
		b.put(t, "k", fmt.Sprint(i))
	}
	base := int64(5 + slowN)
	b.put(t, "b", "2") // base+1
	b.put(t, "a", "3") // base+2
	b.del(t, "a", "")  // base+3
	b.put(t, "b", "3") // base+4

	// The member stops A, then swaps its backend; a watch created in
	// between lands on A and moves with the others.
	a.Stop()
	wSwap := mustWatch(t, s1, "c", "", 2, false)
	b.AdoptWatchers(a.Store)
	a.Close() // closes nothing that moved
	if r, a2 := s1.Rev(), b.Rev(); r != a2 {
		t.Errorf("stream revision %d after adoption, want B's %d", r, a2)
	}
	// The apply loop goes on writing to B while the watchers catch up.
	b.put(t, "k", fmt.Sprint(slowN)) // base+5
	b.put(t, "a", "4")               // base+6

	ev := func(format string, args ...any) string { return fmt.Sprintf(format, args...) }
	want := watchLog{
		wa:      {ev("PUT a=3@%d", base+2), ev("DELETE a=@%d", base+3), ev("PUT a=4@%d", base+6)},
		wb:      {ev("PUT b=2@%d prev 1", base+1), ev("PUT b=3@%d prev 2", base+4)},
		wBehind: {"PUT a=2@4", ev("PUT a=3@%d", base+2), ev("DELETE a=@%d", base+3), ev("PUT a=4@%d", base+6)},
		wFuture: {ev("DELETE a=@%d", base+3), ev("PUT a=4@%d", base+6)},
		wSwap:   {"PUT c=1@5"},
	}
	counts := make(map[WatchID]int)
	for id, evs := range want {
		counts[id] = len(evs)
	}
	got := collectUntil(t, s1, counts)
	for id, w := range want {
		if !slices.Equal(got[id], w) {
			t.Errorf("watcher %d:\n got %v\nwant %v", id, got[id], w)
		}
	}
	var wantK []string
	for i := range slowN {
		wantK = append(wantK, fmt.Sprintf("PUT k=%d@%d", i, 6+i))
	}
	wantK = append(wantK, ev("PUT k=%d@%d", slowN, base+5))
	if gotK := collectUntil(t, slow, map[WatchID]int{wk: len(wantK)})[wk]; !slices.Equal(gotK, wantK) {
		t.Errorf("slow watcher: got %d events, want %d in order, each once:\n got %v", len(gotK), len(wantK), gotK)
	}
	quiet(t, s1)
	quiet(t, slow)

	// The stream works on B: progress, new watchers, cancel.
	if !s1.RequestProgressAll() {
		t.Error("RequestProgressAll with every watcher caught up sent nothing")
	} else if r := <-s1.Chan(); r.WatchID != ProgressWatchID || r.Revision != b.Rev() {
		t.Errorf("progress %+v, want revision %d", r, b.Rev())
	}
	wNew := mustWatch(t, s1, "n", "", 0, false)
	if err := s1.Cancel(wa); err != nil {
		t.Fatal(err)
	}
	b.put(t, "n", "1") // base+7
	b.put(t, "a", "5") // base+8: wBehind and wFuture, not wa
	got = collectUntil(t, s1, map[WatchID]int{wNew: 1, wBehind: 1, wFuture: 1})
	if len(got[wa]) != 0 || got[wNew][0] != ev("PUT n=1@%d", base+7) || got[wBehind][0] != ev("PUT a=5@%d", base+8) {
		t.Errorf("after adoption: %v", got)
	}
	// A stream opened on A now opens on B.
	late := a.NewWatchStream()
	defer late.Close()
	if late.Rev() != b.Rev() {
		t.Errorf("stream opened on the replaced store at revision %d, want %d", late.Rev(), b.Rev())
	}
	mustWatch(t, late, "z", "", 0, false)
	b.put(t, "z", "1")
	if got := collectUntil(t, late, map[WatchID]int{0: 1})[0]; got[0] != ev("PUT z=1@%d", base+9) {
		t.Errorf("late stream: %v", got)
	}

	// Closing B closes the adopted streams.
	b.Close()
	for _, ws := range []*WatchStream{s1, slow, late} {
		for range ws.Chan() {
		}
	}
}

func TestAdoptWatchersCompacted(t *testing.T) {
	a := newTestStore(t, Config{WatchSyncInterval: time.Millisecond})
	sharedHistory(t, a)
	ws := a.NewWatchStream()
	defer ws.Close()
	wNext := mustWatch(t, ws, "a", "", 0, false)  // next revision 6
	wOld := mustWatch(t, ws, "a", "", 3, false)   // next revision 3, or 5 once caught up on A
	wLater := mustWatch(t, ws, "a", "", 8, false) // past the compaction

	b := newTestStore(t, Config{WatchSyncInterval: time.Millisecond})
	sharedHistory(t, b)
	b.put(t, "a", "3") // 6
	b.put(t, "b", "2") // 7
	b.del(t, "a", "")  // 8
	b.put(t, "d", "1") // 9
	if _, err := b.Compact(7); err != nil {
		t.Fatal(err)
	}

	b.AdoptWatchers(a.Store)
	a.Close()
	// wOld may have received revision 4 from A before the swap; either
	// way its last response is the compacted one.
	got := collectWhile(t, ws, func(g watchLog) bool {
		old := g[wOld]
		oldDone := len(old) >= 2 || len(old) == 1 && old[0] != "PUT a=2@4"
		return len(g[wNext]) >= 1 && len(g[wLater]) >= 1 && oldDone
	})
	if !slices.Equal(got[wNext], []string{"compacted 7"}) {
		t.Errorf("watcher at 6: %v, want the compacted response", got[wNext])
	}
	if w := []string{"compacted 7"}; !slices.Equal(got[wOld], w) && !slices.Equal(got[wOld], append([]string{"PUT a=2@4"}, w...)) {
		t.Errorf("watcher at 3: %v, want [PUT a=2@4]? compacted 7", got[wOld])
	}
	if !slices.Equal(got[wLater], []string{"DELETE a=@8"}) {
		t.Errorf("watcher at 8: %v", got[wLater])
	}
	// The compacted watchers are done; the other one goes on.
	b.put(t, "a", "4") // 10
	if got := collectUntil(t, ws, map[WatchID]int{wLater: 1}); !slices.Equal(got[wLater], []string{"PUT a=4@10"}) || len(got) != 1 {
		t.Errorf("after the compacted responses: %v", got)
	}
	quiet(t, ws)
}

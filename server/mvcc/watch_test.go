package mvcc

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
)

// collect reads responses until n events arrived or the time is up.
func collect(t *testing.T, ws *WatchStream, n int) ([]string, []WatchResponse) {
	t.Helper()
	var evs []string
	var resps []WatchResponse
	timeout := time.After(10 * time.Second)
	for len(evs) < n {
		select {
		case r, ok := <-ws.Chan():
			if !ok {
				t.Fatalf("channel closed after %v", evs)
			}
			resps = append(resps, r)
			for _, ev := range r.Events {
				evs = append(evs, evString(ev))
			}
		case <-timeout:
			t.Fatalf("got %d events of %d: %v", len(evs), n, evs)
		}
	}
	return evs, resps
}

func evString(ev mvccpb.Event) string {
	s := fmt.Sprintf("%s %s=%s@%d", ev.Type, ev.Kv.Key, ev.Kv.Value, ev.Kv.ModRevision)
	if ev.PrevKv != nil {
		s += " prev " + string(ev.PrevKv.Value)
	}
	return s
}

// quiet checks that nothing more arrives for a while.
func quiet(t *testing.T, ws *WatchStream) {
	t.Helper()
	select {
	case r := <-ws.Chan():
		t.Errorf("unexpected response %+v", r)
	case <-time.After(50 * time.Millisecond):
	}
}

func TestWatch(t *testing.T) {
	noDelete := func(ev mvccpb.Event) bool { return ev.Type == mvccpb.DELETE }
	tests := []struct {
		name     string
		key, end string
		start    int64
		prevKV   bool
		filters  []FilterFunc
		want     []string
	}{
		{"one key from now", "a", "", 0, false, nil, []string{"PUT a=10@9", "DELETE a=@11"}},
		{"prefix from now", "a", "b", 0, false, nil, []string{"PUT a=10@9", "PUT ab=11@10", "DELETE a=@11"}},
		{"every key from revision 6", "\x00", "\x00", 6, false, nil, []string{"DELETE b=@6", "PUT b=6@7", "PUT d=0@8", "PUT a=10@9", "PUT ab=11@10", "DELETE a=@11"}},
		{"one key from revision 1, the empty store", "a", "", 1, false, nil, []string{"PUT a=1@2", "PUT a=3@4", "PUT a=10@9", "DELETE a=@11"}},
		{"one key from revision 2, the first write", "a", "", 2, false, nil, []string{"PUT a=1@2", "PUT a=3@4", "PUT a=10@9", "DELETE a=@11"}},
		{"prev_kv", "a", "", 4, true, nil, []string{"PUT a=3@4 prev 1", "PUT a=10@9 prev 3", "DELETE a=@11 prev 10"}},
		{"filter", "a", "", 1, false, []FilterFunc{noDelete}, []string{"PUT a=1@2", "PUT a=3@4", "PUT a=10@9"}},
		{"future start", "a", "", 11, false, nil, []string{"DELETE a=@11"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTestStore(t, Config{WatchSyncInterval: 10 * time.Millisecond})
			seed(t, ts)
			ws := ts.NewWatchStream()
			defer ws.Close()
			id, err := ws.Watch(AutoWatchID, []byte(tt.key), []byte(tt.end), tt.start, tt.prevKV, tt.filters...)
			if err != nil {
				t.Fatal(err)
			}
			ts.put(t, "a", "10")
			ts.put(t, "ab", "11")
			ts.del(t, "a", "")
			got, resps := collect(t, ws, len(tt.want))
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("events\n got %v\nwant %v", got, tt.want)
			}
			for _, r := range resps {
				if r.WatchID != id {
					t.Errorf("watch ID %d, want %d", r.WatchID, id)
				}
			}
			quiet(t, ws)
		})
	}
}

func TestWatchCatchesUpInBatches(t *testing.T) {
	// Batches of 7 pairs: the catch-up takes several passes, each ending
	// at a main revision, while new writes keep coming.
	ts := newTestStore(t, Config{WatchSyncInterval: time.Millisecond, WatchSyncBatch: 7})
	const n = 200
	for i := range n {
		ts.put(t, fmt.Sprint("k", i%10), fmt.Sprint(i))
	}
	ws := ts.NewWatchStream()
	defer ws.Close()
	if _, err := ws.Watch(AutoWatchID, []byte("k"), []byte("l"), 1, false); err != nil {
		t.Fatal(err)
	}
	for i := n; i < n+50; i++ {
		ts.put(t, fmt.Sprint("k", i%10), fmt.Sprint(i))
	}
	got, _ := collect(t, ws, n+50)
	for i, ev := range got {
		// Write i is revision i+2: the store started at 1.
		if want := fmt.Sprintf("PUT k%d=%d@%d", i%10, i, i+2); ev != want {
			t.Fatalf("event %d: %s, want %s", i, ev, want)
		}
	}
	quiet(t, ws)
}

func TestSlowWatcherNeverBlocksWritesNorLosesEvents(t *testing.T) {
	ts := newTestStore(t, Config{WatchSyncInterval: time.Millisecond})
	ws := ts.NewWatchStream()
	defer ws.Close()
	if _, err := ws.Watch(AutoWatchID, []byte("k"), nil, 0, false); err != nil {
		t.Fatal(err)
	}
	// Far more responses than the channel holds, nobody reading: a write
	// that waited for the watcher would never return.
	const n = 3 * watchChanSize
	for i := range n {
		ts.put(t, "k", fmt.Sprint(i))
	}
	got, _ := collect(t, ws, n)
	for i, ev := range got {
		// Write i is revision i+2: the store started at 1.
		if want := fmt.Sprintf("PUT k=%d@%d", i, i+2); ev != want {
			t.Fatalf("event %d: %s, want %s", i, ev, want)
		}
	}
	quiet(t, ws)
}

func TestWatchCompacted(t *testing.T) {
	ts := newTestStore(t, Config{WatchSyncInterval: time.Millisecond})
	seed(t, ts)
	done, err := ts.Compact(6)
	if err != nil {
		t.Fatal(err)
	}
	<-done
	ws := ts.NewWatchStream()
	defer ws.Close()
	id, err := ws.Watch(AutoWatchID, []byte("a"), nil, 3, false)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-ws.Chan():
		if r.WatchID != id || r.CompactRevision != 6 || len(r.Events) != 0 {
			t.Errorf("response %+v, want compact revision 6", r)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no compacted response")
	}
	ts.put(t, "a", "after")
	quiet(t, ws)
	// A watch at the compaction itself is served.
	if _, err := ws.Watch(AutoWatchID, []byte("b"), nil, 6, false); err != nil {
		t.Fatal(err)
	}
	if got, _ := collect(t, ws, 2); fmt.Sprint(got) != "[DELETE b=@6 PUT b=6@7]" {
		t.Errorf("from the compaction: %v", got)
	}
}

func TestWatchStreamControls(t *testing.T) {
	ts := newTestStore(t, Config{WatchSyncInterval: time.Millisecond})
	seed(t, ts)
	ws := ts.NewWatchStream()
	a, err := ws.Watch(7, []byte("a"), nil, 0, false)
	if err != nil || a != 7 {
		t.Fatalf("watch with an ID: %d, %v", a, err)
	}
	if _, err := ws.Watch(7, []byte("b"), nil, 0, false); !errors.Is(err, ErrWatcherDuplicateID) {
		t.Errorf("duplicate ID: %v", err)
	}
	if _, err := ws.Watch(AutoWatchID, []byte("b"), []byte("a"), 0, false); !errors.Is(err, ErrEmptyWatcherRange) {
		t.Errorf("empty range: %v", err)
	}
	ws.RequestProgress(a)
	select {
	case r := <-ws.Chan():
		if r.WatchID != a || r.Revision != 8 || len(r.Events) != 0 {
			t.Errorf("progress %+v", r)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no progress response")
	}
	if !ws.RequestProgressAll() {
		t.Error("RequestProgressAll with every watcher synced sent nothing")
	}
	if r := <-ws.Chan(); r.WatchID != ProgressWatchID || r.Revision != 8 {
		t.Errorf("progress all %+v", r)
	}
	old, err := ws.Watch(AutoWatchID, []byte("zz"), nil, 1, false) // unsynced until the loop runs
	if err != nil {
		t.Fatal(err)
	}
	if err := ws.Cancel(old); err != nil {
		t.Fatal(err)
	}
	if err := ws.Cancel(a); err != nil {
		t.Fatal(err)
	}
	if err := ws.Cancel(a); !errors.Is(err, ErrWatcherNotExist) {
		t.Errorf("cancel twice: %v", err)
	}
	ts.put(t, "a", "x")
	quiet(t, ws)
	ws.Close()
	if _, ok := <-ws.Chan(); ok {
		t.Error("channel open after Close")
	}
	if _, err := ws.Watch(AutoWatchID, []byte("a"), nil, 0, false); !errors.Is(err, ErrClosed) {
		t.Errorf("watch on a closed stream: %v", err)
	}
}

// TestProgressOnClosedStream is a regression test for a panic the
// robustness suite's failpoint scenarios found: a client's progress
// request on a watch stream whose store had closed it (a member shutting
// down) sent on the closed channel, and the process died of "send on
// closed channel".
func TestProgressOnClosedStream(t *testing.T) {
	tests := []struct {
		name  string
		close func(ts *testStore, ws *WatchStream)
	}{
		{"closed by the client", func(_ *testStore, ws *WatchStream) { ws.Close() }},
		{"closed by the store", func(ts *testStore, _ *WatchStream) { ts.close() }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ts := newTestStore(t, Config{})
			seed(t, ts)
			ws := ts.NewWatchStream()
			id, err := ws.Watch(AutoWatchID, []byte("a"), nil, 0, false)
			if err != nil {
				t.Fatal(err)
			}
			tc.close(ts, ws)
			if ws.RequestProgressAll() {
				t.Error("RequestProgressAll on a closed stream reported a response sent")
			}
			ws.RequestProgress(id)
			if _, ok := <-ws.Chan(); ok {
				t.Error("channel open after close")
			}
		})
	}
}

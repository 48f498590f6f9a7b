package mvcc

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"

	"github.com/lifeboat-dev/lifeboat/snapkit/keyindex"
	"github.com/lifeboat-dev/lifeboat/snapkit/schema"
)

// WatchID names a watcher within its stream.
type WatchID int64

// AutoWatchID asks Watch to choose the ID.
const AutoWatchID WatchID = 0

// ProgressWatchID is the WatchID of RequestProgressAll's responses, as
// etcd's (clientv3.InvalidWatchID).
const ProgressWatchID WatchID = -1

// watchChanSize is the buffer of a stream's channel, as etcd's.
const watchChanSize = 128

// maxWatchersPerSync bounds the unsynced watchers served per pass.
const maxWatchersPerSync = 512

// Watch errors, as etcd's.
var (
	ErrWatcherNotExist    = errors.New("mvcc: watcher does not exist")
	ErrEmptyWatcherRange  = errors.New("mvcc: watcher range is empty")
	ErrWatcherDuplicateID = errors.New("mvcc: duplicate watch ID provided on the WatchStream")
)

// FilterFunc returns true for an event that the watcher must not receive.
type FilterFunc func(e mvccpb.Event) bool

// WatchResponse is what a stream delivers.
type WatchResponse struct {
	WatchID WatchID
	// Events in revision order; empty for a progress notification.
	Events []mvccpb.Event
	// Revision is the store's revision when the response was made.
	Revision int64
	// CompactRevision is set when the watcher's start revision has been
	// compacted; the watcher is then removed and gets nothing more.
	CompactRevision int64
}

// watcher is one watch. minRev and the group it is in are guarded by the
// watch.mu of its stream's store.
type watcher struct {
	ws       *WatchStream
	id       WatchID
	key, end []byte // end nil: key alone; empty: every key >= key
	prevKV   bool
	filters  []FilterFunc
	minRev   int64 // the next revision to deliver
}

func (w *watcher) matches(key []byte) bool {
	if w.end == nil {
		return bytes.Equal(key, w.key)
	}
	return bytes.Compare(key, w.key) >= 0 && (len(w.end) == 0 || bytes.Compare(key, w.end) < 0)
}

// watchState holds the watcher groups.
type watchState struct {
	mu       sync.Mutex
	keys     map[string]map[*watcher]struct{} // synced, one key
	ranges   map[*watcher]struct{}            // synced, ranges
	unsynced map[*watcher]struct{}
	streams  map[*WatchStream]struct{}
	wake     chan struct{}
	// closed: Close ran; a stream opened now is closed at once.
	closed bool
	// movedTo is the store that adopted the streams (AdoptWatchers); a
	// stream opened now opens there.
	movedTo *Store
}

func (st *watchState) init() {
	st.keys = make(map[string]map[*watcher]struct{})
	st.ranges = make(map[*watcher]struct{})
	st.unsynced = make(map[*watcher]struct{})
	st.streams = make(map[*WatchStream]struct{})
	st.wake = make(chan struct{}, 1)
}

// addSynced and remove need st.mu.
func (st *watchState) addSynced(w *watcher) {
	if w.end != nil {
		st.ranges[w] = struct{}{}
		return
	}
	set := st.keys[string(w.key)]
	if set == nil {
		set = make(map[*watcher]struct{})
		st.keys[string(w.key)] = set
	}
	set[w] = struct{}{}
}

func (st *watchState) removeSynced(w *watcher) bool {
	if w.end != nil {
		_, ok := st.ranges[w]
		delete(st.ranges, w)
		return ok
	}
	set := st.keys[string(w.key)]
	_, ok := set[w]
	delete(set, w)
	if len(set) == 0 {
		delete(st.keys, string(w.key))
	}
	return ok
}

func (st *watchState) isSynced(w *watcher) bool {
	if w.end != nil {
		_, ok := st.ranges[w]
		return ok
	}
	_, ok := st.keys[string(w.key)][w]
	return ok
}

func (st *watchState) remove(w *watcher) {
	if !st.removeSynced(w) {
		delete(st.unsynced, w)
	}
}

func (st *watchState) kick() {
	select {
	case st.wake <- struct{}{}:
	default:
	}
}

// closeAll closes every stream of s (Store.Close), and the streams opened
// on s from now on.
func (st *watchState) closeAll(s *Store) {
	st.mu.Lock()
	st.closed = true
	streams := make([]*WatchStream, 0, len(st.streams))
	for ws := range st.streams {
		streams = append(streams, ws)
	}
	st.mu.Unlock()
	for _, ws := range streams {
		ws.closeIn(s)
	}
}

// WatchStream is a set of watchers sharing one channel, as one gRPC Watch
// stream of the server. It outlives its store when the store that replaces
// it adopts it (AdoptWatchers).
type WatchStream struct {
	ch chan WatchResponse

	// mu guards s, the store the stream and its watchers are in, and the
	// rest below. Lock order: mu, then the store's watch.mu.
	mu       sync.Mutex
	s        *Store
	watchers map[WatchID]*watcher
	nextID   WatchID
	closed   bool
}

// NewWatchStream opens a stream. On a store whose streams were adopted by
// another it opens on that one; on a closed store it is closed at once.
func (s *Store) NewWatchStream() *WatchStream {
	st := &s.watch
	st.mu.Lock()
	if to := st.movedTo; to != nil {
		st.mu.Unlock()
		return to.NewWatchStream()
	}
	ws := &WatchStream{s: s, ch: make(chan WatchResponse, watchChanSize), watchers: make(map[WatchID]*watcher)}
	if st.closed {
		ws.closed = true
		close(ws.ch)
	} else {
		st.streams[ws] = struct{}{}
	}
	st.mu.Unlock()
	return ws
}

// AdoptWatchers moves the open watch streams of old, the store that s
// replaces (a snapshot installed from the leader), to s with their
// watchers, as etcd's watchableStore.Restore: the streams stay open, and
// every watcher goes to the unsynced group of s, to catch up from the key
// bucket of s from the next revision it has not seen, or to receive the
// compacted response if s is compacted past that revision. A synced
// watcher has seen every revision of old. Streams opened on old from now
// on open on s. AdoptWatchers stops old (Stop) first; old must not be
// written afterwards, and its Close then closes nothing that was moved.
// s must not be closed.
func (s *Store) AdoptWatchers(old *Store) {
	if old == nil || old == s {
		return
	}
	old.Stop()
	ost := &old.watch
	ost.mu.Lock()
	ost.movedTo = s
	streams := make([]*WatchStream, 0, len(ost.streams))
	for ws := range ost.streams {
		streams = append(streams, ws)
	}
	seen := old.currentRev.Load()
	ost.mu.Unlock()
	for _, ws := range streams {
		ws.moveTo(old, s, seen)
	}
	if len(streams) > 0 {
		s.watch.kick()
	}
}

// moveTo moves ws and its watchers from store from to store to (see
// AdoptWatchers); seen is the last revision of from. It locks ws.mu, then
// from's watch.mu, then to's: only AdoptWatchers holds two stores' locks,
// always the old one first.
func (ws *WatchStream) moveTo(from, to *Store, seen int64) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if ws.closed || ws.s != from {
		return
	}
	fst, tst := &from.watch, &to.watch
	fst.mu.Lock()
	defer fst.mu.Unlock()
	tst.mu.Lock()
	defer tst.mu.Unlock()
	for _, w := range ws.watchers {
		from.m.watchers.Dec()
		to.m.watchers.Inc()
		if fst.removeSynced(w) {
			// It has seen every revision of from; a future start
			// revision stays as it is.
			w.minRev = max(w.minRev, seen+1)
		} else if _, ok := fst.unsynced[w]; ok {
			delete(fst.unsynced, w)
		} else {
			continue // answered with the compacted response: in no group
		}
		tst.unsynced[w] = struct{}{}
	}
	delete(fst.streams, ws)
	ws.s = to
	if tst.closed {
		ws.closeLocked()
		return
	}
	tst.streams[ws] = struct{}{}
}

// Watch watches key, or [key, end): end as on the wire, empty for key
// alone and "\x00" for every key >= key. It delivers the events from
// startRev on (0: from the next revision). id AutoWatchID picks an unused
// ID. The filters drop the events they return true for.
func (ws *WatchStream) Watch(id WatchID, key, end []byte, startRev int64, prevKV bool, filters ...FilterFunc) (WatchID, error) {
	end = rangeEnd(end)
	if len(end) > 0 && bytes.Compare(key, end) >= 0 {
		return 0, ErrEmptyWatcherRange
	}
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if ws.closed {
		return 0, ErrClosed
	}
	if id == AutoWatchID {
		for ws.watchers[ws.nextID] != nil {
			ws.nextID++
		}
		id = ws.nextID
		ws.nextID++
	} else if ws.watchers[id] != nil {
		return 0, ErrWatcherDuplicateID
	}
	w := &watcher{ws: ws, id: id, key: bytes.Clone(key), end: cloneEnd(end), prevKV: prevKV, filters: filters}
	ws.watchers[id] = w
	s := ws.s
	st := &s.watch
	st.mu.Lock()
	cur := s.currentRev.Load()
	switch {
	case startRev <= 0:
		w.minRev = cur + 1
		st.addSynced(w)
	case startRev > cur:
		w.minRev = startRev
		st.addSynced(w)
	default:
		w.minRev = startRev
		st.unsynced[w] = struct{}{}
		st.kick()
	}
	st.mu.Unlock()
	s.m.watchers.Inc()
	return id, nil
}

// cloneEnd copies end, keeping nil and empty apart.
func cloneEnd(end []byte) []byte {
	if end == nil {
		return nil
	}
	return append([]byte{}, end...)
}

// Chan delivers the stream's responses. It is closed by Close.
func (ws *WatchStream) Chan() <-chan WatchResponse { return ws.ch }

// Cancel removes the watcher id.
func (ws *WatchStream) Cancel(id WatchID) error {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	w := ws.watchers[id]
	if w == nil {
		return ErrWatcherNotExist
	}
	delete(ws.watchers, id)
	ws.s.watch.mu.Lock()
	ws.s.watch.remove(w)
	ws.s.watch.mu.Unlock()
	ws.s.m.watchers.Dec()
	return nil
}

// RequestProgress sends an empty response with the current revision for
// watcher id, if it is synced (it has seen every revision up to it).
func (ws *WatchStream) RequestProgress(id WatchID) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	w := ws.watchers[id]
	if w == nil {
		return
	}
	st := &ws.s.watch
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.isSynced(w) {
		ws.send(WatchResponse{WatchID: id, Revision: ws.s.currentRev.Load()})
	}
}

// RequestProgressAll sends one empty response with WatchID
// ProgressWatchID and the current revision if the stream is open and every
// watcher of it is synced, and reports whether it did.
func (ws *WatchStream) RequestProgressAll() bool {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	st := &ws.s.watch
	st.mu.Lock()
	defer st.mu.Unlock()
	for _, w := range ws.watchers {
		if !st.isSynced(w) {
			return false
		}
	}
	return ws.send(WatchResponse{WatchID: ProgressWatchID, Revision: ws.s.currentRev.Load()})
}

// Rev returns the current revision of the stream's store.
func (ws *WatchStream) Rev() int64 {
	ws.mu.Lock()
	s := ws.s
	ws.mu.Unlock()
	return s.currentRev.Load()
}

// Close cancels every watcher and closes the channel.
func (ws *WatchStream) Close() {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if ws.closed {
		return
	}
	st := &ws.s.watch
	st.mu.Lock()
	defer st.mu.Unlock()
	ws.closeLocked()
}

// closeIn closes ws if it is still in store s (Store.Close: a stream
// adopted by another store meanwhile stays open).
func (ws *WatchStream) closeIn(s *Store) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if ws.closed || ws.s != s {
		return
	}
	s.watch.mu.Lock()
	defer s.watch.mu.Unlock()
	ws.closeLocked()
}

// closeLocked closes ws; the caller holds ws.mu and the watch.mu of ws.s.
func (ws *WatchStream) closeLocked() {
	ws.closed = true
	st := &ws.s.watch
	for _, w := range ws.watchers {
		st.remove(w)
		ws.s.m.watchers.Dec()
	}
	delete(st.streams, ws)
	close(ws.ch)
	ws.watchers = nil
}

// send delivers r without blocking; the caller holds watch.mu. A closed
// stream takes nothing: its channel is closed.
func (ws *WatchStream) send(r WatchResponse) bool {
	if ws.closed {
		return false
	}
	select {
	case ws.ch <- r:
		return true
	default:
		return false
	}
}

// deliver sends w the events of evs it wants (filters, prev_kv) in one
// response and reports whether it did not have to drop it. The caller
// holds watch.mu.
func (s *Store) deliver(w *watcher, evs []mvccpb.Event, rev int64) bool {
	out := make([]mvccpb.Event, 0, len(evs))
	for _, ev := range evs {
		if filtered(w.filters, ev) {
			continue
		}
		if w.prevKV && !(ev.Type == mvccpb.PUT && ev.Kv.Version == 1) {
			ev.PrevKv = s.prevKV(ev.Kv.Key, ev.Kv.ModRevision-1)
		}
		out = append(out, ev)
	}
	if len(out) == 0 {
		return true
	}
	if !w.ws.send(WatchResponse{WatchID: w.id, Events: out, Revision: rev}) {
		return false
	}
	s.m.events.Add(float64(len(out)))
	return true
}

func filtered(fs []FilterFunc, ev mvccpb.Event) bool {
	for _, f := range fs {
		if f(ev) {
			return true
		}
	}
	return false
}

// prevKV reads key as of rev, or nil (absent or compacted).
func (s *Store) prevKV(key []byte, rev int64) *mvccpb.KeyValue {
	if rev < s.compactRev.Load() {
		return nil
	}
	mod, _, _, err := s.idx.Get(key, rev)
	if err != nil {
		return nil
	}
	rtx, err := s.be.ReadTx()
	if err != nil {
		return nil
	}
	defer rtx.End()
	v := rtx.GetKey(schema.RevisionBytes(mod))
	if v == nil {
		return nil
	}
	kv := new(mvccpb.KeyValue)
	if err := kv.Unmarshal(v); err != nil {
		return nil
	}
	return kv
}

// notify hands the events of the write at rev to the synced watchers. A
// watcher whose channel is full goes back to the unsynced group and will
// replay rev from the key bucket. The caller holds watch.mu.
func (s *Store) notify(rev int64, evs []mvccpb.Event) {
	st := &s.watch
	if len(st.keys) == 0 && len(st.ranges) == 0 {
		return
	}
	var matched map[*watcher][]mvccpb.Event
	add := func(w *watcher, ev mvccpb.Event) {
		if matched == nil {
			matched = make(map[*watcher][]mvccpb.Event)
		}
		matched[w] = append(matched[w], ev)
	}
	for _, ev := range evs {
		for w := range st.keys[string(ev.Kv.Key)] {
			add(w, ev)
		}
		for w := range st.ranges {
			if w.matches(ev.Kv.Key) {
				add(w, ev)
			}
		}
	}
	for w, wevs := range matched {
		if w.minRev > rev {
			continue
		}
		if s.deliver(w, wevs, rev) {
			w.minRev = rev + 1
			continue
		}
		st.removeSynced(w)
		w.minRev = rev
		st.unsynced[w] = struct{}{}
		s.m.slowWatchers.Inc()
	}
}

// runWatchSync catches up the unsynced watchers.
func (s *Store) runWatchSync() {
	defer s.wg.Done()
	t := time.NewTicker(s.cfg.WatchSyncInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		case <-s.watch.wake:
		}
		if err := s.syncWatchers(); err != nil {
			s.lg.Warn("watch sync", "error", err)
		}
	}
}

// syncWatchers serves up to maxWatchersPerSync unsynced watchers with one
// bounded read of the key bucket, from the oldest revision they need.
func (s *Store) syncWatchers() error {
	st := &s.watch
	st.mu.Lock()
	cur, compacted := s.currentRev.Load(), s.compactRev.Load()
	var ws []*watcher
	minRev := int64(-1)
	for w := range st.unsynced {
		if len(ws) == maxWatchersPerSync {
			break
		}
		switch {
		case w.minRev < compacted:
			if w.ws.send(WatchResponse{WatchID: w.id, Revision: cur, CompactRevision: compacted}) {
				delete(st.unsynced, w)
			}
		case w.minRev > cur:
			delete(st.unsynced, w)
			st.addSynced(w)
		default:
			ws = append(ws, w)
			if minRev < 0 || w.minRev < minRev {
				minRev = w.minRev
			}
		}
	}
	st.mu.Unlock()
	if len(ws) == 0 {
		return nil
	}
	evs, last, err := s.readEvents(minRev, cur)
	if err != nil {
		return err
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	rev := s.currentRev.Load()
	// A compaction that started during the read may have removed pairs it
	// needed: those watchers get the compacted response on the next pass.
	compacted = s.compactRev.Load()
	progressed := false
	for _, w := range ws {
		if _, ok := st.unsynced[w]; !ok || w.minRev < compacted {
			continue // canceled meanwhile, or compacted
		}
		var wevs []mvccpb.Event
		for _, ev := range evs {
			if ev.Kv.ModRevision >= w.minRev && w.matches(ev.Kv.Key) {
				wevs = append(wevs, ev)
			}
		}
		if !s.deliver(w, wevs, rev) {
			continue // still slow; next pass
		}
		progressed = true
		w.minRev = last + 1
		if w.minRev > rev {
			delete(st.unsynced, w)
			st.addSynced(w)
		}
	}
	// Go on at once while watchers catch up; watchers that are only slow
	// (their clients do not read) wait for the ticker instead of making
	// this loop spin.
	if progressed && len(st.unsynced) > 0 {
		st.kick()
	}
	return nil
}

// readEvents reads the changes of main revisions from..to from the key
// bucket, stopping after WatchSyncBatch pairs at the end of a main revision,
// and returns them with the last main revision read in full.
func (s *Store) readEvents(from, to int64) ([]mvccpb.Event, int64, error) {
	rtx, err := s.be.ReadTx()
	if err != nil {
		return nil, 0, fmt.Errorf("mvcc: watch sync: %w", err)
	}
	defer rtx.End()
	var evs []mvccpb.Event
	last := to
	var ferr error
	rtx.RangeKeys(schema.RevisionBytes(keyindex.Revision{Main: from}), schema.RevisionBytes(keyindex.Revision{Main: to + 1}),
		func(k, v []byte) bool {
			r, tomb, err := schema.ParseRevision(k)
			if err != nil {
				ferr = err
				return false
			}
			if len(evs) >= s.cfg.WatchSyncBatch && r.Main != evs[len(evs)-1].Kv.ModRevision {
				last = r.Main - 1
				return false
			}
			kv := new(mvccpb.KeyValue)
			if err := kv.Unmarshal(v); err != nil {
				ferr = fmt.Errorf("%w: revision %s: %v", ErrCorrupt, r, err)
				return false
			}
			ev := mvccpb.Event{Type: mvccpb.PUT, Kv: kv}
			if tomb {
				ev.Type = mvccpb.DELETE
				kv.ModRevision = r.Main
			}
			evs = append(evs, ev)
			return true
		})
	if ferr != nil {
		return nil, 0, fmt.Errorf("mvcc: watch sync: %w", ferr)
	}
	return evs, last, nil
}

package mvcc

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	bolt "go.etcd.io/bbolt"

	"github.com/lifeboat-dev/lifeboat/server/backend"
	"github.com/lifeboat-dev/lifeboat/snapkit"
	"github.com/lifeboat-dev/lifeboat/snapkit/keyindex"
	"github.com/lifeboat-dev/lifeboat/snapkit/schema"
)

// Errors of the store. ErrCompacted and ErrFutureRev are snapkit's, whose
// offline reads of a db meet the same bounds; the server maps them to
// rpctypes.ErrGRPCCompacted and rpctypes.ErrGRPCFutureRev, etcd's texts.
var (
	ErrCompacted = snapkit.ErrCompacted
	ErrFutureRev = snapkit.ErrFutureRev
	ErrClosed    = errors.New("mvcc: closed")
	// ErrCorrupt means the key index names a revision the key bucket lacks.
	ErrCorrupt = errors.New("mvcc: key bucket does not match the key index")
)

// Defaults, as etcd's.
const (
	DefaultCompactionBatchLimit    = 1000
	DefaultCompactionSleepInterval = 10 * time.Millisecond
	DefaultWatchSyncInterval       = 100 * time.Millisecond
	DefaultWatchSyncBatch          = 10000
)

// Lessor is what the store needs of server/lease: it checks leases of
// puts and keeps the keys attached to each lease.
type Lessor interface {
	Exists(id int64) bool
	Attach(id int64, keys ...[]byte) error
	Detach(id int64, keys ...[]byte) error
	// LeaseOf returns the lease key is attached to, or 0.
	LeaseOf(key []byte) int64
}

// Config configures New.
type Config struct {
	// Lessor checks and tracks leases; nil rejects puts with a lease.
	Lessor Lessor
	// CompactionBatchLimit is the number of key bucket pairs examined per
	// backend lock during a compaction; 0 means DefaultCompactionBatchLimit.
	CompactionBatchLimit int
	// CompactionSleepInterval is the pause between two compaction batches;
	// 0 means DefaultCompactionSleepInterval.
	CompactionSleepInterval time.Duration
	// WatchSyncInterval is how often unsynced watchers catch up; 0 means
	// DefaultWatchSyncInterval.
	WatchSyncInterval time.Duration
	// WatchSyncBatch bounds the key bucket pairs read for unsynced watchers
	// per pass (a main revision is never split); 0 means
	// DefaultWatchSyncBatch.
	WatchSyncBatch int
	// Logger; nil discards.
	Logger *slog.Logger
	// Registerer receives the metrics; nil registers none.
	Registerer prometheus.Registerer
}

const (
	// firstRevision is the revision of an empty store; the first write
	// makes revision 2, as in etcd.
	firstRevision = 1
	// noCompaction is the compact revision of a store never compacted;
	// HashKV reports it as etcd does.
	noCompaction = -1
)

// Store is the MVCC store. Reads are safe for concurrent use; writes must
// come from one goroutine, the apply loop.
type Store struct {
	cfg Config
	lg  *slog.Logger
	be  *backend.Backend
	le  Lessor
	idx *keyindex.Index
	m   *metrics

	// writeMu serializes write transactions: it assigns main revisions.
	writeMu    sync.Mutex
	currentRev atomic.Int64
	compactRev atomic.Int64
	// liveKeys counts the keys not deleted (etcd_debugging_mvcc_keys_total).
	liveKeys atomic.Int64
	// applying is the raft entry being applied; guarded by writeMu.
	applying struct {
		index, term uint64
		active      bool
	}
	ciMu      sync.Mutex
	ci, ciTrm uint64

	compactor compactor
	watch     watchState

	stop    chan struct{}
	wg      sync.WaitGroup
	stopped sync.Once

	// testHashHook, set by tests, runs in HashKV at stage "committed"
	// (the batch committed, the read transaction not open yet) and
	// "read" (the compaction revision read in the open transaction).
	testHashHook func(stage string)
}

// New opens the store over be: it rebuilds the key index from the key
// bucket, attaches the live keys to their leases, and finishes a compaction
// that was scheduled but not finished.
func New(be *backend.Backend, cfg Config) (*Store, error) {
	if cfg.CompactionBatchLimit <= 0 {
		cfg.CompactionBatchLimit = DefaultCompactionBatchLimit
	}
	if cfg.CompactionSleepInterval <= 0 {
		cfg.CompactionSleepInterval = DefaultCompactionSleepInterval
	}
	if cfg.WatchSyncInterval <= 0 {
		cfg.WatchSyncInterval = DefaultWatchSyncInterval
	}
	if cfg.WatchSyncBatch <= 0 {
		cfg.WatchSyncBatch = DefaultWatchSyncBatch
	}
	lg := cfg.Logger
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	s := &Store{
		cfg:  cfg,
		lg:   lg.With("component", "mvcc"),
		be:   be,
		le:   cfg.Lessor,
		stop: make(chan struct{}),
	}
	scheduled, err := s.restore()
	if err != nil {
		return nil, err
	}
	if s.m, err = newMetrics(cfg.Registerer, s); err != nil {
		return nil, err
	}
	s.compactor.init()
	s.watch.init()
	s.wg.Add(2)
	go s.runCompactions()
	go s.runWatchSync()
	if scheduled > s.compactRev.Load() {
		s.lg.Info("resuming compaction", "revision", scheduled)
		s.compactRev.Store(scheduled)
		s.compactor.schedule(scheduled)
	}
	return s, nil
}

// restore rebuilds the state from the backend and returns the scheduled
// compaction revision (noCompaction if none was ever scheduled).
func (s *Store) restore() (int64, error) {
	start := time.Now()
	var scheduled int64
	// The lease of each key whose last pair is a put with a lease, read in
	// the index's pass over the key bucket (not looked up again after).
	leased := map[string]int64{}
	each := func(e *schema.KeyView) {
		switch {
		case !e.Tombstone && e.KV.Lease != 0:
			leased[string(e.KV.Key)] = e.KV.Lease
		case len(leased) > 0:
			delete(leased, string(e.KV.Key))
		}
	}
	if s.le == nil {
		each = nil
	}
	err := s.be.View(func(tx *bolt.Tx) error {
		idx, cur, err := keyindex.RestoreFunc(s.lg, tx, each)
		if err != nil {
			return err
		}
		sched, hasSched, err := schema.ScheduledCompactRev(tx)
		if err != nil {
			return err
		}
		if !hasSched {
			// Not 0: a store never compacted is at noCompaction, and
			// New resumes a scheduled compaction above the finished one.
			sched = noCompaction
		}
		finished, compacted, err := schema.FinishedCompactRev(tx)
		if err != nil {
			return err
		}
		if !compacted {
			finished = noCompaction
		}
		ci, err := schema.ConsistentIndex(tx)
		if err != nil {
			return err
		}
		term, err := schema.Term(tx)
		if err != nil {
			return err
		}
		s.idx, scheduled = idx, sched
		// As in etcd, an empty store is at revision 1, so the first write
		// is revision 2; a compaction may have removed every pair up to
		// its revision.
		s.currentRev.Store(max(firstRevision, cur, finished, sched))
		s.compactRev.Store(finished)
		s.ci, s.ciTrm = ci, term
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("mvcc: restore from %s: %w", s.be.Path(), err)
	}
	s.attachLeases(leased)
	live := s.idx.CountRevisions(nil, []byte{}, s.currentRev.Load())
	s.liveKeys.Store(int64(live))
	s.lg.Info("restored", "path", s.be.Path(), "keys", live, "revision", s.currentRev.Load(),
		"compact-revision", s.compactRev.Load(), "consistent-index", s.ci, "took", time.Since(start))
	return scheduled, nil
}

// attachLeases attaches every live key with a lease (leased: key to
// lease) to it, in key order.
func (s *Store) attachLeases(leased map[string]int64) {
	for _, key := range slices.Sorted(maps.Keys(leased)) {
		lease := leased[key]
		if err := s.le.Attach(lease, []byte(key)); err != nil {
			s.lg.Warn("key attached to a missing lease", "key", key, "lease", fmt.Sprintf("%x", lease), "error", err)
		}
	}
}

// Rev returns the current revision: the main revision of the last write,
// or 1 for an empty store, as in etcd.
func (s *Store) Rev() int64 { return s.currentRev.Load() }

// CompactRev returns the revision of the last compaction, or -1 if the
// store was never compacted, as etcd's compactMainRev.
func (s *Store) CompactRev() int64 { return s.compactRev.Load() }

// ConsistentIndex returns the raft index and term of the last entry applied.
func (s *Store) ConsistentIndex() (index, term uint64) {
	s.ciMu.Lock()
	defer s.ciMu.Unlock()
	return s.ci, s.ciTrm
}

// Apply applies raft entry (index, term) through fn: every write that fn
// makes through the store (Put, DeleteRange, Txn, Compact, a lease revoke)
// records (index, term) as the consistent index in the same backend batch
// as its data; after fn, Apply records it for an entry that wrote nothing.
// Other backend writes made in fn (lease grants, members) are idempotent on
// replay. Apply returns fn's error.
func (s *Store) Apply(index, term uint64, fn func() error) error {
	s.writeMu.Lock()
	s.applying.index, s.applying.term, s.applying.active = index, term, true
	s.writeMu.Unlock()
	err := fn()
	s.writeMu.Lock()
	s.applying.active = false
	bt := s.be.BatchTx()
	bt.Lock()
	bt.SetConsistentIndex(index, term)
	s.setConsistentIndex(index, term)
	bt.Unlock()
	s.writeMu.Unlock()
	return err
}

// ApplyingIndex is the raft index Apply is applying; call it from Apply's
// fn only.
func (s *Store) ApplyingIndex() uint64 {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	return s.applying.index
}

func (s *Store) setConsistentIndex(index, term uint64) {
	s.ciMu.Lock()
	s.ci, s.ciTrm = index, term
	s.ciMu.Unlock()
}

// Stop stops compaction and the watch loop, and waits for them. The watch
// streams stay open: the store that replaces this one takes them over
// (AdoptWatchers), or Close closes them. The store must not be written
// after Stop. Safe to call more than once.
func (s *Store) Stop() {
	s.stopped.Do(func() {
		close(s.stop)
		s.wg.Wait()
		s.compactor.abandon()
	})
}

// Close stops compaction and the watch loop (Stop) and closes every watch
// stream still open on the store; a stream opened afterwards is closed at
// once. It does not close the backend.
func (s *Store) Close() error {
	s.Stop()
	s.watch.closeAll(s)
	return nil
}

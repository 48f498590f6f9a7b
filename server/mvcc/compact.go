package mvcc

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/lifeboat-dev/lifeboat/internal/failpoint"
	"github.com/lifeboat-dev/lifeboat/snapkit"
	"github.com/lifeboat-dev/lifeboat/snapkit/keyindex"
	"github.com/lifeboat-dev/lifeboat/snapkit/schema"
)

// ErrCompactionStopped is what a compaction's waiters get when the store
// stopped (a shutdown, a snapshot install) before the compaction finished:
// it resumes from meta/scheduledCompactRev when the db is opened again.
var ErrCompactionStopped = errors.New("mvcc: compaction stopped before it finished; it resumes when the store opens again")

// compactor runs compactions one at a time, in the order they were asked.
type compactor struct {
	mu    sync.Mutex
	queue []compactJob
	wake  chan struct{}
}

type compactJob struct {
	rev  int64
	done chan error // receives the outcome once, then closes
}

func (j compactJob) finish(err error) {
	j.done <- err
	close(j.done)
}

func (c *compactor) init() { c.wake = make(chan struct{}, 1) }

func (c *compactor) schedule(rev int64) <-chan error {
	j := compactJob{rev: rev, done: make(chan error, 1)}
	c.mu.Lock()
	c.queue = append(c.queue, j)
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
	return j.done
}

// abandon tells the waiters of every job still queued that the store
// stopped first.
func (c *compactor) abandon() {
	c.mu.Lock()
	queue := c.queue
	c.queue = nil
	c.mu.Unlock()
	for _, j := range queue {
		j.finish(ErrCompactionStopped)
	}
}

func (c *compactor) next() (compactJob, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.queue) == 0 {
		return compactJob{}, false
	}
	j := c.queue[0]
	c.queue = c.queue[1:]
	return j, true
}

// Compact applies a CompactionRequest: it records rev as the scheduled
// compaction, makes reads below rev fail with ErrCompacted, and compacts in
// the background. The channel receives the outcome once the key bucket is
// compacted: nil, or ErrCompactionStopped if the store stopped first.
// rev must be above the last compaction (else ErrCompacted) and not above
// the current revision (else ErrFutureRev).
func (s *Store) Compact(rev int64) (<-chan error, error) {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if c := s.compactRev.Load(); rev <= c {
		return nil, fmt.Errorf("%w: %d <= compaction %d", ErrCompacted, rev, c)
	}
	if cur := s.currentRev.Load(); rev > cur {
		return nil, fmt.Errorf("%w: %d > current %d", ErrFutureRev, rev, cur)
	}
	bt := s.be.BatchTx()
	bt.Lock()
	tx, err := bt.Tx()
	if err == nil {
		err = schema.SetScheduledCompactRev(tx, rev)
	}
	if err == nil && s.applying.active {
		bt.SetConsistentIndex(s.applying.index, s.applying.term)
		s.setConsistentIndex(s.applying.index, s.applying.term)
	}
	bt.Unlock()
	if err != nil {
		return nil, fmt.Errorf("mvcc: compact %d: %w", rev, err)
	}
	s.compactRev.Store(rev)
	return s.compactor.schedule(rev), nil
}

func (s *Store) runCompactions() {
	defer s.wg.Done()
	for {
		select {
		case <-s.stop:
			return
		case <-s.compactor.wake:
		}
		for {
			j, ok := s.compactor.next()
			if !ok {
				break
			}
			err := s.compact(j.rev)
			j.finish(err)
			if errors.Is(err, ErrCompactionStopped) {
				return
			}
			if err != nil {
				s.lg.Error("compaction failed", "revision", j.rev, "error", err)
			}
		}
	}
}

// compact compacts the key index at rev, then deletes from the key bucket,
// in batches, every pair at or below rev that the index does not keep, and
// records rev as the finished compaction.
func (s *Store) compact(rev int64) error {
	start := time.Now()
	keep := s.idx.Compact(rev)
	s.m.indexCompaction.Observe(float64(time.Since(start).Milliseconds()))
	end := schema.RevisionBytes(keyindex.Revision{Main: rev + 1})
	from := schema.RevisionBytes(keyindex.Revision{})
	bt := s.be.BatchTx()
	deleted := 0
	for batch := 0; ; batch++ {
		if batch > 0 {
			select {
			case <-s.stop:
				return ErrCompactionStopped
			case <-time.After(s.cfg.CompactionSleepInterval):
			}
		}
		bt.Lock()
		var dels [][]byte
		var next []byte
		var bad error
		n := 0
		bt.RangeKeys(from, end, func(k, _ []byte) bool {
			if n == s.cfg.CompactionBatchLimit {
				next = bytes.Clone(k)
				return false
			}
			n++
			r, _, err := schema.ParseRevision(k)
			if err != nil {
				bad = err
				return false
			}
			if _, ok := keep[r]; !ok {
				dels = append(dels, bytes.Clone(k))
			}
			return true
		})
		err := bad
		for _, k := range dels {
			if err != nil {
				break
			}
			err = bt.DeleteKey(k)
		}
		if err == nil && next == nil {
			var tx *bolt.Tx
			if tx, err = bt.Tx(); err == nil {
				err = schema.SetFinishedCompactRev(tx, rev)
			}
		}
		bt.Unlock()
		failpoint.CompactAfterBatch.Hit()
		deleted += len(dels)
		if err != nil {
			return fmt.Errorf("mvcc: compact %d: %w", rev, err)
		}
		if next == nil {
			break
		}
		from = next
	}
	s.m.compactedKeys.Add(float64(deleted))
	s.m.compaction.Observe(float64(time.Since(start).Milliseconds()))
	s.lg.Info("compacted", "revision", rev, "deleted", deleted, "took", time.Since(start))
	return nil
}

// HashKV computes etcd's HashKV at rev (0: the current revision) with
// snapkit.HashKV over the committed key bucket and the store's key index.
// Revision in the result is the current revision.
//
// Compactions go on meanwhile, so that members whose hashes report the
// same compaction hash the same pairs however far their compactions have
// got: the compaction revision is read once the read transaction is open
// (a compaction records its revision before it deletes anything, so the
// transaction holds no deletion of a later one), and a compaction past
// rev recorded before the hash is done fails it with ErrCompacted (its
// key index compaction may have dropped revisions the keep set needed).
func (s *Store) HashKV(rev int64) (snapkit.HashKVResult, error) {
	cur := s.currentRev.Load()
	switch {
	case rev > cur:
		return snapkit.HashKVResult{}, fmt.Errorf("%w: %d > current %d", ErrFutureRev, rev, cur)
	case rev <= 0:
		rev = cur
	}
	if err := s.be.ForceCommit(); err != nil {
		return snapkit.HashKVResult{}, fmt.Errorf("mvcc: hashkv: %w", err)
	}
	s.hashHook("committed")
	var res snapkit.HashKVResult
	err := s.be.View(func(tx *bolt.Tx) error {
		compactRev := s.compactRev.Load()
		if rev < compactRev {
			return fmt.Errorf("%w: %d < compaction %d", ErrCompacted, rev, compactRev)
		}
		s.hashHook("read")
		var err error
		if res, err = snapkit.HashKV(tx, s.idx, compactRev, rev); err != nil {
			return err
		}
		if c := s.compactRev.Load(); rev < c {
			return fmt.Errorf("%w: %d < compaction %d, recorded during the hash", ErrCompacted, rev, c)
		}
		return nil
	})
	if err != nil {
		return snapkit.HashKVResult{}, fmt.Errorf("mvcc: hashkv at %d: %w", rev, err)
	}
	res.Revision = cur
	return res, nil
}

// hashHook runs the test hook of HashKV's stage, if any.
func (s *Store) hashHook(stage string) {
	if s.testHashHook != nil {
		s.testHashHook(stage)
	}
}

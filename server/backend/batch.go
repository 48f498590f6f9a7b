package backend

import (
	"bytes"
	"fmt"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/lifeboat-dev/lifeboat/internal/failpoint"
	"github.com/lifeboat-dev/lifeboat/snapkit/schema"
)

// BatchTx is the backend's one write transaction. Every method but Lock
// must be called with the lock held.
type BatchTx struct {
	mu sync.Mutex
	be *Backend
	tx *bolt.Tx

	// pending counts the writes since the last commit.
	pending int
	// scope holds the key bucket writes of this lock scope, published to
	// readers at Unlock.
	scope []pair

	// index and term are written into meta at the next commit when set.
	index, term uint64
	indexDirty  bool
}

// Lock takes the batch.
func (t *BatchTx) Lock() { t.mu.Lock() }

// Unlock publishes the key bucket writes made under the lock to readers,
// commits if BatchLimit writes are pending, and releases the batch.
func (t *BatchTx) Unlock() {
	if len(t.scope) > 0 {
		ps := sortPairs(t.scope)
		t.be.readMu.Lock()
		t.be.buf = t.be.buf.add(ps)
		t.be.readMu.Unlock()
		t.scope = nil
	}
	if t.pending >= t.be.cfg.BatchLimit {
		// A failure is recorded by commit and reported by Backend.Err.
		_ = t.commit()
	}
	t.mu.Unlock()
}

// Tx returns the bbolt write transaction, for snapkit/schema's writers and
// for reads that must see uncommitted writes. Writes to the key bucket must
// go through PutKey and DeleteKey instead, so that readers see them. Do not
// keep tx past Unlock: a commit replaces it.
func (t *BatchTx) Tx() (*bolt.Tx, error) {
	if err := t.usable(); err != nil {
		return nil, err
	}
	t.pending++
	return t.tx, nil
}

func (t *BatchTx) usable() error {
	if err := t.be.Err(); err != nil {
		return err
	}
	if t.tx == nil {
		return ErrClosed
	}
	return nil
}

// PutKey writes value under the revision key revKey in the key bucket. Both
// slices are kept until the next commit; the caller must not change them.
func (t *BatchTx) PutKey(revKey, value []byte) error {
	if err := t.usable(); err != nil {
		return err
	}
	if err := schema.Key(t.tx).Put(revKey, value); err != nil {
		return fmt.Errorf("backend: put key bucket %x: %w", revKey, err)
	}
	t.scope = append(t.scope, pair{key: revKey, value: value})
	t.pending++
	return nil
}

// DeleteKey deletes revKey from the key bucket. Readers may still see the
// pair until the next commit; the mvcc store only deletes compacted
// revisions, which nobody reads.
func (t *BatchTx) DeleteKey(revKey []byte) error {
	if err := t.usable(); err != nil {
		return err
	}
	if err := schema.Key(t.tx).Delete(revKey); err != nil {
		return fmt.Errorf("backend: delete key bucket %x: %w", revKey, err)
	}
	t.pending++
	return nil
}

// GetKey returns the value under revKey in the key bucket, uncommitted
// writes included, or nil. The value is valid until Unlock.
func (t *BatchTx) GetKey(revKey []byte) []byte {
	if t.tx == nil {
		return nil
	}
	return schema.Key(t.tx).Get(revKey)
}

// RangeKeys calls fn for the key bucket pairs with from <= key < to (to nil:
// no upper bound), uncommitted writes included, in key order, until fn
// returns false. Keys and values are valid until Unlock; fn must not write.
func (t *BatchTx) RangeKeys(from, to []byte, fn func(k, v []byte) bool) {
	if t.tx == nil {
		return
	}
	c := schema.Key(t.tx).Cursor()
	for k, v := c.Seek(from); k != nil && (to == nil || bytes.Compare(k, to) < 0); k, v = c.Next() {
		if !fn(k, v) {
			return
		}
	}
}

// SetConsistentIndex records the raft index and term of the last entry
// whose writes this batch holds. They are written into meta/consistent_index
// and meta/term in the same bbolt transaction as those writes.
func (t *BatchTx) SetConsistentIndex(index, term uint64) {
	t.index, t.term, t.indexDirty = index, term, true
}

// dirty reports whether a commit would write anything.
func (t *BatchTx) dirty() bool { return t.pending > 0 || t.indexDirty }

// commit writes the consistent index, commits the bbolt transaction, drops
// the buffered key writes it made durable, and begins the next one.
func (t *BatchTx) commit() error {
	if err := t.usable(); err != nil {
		return err
	}
	be := t.be
	if t.indexDirty {
		if err := schema.SetConsistentIndex(t.tx, t.index); err != nil {
			be.fail(fmt.Errorf("backend: %s: %w", be.cfg.Path, err))
			return be.failErr
		}
		if err := schema.SetTerm(t.tx, t.term); err != nil {
			be.fail(fmt.Errorf("backend: %s: %w", be.cfg.Path, err))
			return be.failErr
		}
	}
	start := time.Now()
	failpoint.BeforeCommit.Hit()
	if err := t.tx.Commit(); err != nil {
		t.tx = nil
		be.fail(fmt.Errorf("backend: commit %s: %w", be.cfg.Path, err))
		return be.failErr
	}
	be.m.commit.Observe(time.Since(start).Seconds())
	// A reader that began its bbolt transaction before the commit finished
	// may not see these writes in it, but holds a slice of the old buffer.
	// Readers from now on see them in bbolt.
	be.readMu.Lock()
	be.buf = nil
	be.readMu.Unlock()
	t.pending = 0
	t.indexDirty = false
	tx, err := be.db.Begin(true)
	if err != nil {
		t.tx = nil
		be.fail(fmt.Errorf("backend: begin batch %s: %w", be.cfg.Path, err))
		return be.failErr
	}
	t.tx = tx
	be.m.observeSize(tx, be.db)
	return nil
}

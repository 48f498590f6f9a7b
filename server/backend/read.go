package backend

import (
	"bytes"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/lifeboat-dev/lifeboat/snapkit/schema"
)

// ReadTx is a consistent read view of the backend: the last commit plus the
// key bucket writes published since. It does not block writers or commits.
// End it promptly: an open ReadTx keeps bbolt from remapping a growing file.
type ReadTx struct {
	tx  *bolt.Tx
	buf keyBuffer
	// cur is a cursor on the key bucket, opened by the first GetKey and
	// reused: bbolt opens the bucket and allocates a cursor on every Get of
	// a read transaction otherwise.
	cur *bolt.Cursor
}

// ReadTx opens a read view.
func (b *Backend) ReadTx() (*ReadTx, error) {
	b.readMu.RLock()
	defer b.readMu.RUnlock()
	if b.db == nil {
		return nil, ErrClosed
	}
	tx, err := b.db.Begin(false)
	if err != nil {
		return nil, fmt.Errorf("backend: read %s: %w", b.cfg.Path, err)
	}
	return &ReadTx{tx: tx, buf: b.buf}, nil
}

// End closes the view.
func (r *ReadTx) End() {
	// A read-only rollback only fails if the db is closed already.
	_ = r.tx.Rollback()
}

// Tx returns the bbolt read transaction of the last commit, for buckets
// other than key. It is valid until End.
func (r *ReadTx) Tx() *bolt.Tx { return r.tx }

// GetKey returns the value under revKey in the key bucket, or nil. The value
// is valid until End.
func (r *ReadTx) GetKey(revKey []byte) []byte {
	if v, ok := r.buf.get(revKey); ok {
		return v
	}
	if r.cur == nil {
		b := r.tx.Bucket(schema.KeyBucket)
		if b == nil {
			return nil
		}
		r.cur = b.Cursor()
	}
	k, v := r.cur.Seek(revKey)
	if !bytes.Equal(k, revKey) {
		return nil
	}
	return v
}

// RangeKeys calls fn for the key bucket pairs with from <= key < to (to nil:
// no upper bound), in key order, until fn returns false. Keys and values are
// valid until End.
func (r *ReadTx) RangeKeys(from, to []byte, fn func(k, v []byte) bool) {
	i, _ := r.buf.search(from)
	buf := r.buf[i:]
	var k, v []byte
	var c *bolt.Cursor
	if b := r.tx.Bucket(schema.KeyBucket); b != nil {
		c = b.Cursor()
		k, v = c.Seek(from)
	}
	inRange := func(k []byte) bool { return k != nil && (to == nil || bytes.Compare(k, to) < 0) }
	for {
		haveDisk := inRange(k)
		haveBuf := len(buf) > 0 && inRange(buf[0].key)
		if !haveDisk && !haveBuf {
			return
		}
		var cmp int
		switch {
		case !haveDisk:
			cmp = 1
		case !haveBuf:
			cmp = -1
		default:
			cmp = bytes.Compare(k, buf[0].key)
		}
		if cmp < 0 {
			if !fn(k, v) {
				return
			}
			k, v = c.Next()
			continue
		}
		// The buffer is newer; on a tie it replaces the disk pair.
		if cmp == 0 {
			k, v = c.Next()
		}
		if !fn(buf[0].key, buf[0].value) {
			return
		}
		buf = buf[1:]
	}
}

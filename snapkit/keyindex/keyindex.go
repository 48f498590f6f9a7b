package keyindex

import (
	"bytes"
	"errors"
	"fmt"
	"sync"

	"github.com/google/btree"

	"github.com/lifeboat-dev/lifeboat/snapkit/schema"
)

// Revision is the mvcc revision of the key bucket.
type Revision = schema.Revision

// Errors. They carry the package name; test them with errors.Is.
var (
	// ErrRevisionNotFound means the key has no live revision at the
	// revision asked for (never written, deleted, or compacted away).
	ErrRevisionNotFound = errors.New("keyindex: revision not found")
	// ErrRevisionOrder means a put or tombstone was not newer than the
	// key's last change.
	ErrRevisionOrder = errors.New("keyindex: revision not newer than the key's last change")
)

// generation is one life of a key: from its creation to its deletion.
type generation struct {
	ver     int64      // version at the last revision of revs
	created Revision   // the revision that created the key
	revs    []Revision // ascending; a closed generation ends with its tombstone
}

// keyIndex is the history of one key.
type keyIndex struct {
	key         []byte
	modified    Revision // the newest revision of any generation
	generations []generation
}

// Index is the key index. The zero value is not usable; call New.
type Index struct {
	mu   sync.RWMutex
	tree *btree.BTreeG[*keyIndex]
}

// btreeDegree is the branching of the tree; 32 is what etcd uses.
const btreeDegree = 32

func lessKey(a, b *keyIndex) bool { return bytes.Compare(a.key, b.key) < 0 }

// New returns an empty index.
func New() *Index {
	return &Index{tree: btree.NewG(btreeDegree, lessKey)}
}

// Len returns the number of keys the index holds, live or with history only.
func (ix *Index) Len() int {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return ix.tree.Len()
}

// Put records a put of key at rev. rev must be newer than the key's last
// change, else ErrRevisionOrder. The index keeps its own copy of key.
func (ix *Index) Put(key []byte, rev Revision) error {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	ki, ok := ix.tree.Get(&keyIndex{key: key})
	if !ok {
		ki = &keyIndex{key: bytes.Clone(key)}
		if err := ki.put(rev); err != nil {
			return err
		}
		ix.tree.ReplaceOrInsert(ki)
		return nil
	}
	return ki.put(rev)
}

// Tombstone records the deletion of key at rev. It fails with
// ErrRevisionNotFound if key is not live, and ErrRevisionOrder if rev is not
// newer than its last change.
func (ix *Index) Tombstone(key []byte, rev Revision) error {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	ki, ok := ix.tree.Get(&keyIndex{key: key})
	if !ok {
		return fmt.Errorf("%w: tombstone of %q at %s: key not in index", ErrRevisionNotFound, key, rev)
	}
	return ki.tombstone(rev)
}

// Get returns, for key as of main revision atRev, the revision of its last
// modification, the revision that created it and its version. A key that
// is not live at atRev gives ErrRevisionNotFound.
func (ix *Index) Get(key []byte, atRev int64) (mod, created Revision, ver int64, err error) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	ki, ok := ix.tree.Get(&keyIndex{key: key})
	if !ok {
		return Revision{}, Revision{}, 0, ErrRevisionNotFound
	}
	return ki.get(atRev)
}

// visit calls f for every key in [key, end) as Range defines it; the caller
// holds the lock.
func (ix *Index) visit(key, end []byte, f func(ki *keyIndex) bool) {
	if end == nil {
		if ki, ok := ix.tree.Get(&keyIndex{key: key}); ok {
			f(ki)
		}
		return
	}
	unbounded := len(end) == 0 || (len(end) == 1 && end[0] == 0)
	ix.tree.AscendGreaterOrEqual(&keyIndex{key: key}, func(ki *keyIndex) bool {
		if !unbounded && bytes.Compare(ki.key, end) >= 0 {
			return false
		}
		return f(ki)
	})
}

// Range returns the keys live at atRev in [key, end), in key order, with the
// revision of each one's last modification. end == nil means key alone; an
// empty end, or end == "\x00", means every key >= key. At most limit keys are
// returned (limit <= 0: no limit); total counts them all. The keys are the
// index's own: the caller must not modify them.
func (ix *Index) Range(key, end []byte, atRev int64, limit int) (keys [][]byte, revs []Revision, total int) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	ix.visit(key, end, func(ki *keyIndex) bool {
		rev, _, _, err := ki.get(atRev)
		if err != nil {
			return true
		}
		if limit <= 0 || len(keys) < limit {
			keys = append(keys, ki.key)
			revs = append(revs, rev)
		}
		total++
		return true
	})
	return keys, revs, total
}

// CountRevisions counts the keys live at atRev in [key, end), with end as
// in Range.
func (ix *Index) CountRevisions(key, end []byte, atRev int64) int {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	total := 0
	ix.visit(key, end, func(ki *keyIndex) bool {
		if _, _, _, err := ki.get(atRev); err == nil {
			total++
		}
		return true
	})
	return total
}

// LiveKeys returns every key live at atRev, in key order, with the revision
// of its last modification.
func (ix *Index) LiveKeys(atRev int64) (keys [][]byte, revs []Revision) {
	keys, revs, _ = ix.Range(nil, []byte{}, atRev, 0)
	return keys, revs
}

// Since returns the revisions of key's changes at or after main revision
// rev, in order, keeping only the last change of each main revision.
func (ix *Index) Since(key []byte, rev int64) []Revision {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	ki, ok := ix.tree.Get(&keyIndex{key: key})
	if !ok {
		return nil
	}
	return ki.since(rev)
}

// Compact forgets the history before main revision rev and returns the
// revisions at or before rev that must stay in the key bucket (the keep
// set). Keys with no history left leave the index. Readers and writers are
// blocked for one key at a time, not for the whole walk.
func (ix *Index) Compact(rev int64) map[Revision]struct{} {
	keep := make(map[Revision]struct{})
	ix.mu.Lock()
	clone := ix.tree.Clone()
	ix.mu.Unlock()
	clone.Ascend(func(ki *keyIndex) bool {
		ix.mu.Lock()
		ki.compact(rev, keep)
		if ki.isEmpty() {
			ix.tree.Delete(ki)
		}
		ix.mu.Unlock()
		return true
	})
	return keep
}

// Keep returns the keep set of a compaction at rev, as HashKV needs it,
// without changing the index.
func (ix *Index) Keep(rev int64) map[Revision]struct{} {
	keep := make(map[Revision]struct{})
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	ix.tree.Ascend(func(ki *keyIndex) bool {
		ki.keep(rev, keep)
		return true
	})
	return keep
}

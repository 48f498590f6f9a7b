package snapkit

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"math"

	bolt "go.etcd.io/bbolt"

	"github.com/lifeboat-dev/lifeboat/snapkit/keyindex"
	"github.com/lifeboat-dev/lifeboat/snapkit/schema"
)

// Errors for a revision outside a db's history, as etcd's mvcc names them.
// The server's store (server/mvcc) returns these too.
var (
	ErrCompacted   = errors.New("snapkit: required revision has been compacted")
	ErrFutureRev   = errors.New("snapkit: required revision is a future revision")
	ErrBadRevision = errors.New("snapkit: bad revision")
)

// HashKVResult is Maintenance.HashKV's answer.
type HashKVResult struct {
	Hash            uint32 `json:"hash"`
	CompactRevision int64  `json:"compactRevision"` // -1: never compacted
	HashRevision    int64  `json:"hashRevision"`
	// Revision is the store's current revision (the response header's).
	Revision int64 `json:"revision"`
}

// HashKV computes etcd's HashKV of the key bucket in tx at revision rev
// (which must be resolved: > 0), for a store whose compaction is at
// compactRev and whose key index is idx (FORMATS.md §11): CRC-32C of the
// bucket name, then of each pair up to rev, skipping the revisions at or
// below the compaction that the index would not keep, and a tombstone at
// the compaction itself. Revision in the result is left to the caller.
func HashKV(tx *bolt.Tx, idx *keyindex.Index, compactRev, rev int64) (HashKVResult, error) {
	keep := idx.Keep(rev)
	h := crc32.New(castagnoli)
	h.Write(schema.KeyBucket)
	b := tx.Bucket(schema.KeyBucket)
	if b == nil {
		return HashKVResult{}, fmt.Errorf("snapkit: hashkv: %w: %q", schema.ErrBucketMissing, schema.KeyBucket)
	}
	lower := keyindex.Revision{Main: compactRev + 1}
	c := b.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		r, tomb, err := schema.ParseRevision(k)
		if err != nil {
			return HashKVResult{}, fmt.Errorf("snapkit: hashkv: %w", err)
		}
		if r.Main > rev {
			break // the bucket is in revision order: nothing later counts
		}
		if lower.GreaterThan(r) && len(keep) > 0 {
			if _, ok := keep[r]; !ok {
				continue
			}
		}
		if r.Main == compactRev && tomb {
			continue
		}
		h.Write(k)
		h.Write(v)
	}
	return HashKVResult{Hash: h.Sum32(), CompactRevision: compactRev, HashRevision: rev}, nil
}

// HashKVFile opens path read-only and computes HashKV at rev (0: the
// current revision), as `etcdutl hashkv` does, without touching the file.
func HashKVFile(ctx context.Context, path string, rev int64, lg *slog.Logger) (HashKVResult, error) {
	db, err := OpenDB(ctx, path, lg)
	if err != nil {
		return HashKVResult{}, err
	}
	defer db.Close()
	return db.HashKV(rev)
}

// HashKV computes HashKV at rev (0: the current revision).
func (db *DB) HashKV(rev int64) (HashKVResult, error) {
	rev, err := db.resolveRev(rev)
	if err != nil {
		return HashKVResult{}, err
	}
	var res HashKVResult
	err = db.View(func(tx *bolt.Tx) error {
		var err error
		res, err = HashKV(tx, db.Index, db.CompactRev, rev)
		return err
	})
	res.Revision = db.Current
	return res, err
}

// ignoredByHash lists the meta keys Maintenance.Hash leaves out: they
// change without any user write.
func ignoredByHash(bucket, key []byte) bool {
	if string(bucket) != string(schema.MetaBucket) {
		return false
	}
	switch string(key) {
	case string(schema.TermKey), string(schema.ConsistentIndexKey), string(schema.StorageVersionKey):
		return true
	}
	return false
}

// Hash is the legacy Maintenance.Hash: CRC-32C over every root bucket's
// name and every pair, except meta's term, consistent_index and
// storageVersion.
func Hash(tx *bolt.Tx) (uint32, error) {
	h := crc32.New(castagnoli)
	c := tx.Cursor()
	for name, _ := c.First(); name != nil; name, _ = c.Next() {
		b := tx.Bucket(name)
		if b == nil {
			return 0, fmt.Errorf("snapkit: hash: root key %q is not a bucket", name)
		}
		h.Write(name)
		if err := b.ForEach(func(k, v []byte) error {
			if !ignoredByHash(name, k) {
				h.Write(k)
				h.Write(v)
			}
			return nil
		}); err != nil {
			return 0, fmt.Errorf("snapkit: hash: bucket %s: %w", name, err)
		}
	}
	return h.Sum32(), nil
}

// hashKVVisitor computes HashKV at the current revision in a walk, from
// what a first walk found (keyBucket.livePos), without bbolt or a key
// index: at the current revision etcd's keep set is the last revision of
// each live key, so a pair at or below the compaction counts only if it is
// the last pair of its key and a put (or if no key is live), as HashKV
// with the index decides.
type hashKVVisitor struct {
	crc        uint32
	isKey      bool
	compactRev int64
	filter     bool   // some key is live: the keep set filters
	keep       bitset // livePos
	pos        uint32 // of the next pair of the key bucket
	err        error
}

func (h *hashKVVisitor) start(bucket []byte) { h.isKey = string(bucket) == bucketKey }
func (h *hashKVVisitor) data([]byte)         {}

func (h *hashKVVisitor) kv(_, k, v []byte) {
	if !h.isKey || h.err != nil {
		return
	}
	pos := h.pos
	h.pos++
	r, tomb, err := schema.ParseRevision(k)
	if err != nil {
		h.err = fmt.Errorf("snapkit: hashkv: %w", err)
		return
	}
	if r.Main <= h.compactRev {
		if r.Main == h.compactRev && tomb {
			return
		}
		// (A pair past the first walk's is in no keep set; the count of
		// pairs then fails the walk.)
		if h.filter && !h.keep.has(uint64(pos)) {
			return
		}
	}
	h.crc = crc32.Update(h.crc, castagnoli, k)
	h.crc = crc32.Update(h.crc, castagnoli, v)
}

// hashKVWalk walks d again for HashKV at the current revision, once
// Inspect's first walk (kb, finished with wantPos) and the meta checks
// (st) are done on a sound file; with compactAt (> 0, at or above the
// current revision) at compactAt, the db taken as compacted there. Above
// the current revision the keep set is the current one: the last put of
// each live key.
func hashKVWalk(ctx context.Context, d *dbFile, st *Status, kb *keyBucket, compactAt int64) (HashKVResult, error) {
	if kb.st.Revisions > math.MaxUint32 {
		return HashKVResult{}, fmt.Errorf("snapkit: hashkv: %d pairs in the key bucket", kb.st.Revisions)
	}
	compactRev, err := hashKVCompactRev(st, compactAt)
	if err != nil {
		return HashKVResult{}, err
	}
	// No live key: etcd's keep set is empty and filters nothing.
	h := &hashKVVisitor{crc: crc32.Update(0, castagnoli, schema.KeyBucket), compactRev: compactRev,
		filter: st.TotalKey > 0, keep: kb.livePos}
	fs := &findings{}
	if _, err := walk(ctx, d, h, fs, nil); err != nil {
		return HashKVResult{}, err
	}
	if h.err != nil {
		return HashKVResult{}, h.err
	}
	if len(fs.list) > 0 || fs.suppressed > 0 || int(h.pos) != kb.st.Revisions {
		return HashKVResult{}, fmt.Errorf("%w: %s: the key bucket changed between two walks", ErrDamaged, d.src.DBPath)
	}
	current := max(st.Revision, compactRev)
	return HashKVResult{Hash: h.crc, CompactRevision: compactRev, HashRevision: current, Revision: current}, nil
}

// hashKVCompactRev is the compaction HashKV takes: the db's own (finished
// or scheduled), or compactAt (> 0, at or above the current revision).
func hashKVCompactRev(st *Status, compactAt int64) (int64, error) {
	compactRev := max(st.Meta.CompactRevision, st.Meta.ScheduledCompactRevision)
	if compactAt > 0 {
		if current := max(st.Revision, compactRev); compactAt < current {
			return 0, fmt.Errorf("%w: hashkv compacted at %d, below the current revision %d", ErrBadRevision, compactAt, current)
		}
		compactRev = compactAt
	}
	return compactRev, nil
}

// errHashKVWalk means HashKV needs hashKVWalk's second walk.
var errHashKVWalk = errors.New("snapkit: hashkv needs a second walk")

// hashKV is hashKVWalk's result without the second walk, from the CRC of
// the last pair of each live key (kb finished with wantCRC), when every
// pair is at or below the compaction and some key is live: the keep set
// then decides every pair, and it holds those (a tombstone is never the
// last pair of a live key, so the one at the compaction itself is left out
// too). Otherwise it returns errHashKVWalk.
func (kb *keyBucket) hashKV(st *Status, compactAt int64) (HashKVResult, error) {
	compactRev, err := hashKVCompactRev(st, compactAt)
	if err != nil {
		return HashKVResult{}, err
	}
	if !kb.wantCRC || st.Revision > compactRev || st.TotalKey == 0 {
		return HashKVResult{}, errHashKVWalk
	}
	current := max(st.Revision, compactRev)
	return HashKVResult{Hash: kb.keptCRC, CompactRevision: compactRev, HashRevision: current, Revision: current}, nil
}

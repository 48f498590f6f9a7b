package snapkit

import (
	"fmt"

	bolt "go.etcd.io/bbolt"
	"go.etcd.io/etcd/api/v3/mvccpb"

	"github.com/lifeboat-dev/lifeboat/snapkit/keyindex"
	"github.com/lifeboat-dev/lifeboat/snapkit/schema"
	"github.com/lifeboat-dev/lifeboat/walkit/inspect"
)

// ListOptions select keys as etcdctl get does.
type ListOptions struct {
	Key      []byte // with Prefix, empty means every key
	Prefix   bool
	Rev      int64 // 0: the current revision
	KeysOnly bool
	Limit    int // 0: no limit
}

// Entry is one key as of a revision, with mvccpb.KeyValue's field names.
// Key and Value print as walkit dump prints them: UTF-8 text when
// printable, "base64:..." otherwise (see walkit/inspect.Bytes).
type Entry struct {
	Key            inspect.Bytes `json:"key"`
	CreateRevision int64         `json:"create_revision"`
	ModRevision    int64         `json:"mod_revision"`
	Version        int64         `json:"version"`
	Lease          int64         `json:"lease,omitempty"`
	ValueSize      int           `json:"value_size"`
	Value          inspect.Bytes `json:"value,omitzero"`
}

// ListResult is the answer to List.
type ListResult struct {
	Revision        int64   `json:"revision"`        // the revision read at
	CompactRevision int64   `json:"compactRevision"` // -1: never compacted
	Count           int     `json:"count"`           // every match, beyond Limit too
	More            bool    `json:"more"`
	KVs             []Entry `json:"kvs"`
}

// rangeEnd turns a key and the prefix flag into keyindex's [key, end).
func rangeEnd(key []byte, prefix bool) []byte {
	switch {
	case !prefix:
		return nil
	case len(key) == 0:
		return []byte{}
	}
	return prefixEnd(key)
}

// prefixEnd is inspect.PrefixEnd, with "\x00" (to the end) where no key
// follows every key with prefix p, as etcdctl's --prefix sends it.
func prefixEnd(p []byte) []byte {
	if end := inspect.PrefixEnd(p); end != nil {
		return end
	}
	return []byte{0}
}

// resolveRev checks rev against the compaction and the head; 0 is the head.
func (db *DB) resolveRev(rev int64) (int64, error) {
	switch {
	case rev < 0:
		return 0, fmt.Errorf("%w: %d is negative", ErrBadRevision, rev)
	case rev > 0 && rev < db.CompactRev:
		return 0, fmt.Errorf("%w: %d < compaction %d", ErrCompacted, rev, db.CompactRev)
	case rev > db.Current:
		return 0, fmt.Errorf("%w: %d > current %d", ErrFutureRev, rev, db.Current)
	case rev == 0:
		return db.Current, nil
	}
	return rev, nil
}

// keyValue reads the KeyValue stored at rev.
func keyValue(tx *bolt.Tx, rev keyindex.Revision) (*mvccpb.KeyValue, error) {
	b := tx.Bucket(schema.KeyBucket)
	if b == nil {
		return nil, fmt.Errorf("snapkit: %w: %q", schema.ErrBucketMissing, schema.KeyBucket)
	}
	revKey := schema.RevisionBytes(rev)
	v := b.Get(revKey)
	if v == nil {
		return nil, fmt.Errorf("snapkit: key index points at revision %s, which the key bucket lacks", rev)
	}
	return schema.UnmarshalKeyValue(revKey, v)
}

// List returns the keys live at a revision, through the key index.
func (db *DB) List(opts ListOptions) (ListResult, error) {
	rev, err := db.resolveRev(opts.Rev)
	if err != nil {
		return ListResult{}, err
	}
	keys, revs, total := db.Index.Range(opts.Key, rangeEnd(opts.Key, opts.Prefix), rev, opts.Limit)
	res := ListResult{Revision: rev, CompactRevision: db.CompactRev, Count: total, More: len(keys) < total}
	err = db.View(func(tx *bolt.Tx) error {
		for i := range keys {
			kv, err := keyValue(tx, revs[i])
			if err != nil {
				return err
			}
			e := Entry{Key: inspect.Bytes{Raw: kv.Key}, CreateRevision: kv.CreateRevision, ModRevision: kv.ModRevision,
				Version: kv.Version, Lease: kv.Lease, ValueSize: len(kv.Value)}
			if !opts.KeysOnly {
				e.Value = inspect.Bytes{Raw: kv.Value}
			}
			res.KVs = append(res.KVs, e)
		}
		return nil
	})
	return res, err
}

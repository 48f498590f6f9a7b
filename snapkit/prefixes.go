package snapkit

import (
	"bytes"
	"cmp"
	"fmt"
	"slices"

	bolt "go.etcd.io/bbolt"

	"github.com/lifeboat-dev/lifeboat/snapkit/schema"
	"github.com/lifeboat-dev/lifeboat/walkit/inspect"
)

// PrefixStat sizes the keys under one prefix.
type PrefixStat struct {
	Prefix inspect.Bytes `json:"prefix"`
	// Live keys at the head, and the bytes of their keys and values.
	LiveKeys       int   `json:"liveKeys"`
	LiveKeyBytes   int64 `json:"liveKeyBytes"`
	LiveValueBytes int64 `json:"liveValueBytes"`
	// Every revision kept in the key bucket (history and tombstones too),
	// and the bytes they hold, bucket keys included.
	Revisions     int   `json:"revisions"`
	RevisionBytes int64 `json:"revisionBytes"`
}

// PrefixReport lists prefixes by the bytes they hold, largest first.
type PrefixReport struct {
	Depth    int          `json:"depth"`
	Revision int64        `json:"revision"`
	Prefixes []PrefixStat `json:"prefixes"`
}

// prefixOf cuts key to its first depth path components, never keeping the
// last one (the key's own name): with depth 2, /registry/pods/ns/name gives
// /registry/pods and /registry/ranges gives /registry.
func prefixOf(key []byte, depth int) []byte {
	rest := key
	if bytes.HasPrefix(rest, []byte("/")) {
		rest = rest[1:]
	}
	end := len(key) - len(rest)
	for range depth {
		i := bytes.IndexByte(rest, '/')
		if i < 0 {
			break
		}
		end += i + 1
		rest = rest[i+1:]
	}
	return bytes.TrimSuffix(key[:end], []byte("/"))
}

// Prefixes sizes the key space by prefix at depth: live keys at the head
// through the key index, and every revision of the key bucket.
func (db *DB) Prefixes(depth int) (*PrefixReport, error) {
	if depth < 1 {
		return nil, fmt.Errorf("snapkit: prefix depth %d: must be at least 1", depth)
	}
	stats := map[string]*PrefixStat{}
	stat := func(key []byte) *PrefixStat {
		p := prefixOf(key, depth)
		s, ok := stats[string(p)]
		if !ok {
			s = &PrefixStat{Prefix: inspect.Bytes{Raw: bytes.Clone(p)}}
			stats[string(p)] = s
		}
		return s
	}
	err := db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(schema.KeyBucket)
		if b == nil {
			return fmt.Errorf("snapkit: %w: %q", schema.ErrBucketMissing, schema.KeyBucket)
		}
		c := b.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			kv, err := schema.UnmarshalKeyValue(k, v)
			if err != nil {
				return err
			}
			s := stat(kv.Key)
			s.Revisions++
			s.RevisionBytes += int64(len(k) + len(v))
		}
		keys, revs := db.Index.LiveKeys(db.Current)
		for i, k := range keys {
			kv, err := keyValue(tx, revs[i])
			if err != nil {
				return err
			}
			s := stat(k)
			s.LiveKeys++
			s.LiveKeyBytes += int64(len(k))
			s.LiveValueBytes += int64(len(kv.Value))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	r := &PrefixReport{Depth: depth, Revision: db.Current}
	for _, s := range stats {
		r.Prefixes = append(r.Prefixes, *s)
	}
	slices.SortFunc(r.Prefixes, func(a, b PrefixStat) int {
		return cmp.Or(cmp.Compare(b.RevisionBytes, a.RevisionBytes), bytes.Compare(a.Prefix.Raw, b.Prefix.Raw))
	})
	return r, nil
}

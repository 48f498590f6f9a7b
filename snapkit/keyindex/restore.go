package keyindex

import (
	"bytes"
	"fmt"
	"hash/maphash"
	"log/slog"
	"slices"

	bolt "go.etcd.io/bbolt"

	"github.com/lifeboat-dev/lifeboat/snapkit/schema"
)

// Restore rebuilds an index from the key bucket of tx, replaying every pair
// in revision order, tombstones included, and returns it with the main
// revision of the last pair (0 for an empty bucket). A pair that does not
// decode is an error naming its revision; a tombstone of a key that is not
// live is logged at warn level and skipped, as etcd does. lg may be nil.
func Restore(lg *slog.Logger, tx *bolt.Tx) (*Index, int64, error) {
	return RestoreFunc(lg, tx, nil)
}

// RestoreFunc is Restore that also hands each pair, decoded, to each
// (if not nil) in the same pass, for what the caller rebuilds beside the
// index (a server's lease attachments). e is valid only during the call.
func RestoreFunc(lg *slog.Logger, tx *bolt.Tx, each func(e *schema.KeyView)) (*Index, int64, error) {
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	ix := New()
	// The keys seen, by a hash of the key: the index into keys of the
	// first key with that hash, checked byte for byte; a key whose hash
	// another key has already is in collided. (A map of strings would
	// allocate a string for each key, and hash and compare longer keys.)
	seed := maphash.MakeSeed()
	seen := make(map[uint64]int32)
	var collided map[string]*keyIndex
	// The keys go into the tree once the bucket is read, in key order: an
	// insert then follows the tree's rightmost path, which stays in the
	// CPU caches, where inserts in revision order (random key order) miss
	// them at every level. Each key is beside its keyIndex so that the
	// sort does not load the keyIndex.
	var keys []freshKey
	lookup := func(e *schema.KeyView) (ki *keyIndex, fresh bool) {
		key := e.KV.Key
		h := keyHash(seed, key)
		i, ok := seen[h]
		switch {
		case !ok:
			seen[h] = int32(len(keys))
		case bytes.Equal(keys[i].key, key):
			return keys[i].ki, false
		case collided == nil:
			collided = map[string]*keyIndex{}
		default:
			if ki, ok := collided[string(key)]; ok {
				return ki, false
			}
		}
		ki = newRestoredKey(key, e)
		if ok {
			collided[string(ki.key)] = ki
		}
		keys = append(keys, freshKey{key: ki.key, ki: ki})
		return ki, true
	}
	var current int64
	err := schema.ForEachKeyView(tx, Revision{}, func(e *schema.KeyView) error {
		current = e.Rev.Main
		if each != nil {
			each(e)
		}
		ki, fresh := lookup(e)
		if fresh {
			return nil
		}
		if e.Tombstone {
			if err := ki.tombstone(e.Rev); err != nil {
				lg.Warn("keyindex: restore: tombstone skipped", "key", string(e.KV.Key), "revision", e.Rev.String(), "error", err)
			}
			return nil
		}
		if err := ki.put(e.Rev); err != nil {
			return fmt.Errorf("keyindex: restore: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	seen, collided = nil, nil
	slices.SortFunc(keys, func(a, b freshKey) int { return bytes.Compare(a.key, b.key) })
	for _, f := range keys {
		ix.tree.ReplaceOrInsert(f.ki)
	}
	return ix, current, nil
}

// keyHash is RestoreFunc's hash of a key (a test makes every key collide).
var keyHash = maphash.Bytes

// freshKey is a key met first in RestoreFunc's pass.
type freshKey struct {
	key []byte
	ki  *keyIndex
}

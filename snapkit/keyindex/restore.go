package keyindex

import (
	"bytes"
	"fmt"
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
// index (a server's lease attachments). e.KV is valid only during the call.
func RestoreFunc(lg *slog.Logger, tx *bolt.Tx, each func(e schema.KeyEntry)) (*Index, int64, error) {
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	ix := New()
	seen := make(map[string]*keyIndex)
	// The keys go into the tree once the bucket is read, in key order: an
	// insert then follows the tree's rightmost path, which stays in the
	// CPU caches, where inserts in revision order (random key order) miss
	// them at every level.
	var fresh []*keyIndex
	var current int64
	err := schema.ForEachKey(tx, Revision{}, func(e schema.KeyEntry) error {
		current = e.Rev.Main
		if each != nil {
			each(e)
		}
		ki, ok := seen[string(e.KV.Key)]
		if !ok {
			ki = &keyIndex{key: bytes.Clone(e.KV.Key)}
			if e.Tombstone {
				ki.restoreTombstone(e.Rev)
			} else {
				ki.restore(Revision{Main: e.KV.CreateRevision}, e.Rev, e.KV.Version)
			}
			seen[string(ki.key)] = ki
			fresh = append(fresh, ki)
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
	slices.SortFunc(fresh, func(a, b *keyIndex) int { return bytes.Compare(a.key, b.key) })
	for _, ki := range fresh {
		ix.tree.ReplaceOrInsert(ki)
	}
	return ix, current, nil
}

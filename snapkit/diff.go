package snapkit

import (
	"bytes"
	"fmt"

	bolt "go.etcd.io/bbolt"
	"go.etcd.io/etcd/api/v3/mvccpb"

	"github.com/lifeboat-dev/lifeboat/walkit/inspect"
)

// DiffSide describes one side of a Diff.
type DiffSide struct {
	Path            string `json:"path"`
	CompactRevision int64  `json:"compactRevision"` // history starts above it
	Revision        int64  `json:"revision"`        // the head compared
	Keys            int    `json:"keys"`            // live at the head
}

// KeyRevision is one side of a changed key.
type KeyRevision struct {
	CreateRevision int64 `json:"create_revision"`
	ModRevision    int64 `json:"mod_revision"`
	Version        int64 `json:"version"`
	Lease          int64 `json:"lease,omitempty"`
	ValueSize      int   `json:"value_size"`
}

// DiffEntry is one key that differs. A is nil for an added key, B for a
// removed one.
type DiffEntry struct {
	Key    inspect.Bytes `json:"key"`
	Change string        `json:"change"`
	A      *KeyRevision  `json:"a,omitempty"`
	B      *KeyRevision  `json:"b,omitempty"`
}

// Changes of a DiffEntry.
const (
	Added   = "added"
	Removed = "removed"
	Changed = "changed" // the value or the lease differs
)

// DiffReport compares the live keys of two dbs at their heads.
type DiffReport struct {
	A       DiffSide    `json:"a"`
	B       DiffSide    `json:"b"`
	Added   int         `json:"added"`
	Removed int         `json:"removed"`
	Changed int         `json:"changed"`
	Entries []DiffEntry `json:"entries"`
}

// Same reports whether the two sides hold the same keys and values.
func (r *DiffReport) Same() bool { return r.Added+r.Removed+r.Changed == 0 }

func side(db *DB, keys int) DiffSide {
	return DiffSide{Path: db.Source.Path, CompactRevision: db.CompactRev, Revision: db.Current, Keys: keys}
}

func keyRevision(kv *mvccpb.KeyValue) *KeyRevision {
	return &KeyRevision{CreateRevision: kv.CreateRevision, ModRevision: kv.ModRevision, Version: kv.Version, Lease: kv.Lease, ValueSize: len(kv.Value)}
}

// Diff compares the keys live at the head of a and of b: keys only in b
// are added, keys only in a removed, keys whose value or lease differ
// changed. A key rewritten with the same value is not a difference.
func Diff(a, b *DB) (*DiffReport, error) {
	ka, ra := a.Index.LiveKeys(a.Current)
	kb, rb := b.Index.LiveKeys(b.Current)
	r := &DiffReport{A: side(a, len(ka)), B: side(b, len(kb))}
	err := a.View(func(txa *bolt.Tx) error {
		return b.View(func(txb *bolt.Tx) error {
			i, j := 0, 0
			for i < len(ka) || j < len(kb) {
				c := 0
				switch {
				case i == len(ka):
					c = 1
				case j == len(kb):
					c = -1
				default:
					c = bytes.Compare(ka[i], kb[j])
				}
				switch c {
				case -1:
					kv, err := keyValue(txa, ra[i])
					if err != nil {
						return fmt.Errorf("%s: %w", a.Source.Path, err)
					}
					r.Removed++
					r.Entries = append(r.Entries, DiffEntry{Key: inspect.Bytes{Raw: ka[i]}, Change: Removed, A: keyRevision(kv)})
					i++
				case 1:
					kv, err := keyValue(txb, rb[j])
					if err != nil {
						return fmt.Errorf("%s: %w", b.Source.Path, err)
					}
					r.Added++
					r.Entries = append(r.Entries, DiffEntry{Key: inspect.Bytes{Raw: kb[j]}, Change: Added, B: keyRevision(kv)})
					j++
				default:
					kva, err := keyValue(txa, ra[i])
					if err != nil {
						return fmt.Errorf("%s: %w", a.Source.Path, err)
					}
					kvb, err := keyValue(txb, rb[j])
					if err != nil {
						return fmt.Errorf("%s: %w", b.Source.Path, err)
					}
					if !bytes.Equal(kva.Value, kvb.Value) || kva.Lease != kvb.Lease {
						r.Changed++
						r.Entries = append(r.Entries, DiffEntry{Key: inspect.Bytes{Raw: ka[i]}, Change: Changed, A: keyRevision(kva), B: keyRevision(kvb)})
					}
					i++
					j++
				}
			}
			return nil
		})
	})
	return r, err
}

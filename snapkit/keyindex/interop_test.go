package keyindex

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	bolt "go.etcd.io/bbolt"
	"go.etcd.io/etcd/api/v3/mvccpb"

	"github.com/lifeboat-dev/lifeboat/internal/interoptest"
	"github.com/lifeboat-dev/lifeboat/snapkit/schema"
)

// writeOps writes ops into a new db as etcd's store would: each put's
// KeyValue carries its create revision and version.
func writeOps(t *testing.T, ops []op) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "db")
	db, err := schema.Open(path, schema.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	type state struct{ created, version int64 }
	keys := map[string]*state{}
	err = db.Update(func(tx *bolt.Tx) error {
		if err := schema.CreateBuckets(tx); err != nil {
			return err
		}
		for _, o := range ops {
			if o.tomb {
				delete(keys, o.key)
				if err := schema.PutTombstone(tx, o.rev, []byte(o.key)); err != nil {
					return err
				}
				continue
			}
			s := keys[o.key]
			if s == nil {
				s = &state{created: o.rev.Main}
				keys[o.key] = s
			}
			s.version++
			kv := &mvccpb.KeyValue{Key: []byte(o.key), CreateRevision: s.created, ModRevision: o.rev.Main, Version: s.version, Value: []byte(o.rev.String())}
			if err := schema.PutKeyValue(tx, o.rev, kv); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// compactDB compacts the db at rev as etcd's store does: the index decides
// what to keep, every other pair at or before rev is deleted, and the meta
// bucket records the compaction.
func compactDB(t *testing.T, path string, rev int64) {
	t.Helper()
	db, err := schema.Open(path, schema.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bolt.Tx) error {
		ix, _, err := Restore(nil, tx)
		if err != nil {
			return err
		}
		keep := ix.Compact(rev)
		var drop [][]byte
		err = schema.ForEachKey(tx, Revision{}, func(e schema.KeyEntry) error {
			if _, ok := keep[e.Rev]; e.Rev.Main <= rev && !ok {
				drop = append(drop, schema.AppendRevision(nil, e.Rev, e.Tombstone))
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range drop {
			if err := schema.Key(tx).Delete(k); err != nil {
				return err
			}
		}
		if err := schema.SetScheduledCompactRev(tx, rev); err != nil {
			return err
		}
		return schema.SetFinishedCompactRev(tx, rev)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestHashKVMatchesEtcd writes random histories, compacts them with
// Compact, and has etcd's own mvcc store hash the result at several
// revisions; our Restore and Keep must give the same hash.
func TestHashKVMatchesEtcd(t *testing.T) {
	oracle := interoptest.Oracle(t, "hashkv")
	for seed := range uint64(3) {
		r := rand.New(rand.NewPCG(seed, 7))
		ops := randomOps(r, 300, 25)
		head := ops[len(ops)-1].rev.Main
		// Compact at a tombstone's revision: the edge where Compact keeps
		// a pair that HashKV skips.
		var compactAt int64
		for _, o := range ops[len(ops)/2:] {
			if o.tomb {
				compactAt = o.rev.Main
				break
			}
		}
		if compactAt == 0 {
			t.Fatalf("seed %d: no tombstone in the second half", seed)
		}
		path := writeOps(t, ops)
		compactDB(t, path, compactAt)
		for _, at := range []int64{compactAt, compactAt + 1, (compactAt + head) / 2, head} {
			out, err := exec.Command(oracle, "--rev", strconv.FormatInt(at, 10), path).Output()
			if err != nil {
				t.Fatalf("seed %d: hashkv --rev %d: %v", seed, at, err)
			}
			var want struct {
				Hash            uint32 `json:"hash"`
				CompactRevision int64  `json:"compactRevision"`
			}
			if err := json.Unmarshal(out, &want); err != nil {
				t.Fatalf("%v: %s", err, out)
			}
			db, err := schema.Open(path, schema.Options{ReadOnly: true})
			if err != nil {
				t.Fatal(err)
			}
			err = db.View(func(tx *bolt.Tx) error {
				ix, _, err := Restore(nil, tx)
				if err != nil {
					return err
				}
				if got := hashKV(tx, compactAt, at, ix.Keep(at)); got != want.Hash || want.CompactRevision != compactAt {
					return fmt.Errorf("seed %d: HashKV at %d (compacted at %d) = %d; etcd: %d at compaction %d", seed, at, compactAt, got, want.Hash, want.CompactRevision)
				}
				return nil
			})
			db.Close()
			if err != nil {
				t.Fatal(err)
			}
		}
	}
}

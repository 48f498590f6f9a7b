package keyindex

import (
	"encoding/json"
	"fmt"
	"hash/crc32"
	"hash/maphash"
	"os"
	"path/filepath"
	"slices"
	"testing"

	bolt "go.etcd.io/bbolt"
	"go.etcd.io/etcd/api/v3/mvccpb"

	"github.com/lifeboat-dev/lifeboat/internal/fixture"
	"github.com/lifeboat-dev/lifeboat/snapkit/schema"
)

// TestRestoreFixtures rebuilds the index from the key bucket of every real
// etcd member db and checks it against a plain scan of the bucket: the live
// keys at the head, and, for every pair after the compaction, the revision,
// create revision and version that etcd stored in the KeyValue. Then it
// computes HashKV (FORMATS.md §11) with Keep and compares it with what the
// running etcd members answered.
func TestRestoreFixtures(t *testing.T) { forEachKeyHash(t, testRestoreFixtures) }

// forEachKeyHash runs test with Restore's hash of the keys, and with one
// that makes every key collide with every other (the keys are then told
// apart byte for byte).
func forEachKeyHash(t *testing.T, test func(t *testing.T)) {
	for _, h := range []struct {
		name string
		hash func(maphash.Seed, []byte) uint64
	}{
		{"maphash", maphash.Bytes},
		{"all-collide", func(maphash.Seed, []byte) uint64 { return 7 }},
	} {
		t.Run(h.name, func(t *testing.T) {
			defer func(old func(maphash.Seed, []byte) uint64) { keyHash = old }(keyHash)
			keyHash = h.hash
			test(t)
		})
	}
}

func testRestoreFixtures(t *testing.T) {
	for _, set := range fixture.Sets {
		var hashes []struct {
			HashKV struct {
				Hash            uint32 `json:"hash"`
				CompactRevision int64  `json:"compact_revision"`
			} `json:"HashKV"`
		}
		b, err := os.ReadFile(fixture.Path(set, "endpoint-hashkv.json"))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, &hashes); err != nil {
			t.Fatal(err)
		}
		for _, member := range fixture.Members {
			t.Run(set+"/"+member, func(t *testing.T) {
				path := filepath.Join(fixture.DataDir(t, set, member), "member", "snap", "db")
				db, err := schema.Open(path, schema.Options{ReadOnly: true})
				if err != nil {
					t.Fatal(err)
				}
				defer db.Close()
				err = db.View(func(tx *bolt.Tx) error {
					ix, head, err := Restore(nil, tx)
					if err != nil {
						return err
					}
					compacted, _, err := schema.FinishedCompactRev(tx)
					if err != nil {
						return err
					}
					if err := checkAgainstScan(tx, ix, head, compacted); err != nil {
						return err
					}
					if member == "solo" {
						return nil // a cluster of its own; etcd's JSON is the 3-member one's
					}
					want := hashes[0].HashKV
					if compacted != want.CompactRevision {
						return fmt.Errorf("finished compaction %d, etcd says %d", compacted, want.CompactRevision)
					}
					if got := hashKV(tx, compacted, head, ix.Keep(head)); got != want.Hash {
						return fmt.Errorf("HashKV at %d = %d, etcd says %d", head, got, want.Hash)
					}
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
			})
		}
	}
}

func checkAgainstScan(tx *bolt.Tx, ix *Index, head, compacted int64) error {
	live := map[string]Revision{}
	var puts []schema.KeyEntry
	err := schema.ForEachKey(tx, Revision{}, func(e schema.KeyEntry) error {
		if e.Tombstone {
			delete(live, string(e.KV.Key))
			return nil
		}
		live[string(e.KV.Key)] = e.Rev
		if e.Rev.Main >= compacted {
			puts = append(puts, e)
		}
		return nil
	})
	if err != nil {
		return err
	}
	keys, revs := ix.LiveKeys(head)
	want := slices.Sorted(func(yield func(string) bool) {
		for k := range live {
			if !yield(k) {
				return
			}
		}
	})
	if len(keys) != len(want) || len(keys) == 0 {
		return fmt.Errorf("%d live keys at %d, the bucket scan gives %d", len(keys), head, len(want))
	}
	for i, k := range keys {
		if string(k) != want[i] || revs[i] != live[want[i]] {
			return fmt.Errorf("live key %d: %q at %s; the scan gives %q at %s", i, k, revs[i], want[i], live[want[i]])
		}
	}
	for _, e := range puts {
		mod, created, ver, err := ix.Get(e.KV.Key, e.Rev.Main)
		if err != nil || mod != e.Rev || created.Main != e.KV.CreateRevision || ver != e.KV.Version {
			return fmt.Errorf("Get(%q, %d) = %s %s %d %v; etcd stored create %d version %d", e.KV.Key, e.Rev.Main, mod, created, ver, err, e.KV.CreateRevision, e.KV.Version)
		}
	}
	return nil
}

// hashKV is FORMATS.md §11, the test's own oracle for Keep.
func hashKV(tx *bolt.Tx, compactRev, rev int64, keep map[Revision]struct{}) uint32 {
	h := crc32.New(crc32.MakeTable(crc32.Castagnoli))
	h.Write(schema.KeyBucket)
	tx.Bucket(schema.KeyBucket).ForEach(func(k, v []byte) error {
		r, tomb, _ := schema.ParseRevision(k)
		if r.Main > rev {
			return nil
		}
		if _, kept := keep[r]; r.Compare(Revision{Main: compactRev + 1}) < 0 && len(keep) > 0 && !kept {
			return nil
		}
		if r.Main == compactRev && tomb {
			return nil
		}
		h.Write(k)
		h.Write(v)
		return nil
	})
	return h.Sum32()
}

// TestRestoreReplaysTombstones writes a key bucket with a compacted history
// (the first pair of a key is not its creation, a tombstone comes first,
// the bump marker of etcdutl) and restores it.
func TestRestoreReplaysTombstones(t *testing.T) { forEachKeyHash(t, testRestoreReplaysTombstones) }

func testRestoreReplaysTombstones(t *testing.T) {
	db, err := schema.Open(filepath.Join(t.TempDir(), "db"), schema.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	type pair struct {
		rev  int64
		tomb bool
		kv   *mvccpb.KeyValue
	}
	pairs := []pair{
		{10, false, &mvccpb.KeyValue{Key: []byte("a"), CreateRevision: 3, ModRevision: 10, Version: 4}},
		{11, true, &mvccpb.KeyValue{Key: []byte("b")}}, // created before the compaction
		{12, false, &mvccpb.KeyValue{Key: []byte("a"), CreateRevision: 3, ModRevision: 12, Version: 5}},
		{13, false, &mvccpb.KeyValue{Key: []byte("b"), CreateRevision: 13, ModRevision: 13, Version: 1}},
		{14, true, &mvccpb.KeyValue{Key: []byte("c")}},
		{15, true, &mvccpb.KeyValue{Key: []byte("c")}}, // not live: skipped with a warning
	}
	err = db.Update(func(tx *bolt.Tx) error {
		if err := schema.CreateBuckets(tx); err != nil {
			return err
		}
		for _, p := range pairs {
			var err error
			if p.tomb {
				err = schema.PutTombstone(tx, Revision{Main: p.rev}, p.kv.Key)
			} else {
				err = schema.PutKeyValue(tx, Revision{Main: p.rev}, p.kv)
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var ix *Index
	var head int64
	if err := db.View(func(tx *bolt.Tx) (err error) { ix, head, err = Restore(nil, tx); return err }); err != nil {
		t.Fatal(err)
	}
	if head != 15 || ix.Len() != 3 {
		t.Fatalf("head %d, %d keys", head, ix.Len())
	}
	tests := []struct {
		key               string
		at                int64
		mod, created, ver int64
		notFound          bool
	}{
		{key: "a", at: 10, mod: 10, created: 3, ver: 4},
		{key: "a", at: 15, mod: 12, created: 3, ver: 5},
		{key: "b", at: 11, notFound: true},
		{key: "b", at: 10, notFound: true}, // history before the compaction is gone
		{key: "b", at: 13, mod: 13, created: 13, ver: 1},
		{key: "c", at: 15, notFound: true},
	}
	for _, tt := range tests {
		mod, created, ver, err := ix.Get([]byte(tt.key), tt.at)
		if tt.notFound != (err != nil) || (!tt.notFound && (mod.Main != tt.mod || created.Main != tt.created || ver != tt.ver)) {
			t.Errorf("Get(%s, %d) = %s %s %d %v; want %d %d %d (not found: %v)", tt.key, tt.at, mod, created, ver, err, tt.mod, tt.created, tt.ver, tt.notFound)
		}
	}
}

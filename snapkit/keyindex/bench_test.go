package keyindex

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"
	"go.etcd.io/etcd/api/v3/mvccpb"

	"github.com/lifeboat-dev/lifeboat/snapkit/schema"
)

// benchIndex holds n keys /registry/pods/nsX/pod-Y, each written twice.
func benchIndex(b *testing.B, n int) *Index {
	b.Helper()
	ix := New()
	main := int64(2)
	for round := range 2 {
		for i := range n {
			if err := ix.Put([]byte(fmt.Sprintf("/registry/pods/ns%d/pod-%06d", i%10, i)), rev(main)); err != nil {
				b.Fatal(round, err)
			}
			main++
		}
	}
	return ix
}

// BenchmarkRangeNamespace100kKeys lists one namespace (10k keys) of 100k,
// as `kubectl get pods -n ns3` makes the API server do.
func BenchmarkRangeNamespace100kKeys(b *testing.B) {
	ix := benchIndex(b, 100_000)
	b.ResetTimer()
	for b.Loop() {
		if _, _, total := ix.Range([]byte("/registry/pods/ns3/"), []byte("/registry/pods/ns30"), 1<<62, 500); total != 10_000 {
			b.Fatalf("total %d", total)
		}
	}
}

// BenchmarkGet100kKeys reads one key of 100k at the head.
func BenchmarkGet100kKeys(b *testing.B) {
	ix := benchIndex(b, 100_000)
	key := []byte("/registry/pods/ns7/pod-050007")
	b.ResetTimer()
	for b.Loop() {
		if _, _, _, err := ix.Get(key, 1<<62); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPut writes a new revision of one of 10k keys.
func BenchmarkPut(b *testing.B) {
	ix := benchIndex(b, 10_000)
	main := int64(1 << 20)
	i := 0
	b.ResetTimer()
	for b.Loop() {
		main++
		i++
		if err := ix.Put([]byte(fmt.Sprintf("/registry/pods/ns%d/pod-%06d", i%10, i%10_000)), rev(main)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRestore275kKeys rebuilds the index of a key bucket that holds
// 275k keys in random key order, with 200-1000 byte values as the restore
// benchmark's snapshot has: one put of each key (compacted: a db restored
// with --bump-revision --mark-compacted --compact from that snapshot), or
// four (history: a member's db before compaction).
func BenchmarkRestore275kKeys(b *testing.B) {
	for _, c := range []struct {
		name string
		puts int
	}{{"compacted", 1}, {"history", 4}} {
		b.Run(c.name, func(b *testing.B) { benchRestore(b, 275_000, c.puts) })
	}
}

// benchRestore writes n keys puts times each, in random key order, and
// rebuilds the index from them.
func benchRestore(b *testing.B, n, puts int) {
	db, err := schema.Open(filepath.Join(b.TempDir(), "db"), schema.Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	rng := rand.New(rand.NewPCG(1, 1))
	value := make([]byte, 1000)
	for i := range value {
		value[i] = byte('a' + rng.IntN(26))
	}
	r := int64(1)
	for range puts {
		err = db.Update(func(tx *bolt.Tx) error {
			if err := schema.CreateBuckets(tx); err != nil {
				return err
			}
			for _, k := range rng.Perm(n) {
				r++
				kv := &mvccpb.KeyValue{Key: fmt.Appendf(nil, "/registry/pods/ns-%d/pod-%d", k%100, k), CreateRevision: r, ModRevision: r, Version: 1, Value: value[:200+rng.IntN(800)]}
				if err := schema.PutKeyValue(tx, schema.Revision{Main: r}, kv); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for b.Loop() {
		err := db.View(func(tx *bolt.Tx) error {
			ix, _, err := Restore(nil, tx)
			if err == nil && ix.Len() != n {
				err = fmt.Errorf("%d keys, want %d", ix.Len(), n)
			}
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

package snapkit

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"
	"go.etcd.io/etcd/api/v3/mvccpb"

	"github.com/lifeboat-dev/lifeboat/snapkit/keyindex"
	"github.com/lifeboat-dev/lifeboat/snapkit/schema"
)

// genSpec describes a synthetic etcd backend, written through schema the
// way etcd's mvcc writes it (puts, deletes, transactions of several
// changes, leases, a compaction that removes what the key index does not
// keep).
type genSpec struct {
	Revisions  int   // main revisions written
	Keys       int   // distinct keys
	MaxOps     int   // changes per revision (sub revisions): 1..MaxOps
	ValueMin   int   // value sizes, uniform in [ValueMin, ValueMax]
	ValueMax   int   //
	DeletePct  int   // percent of changes that delete a live key
	Leases     int   // leases granted; live keys pick one of them 1 time in 10
	CompactAt  int64 // finished compaction (0: none)
	ScheduleAt int64 // scheduled compaction left unfinished (0: as CompactAt)
	Seed       uint64
	// Mutate, if set, changes the db after it is written (to damage it on
	// purpose), before the snapshot is taken.
	Mutate func(tx *bolt.Tx) error
}

type genKey struct {
	create, version int64
	live            bool
}

// genDB writes spec into a new bbolt file at dbPath and the snapshot file
// (db plus SHA-256) at snapPath, and returns the latest revision.
func genDB(tb testing.TB, dbPath, snapPath string, spec genSpec) int64 {
	tb.Helper()
	db, err := schema.Open(dbPath, schema.Options{NoSync: true})
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	rng := rand.New(rand.NewPCG(spec.Seed, 1))
	value := make([]byte, spec.ValueMax)
	for i := range value {
		value[i] = byte(rng.UintN(256))
	}
	idx := keyindex.New()
	keys := map[string]*genKey{}
	names := make([]string, spec.Keys)
	for i := range names {
		names[i] = fmt.Sprintf("/registry/%s/ns-%d/obj-%d", []string{"pods", "configmaps", "secrets", "events", "leases"}[i%5], i%97, i)
	}
	must := func(err error) {
		tb.Helper()
		if err != nil {
			tb.Fatal(err)
		}
	}
	must(db.Update(func(tx *bolt.Tx) error {
		if err := schema.CreateBuckets(tx); err != nil {
			return err
		}
		for l := 1; l <= spec.Leases; l++ {
			if err := schema.PutLease(tx, schema.Lease{ID: int64(l), TTL: 3600}); err != nil {
				return err
			}
		}
		for i, id := range []uint64{0x8e9e05c52164694d, 0x91bc3c398fb3c146, 0xfd422379fda50e48} {
			m := schema.Member{ID: id, Name: fmt.Sprintf("m%d", i+1), PeerURLs: []string{fmt.Sprintf("http://127.0.0.1:%d", 2380+i)}}
			if err := schema.PutMember(tx, m); err != nil {
				return err
			}
		}
		return nil
	}))
	rev := int64(1)
	const batch = 20000
	for done := 0; done < spec.Revisions; {
		must(db.Update(func(tx *bolt.Tx) error {
			for end := min(done+batch, spec.Revisions); done < end; done++ {
				rev++
				ops := 1 + rng.IntN(spec.MaxOps)
				used := map[string]bool{}
				for sub := int64(0); sub < int64(ops); sub++ {
					name := names[rng.IntN(len(names))]
					if used[name] {
						continue // one change per key per revision, as etcd allows
					}
					used[name] = true
					k := keys[name]
					if k == nil {
						k = &genKey{}
						keys[name] = k
					}
					r := schema.Revision{Main: rev, Sub: int64(len(used) - 1)}
					if k.live && rng.IntN(100) < spec.DeletePct {
						k.live, k.version = false, 0
						if err := schema.PutTombstone(tx, r, []byte(name)); err != nil {
							return err
						}
						if err := idx.Tombstone([]byte(name), r); err != nil {
							return err
						}
						continue
					}
					if !k.live {
						k.live, k.create = true, rev
					}
					k.version++
					kv := &mvccpb.KeyValue{Key: []byte(name), CreateRevision: k.create, ModRevision: rev, Version: k.version,
						Value: value[:spec.ValueMin+rng.IntN(spec.ValueMax-spec.ValueMin+1)]}
					if spec.Leases > 0 && rng.IntN(10) == 0 {
						kv.Lease = int64(1 + rng.IntN(spec.Leases))
					}
					if err := schema.PutKeyValue(tx, r, kv); err != nil {
						return err
					}
					if err := idx.Put([]byte(name), r); err != nil {
						return err
					}
				}
			}
			return nil
		}))
	}
	must(db.Update(func(tx *bolt.Tx) error {
		if spec.CompactAt > 0 {
			// Compact as etcd does: drop every revision at or below the
			// compaction that the index does not keep.
			keep := idx.Compact(spec.CompactAt)
			b := schema.Key(tx)
			c := b.Cursor()
			for k, _ := c.First(); k != nil; k, _ = c.Next() {
				r, _, err := schema.ParseRevision(k)
				if err != nil {
					return err
				}
				if r.Main > spec.CompactAt {
					break
				}
				if _, ok := keep[r]; !ok {
					if err := c.Delete(); err != nil {
						return err
					}
				}
			}
			if err := schema.SetFinishedCompactRev(tx, spec.CompactAt); err != nil {
				return err
			}
			if err := schema.SetScheduledCompactRev(tx, max(spec.CompactAt, spec.ScheduleAt)); err != nil {
				return err
			}
		}
		for _, err := range []error{
			schema.SetConsistentIndex(tx, uint64(rev)+10),
			schema.SetTerm(tx, 2),
			schema.SetStorageVersion(tx, "3.6.0"),
			schema.SetClusterVersion(tx, "3.6.0"),
		} {
			if err != nil {
				return err
			}
		}
		return nil
	}))
	if spec.Mutate != nil {
		must(db.Update(spec.Mutate))
	}
	f, err := os.Create(snapPath)
	if err != nil {
		tb.Fatal(err)
	}
	must(db.View(func(tx *bolt.Tx) error { _, err := WriteSnapshot(tx, f); return err }))
	must(f.Close())
	return rev
}

// smallSpec is a db big enough for several key bucket pages and every
// kind of change, and small enough for unit tests.
var smallSpec = genSpec{Revisions: 3000, Keys: 400, MaxOps: 3, ValueMin: 1, ValueMax: 300, DeletePct: 15, CompactAt: 1500, Seed: 7}

// genSmall writes smallSpec (changed by edit) into t's temp dir and returns
// the snapshot path.
func genSmall(t testing.TB, edit func(*genSpec)) string {
	spec := smallSpec
	if edit != nil {
		edit(&spec)
	}
	dir := t.TempDir()
	snap := filepath.Join(dir, "snapshot.db")
	genDB(t, filepath.Join(dir, "db"), snap, spec)
	return snap
}

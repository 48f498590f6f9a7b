package snapkit

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"testing"

	bolt "go.etcd.io/bbolt"
	"go.etcd.io/etcd/api/v3/authpb"
	"go.etcd.io/etcd/api/v3/mvccpb"

	"github.com/lifeboat-dev/lifeboat/internal/fixture"
	"github.com/lifeboat-dev/lifeboat/snapkit/schema"
)

// etcdutlNumbers computes etcdutl 3.6's hash and totalKey the way it does,
// through bbolt: a CRC-32C of each root bucket's name, keys and values (a
// nested bucket's key with a nil value), and the set of keys replayed from
// the key bucket's puts and tombstones.
func etcdutlNumbers(t *testing.T, path string) (hash uint32, totalKey int) {
	t.Helper()
	db, err := openBolt(Source{DBPath: path})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	h := crc32.New(castagnoli)
	seen := map[string]bool{}
	err = db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			h.Write(name)
			return b.ForEach(func(k, v []byte) error {
				h.Write(k)
				h.Write(v)
				if string(name) != bucketKey {
					return nil
				}
				var kv mvccpb.KeyValue
				if err := kv.Unmarshal(v); err != nil {
					return err
				}
				if schema.IsTombstone(k) {
					delete(seen, string(kv.Key))
				} else {
					seen[string(kv.Key)] = true
				}
				return nil
			})
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return h.Sum32(), len(seen)
}

// Status's hash and totalKey equal etcdutl's way of computing them, also
// when root buckets hold nested buckets, inline (small) and on pages of
// their own: the walk hashes whole runs of pairs at once and must break
// them where etcdutl's ForEach sees a nested bucket.
func TestStatusNumbersMatchBolt(t *testing.T) {
	nested := func(tx *bolt.Tx) error {
		b := tx.Bucket(schema.AlarmBucket)
		for i := range 3 {
			if err := b.Put(fmt.Appendf(nil, "a%d", i), []byte("pair before the nested buckets")); err != nil {
				return err
			}
		}
		inline, err := b.CreateBucket([]byte("b-inline"))
		if err != nil {
			return err
		}
		if err := inline.Put([]byte("k"), []byte("v")); err != nil {
			return err
		}
		big, err := b.CreateBucket([]byte("c-paged"))
		if err != nil {
			return err
		}
		for i := range 500 {
			if err := big.Put(fmt.Appendf(nil, "k%04d", i), make([]byte, 100)); err != nil {
				return err
			}
		}
		return b.Put([]byte("d"), []byte("pair after the nested buckets"))
	}
	for name, edit := range map[string]func(*genSpec){
		"generated":      nil,
		"nested buckets": func(s *genSpec) { s.Mutate = nested },
	} {
		t.Run(name, func(t *testing.T) {
			path := genSmall(t, edit)
			r, err := Inspect(context.Background(), path, Options{})
			if err != nil {
				t.Fatal(err)
			}
			hash, totalKey := etcdutlNumbers(t, path)
			if r.Hash != hash || r.TotalKey != totalKey {
				t.Errorf("hash %d, totalKey %d; etcdutl's way: %d, %d", r.Hash, r.TotalKey, hash, totalKey)
			}
		})
	}
}

// deleteEveryKey is a genSpec.Mutate that deletes every live key in one
// last revision, so that no key is live and etcd's keep set is empty.
func deleteEveryKey(tx *bolt.Tx) error {
	live := map[string]bool{}
	var latest int64
	err := schema.ForEachKey(tx, schema.Revision{}, func(e schema.KeyEntry) error {
		live[string(e.KV.Key)] = !e.Tombstone
		latest = e.Rev.Main
		return nil
	})
	if err != nil {
		return err
	}
	sub := int64(0)
	for k, ok := range live {
		if ok {
			if err := schema.PutTombstone(tx, schema.Revision{Main: latest + 1, Sub: sub}, []byte(k)); err != nil {
				return err
			}
			sub++
		}
	}
	return nil
}

// Inspect's HashKV (a second walk with the live keys' last pairs from the
// first) equals HashKV through bbolt and the key index (checked against
// etcdutl and live members in interop_test.go), on dbs compacted, with a
// compaction scheduled but not finished, never compacted, with leases,
// with every key deleted, and on the fixtures of real etcd.
func TestInspectHashKVMatchesIndex(t *testing.T) {
	type tc struct {
		name string
		path func(t *testing.T) string
	}
	gen := func(edit func(*genSpec)) func(t *testing.T) string {
		return func(t *testing.T) string { return genSmall(t, edit) }
	}
	cases := []tc{
		{"compacted", gen(nil)},
		{"compacted, another seed", gen(func(s *genSpec) { s.Seed = 99; s.DeletePct = 40 })},
		{"compaction scheduled", gen(func(s *genSpec) { s.ScheduleAt = 2200 })},
		{"never compacted", gen(func(s *genSpec) { s.CompactAt = 0 })},
		{"leases", gen(func(s *genSpec) { s.Leases = 20 })},
		{"every key deleted", gen(func(s *genSpec) { s.Mutate = deleteEveryKey })},
		{"every key deleted, never compacted", gen(func(s *genSpec) { s.CompactAt = 0; s.Mutate = deleteEveryKey })},
		// No pair above the compaction, as a compacted restore writes:
		// HashKV from the first walk.
		{"compacted at the last revision", gen(func(s *genSpec) { s.CompactAt = 3001 })},
		{"compacted at the last revision, leases", gen(func(s *genSpec) { s.CompactAt = 3001; s.Leases = 20; s.Seed = 5 })},
	}
	for _, set := range fixture.Sets {
		cases = append(cases, tc{"fixture " + set, func(*testing.T) string { return fixture.Path(set, "snapshot.db") }})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := c.path(t)
			ctx := context.Background()
			rep, err := Inspect(ctx, path, Options{HashKV: true})
			if err != nil {
				t.Fatal(err)
			}
			if !rep.OK() || rep.HashKV == nil {
				t.Fatalf("findings %v, hashkv %v", rep.Findings, rep.HashKV)
			}
			db, err := OpenDB(ctx, path, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			want, err := db.HashKV(0)
			if err != nil {
				t.Fatal(err)
			}
			if *rep.HashKV != want {
				t.Errorf("Inspect's HashKV %+v, through the index %+v", *rep.HashKV, want)
			}
			// Compacted at or above the current revision, as restore's
			// plan asks for a bumped restore.
			for _, at := range []int64{db.Current, db.Current + 1000} {
				rep, err := Inspect(ctx, path, Options{HashKV: true, HashKVCompactAt: at, SkipTrailer: true})
				if err != nil {
					t.Fatal(err)
				}
				var want HashKVResult
				if err := db.View(func(tx *bolt.Tx) error {
					want, err = HashKV(tx, db.Index, at, at)
					return err
				}); err != nil {
					t.Fatal(err)
				}
				want.Revision = at
				if rep.HashKV == nil || *rep.HashKV != want {
					t.Errorf("compacted at %d: Inspect's HashKV %+v, through the index %+v", at, rep.HashKV, want)
				}
			}
			if _, err := Inspect(ctx, path, Options{HashKV: true, HashKVCompactAt: db.Current - 1, SkipTrailer: true}); !errors.Is(err, ErrBadRevision) {
				t.Errorf("compacted below the current revision: %v, want ErrBadRevision", err)
			}
		})
	}
}

// A db with findings gets no HashKV from Inspect.
func TestInspectHashKVLeftOutOnFindings(t *testing.T) {
	path := genSmall(t, func(s *genSpec) {
		s.Mutate = func(tx *bolt.Tx) error { return schema.SetConsistentIndex(tx, 0) }
	})
	rep, err := Inspect(context.Background(), path, Options{HashKV: true})
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK() || rep.HashKV != nil {
		t.Fatalf("findings %v, hashkv %v: want findings and no hashkv", rep.Findings, rep.HashKV)
	}
}

// Status reports the auth buckets: enabled, the auth revision, and how many
// users and roles; a value that does not decode is a finding.
func TestStatusReportsAuth(t *testing.T) {
	users := func(names ...string) func(tx *bolt.Tx) error {
		return func(tx *bolt.Tx) error {
			for _, n := range names {
				if err := schema.PutUser(tx, &authpb.User{Name: []byte(n), Roles: []string{"root"}}); err != nil {
					return err
				}
			}
			return nil
		}
	}
	roles := func(names ...string) func(tx *bolt.Tx) error {
		return func(tx *bolt.Tx) error {
			for _, n := range names {
				if err := schema.PutRole(tx, &authpb.Role{Name: []byte(n)}); err != nil {
					return err
				}
			}
			return nil
		}
	}
	tests := []struct {
		name    string
		mutate  []func(tx *bolt.Tx) error
		want    AuthStatus
		finding string // the key or bucket of the finding expected, if any
	}{
		{name: "no auth buckets", want: AuthStatus{}},
		{name: "enabled", mutate: []func(tx *bolt.Tx) error{
			func(tx *bolt.Tx) error { return schema.SetAuthEnabled(tx, true) },
			func(tx *bolt.Tx) error { return schema.SetAuthRevision(tx, 17) },
			users("root", "alice", "bob"), roles("root", "r1"),
		}, want: AuthStatus{Enabled: true, Revision: 17, Users: 3, Roles: 2}},
		{name: "disabled with users", mutate: []func(tx *bolt.Tx) error{
			func(tx *bolt.Tx) error { return schema.SetAuthEnabled(tx, false) },
			func(tx *bolt.Tx) error { return schema.SetAuthRevision(tx, 4) },
			users("carol"),
		}, want: AuthStatus{Revision: 4, Users: 1}},
		{name: "bad enabled value", mutate: []func(tx *bolt.Tx) error{
			func(tx *bolt.Tx) error {
				b, err := tx.CreateBucketIfNotExists(schema.AuthBucket)
				if err != nil {
					return err
				}
				return b.Put(schema.AuthEnabledKey, []byte{7})
			},
		}, want: AuthStatus{}, finding: string(schema.AuthEnabledKey)},
		{name: "bad user", mutate: []func(tx *bolt.Tx) error{
			func(tx *bolt.Tx) error {
				b, err := tx.CreateBucketIfNotExists(schema.AuthUsersBucket)
				if err != nil {
					return err
				}
				return b.Put([]byte("x"), []byte{0xff, 0xff})
			},
		}, want: AuthStatus{}, finding: string(schema.AuthUsersBucket)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := genSmall(t, func(s *genSpec) {
				s.Revisions, s.Keys = 50, 10
				s.CompactAt = 0
				s.Mutate = func(tx *bolt.Tx) error {
					for _, m := range tc.mutate {
						if err := m(tx); err != nil {
							return err
						}
					}
					return nil
				}
			})
			rep, err := Inspect(context.Background(), path, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if rep.Auth != tc.want {
				t.Errorf("auth %+v, want %+v", rep.Auth, tc.want)
			}
			var found []string
			for _, f := range rep.Findings {
				found = append(found, f.String())
			}
			switch {
			case tc.finding == "" && len(found) > 0:
				t.Errorf("findings %q, want none", found)
			case tc.finding != "" && (len(found) != 1 || rep.Findings[0].Check != CheckSchema || (rep.Findings[0].Key != tc.finding && rep.Findings[0].Bucket != tc.finding)):
				t.Errorf("findings %q, want one schema finding on %s", found, tc.finding)
			}
		})
	}
}

// SkipHash leaves out only etcdutl's hash: the rest of the report, and
// the findings on a damaged db, are those of a walk that computes it.
func TestSkipHashChangesOnlyTheHash(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage bool
	}{
		{"sound", false},
		{"damaged leaf page", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := genSmall(t, nil)
			if tc.damage {
				id, ps := reachablePage(t, path, true)
				flip(t, path, int64(id)*ps+8)
			}
			full, err := Inspect(context.Background(), path, Options{HashKV: true})
			if err != nil {
				t.Fatal(err)
			}
			skipped, err := Inspect(context.Background(), path, Options{HashKV: true, SkipHash: true})
			if err != nil {
				t.Fatal(err)
			}
			if skipped.Hash != 0 || !tc.damage && full.Hash == 0 {
				t.Errorf("hash %x with SkipHash, %x without", skipped.Hash, full.Hash)
			}
			full.Hash, full.Took, skipped.Took = 0, 0, 0
			a, _ := full.MarshalJSON()
			b, _ := skipped.MarshalJSON()
			if string(a) != string(b) || fmt.Sprint(full.Findings) != fmt.Sprint(skipped.Findings) || (len(full.Findings) > 0) != tc.damage {
				t.Errorf("reports differ beyond the hash:\n%s\n%s", a, b)
			}
		})
	}
}

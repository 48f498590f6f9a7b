package snapkit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
	"go.etcd.io/etcd/api/v3/mvccpb"

	"github.com/lifeboat-dev/lifeboat/internal/fixture"
	"github.com/lifeboat-dev/lifeboat/snapkit/schema"
)

// allPairs lists every pair of every root bucket of the bbolt file at path
// as "bucket/key=value" (hex), the key bucket's only if keep (when not
// nil) holds their revision.
func allPairs(t *testing.T, path string, keep func(schema.Revision) bool) []string {
	t.Helper()
	db, err := bolt.Open(path, 0o400, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var out []string
	err = db.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			return fmt.Errorf("bbolt check: %w", err)
		}
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			return b.ForEach(func(k, v []byte) error {
				if keep != nil && bytes.Equal(name, schema.KeyBucket) {
					r, _, err := schema.ParseRevision(k)
					if err != nil {
						return err
					}
					if !keep(r) {
						return nil
					}
				}
				out = append(out, fmt.Sprintf("%s/%x=%x", name, k, v))
				return nil
			})
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// WriteCompacted writes every bucket of the source as it is, but of the
// key bucket only the revisions that the key index keeps at the current
// revision (what etcd's compaction there leaves), into a sound bbolt file
// with its free page list on disk.
func TestWriteCompacted(t *testing.T) {
	type testCase struct {
		name  string
		src   func(t *testing.T) string
		batch int // bytes per transaction; 0 is WriteCompacted's
	}
	cases := []testCase{
		{"compacted before", func(t *testing.T) string { return genSmall(t, nil) }, 0},
		{"a transaction per 4 KiB", func(t *testing.T) string { return genSmall(t, nil) }, 4096},
		{"never compacted", func(t *testing.T) string { return genSmall(t, func(s *genSpec) { s.CompactAt = 0 }) }, 0},
		{"compaction scheduled, not finished", func(t *testing.T) string {
			return genSmall(t, func(s *genSpec) { s.CompactAt, s.ScheduleAt = 1000, 2000 })
		}, 0},
		{"few keys, mostly deleted", func(t *testing.T) string {
			return genSmall(t, func(s *genSpec) { s.Keys, s.DeletePct, s.CompactAt = 3, 60, 0 })
		}, 0},
	}
	for _, set := range fixture.Sets {
		cases = append(cases, testCase{"fixture " + set, func(*testing.T) string { return fixture.Path(set, "snapshot.db") }, 0})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src := tc.src(t)
			db, err := OpenDB(context.Background(), src, nil)
			if err != nil {
				t.Fatal(err)
			}
			keep := db.Index.Keep(db.Current)
			var revisions int
			var last schema.Revision
			err = db.View(func(tx *bolt.Tx) error {
				revisions = tx.Bucket(schema.KeyBucket).Stats().KeyN
				last, _, err = schema.LatestRevision(tx)
				return err
			})
			db.Close()
			if err != nil {
				t.Fatal(err)
			}
			dst := filepath.Join(t.TempDir(), "db")
			batch := tc.batch
			if batch == 0 {
				batch = compactedBatch
			}
			res, err := writeCompacted(context.Background(), src, dst, nil, batch)
			if err != nil {
				t.Fatal(err)
			}
			if want := (CompactedResult{LastRevision: last.Main, Revisions: revisions, Kept: len(keep)}); *res != want {
				t.Errorf("result %+v, want %+v", *res, want)
			}
			want := allPairs(t, mustResolve(t, src).DBPath, func(r schema.Revision) bool { _, ok := keep[r]; return ok })
			got := allPairs(t, dst, nil)
			if !slices.Equal(got, want) {
				t.Errorf("%d pairs written, want %d: first difference %q", len(got), len(want), firstDiff(got, want))
			}
			d, err := openDBFile(mustResolve(t, dst))
			if err != nil {
				t.Fatal(err)
			}
			if d.meta.Freelist == noFreelist {
				t.Error("no free page list on disk")
			}
			d.Close()

			// Given its keep set, the one walk writes the same.
			ks := keepSetOf(t, src)
			again := filepath.Join(t.TempDir(), "db")
			res2, err := writeCompacted(context.Background(), src, again, ks, batch)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(res2, res) {
				t.Errorf("with the keep set given: result %+v, want %+v", *res2, *res)
			}
			if got := allPairs(t, again, nil); !slices.Equal(got, want) {
				t.Errorf("with the keep set given: %d pairs written, want %d: first difference %q", len(got), len(want), firstDiff(got, want))
			}
		})
	}
}

// keepSetOf is the keep set that WriteCompacted's first walk finds in src.
func keepSetOf(t *testing.T, src string) *KeepSet {
	t.Helper()
	_, d, err := openPath(src)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ks, err := findKeepSet(context.Background(), d, src, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return ks
}

// Inspect finds the keep set of a sound snapshot whose trailer it
// verified, with the db's SHA-256; the set survives its binary form, which
// refuses what is not one.
func TestKeepSet(t *testing.T) {
	for _, set := range fixture.Sets {
		t.Run(set, func(t *testing.T) {
			src := fixture.Path(set, "snapshot.db")
			rep, err := Inspect(context.Background(), src, Options{HashKV: true, HashKVCompactAt: math.MaxInt64})
			if err != nil {
				t.Fatal(err)
			}
			ks := rep.KeepSet
			if ks == nil {
				t.Fatalf("no keep set (findings %v, trailer %+v)", rep.Findings, rep.Trailer)
			}
			if ks.DBSHA256() != rep.Trailer.Want {
				t.Errorf("keep set of the db %s, the trailer says %s", ks.DBSHA256(), rep.Trailer.Want)
			}
			walked := keepSetOf(t, src)
			if ks.Revisions() != walked.Revisions() || !slices.Equal(ks.bits, walked.bits) || ks.Kept() != rep.TotalKey {
				t.Errorf("Inspect's keep set: %d pairs, %d kept; WriteCompacted's walk: %d, %d; live keys %d",
					ks.Revisions(), ks.Kept(), walked.Revisions(), walked.Kept(), rep.TotalKey)
			}
			b, err := ks.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			var back KeepSet
			if err := back.UnmarshalBinary(b); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(&back, ks) {
				t.Errorf("read back %+v, want %+v", back, *ks)
			}
			for name, bad := range map[string][]byte{
				"empty":     nil,
				"bad magic": append([]byte("lifeboat-keepset\x02"), b[len(keepSetMagic):]...),
				"cut short": b[:len(b)-1],
				"longer":    append(slices.Clone(b), 0, 0, 0, 0, 0, 0, 0, 0),
				"bit past end": func() []byte {
					c := slices.Clone(b)
					if ks.revisions%64 == 0 {
						return append(c, 0xff, 0, 0, 0, 0, 0, 0, 0)
					}
					c[len(c)-1] |= 0x80
					return c
				}(),
			} {
				if err := new(KeepSet).UnmarshalBinary(bad); err == nil {
					t.Errorf("%s: read as a keep set", name)
				}
			}
		})
	}
	// A db without a trailer has none: nothing vouches for its bytes.
	rep, err := Inspect(context.Background(), filepath.Join(fixture.DataDir(t, "v3.6", "m1"), "member", "snap", "db"), Options{HashKV: true})
	if err != nil {
		t.Fatal(err)
	}
	if rep.KeepSet != nil {
		t.Error("a keep set for a db without a trailer")
	}
}

// The keep set of another db is refused: its count of pairs is not the
// source's.
func TestWriteCompactedKeepingAnotherDB(t *testing.T) {
	src := genSmall(t, nil)
	other := genSmall(t, func(s *genSpec) { s.Keys = 3 })
	_, err := WriteCompactedKeeping(context.Background(), src, filepath.Join(t.TempDir(), "db"), keepSetOf(t, other))
	if !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), "not the same db") {
		t.Fatalf("got %v, want ErrDamaged: not the same db", err)
	}
}

func firstDiff(a, b []string) string {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return a[i] + " / " + b[i]
		}
	}
	return "one is a prefix of the other"
}

// A source whose structure is damaged is refused, and nothing is left at
// the destination.
func TestWriteCompactedRefusesDamage(t *testing.T) {
	for _, leaf := range []bool{false, true} {
		t.Run(fmt.Sprintf("leaf=%v", leaf), func(t *testing.T) {
			path := copyFile(t, filepath.Join(fixture.DataDir(t, "v3.6", "m1"), "member", "snap", "db"))
			id, ps := reachablePage(t, path, leaf)
			flip(t, path, int64(id)*ps+8)
			dst := filepath.Join(t.TempDir(), "db")
			if _, err := WriteCompacted(context.Background(), path, dst); !errors.Is(err, ErrDamaged) {
				t.Fatalf("err %v, want ErrDamaged", err)
			}
			if _, err := os.Stat(dst); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("%s left behind: %v", dst, err)
			}
		})
	}
}

// WriteCompacted refuses a destination that exists, and leaves it as it
// was: a db there is not opened, written or removed.
func TestWriteCompactedRefusesAnExistingDst(t *testing.T) {
	src := fixture.Path("v3.6", "snapshot.db")
	for _, tc := range []struct {
		name string
		dst  func(t *testing.T) string
	}{
		{"a db", func(t *testing.T) string {
			return copyFile(t, filepath.Join(fixture.DataDir(t, "v3.6", "m1"), "member", "snap", "db"))
		}},
		{"an empty file", func(t *testing.T) string {
			p := filepath.Join(t.TempDir(), "db")
			if err := os.WriteFile(p, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			return p
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dst := tc.dst(t)
			before, err := os.ReadFile(dst)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := WriteCompacted(context.Background(), src, dst); !errors.Is(err, os.ErrExist) {
				t.Errorf("err %v, want os.ErrExist", err)
			}
			if after, err := os.ReadFile(dst); err != nil || !bytes.Equal(after, before) {
				t.Errorf("%s changed (%d bytes, was %d): %v", dst, len(after), len(before), err)
			}
		})
	}
}

// WriteCompacted keeps, of each key, the last pair if it is a put, named
// here pair by pair (not by the key index): the last of several puts in
// one transaction, a key deleted and created again, none of a key whose
// last pair is a tombstone, at the store's revision too, and an earlier
// bump marker (reported). The lease that only dropped keys held stays.
func TestWriteCompactedKeepsTheLastPutOfEachLiveKey(t *testing.T) {
	type op struct {
		main, sub int64
		key       string
		tomb      bool
		lease     int64
		kept      bool
	}
	for _, tc := range []struct {
		name   string
		ops    []op
		last   int64
		marker *schema.Revision
	}{
		{"several puts in one transaction", []op{
			{main: 2, key: "a"}, {main: 3, key: "a"}, {main: 3, sub: 1, key: "a"}, {main: 3, sub: 2, key: "a", kept: true},
			{main: 3, sub: 3, key: "b", kept: true},
		}, 3, nil},
		{"deleted and created again", []op{
			{main: 2, key: "a", lease: 7}, {main: 3, key: "a", tomb: true}, {main: 4, key: "a", kept: true},
			{main: 5, key: "b"}, {main: 6, key: "b", tomb: true}, {main: 7, key: "b", lease: 7}, {main: 8, key: "b", tomb: true},
		}, 8, nil},
		{"created and deleted in one transaction", []op{
			{main: 2, key: "a"}, {main: 2, sub: 1, key: "a", tomb: true}, {main: 2, sub: 2, key: "c", kept: true},
		}, 2, nil},
		{"last pair a tombstone at the store's revision", []op{
			{main: 2, key: "a", kept: true}, {main: 3, key: "b", lease: 7}, {main: 4, key: "b", tomb: true},
		}, 4, nil},
		{"bump marker", []op{
			{main: 2, key: "a"}, {main: 1002, key: "", kept: true}, {main: 1003, key: "a", kept: true},
		}, 1003, &schema.Revision{Main: 1002}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := filepath.Join(t.TempDir(), "src")
			db, err := schema.Open(src, schema.Options{NoSync: true})
			if err != nil {
				t.Fatal(err)
			}
			create, version := map[string]int64{}, map[string]int64{}
			var want []string
			err = db.Update(func(tx *bolt.Tx) error {
				if err := schema.CreateBuckets(tx); err != nil {
					return err
				}
				if err := schema.PutLease(tx, schema.Lease{ID: 7, TTL: 60}); err != nil {
					return err
				}
				for _, o := range tc.ops {
					rev := schema.Revision{Main: o.main, Sub: o.sub}
					var err error
					switch {
					case o.key == "":
						err = tx.Bucket(schema.KeyBucket).Put(schema.AppendRevision(nil, rev, false), nil)
					case o.tomb:
						err = schema.PutTombstone(tx, rev, []byte(o.key))
						delete(create, o.key)
						version[o.key] = 0
					default:
						if create[o.key] == 0 {
							create[o.key] = o.main
						}
						version[o.key]++
						err = schema.PutKeyValue(tx, rev, &mvccpb.KeyValue{Key: []byte(o.key), Value: []byte("v"),
							CreateRevision: create[o.key], ModRevision: o.main, Version: version[o.key], Lease: o.lease})
					}
					if err != nil {
						return err
					}
					if o.kept {
						want = append(want, rev.String())
					}
				}
				return nil
			})
			if cerr := db.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				t.Fatal(err)
			}
			dst := filepath.Join(t.TempDir(), "db")
			res, err := WriteCompacted(context.Background(), src, dst)
			if err != nil {
				t.Fatal(err)
			}
			if res.LastRevision != tc.last || res.Revisions != len(tc.ops) || res.Kept != len(want) || !reflect.DeepEqual(res.Marker, tc.marker) {
				t.Errorf("result %+v (marker %v), want last revision %d, %d revisions, %d kept, marker %v", *res, res.Marker, tc.last, len(tc.ops), len(want), tc.marker)
			}
			var got []string
			out, err := schema.Open(dst, schema.Options{ReadOnly: true})
			if err != nil {
				t.Fatal(err)
			}
			defer out.Close()
			err = out.View(func(tx *bolt.Tx) error {
				if tx.Bucket(schema.LeaseBucket).Get(schema.LeaseKey(7)) == nil {
					t.Error("lease 7 dropped")
				}
				return tx.Bucket(schema.KeyBucket).ForEach(func(k, _ []byte) error {
					r, _, err := schema.ParseRevision(k)
					got = append(got, r.String())
					return err
				})
			})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, want) {
				t.Errorf("kept %q, want %q", got, want)
			}
		})
	}
}

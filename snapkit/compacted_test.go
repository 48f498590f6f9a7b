package snapkit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	bolt "go.etcd.io/bbolt"

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
			res, err := writeCompacted(context.Background(), src, dst, batch)
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
		})
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

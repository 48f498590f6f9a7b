package snapkit

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/lifeboat-dev/lifeboat/internal/fixture"
)

// scanFile feeds a FreePageScan the db part of path in chunks of chunk
// bytes (in order, or with two chunks swapped) and finishes it on path.
func scanFile(t *testing.T, path string, chunk int, swapped bool) (*FreePages, error) {
	t.Helper()
	src, err := Resolve(path)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(src.DBPath)
	if err != nil {
		t.Fatal(err)
	}
	b = b[:src.DBSize]
	s := NewFreePageScan(src.DBSize)
	var offs []int
	for off := 0; off < len(b); off += chunk {
		offs = append(offs, off)
	}
	if swapped && len(offs) > 2 {
		offs[1], offs[2] = offs[2], offs[1]
	}
	for _, off := range offs {
		s.Scan(int64(off), b[off:min(off+chunk, len(b))])
	}
	return s.Finish(context.Background(), path)
}

// nestedDB writes a NoFreelistSync db with nested buckets (inline ones,
// one inside an inline one, and large ones), values that overflow many
// pages, and frees pages by deleting half of it.
func nestedDB(t *testing.T, path string) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{NoFreelistSync: true, NoSync: true, FreelistType: bolt.FreelistMapType})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	big := bytes.Repeat([]byte("v"), 60_000)
	err = db.Update(func(tx *bolt.Tx) error {
		top, err := tx.CreateBucket([]byte("top"))
		if err != nil {
			return err
		}
		for i := range 300 {
			sub, err := top.CreateBucket(fmt.Appendf(nil, "sub%03d", i))
			if err != nil {
				return err
			}
			n := 2 // inline
			if i%10 == 0 {
				n = 400 // its own pages
			}
			for j := range n {
				if err := sub.Put(fmt.Appendf(nil, "k%04d", j), fmt.Appendf(nil, "value %d %d", i, j)); err != nil {
					return err
				}
			}
			if i%7 == 0 {
				if _, err := sub.CreateBucket([]byte("inner")); err != nil {
					return err
				}
			}
			if err := top.Put(fmt.Appendf(nil, "key%03d", i), big[:1000*(i%60)]); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		err = db.Update(func(tx *bolt.Tx) error {
			top := tx.Bucket([]byte("top"))
			for i := 0; i < 300; i += 2 {
				if err := top.DeleteBucket(fmt.Appendf(nil, "sub%03d", i)); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err != nil {
		t.Fatal(err)
	}
}

// A FreePageScan of a db's bytes finds the pages that FindFreePages'
// walk finds, whatever the chunks (pages cut at their ends, a count past
// 16 bits, nested and inline buckets, overflow, real etcd's snapshots);
// bytes out of order make it walk instead. A copy given the list stays
// sound when bbolt reuses the pages.
func TestFreePageScan(t *testing.T) {
	type db struct {
		name string
		make func(t *testing.T) string
	}
	filled := func(pageSize, keys int) func(t *testing.T) string {
		return func(t *testing.T) string {
			path := filepath.Join(t.TempDir(), "db")
			fill(t, path, pageSize, keys)
			return path
		}
	}
	dbs := []db{
		{"few free pages", filled(4096, 2000)},
		{"a count past 16 bits", filled(512, 150000)},
		{"nested buckets and overflow", func(t *testing.T) string {
			path := filepath.Join(t.TempDir(), "db")
			nestedDB(t, path)
			return path
		}},
	}
	for _, set := range []string{"v3.5", "v3.6"} {
		dbs = append(dbs, db{"fixture " + set, func(*testing.T) string { return fixture.Path(set, "snapshot.db") }})
	}
	for _, d := range dbs {
		t.Run(d.name, func(t *testing.T) {
			path := d.make(t)
			want, err := FindFreePages(context.Background(), path)
			if err != nil || want == nil {
				t.Fatalf("FindFreePages: %v, %v", want, err)
			}
			ps := int(want.pageSize)
			for _, c := range []struct {
				name    string
				chunk   int
				swapped bool
			}{
				{"1 MiB", 1 << 20, false},
				{"three pages", 3 * ps, false},
				{"two pages and a half", 2*ps + ps/2, false},
				{"headers cut", 2*ps + 8, false},
				{"out of order", 2 * ps, true},
			} {
				t.Run(c.name, func(t *testing.T) {
					got, err := scanFile(t, path, c.chunk, c.swapped)
					if err != nil {
						t.Fatal(err)
					}
					if got.meta != want.meta || got.metaPage != want.metaPage || !slices.Equal(got.free, want.free) {
						t.Fatalf("scan: %d free pages, meta %+v (%d); walk: %d, %+v (%d)", got.Len(), got.meta, got.metaPage, want.Len(), want.meta, want.metaPage)
					}
				})
			}
			got, err := scanFile(t, path, 1<<20, false)
			if err != nil {
				t.Fatal(err)
			}
			src, err := Resolve(path)
			if err != nil {
				t.Fatal(err)
			}
			copied := filepath.Join(t.TempDir(), "copy")
			b, err := os.ReadFile(src.DBPath)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(copied, b[:src.DBSize], 0o600); err != nil {
				t.Fatal(err)
			}
			if err := got.Write(copied); err != nil {
				t.Fatal(err)
			}
			reuseAndCheck(t, copied, want.Len())
		})
	}
}

// reuseAndCheck opens path read-write (it reads the freelist written
// there: free pages), writes enough to reuse every free page, and has
// bbolt check it after each transaction.
func reuseAndCheck(t *testing.T, path string, free int) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{NoFreelistSync: true, NoSync: true, FreelistType: bolt.FreelistMapType})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if got := db.Stats().FreePageN; got != free {
		t.Fatalf("bbolt reads %d free pages, want %d", got, free)
	}
	ps := db.Info().PageSize
	val := bytes.Repeat([]byte("r"), 200)
	for round := range 3 {
		err := db.Update(func(tx *bolt.Tx) error {
			b, err := tx.CreateBucketIfNotExists([]byte("reused"))
			if err != nil {
				return err
			}
			for i := range free*ps/len(val)/2 + 10 {
				if err := b.Put(fmt.Appendf(nil, "r%d-%08d", round, i), val); err != nil {
					return err
				}
			}
			return nil
		})
		if err == nil {
			err = db.View(func(tx *bolt.Tx) error {
				for err := range tx.Check() {
					return fmt.Errorf("bbolt check after round %d: %w", round, err)
				}
				return nil
			})
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// A tree that reaches a page whose header does not name it, or a page
// twice, is ErrDamaged: the scan never lists a page of the tree as free.
func TestFreePageScanDamaged(t *testing.T) {
	for _, tt := range []struct {
		name   string
		damage func(b []byte, ps int, root uint64)
	}{
		// The root bucket's leaf points at the bucket's root: give that
		// page another id.
		{"header names another page", func(b []byte, ps int, root uint64) {
			bucketRoot := firstBucketRoot(t, b[int(root)*ps:int(root+1)*ps])
			binary.LittleEndian.PutUint64(b[int(bucketRoot)*ps:], bucketRoot+1)
		}},
		{"a page reached twice", func(b []byte, ps int, root uint64) {
			bucketRoot := firstBucketRoot(t, b[int(root)*ps:int(root+1)*ps])
			p := b[int(bucketRoot)*ps:]
			if binary.LittleEndian.Uint16(p[8:]) != branchPageFlag {
				t.Fatal("the bucket's root is no branch")
			}
			// The second child is the first one again.
			copy(p[pageHeaderSize+elemSize+8:], p[pageHeaderSize+8:pageHeaderSize+16])
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "db")
			fill(t, path, 4096, 2000)
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			d := &dbFile{data: b}
			if err := d.pickMeta(); err != nil {
				t.Fatal(err)
			}
			tt.damage(b, d.pageSize, d.meta.Root)
			if err := os.WriteFile(path, b, 0o600); err != nil {
				t.Fatal(err)
			}
			fp, err := scanFile(t, path, 1<<20, false)
			if !errors.Is(err, ErrDamaged) {
				t.Fatalf("got %v, %v; want ErrDamaged", fp, err)
			}
		})
	}
}

// firstBucketRoot is the root page of the first bucket in a root leaf.
func firstBucketRoot(t *testing.T, page []byte) uint64 {
	t.Helper()
	roots, err := pageChildren(newPageView(0, page), nil)
	if err != nil || len(roots) == 0 {
		t.Fatalf("root leaf: %v, %v", roots, err)
	}
	return roots[0]
}

package snapkit

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/lifeboat-dev/lifeboat/internal/fixture"
)

// copyFile copies src into the test's temp dir and returns the copy's path.
func copyFile(t testing.TB, src string) string {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), filepath.Base(src))
	if err := os.WriteFile(dst, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return dst
}

// flip xors one byte of a file.
func flip(t testing.TB, path string, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := []byte{0}
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x5a
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// Every single-byte flip anywhere in a snapshot file is caught by the
// trailer, and none of them makes the walk panic or fault.
func TestDamageCaughtByTrailer(t *testing.T) {
	for _, set := range fixture.Sets {
		t.Run(set, func(t *testing.T) {
			orig := fixture.Path(set, "snapshot.db")
			fi, err := os.Stat(orig)
			if err != nil {
				t.Fatal(err)
			}
			const samples = 200
			for i := range samples {
				off := fi.Size() * int64(i) / samples
				path := copyFile(t, orig)
				flip(t, path, off)
				r, err := Inspect(context.Background(), path, Options{})
				if err != nil {
					// Only the meta pages can make the file unreadable, and
					// a single flip leaves the other meta page valid.
					t.Fatalf("offset %d: %v", off, err)
				}
				if !r.Trailer.Present || r.Trailer.Valid || r.OK() {
					t.Errorf("offset %d: damage not reported: trailer %+v, findings %v", off, r.Trailer, r.Findings)
				}
				os.Remove(path)
			}
		})
	}
}

// reachablePage returns, by asking bbolt, the key bucket's root page (a
// branch page in the fixtures) or its first child (a leaf).
func reachablePage(t *testing.T, path string, leaf bool) (id uint64, pageSize int64) {
	t.Helper()
	db, err := bolt.Open(path, 0o400, &bolt.Options{ReadOnly: true, PreLoadFreelist: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	pageSize = int64(db.Info().PageSize)
	err = db.View(func(tx *bolt.Tx) error {
		root := uint64(tx.Bucket([]byte("key")).Root())
		info, err := tx.Page(int(root))
		if err != nil || info == nil || info.Type != "branch" {
			return fmt.Errorf("key bucket root %d: %+v, %v; want a branch page", root, info, err)
		}
		id = root
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if leaf {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		// The first branch element's child: {pos u32, ksize u32, pgid u64}.
		id = binary.LittleEndian.Uint64(b[int64(id)*pageSize+pageHeaderSize+8:])
	}
	return id, pageSize
}

// A db without a trailer (a copied member/snap/db) with a damaged page
// header fails the structural check, and the finding names the page.
func TestDamagedPageNamed(t *testing.T) {
	cases := []struct {
		name  string
		leaf  bool
		field int64 // offset within the page header
	}{
		{"leaf page type", true, 8},
		{"branch page type", false, 8},
		{"leaf element count", true, 10},
		{"branch page id", false, 0},
	}
	for _, set := range fixture.Sets {
		db := filepath.Join(fixture.DataDir(t, set, "m1"), "member", "snap", "db")
		for _, tc := range cases {
			t.Run(set+"/"+tc.name, func(t *testing.T) {
				path := copyFile(t, db)
				id, ps := reachablePage(t, path, tc.leaf)
				flip(t, path, int64(id)*ps+tc.field)
				r, err := Inspect(context.Background(), path, Options{})
				if err != nil {
					t.Fatal(err)
				}
				if r.Source.HasTrailer || r.Source.Kind != KindDBFile {
					t.Errorf("source %+v, want a db file without a trailer", r.Source)
				}
				named := false
				for _, f := range r.Findings {
					if f.Check == CheckBolt && f.Page != nil && *f.Page == id {
						named = true
					}
				}
				if !named {
					t.Errorf("page %d damaged, findings do not name it: %v", id, r.Findings)
				}
			})
		}
	}
}

// Flips all over a trailer-less db never panic, in Inspect or in the
// bbolt-based readers; the findings that come out are well formed. (Some flips land in values and are invisible to any
// structural check; the trailer is what catches those.)
func TestDamageNoPanicWithoutTrailer(t *testing.T) {
	db := filepath.Join(fixture.DataDir(t, "v3.6", "m1"), "member", "snap", "db")
	d, err := openDBFile(mustResolve(t, db))
	if err != nil {
		t.Fatal(err)
	}
	used := d.Size()
	d.Close()
	const samples = 200
	detected := 0
	for i := range samples {
		off := used * int64(i) / samples
		path := copyFile(t, db)
		flip(t, path, off)
		r, err := Inspect(context.Background(), path, Options{})
		switch {
		case err != nil && !errors.Is(err, ErrNotBolt):
			t.Errorf("offset %d: %v", off, err)
		case err == nil && !r.OK():
			detected++
			for _, f := range r.Findings {
				if f.Check == "" || f.Message == "" {
					t.Errorf("offset %d: malformed finding %+v", off, f)
				}
			}
		}
		// The bbolt-based readers either refuse the file or read it.
		if db, err := OpenDB(context.Background(), path, nil); err == nil {
			if _, err := db.HashKV(0); err != nil {
				t.Logf("offset %d: hashkv: %v", off, err)
			}
			if _, err := db.List(ListOptions{Prefix: true}); err != nil {
				t.Logf("offset %d: list: %v", off, err)
			}
			db.Close()
		} else if !errors.Is(err, ErrDamaged) && !errors.Is(err, ErrNotBolt) {
			t.Errorf("offset %d: OpenDB: %v", off, err)
		}
		os.Remove(path)
	}
	t.Logf("%d of %d flips in a trailer-less db found by the checks", detected, samples)
	if detected == 0 {
		t.Error("no flip was detected")
	}
}

func mustResolve(t *testing.T, path string) Source {
	t.Helper()
	s, err := Resolve(path)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

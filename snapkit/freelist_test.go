package snapkit

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// FindFreePages finds in a NoFreelistSync db the free pages that bbolt
// itself finds by walking it (few, and more than a 16-bit count); Write
// gives a copy of it that list, which bbolt then reads; the copy stays
// sound and writable, with the same pairs.
func TestFreePages(t *testing.T) {
	for _, tt := range []struct {
		name     string
		pageSize int
		keys     int
	}{
		{name: "few free pages", pageSize: 4096, keys: 2000},
		{name: "a count past 16 bits", pageSize: 512, keys: 150000},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "db")
			fill(t, path, tt.pageSize, tt.keys)
			want := freePages(t, path)
			if want == 0 || tt.keys > 100000 && want < 0xFFFF {
				t.Fatalf("%d free pages: the test is too weak", want)
			}
			fp, err := FindFreePages(context.Background(), path)
			if err != nil || fp == nil || fp.Len() != want {
				t.Fatalf("FindFreePages: %v, %v; want %d pages", fp, err, want)
			}
			other := filepath.Join(t.TempDir(), "other")
			fill(t, other, tt.pageSize, 10)
			if err := fp.Write(other); err == nil {
				t.Error("written into another db")
			}
			copied := filepath.Join(t.TempDir(), "db")
			copyTo(t, path, copied)
			if err := fp.Write(copied); err != nil {
				t.Fatal(err)
			}
			path = copied
			rep, err := Inspect(context.Background(), path, Options{})
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range rep.Findings {
				if f.Check == CheckBolt {
					t.Errorf("finding: %s", f)
				}
			}
			if rep.Bolt.Freelist == noFreelist {
				t.Error("the meta page has no freelist")
			}
			// bbolt reads the list (the freelist page itself is in use).
			if got := freePages(t, path); got != want {
				t.Errorf("bbolt reads %d free pages, walked %d", got, want)
			}
			if fp, err := FindFreePages(context.Background(), path); err != nil || fp != nil {
				t.Errorf("again: %v, %v; want none (the list is on disk)", fp, err)
			}
			if err := fp.Write(path); err == nil {
				t.Error("written twice")
			}
			db, err := bolt.Open(path, 0o600, &bolt.Options{NoFreelistSync: true, FreelistType: bolt.FreelistMapType})
			if err != nil {
				t.Fatal(err)
			}
			err = db.Update(func(tx *bolt.Tx) error { return tx.Bucket([]byte("b")).Put([]byte("new"), []byte("v")) })
			if err == nil {
				err = db.View(func(tx *bolt.Tx) error {
					n := 0
					err := tx.Bucket([]byte("b")).ForEach(func(k, v []byte) error {
						n++
						if !bytes.Equal(k, []byte("new")) && !bytes.HasPrefix(v, []byte("value-")) {
							return fmt.Errorf("%s=%s", k, v)
						}
						return nil
					})
					if err == nil && n != tt.keys/2+1 {
						err = fmt.Errorf("%d pairs, want %d", n, tt.keys/2+1)
					}
					return err
				})
			}
			if cerr := db.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

func copyTo(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// fill writes keys pairs to bucket b of a NoFreelistSync db with the
// given page size, then deletes every other one, which frees pages.
func fill(t *testing.T, path string, pageSize, keys int) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{PageSize: pageSize, NoFreelistSync: true, NoSync: true, FreelistType: bolt.FreelistMapType})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	val := bytes.Repeat([]byte("x"), 100)
	for start := 0; start < keys; start += 10000 {
		err := db.Update(func(tx *bolt.Tx) error {
			b, err := tx.CreateBucketIfNotExists([]byte("b"))
			if err != nil {
				return err
			}
			for i := start; i < min(start+10000, keys); i++ {
				if err := b.Put(fmt.Appendf(nil, "k%08d", i), append([]byte("value-"), val...)); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	err = db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("b"))
		for i := 0; i < keys; i += 2 {
			if err := b.Delete(fmt.Appendf(nil, "k%08d", i)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// freePages is what bbolt counts free on a read-write open.
func freePages(t *testing.T, path string) int {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{NoFreelistSync: true, FreelistType: bolt.FreelistMapType})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	return db.Stats().FreePageN
}

package snapkit

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestResolve(t *testing.T) {
	dir := t.TempDir()
	write := func(rel string, size int) string {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, make([]byte, size), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	snap := write("snap.db", 8*4096+TrailerSize)
	db := write("plain.db", 8*4096)
	dataDir := filepath.Join(dir, "data")
	inner := write("data/member/snap/db", 4*4096)
	memberDir := filepath.Join(dir, "data", "member")
	empty := filepath.Join(dir, "empty")
	if err := os.Mkdir(empty, 0o700); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		path    string
		kind    Kind
		dbPath  string
		dbSize  int64
		trailer bool
		err     error
	}{
		{snap, KindSnapshot, snap, 8 * 4096, true, nil},
		{db, KindDBFile, db, 8 * 4096, false, nil},
		{dataDir, KindDataDir, inner, 4 * 4096, false, nil},
		{memberDir, KindDataDir, inner, 4 * 4096, false, nil},
		{empty, "", "", 0, false, ErrNoDB},
		{filepath.Join(dir, "missing"), "", "", 0, false, os.ErrNotExist},
	}
	for _, tc := range cases {
		t.Run(filepath.Base(tc.path), func(t *testing.T) {
			src, err := Resolve(tc.path)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if src.Kind != tc.kind || src.DBPath != tc.dbPath || src.DBSize != tc.dbSize || src.HasTrailer != tc.trailer {
				t.Errorf("%+v, want kind %s db %s size %d trailer %v", src, tc.kind, tc.dbPath, tc.dbSize, tc.trailer)
			}
		})
	}
}

func TestPrefixOf(t *testing.T) {
	cases := []struct {
		key   string
		depth int
		want  string
	}{
		{"/registry/pods/ns/name", 2, "/registry/pods"},
		{"/registry/pods/ns/name", 1, "/registry"},
		{"/registry/pods/ns/name", 9, "/registry/pods/ns"},
		{"/registry/ranges", 2, "/registry"},
		{"flat-key", 2, ""},
		{"a/b/c", 1, "a"},
		{"/", 2, ""},
	}
	for _, tc := range cases {
		if got := string(prefixOf([]byte(tc.key), tc.depth)); got != tc.want {
			t.Errorf("prefixOf(%q, %d) = %q, want %q", tc.key, tc.depth, got, tc.want)
		}
	}
}

package datadir

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestLayoutPaths(t *testing.T) {
	tests := []struct {
		name    string
		layout  Layout
		wal     string
		db      string
		receive string
	}{
		{"default", New("/d", ""), "/d/member/wal", "/d/member/snap/db", "/d/member/snap/000000000000002a.snap.db"},
		{"dedicated wal", New("/d", "/fast/wal"), "/fast/wal", "/d/member/snap/db", "/d/member/snap/000000000000002a.snap.db"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.layout.WALDir(); got != tt.wal {
				t.Errorf("WALDir = %s, want %s", got, tt.wal)
			}
			if got := tt.layout.DBPath(); got != tt.db {
				t.Errorf("DBPath = %s, want %s", got, tt.db)
			}
			if got := tt.layout.ReceivedDBPath(42); got != tt.receive {
				t.Errorf("ReceivedDBPath = %s, want %s", got, tt.receive)
			}
		})
	}
}

func TestIsTemp(t *testing.T) {
	for name, want := range map[string]bool{
		"tmp123": true, "tmp": true, "db.tmp.456": true,
		"db": false, "0000000000000001-0000000000000002.snap": false, "000000000000002a.snap.db": false,
	} {
		if got := IsTemp(name); got != want {
			t.Errorf("IsTemp(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestLocate(t *testing.T) {
	root := t.TempDir()
	data := filepath.Join(root, "m1.etcd")
	if err := os.MkdirAll(filepath.Join(data, "member", "snap"), 0o700); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(root, "empty")
	if err := os.Mkdir(empty, 0o700); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(root, "f")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path    string
		want    string
		wantErr error
	}{
		{data, data, nil},
		{filepath.Join(data, "member"), data, nil},
		{empty, "", ErrNotDataDir},
		{file, "", ErrNotDataDir},
		{filepath.Join(root, "missing"), "", os.ErrNotExist},
	}
	for _, tt := range tests {
		l, err := Locate(tt.path)
		if tt.wantErr != nil {
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("Locate(%s) error = %v, want %v", tt.path, err, tt.wantErr)
			}
			continue
		}
		if err != nil || l.DataDir != tt.want {
			t.Errorf("Locate(%s) = %+v, %v; want data dir %s", tt.path, l, err, tt.want)
		}
	}
}

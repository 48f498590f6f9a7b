package walkit

import (
	"path/filepath"
	"testing"
)

func TestInUse(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "wal")
	w, err := Create(nil, dir, []byte("m"))
	if err != nil {
		t.Fatal(err)
	}
	inUse, err := InUse(dir)
	if err != nil || !inUse {
		t.Fatalf("InUse of an open WAL = %v, %v; want true", inUse, err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	inUse, err = InUse(dir)
	if err != nil || inUse {
		t.Fatalf("InUse of a closed WAL = %v, %v; want false", inUse, err)
	}
	// The probe took no lock: the WAL opens for writing.
	w, err = Open(nil, dir, Snapshot{})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := w.ReadAll(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	if _, err := InUse(t.TempDir()); err == nil {
		t.Fatal("InUse of a dir without segments: no error")
	}
}

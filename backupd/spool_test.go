package backupd

import (
	"os"
	"path/filepath"
	"testing"
)

// A preallocated spool is as long as what was written into it, not as the
// space reserved: the read-back's size check counts the bytes written.
func TestPreallocateKeepsSize(t *testing.T) {
	for _, tc := range []struct {
		name            string
		reserve, writes int64
	}{
		{"written less", 1 << 20, 4096},
		{"written all", 1 << 20, 1 << 20},
		{"written more", 4096, 1 << 20},
		{"nothing written", 1 << 20, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := os.Create(filepath.Join(t.TempDir(), "spool"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			preallocate(f, tc.reserve)
			if _, err := f.Write(make([]byte, tc.writes)); err != nil {
				t.Fatal(err)
			}
			fi, err := f.Stat()
			if err != nil {
				t.Fatal(err)
			}
			if fi.Size() != tc.writes {
				t.Errorf("size %d after reserving %d and writing %d", fi.Size(), tc.reserve, tc.writes)
			}
		})
	}
}

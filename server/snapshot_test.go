package server

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/lifeboat-dev/lifeboat/snapkit/datadir"
	"github.com/lifeboat-dev/lifeboat/walkit"
)

func TestPurgeKeepsNewestSnapshots(t *testing.T) {
	tests := []struct {
		name      string
		max       uint
		snaps     int
		dbs       int
		wantSnaps []string
		wantDBs   int
	}{
		{"over the limit", 2, 4, 3, []string{"0000000000000001-0000000000000003.snap", "0000000000000001-0000000000000004.snap"}, 2},
		{"under the limit", 5, 2, 1, []string{"0000000000000001-0000000000000001.snap", "0000000000000001-0000000000000002.snap"}, 1},
		{"unlimited", 0, 3, 0, []string{"0000000000000001-0000000000000001.snap", "0000000000000001-0000000000000002.snap", "0000000000000001-0000000000000003.snap"}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := NewConfig()
			cfg.DataDir = t.TempDir()
			cfg.MaxSnapshots = tc.max
			if err := os.MkdirAll(cfg.Layout().SnapDir(), 0o700); err != nil {
				t.Fatal(err)
			}
			write := func(name string) {
				if err := os.WriteFile(filepath.Join(cfg.Layout().SnapDir(), name), []byte("x"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			for i := 1; i <= tc.snaps; i++ {
				write(fmt.Sprintf("%016x-%016x.snap", 1, i))
			}
			for i := 1; i <= tc.dbs; i++ {
				write(datadir.ReceivedDBName(uint64(i)))
			}
			write(filepath.Base(cfg.Layout().DBPath()))
			s := &Server{cfg: cfg, lg: testLogger()}
			s.purgeFiles()
			snaps, _ := filepath.Glob(filepath.Join(cfg.Layout().SnapDir(), "*.snap"))
			dbs, _ := filepath.Glob(filepath.Join(cfg.Layout().SnapDir(), "*"+datadir.ReceivedDBSuffix))
			var names []string
			for _, p := range snaps {
				names = append(names, filepath.Base(p))
			}
			if !slices.Equal(names, tc.wantSnaps) || len(dbs) != tc.wantDBs {
				t.Fatalf("kept %v and %d dbs, want %v and %d", names, len(dbs), tc.wantSnaps, tc.wantDBs)
			}
			if _, err := os.Stat(cfg.Layout().DBPath()); err != nil {
				t.Fatal("purge removed the live db")
			}
		})
	}
}

func TestPurgeKeepsNewestWALs(t *testing.T) {
	cfg := NewConfig()
	cfg.DataDir = t.TempDir()
	cfg.MaxWALs, cfg.MaxSnapshots = 2, 0
	if err := os.MkdirAll(cfg.Layout().WALDir(), 0o700); err != nil {
		t.Fatal(err)
	}
	var all []string
	for i := range 4 {
		name := walkit.SegmentName(uint64(i), uint64(i*10))
		all = append(all, name)
		if err := os.WriteFile(filepath.Join(cfg.Layout().WALDir(), name), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	s := &Server{cfg: cfg, lg: testLogger()}
	s.purgeFiles()
	segs, err := walkit.ListSegments(cfg.Layout().WALDir())
	if err != nil {
		t.Fatal(err)
	}
	var kept []string
	for _, seg := range segs {
		kept = append(kept, seg.Name)
	}
	if !slices.Equal(kept, all[2:]) {
		t.Fatalf("kept %v, want %v", kept, all[2:])
	}
}

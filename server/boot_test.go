package server

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/lifeboat-dev/lifeboat/internal/fixture"
	"github.com/lifeboat-dev/lifeboat/snapkit/schema"
	"github.com/lifeboat-dev/lifeboat/snapkit/snap"
	"github.com/lifeboat-dev/lifeboat/walkit"
)

// soloConfig configures the fixture's single member (fixtures/v3.6/solo)
// on free ports.
func soloConfig(t *testing.T, dataDir string) *Config {
	t.Helper()
	cfg := NewConfig()
	cfg.Name = "solo"
	cfg.DataDir = dataDir
	peer := "http://127.0.0.1:" + strconv.Itoa(freePort(t))
	client := "http://127.0.0.1:" + strconv.Itoa(freePort(t))
	cfg.ListenPeerURLs, cfg.AdvertisePeerURLs = []string{peer}, []string{peer}
	cfg.ListenClientURLs, cfg.AdvertiseClientURLs = []string{client}, []string{client}
	cfg.InitialCluster = map[string][]string{"solo": {peer}}
	cfg.HeartbeatMs, cfg.ElectionMs = 50, 500
	cfg.Logger = testLogger()
	return cfg
}

// cutWALAt damages the entry at index in walDir and cuts the WAL there,
// as `walkit repair --apply --force` does.
func cutWALAt(t *testing.T, walDir string, index uint64) {
	t.Helper()
	r, err := walkit.NewReader(walDir)
	if err != nil {
		t.Fatal(err)
	}
	var at walkit.Position
	for {
		rec, pos, err := r.Next()
		if errors.Is(err, io.EOF) {
			t.Fatalf("no entry %d in %s", index, walDir)
		}
		if err != nil {
			t.Fatal(err)
		}
		var e raftpb.Entry
		if rec.Type == walkit.EntryType && e.Unmarshal(rec.Data) == nil && e.Index == index {
			at = pos
			break
		}
	}
	r.Close()
	f, err := os.OpenFile(filepath.Join(walDir, at.Segment), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, at.Offset+40); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0xff
	if _, err := f.WriteAt(b, at.Offset+40); err != nil {
		t.Fatal(err)
	}
	f.Close()
	plan, err := walkit.PlanRepair(walDir)
	if err != nil {
		t.Fatal(err)
	}
	if plan.LastKeptIndex != index-1 {
		t.Fatalf("repair keeps entries to %d, want %d", plan.LastKeptIndex, index-1)
	}
	if err := plan.Apply(nil); err != nil {
		t.Fatal(err)
	}
}

// markInstalled leaves the marker of a db put in place from the snapshot at
// index, as applySnapshot does.
func markInstalled(t *testing.T, cfg *Config, index uint64) {
	t.Helper()
	if err := os.WriteFile(cfg.Layout().InstalledPath(index), nil, 0o600); err != nil {
		t.Fatal(err)
	}
}

// addVoter adds a second voting member to the db's membership.
func addVoter(t *testing.T, cfg *Config) {
	t.Helper()
	db, err := bolt.Open(cfg.Layout().DBPath(), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(func(tx *bolt.Tx) error {
		return schema.PutMember(tx, schema.Member{ID: 0x1234, Name: "other", PeerURLs: []string{"http://127.0.0.1:1"}})
	}); err != nil {
		t.Fatal(err)
	}
}

// saveSnapAt writes a .snap file at index beside the fixture's, as a
// snapshot from the leader leaves it when a crash comes before its WAL
// record.
func saveSnapAt(t *testing.T, cfg *Config, index uint64) {
	t.Helper()
	sn := snap.New(nil, cfg.Layout().SnapDir())
	newest, err := sn.Load()
	if err != nil {
		t.Fatal(err)
	}
	newest.Metadata.Index = index
	if err := sn.SaveSnap(*newest); err != nil {
		t.Fatal(err)
	}
}

// A member whose WAL ends below its db's consistent index (or below its
// newest .snap) must not start: raft would reuse the indexes above the
// WAL's end, and the apply loop would skip the new entries there as
// already applied, acknowledging and dropping every write.
func TestBootRefusesWALBelowAppliedData(t *testing.T) {
	tests := []struct {
		name    string
		damage  func(t *testing.T, cfg *Config)
		wantErr []string // nil: the member starts
	}{
		{"intact", func(*testing.T, *Config) {}, nil},
		{
			"cut below db and snap",
			func(t *testing.T, cfg *Config) { cutWALAt(t, cfg.Layout().WALDir(), 80) },
			[]string{"ends at index 79", "the db's consistent index 125", "0000000000000002-0000000000000066.snap at index 102",
				"etcdctl member remove aefd6ec3e4160730", "etcdctl member add solo", "restore"},
		},
		{
			"snap above the WAL",
			func(t *testing.T, cfg *Config) { saveSnapAt(t, cfg, 200) },
			[]string{"ends at index 125", "0000000000000002-00000000000000c8.snap at index 200"},
		},
		{
			// The leader's db went in place (its marker written) and the
			// member crashed before its WAL passed the db.
			"db ahead of the WAL, installed from its snapshot",
			func(t *testing.T, cfg *Config) {
				cutWALAt(t, cfg.Layout().WALDir(), 110)
				markInstalled(t, cfg, 102)
				addVoter(t, cfg)
			},
			nil,
		},
		{
			"db ahead of the WAL, installed, but the only voter",
			func(t *testing.T, cfg *Config) {
				cutWALAt(t, cfg.Layout().WALDir(), 110)
				markInstalled(t, cfg, 102)
			},
			[]string{"ends at index 109", "the db's consistent index 125"},
		},
		{
			"db ahead of the WAL, installed from an older snapshot",
			func(t *testing.T, cfg *Config) {
				cutWALAt(t, cfg.Layout().WALDir(), 110)
				markInstalled(t, cfg, 50)
				addVoter(t, cfg)
			},
			[]string{"ends at index 109", "the db's consistent index 125"},
		},
		{
			"snap above the WAL with its received db",
			func(t *testing.T, cfg *Config) {
				saveSnapAt(t, cfg, 200)
				if err := os.WriteFile(cfg.Layout().ReceivedDBPath(200), nil, 0o600); err != nil {
					t.Fatal(err)
				}
			},
			nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := soloConfig(t, fixture.DataDir(t, "v3.6", "solo"))
			tt.damage(t, cfg)
			s, err := New(cfg)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				if err := s.Stop(ctx); err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				s.Stop(ctx)
				t.Fatal("the member started on a WAL that ends below its applied data")
			}
			if !errors.Is(err, ErrWALBehind) {
				t.Fatalf("New: %v, want ErrWALBehind", err)
			}
			for _, want := range tt.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
		})
	}
}

// A refused --force-new-cluster leaves the disk as it found it: no member
// dir and no db, which the tools would take for a member.
func TestForceNewClusterWithoutWALTouchesNothing(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, dataDir string)
	}{
		{"missing data dir", func(*testing.T, string) {}},
		{"empty data dir", func(t *testing.T, dataDir string) {
			if err := os.Mkdir(dataDir, 0o700); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			dataDir := filepath.Join(root, "m")
			tt.setup(t, dataDir)
			before := dirTree(t, root)
			cfg := soloConfig(t, dataDir)
			cfg.ForceNewCluster = true
			s, err := New(cfg)
			if err == nil {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				s.Stop(ctx)
				t.Fatal("--force-new-cluster started on a data dir without a WAL")
			}
			if !strings.Contains(err.Error(), "--force-new-cluster needs an existing data dir") {
				t.Fatalf("New: %v", err)
			}
			if after := dirTree(t, root); !slices.Equal(after, before) {
				t.Fatalf("a refused --force-new-cluster left %v (before: %v)", after, before)
			}
		})
	}
}

// dirTree lists every path under root.
func dirTree(t *testing.T, root string) []string {
	t.Helper()
	var paths []string
	err := filepath.WalkDir(root, func(p string, _ fs.DirEntry, err error) error {
		paths = append(paths, p)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return paths
}

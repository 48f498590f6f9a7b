package restore

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	bolt "go.etcd.io/bbolt"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/lifeboat-dev/lifeboat/snapkit"
	"github.com/lifeboat-dev/lifeboat/snapkit/datadir"
	"github.com/lifeboat-dev/lifeboat/snapkit/schema"
	"github.com/lifeboat-dev/lifeboat/snapkit/snap"
	"github.com/lifeboat-dev/lifeboat/walkit"
)

// dirView is everything a data dir says, read through walkit and snapkit,
// in a form two dirs can be compared in.
type dirView struct {
	Metadata  walkit.Metadata
	HardState raftpb.HardState
	Entries   []raftpb.Entry
	WALSnaps  []walkit.Snapshot
	Snaps     []snapView
	// Pairs are every bucket's pairs as "bucket/key=value" (hex), but
	// meta/confState, which etcdutl leaves stale.
	Pairs   []string
	HashKV  snapkit.HashKVResult
	Current int64
}

type snapView struct {
	Name       string
	Metadata   raftpb.SnapshotMetadata
	Membership snap.Membership
}

func viewDir(t *testing.T, dataDir string) dirView {
	t.Helper()
	return viewDirAs(t, dataDir, false)
}

// viewDirStarted is viewDir of the db as a member holds it once it has
// finished the compaction it starts with (one scheduled above the finished
// one, as etcdutl's --mark-compacted leaves it): of the key bucket only
// the revisions that snapkit's key index keeps there, the compaction
// recorded as finished.
func viewDirStarted(t *testing.T, dataDir string) dirView {
	t.Helper()
	return viewDirAs(t, dataDir, true)
}

func viewDirAs(t *testing.T, dataDir string, started bool) dirView {
	t.Helper()
	l := datadir.New(dataDir, "")
	var v dirView
	w, err := walkit.OpenForRead(nil, l.WALDir(), walkit.Snapshot{})
	if err != nil {
		t.Fatal(err)
	}
	md, st, ents, err := w.ReadAll()
	w.Close()
	if err != nil {
		t.Fatal(err)
	}
	if v.Metadata, err = walkit.ParseMetadata(md); err != nil {
		t.Fatal(err)
	}
	v.HardState, v.Entries = st, ents
	if v.WALSnaps, err = walkit.ValidSnapshotEntries(nil, l.WALDir()); err != nil {
		t.Fatal(err)
	}
	names, err := snap.New(nil, l.SnapDir()).Names()
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		s, err := snap.Read(filepath.Join(l.SnapDir(), n))
		if err != nil {
			t.Fatal(err)
		}
		m, err := snap.DecodeMembership(s.Data)
		if err != nil {
			t.Fatal(err)
		}
		v.Snaps = append(v.Snaps, snapView{Name: n, Metadata: s.Metadata, Membership: *m})
	}
	db, err := snapkit.OpenDB(context.Background(), dataDir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	v.Current = db.Current
	if v.HashKV, err = db.HashKV(0); err != nil {
		t.Fatal(err)
	}
	err = db.View(func(tx *bolt.Tx) error {
		var keep map[schema.Revision]struct{}
		finished, _, err := schema.FinishedCompactRev(tx)
		if err != nil {
			return err
		}
		if started && db.CompactRev > finished {
			keep = db.Index.Keep(db.CompactRev)
		}
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			return b.ForEach(func(k, val []byte) error {
				if bytes.Equal(name, schema.MetaBucket) && bytes.Equal(k, schema.ConfStateKey) {
					return nil
				}
				if keep != nil && bytes.Equal(name, schema.KeyBucket) {
					r, _, err := schema.ParseRevision(k)
					if err != nil {
						return err
					}
					if _, ok := keep[r]; !ok {
						return nil
					}
				}
				if keep != nil && bytes.Equal(name, schema.MetaBucket) {
					// finishedCompactRev sorts just before scheduledCompactRev.
					switch {
					case bytes.Equal(k, schema.FinishedCompactRevKey):
						return nil
					case bytes.Equal(k, schema.ScheduledCompactRevKey):
						v.Pairs = append(v.Pairs, fmt.Sprintf("%s/%x=%x", name, schema.FinishedCompactRevKey, val))
					}
				}
				v.Pairs = append(v.Pairs, fmt.Sprintf("%s/%x=%x", name, k, val))
				return nil
			})
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// diffViews reports how two views differ, field by field.
func diffViews(a, b dirView) []string {
	var out []string
	cmp := func(what string, x, y any) {
		if fmt.Sprintf("%+v", x) != fmt.Sprintf("%+v", y) {
			out = append(out, fmt.Sprintf("%s:\n  %+v\n  %+v", what, x, y))
		}
	}
	cmp("metadata", a.Metadata, b.Metadata)
	cmp("hard state", a.HardState, b.HardState)
	cmp("entries", a.Entries, b.Entries)
	cmp("WAL snapshots", a.WALSnaps, b.WALSnaps)
	cmp("snap files", a.Snaps, b.Snaps)
	cmp("hashkv", a.HashKV, b.HashKV)
	cmp("current revision", a.Current, b.Current)
	if !slices.Equal(a.Pairs, b.Pairs) {
		for _, p := range a.Pairs {
			if !slices.Contains(b.Pairs, p) {
				out = append(out, "only in the first db: "+p)
			}
		}
		for _, p := range b.Pairs {
			if !slices.Contains(a.Pairs, p) {
				out = append(out, "only in the second db: "+p)
			}
		}
	}
	return out
}

// copyFile copies src to a new file in a temporary dir.
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

package restore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/lifeboat-dev/lifeboat/internal/fixture"
	"github.com/lifeboat-dev/lifeboat/snapkit"
	"github.com/lifeboat-dev/lifeboat/snapkit/datadir"
	"github.com/lifeboat-dev/lifeboat/snapkit/schema"
)

// writeVariant writes a changed copy of the v3.6 snapshot.
func writeVariant(t *testing.T, name string, change func([]byte) []byte) string {
	t.Helper()
	b, err := os.ReadFile(fixture.Path("v3.6", "snapshot.db"))
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, change(b), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSnapshotRefusals(t *testing.T) {
	good := fixture.Path("v3.6", "snapshot.db")
	badTrailer := writeVariant(t, "bad-trailer.db", func(b []byte) []byte { b[len(b)-1] ^= 1; return b })
	noTrailer := writeVariant(t, "no-trailer.db", func(b []byte) []byte { return b[:len(b)-snapkit.TrailerSize] })
	notBolt := writeVariant(t, "text.db", func(b []byte) []byte {
		for i := range b {
			b[i] = 'x'
		}
		return b[:len(b)-snapkit.TrailerSize]
	})
	nonEmpty := t.TempDir()
	if err := os.WriteFile(filepath.Join(nonEmpty, "keep"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	// The fixture cluster's own token and peer URLs make its cluster ID again.
	oldCluster, err := ParseInitialCluster("m1=http://127.0.0.1:27381,m2=http://127.0.0.1:27382,m3=http://127.0.0.1:27383", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		o    SnapshotOptions
		want error
	}{
		{"bad trailer", SnapshotOptions{Path: badTrailer}, snapkit.ErrSnapshotHash},
		{"no trailer", SnapshotOptions{Path: noTrailer}, ErrNoHash},
		{"not bbolt, unchecked", SnapshotOptions{Path: notBolt, SkipHashCheck: true}, snapkit.ErrNotBolt},
		{"data dir not empty", SnapshotOptions{Path: good, DataDir: nonEmpty}, ErrUsage},
		{"bump without mark", SnapshotOptions{Path: good, BumpRevision: 5}, ErrUsage},
		{"mark without bump", SnapshotOptions{Path: good, MarkCompacted: true}, ErrUsage},
		{"compact without bump", SnapshotOptions{Path: good, Compact: true}, ErrUsage},
		{"name not in cluster", SnapshotOptions{Path: good, Name: "x", Cluster: oldCluster}, ErrUsage},
		{"peer URLs differ", SnapshotOptions{Path: good, Name: "m1", Cluster: oldCluster, PeerURLs: []string{"http://127.0.0.1:1"}}, ErrUsage},
		{"old cluster ID", SnapshotOptions{Path: good, Name: "m1", Cluster: oldCluster, Token: "lifeboat-fixture-v3.6"}, ErrSameClusterID},
		{"missing file", SnapshotOptions{Path: filepath.Join(t.TempDir(), "nope")}, os.ErrNotExist},
		// A bump writes the compacted db (WriteCompacted), not a copy.
		{"bad trailer, bumped, compacted", SnapshotOptions{Path: badTrailer, BumpRevision: 5, MarkCompacted: true, Compact: true}, snapkit.ErrSnapshotHash},
		{"no trailer, bumped, compacted", SnapshotOptions{Path: noTrailer, BumpRevision: 5, MarkCompacted: true, Compact: true}, ErrNoHash},
		{"not bbolt, unchecked, bumped, compacted", SnapshotOptions{Path: notBolt, SkipHashCheck: true, BumpRevision: 5, MarkCompacted: true, Compact: true}, snapkit.ErrNotBolt},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := tc.o
			parent := t.TempDir()
			if o.DataDir == "" {
				o.DataDir = filepath.Join(parent, "out")
			}
			_, err := Snapshot(context.Background(), nil, o)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if o.DataDir != nonEmpty {
				// Nothing is left behind: not even the data dir it made.
				if _, err := os.Stat(o.DataDir); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("after a refusal %s exists (%v)", o.DataDir, err)
				}
			}
		})
	}
}

func TestSnapshotAcceptsWhatSkipHashCheckAllows(t *testing.T) {
	badTrailer := writeVariant(t, "bad-trailer.db", func(b []byte) []byte { b[len(b)-1] ^= 1; return b })
	noTrailer := writeVariant(t, "no-trailer.db", func(b []byte) []byte { return b[:len(b)-snapkit.TrailerSize] })
	tokens := map[string]string{}
	for name, path := range map[string]string{"bad trailer": badTrailer, "no trailer": noTrailer, "good": fixture.Path("v3.6", "snapshot.db")} {
		t.Run(name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out")
			res, err := Snapshot(context.Background(), nil, SnapshotOptions{Path: path, DataDir: out, SkipHashCheck: true})
			if err != nil {
				t.Fatal(err)
			}
			if res.HashChecked || !res.FreshToken || res.RestoredRevision != 657 {
				t.Errorf("result %+v", res)
			}
			tokens[name] = res.Token
			v := viewDir(t, out)
			if v.Current != 657 || v.HashKV.CompactRevision != 407 {
				t.Errorf("restored db at %d compacted at %d", v.Current, v.HashKV.CompactRevision)
			}
		})
	}
	// Without a trailer the token comes from the SHA-256 of the db, which is
	// what the good file's trailer holds; a bad trailer gives another one.
	if tokens["no trailer"] != tokens["good"] || tokens["bad trailer"] == tokens["good"] {
		t.Errorf("tokens %v", tokens)
	}
}

// A restore killed half way leaves its stage inside the data dir and no
// member dir; the next restore into the same dir clears it and succeeds.
func TestSnapshotRerunAfterInterruption(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	leftover := filepath.Join(out, stageDirName, "member", "snap")
	if err := os.MkdirAll(leftover, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(leftover, "db"), []byte("half a db"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Snapshot(context.Background(), nil, SnapshotOptions{Path: fixture.Path("v3.6", "snapshot.db"), DataDir: out}); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(out)
	if err != nil || len(ents) != 1 || ents[0].Name() != "member" {
		t.Fatalf("data dir holds %v (%v), want member alone", ents, err)
	}
}

// A db held by a running member (bbolt's exclusive flock) is refused, and
// a dedicated WAL dir is honoured.
func TestSnapshotFromDataDir(t *testing.T) {
	src := fixture.DataDir(t, "v3.6", "m1")
	db, err := schema.Open(datadir.New(src, "").DBPath(), schema.Options{})
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "out")
	wal := filepath.Join(t.TempDir(), "wal")
	o := SnapshotOptions{Path: src, DataDir: out, WALDir: wal, SkipHashCheck: true}
	if _, err := Snapshot(context.Background(), nil, o); !errors.Is(err, snapkit.ErrLocked) {
		t.Fatalf("restore from a db in use: %v, want ErrLocked", err)
	}
	if _, err := os.Stat(wal); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("refused restore left the WAL dir: %v", err)
	}
	db.Close()
	res, err := Snapshot(context.Background(), nil, o)
	if err != nil {
		t.Fatal(err)
	}
	if res.WALDir != wal || res.SHA256 == "" {
		t.Errorf("result %+v", res)
	}
	if _, err := os.Stat(filepath.Join(out, "member", "wal")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("member/wal exists beside a dedicated WAL dir")
	}
	l := datadir.New(out, wal)
	if _, err := os.Stat(filepath.Join(l.WALDir(), "0000000000000000-0000000000000000.wal")); err != nil {
		t.Error(err)
	}
}

// A restore with --bump-revision, --mark-compacted and --compact writes the db as the
// compaction at the bumped revision leaves it: that compaction, were it run
// again, would delete nothing. A source restored so once already holds
// etcdutl's bump marker (a put of the key "", which etcd keeps): the new
// marker supersedes it, and the compaction at the new revision drops it.
func TestSnapshotCompactedIsWhatTheCompactionKeeps(t *testing.T) {
	const bump = 1000
	restored := func(t *testing.T) string {
		dir := filepath.Join(t.TempDir(), "once")
		if _, err := Snapshot(context.Background(), nil, SnapshotOptions{Path: fixture.Path("v3.6", "snapshot.db"), DataDir: dir,
			BumpRevision: bump, MarkCompacted: true, Compact: true}); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	for _, tc := range []struct {
		name string
		src  func(t *testing.T) string
		skip bool // --skip-hash-check
		rev  int64
	}{
		{"snapshot file", func(*testing.T) string { return fixture.Path("v3.6", "snapshot.db") }, false, 657 + bump},
		{"restored with a bump before", restored, true, 657 + 2*bump},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out")
			res, err := Snapshot(context.Background(), nil, SnapshotOptions{Path: tc.src(t), DataDir: out, SkipHashCheck: tc.skip,
				BumpRevision: bump, MarkCompacted: true, Compact: true})
			if err != nil {
				t.Fatal(err)
			}
			if res.RestoredRevision != tc.rev || res.CompactRevision != tc.rev {
				t.Fatalf("restored at %d compacted at %d, want %d", res.RestoredRevision, res.CompactRevision, tc.rev)
			}
			db, err := snapkit.OpenDB(context.Background(), out, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			keep := db.Index.Keep(db.CompactRev)
			var dropped []string
			err = db.View(func(tx *bolt.Tx) error {
				return schema.ForEachKey(tx, schema.Revision{}, func(e schema.KeyEntry) error {
					if _, ok := keep[e.Rev]; !ok {
						dropped = append(dropped, fmt.Sprintf("%s %q", e.Rev, e.KV.Key))
					}
					return nil
				})
			})
			if err != nil {
				t.Fatal(err)
			}
			if db.CompactRev != tc.rev || len(dropped) > 0 {
				t.Errorf("compacted at %d (want %d); the compaction there would drop %q", db.CompactRev, tc.rev, dropped)
			}
		})
	}
}

// A restore cancelled while it reads the source (a copy, or the compacted
// write beside the hash: cancelled after the first MiB of 8) fails with
// the cancellation and leaves nothing: not the data dir it made, nor a
// half-written db.
func TestSnapshotCancelled(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "snapshot.db")
	if err := genSnapshot(filepath.Join(dir, "db"), src, 8<<20); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		bump int64
	}{{"copy", 0}, {"compacted", 1000}} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			out := filepath.Join(t.TempDir(), "out")
			_, err := Snapshot(ctx, nil, SnapshotOptions{Path: src, DataDir: out,
				BumpRevision: tc.bump, MarkCompacted: tc.bump > 0, Compact: tc.bump > 0, Progress: func(done, total int64) { cancel() }})
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("err %v, want context.Canceled", err)
			}
			if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("after a cancelled restore %s exists (%v)", out, err)
			}
		})
	}
}

// The copy finds the free pages from the bytes it copies: the list it
// writes into the copy is the one FindFreePages' walk of the source finds,
// bbolt reads it, and the copy stays sound when bbolt reuses them. With
// LIFEBOAT_RESTORE_BENCH_MB or LIFEBOAT_RESTORE_BENCH_SNAPSHOT set, also
// on the benchmark snapshot.
func TestCopyWritesTheFreePages(t *testing.T) {
	type source struct {
		name string
		path func(t *testing.T) string
	}
	sources := []source{
		{"fixture v3.6", func(*testing.T) string { return fixture.Path("v3.6", "snapshot.db") }},
		{"fixture v3.5 data dir", func(t *testing.T) string { return fixture.DataDir(t, "v3.5", "m1") }},
		{"generated", func(t *testing.T) string {
			dir := t.TempDir()
			src := filepath.Join(dir, "snapshot.db")
			if err := genSnapshot(filepath.Join(dir, "db"), src, 8<<20); err != nil {
				t.Fatal(err)
			}
			return src
		}},
	}
	if os.Getenv(benchSizeEnv) != "" || os.Getenv(benchSnapshotEnv) != "" {
		sources = append(sources, source{"benchmark snapshot", func(t *testing.T) string { snap, _ := benchSnapshot(t); return snap }})
	}
	for _, s := range sources {
		t.Run(s.name, func(t *testing.T) {
			ctx := context.Background()
			src, err := snapkit.Resolve(s.path(t))
			if err != nil {
				t.Fatal(err)
			}
			want, err := snapkit.FindFreePages(ctx, src.Path)
			if err != nil || want == nil {
				t.Fatalf("FindFreePages: %v, %v", want, err)
			}
			dst := filepath.Join(t.TempDir(), "db")
			if _, _, err := copyWithFreePages(ctx, slog.New(slog.DiscardHandler), src, dst, src.HasTrailer, false, nil); err != nil {
				t.Fatal(err)
			}
			db, err := bolt.Open(dst, 0o600, &bolt.Options{NoFreelistSync: true, NoSync: true, FreelistType: bolt.FreelistMapType})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if got := db.Stats().FreePageN; got != want.Len() {
				t.Fatalf("bbolt reads %d free pages in the copy; the walk of the source finds %d", got, want.Len())
			}
			// Reuse them (and more), then have bbolt check the db.
			ps := db.Info().PageSize
			val := make([]byte, 300)
			err = db.Update(func(tx *bolt.Tx) error {
				b, err := tx.CreateBucketIfNotExists([]byte("reused"))
				if err != nil {
					return err
				}
				for i := range (want.Len()+50)*ps/len(val) + 100 {
					if err := b.Put(fmt.Appendf(nil, "k%08d", i), val); err != nil {
						return err
					}
				}
				return nil
			})
			if err == nil {
				err = db.View(func(tx *bolt.Tx) error {
					for err := range tx.Check() {
						return fmt.Errorf("bbolt check: %w", err)
					}
					return nil
				})
			}
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

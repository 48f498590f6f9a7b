package restore

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/lifeboat-dev/lifeboat/internal/fixture"
	"github.com/lifeboat-dev/lifeboat/internal/interoptest"
	"github.com/lifeboat-dev/lifeboat/snapkit"
	"github.com/lifeboat-dev/lifeboat/snapkit/datadir"
	"github.com/lifeboat-dev/lifeboat/snapkit/schema"
	"github.com/lifeboat-dev/lifeboat/walkit"
)

// fixtureFacts is what the live fixture cluster reported about itself.
type fixtureFacts struct {
	clusterID string
	memberIDs []string
	raftIndex uint64
	revision  int64
	compact   int64
	hash      uint32
}

func readFixtureFacts(t *testing.T, set string) fixtureFacts {
	t.Helper()
	var f fixtureFacts
	var members struct {
		Header struct {
			ClusterID uint64 `json:"cluster_id"`
		} `json:"header"`
		Members []struct{ ID uint64 } `json:"members"`
	}
	var status []struct {
		Status struct {
			Header    struct{ Revision int64 } `json:"header"`
			RaftIndex uint64                   `json:"raftIndex"`
		}
	}
	var hashkv []struct {
		HashKV struct {
			Hash            uint32 `json:"hash"`
			CompactRevision int64  `json:"compact_revision"`
		}
	}
	for name, v := range map[string]any{"members.json": &members, "endpoint-status.json": &status, "endpoint-hashkv.json": &hashkv} {
		b, err := os.ReadFile(fixture.Path(set, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("%s/%s: %v", set, name, err)
		}
	}
	f.clusterID = schema.FormatID(members.Header.ClusterID)
	for _, m := range members.Members {
		f.memberIDs = append(f.memberIDs, schema.FormatID(m.ID))
	}
	slices.Sort(f.memberIDs)
	f.raftIndex, f.revision = status[0].Status.RaftIndex, status[0].Status.Header.Revision
	f.hash, f.compact = hashkv[0].HashKV.Hash, hashkv[0].HashKV.CompactRevision
	return f
}

// Inspect of each fixture member says what the live cluster said: IDs,
// raft index, revision, compaction and HashKV, and finds nothing wrong.
func TestInspectFixtures(t *testing.T) {
	for _, set := range fixture.Sets {
		want := readFixtureFacts(t, set)
		for _, m := range []string{"m1", "m2", "m3"} {
			t.Run(set+"/"+m, func(t *testing.T) {
				r, err := Inspect(context.Background(), nil, fixture.DataDir(t, set, m), InspectOptions{})
				if err != nil {
					t.Fatal(err)
				}
				if !r.OK() || r.InUse {
					t.Fatalf("findings %q, errors %q, in use %v", r.Findings, r.Errors, r.InUse)
				}
				var ids []string
				for _, mem := range r.DB.Members {
					ids = append(ids, schema.FormatID(mem.ID))
				}
				slices.Sort(ids)
				if r.WAL.ClusterID != want.clusterID || !slices.Contains(want.memberIDs, r.WAL.NodeID) || !slices.Equal(ids, want.memberIDs) {
					t.Errorf("IDs: cluster %s node %s members %v; want %s, one of %v", r.WAL.ClusterID, r.WAL.NodeID, ids, want.clusterID, want.memberIDs)
				}
				if r.WAL.HardState.Commit != want.raftIndex || r.WAL.LastIndex != want.raftIndex || r.DB.ConsistentIndex != want.raftIndex {
					t.Errorf("commit %d, last index %d, applied %d; the cluster was at %d", r.WAL.HardState.Commit, r.WAL.LastIndex, r.DB.ConsistentIndex, want.raftIndex)
				}
				if r.DB.Revision != want.revision || r.DB.CompactRevision != want.compact || r.DB.HashKV.Hash != want.hash {
					t.Errorf("db: revision %d compact %d hashkv %d; want %d %d %d", r.DB.Revision, r.DB.CompactRevision, r.DB.HashKV.Hash, want.revision, want.compact, want.hash)
				}
				if r.Snap == nil || r.Snap.File == "" || r.Snap.Index > want.raftIndex {
					t.Errorf("snap: %+v", r.Snap)
				}
			})
		}
	}
}

// The db read in snapkit.Inspect's walks says what OpenDB and its key
// index say, HashKV included (none with SkipHashKV, as the plan reads its
// sources); a compaction scheduled and not finished counts as OpenDB
// counts it, and so does a restore bumped and marked compacted (what
// apply checks).
func TestInspectReadsWhatOpenDBReads(t *testing.T) {
	fixtureDir := func(set, member string, schedule int64) func(t *testing.T) string {
		return func(t *testing.T) string {
			dir := fixture.DataDir(t, set, member)
			if schedule == 0 {
				return dir
			}
			db, err := schema.Open(datadir.New(dir, "").DBPath(), schema.Options{})
			if err != nil {
				t.Fatal(err)
			}
			err = db.Update(func(tx *bolt.Tx) error { return schema.SetScheduledCompactRev(tx, schedule) })
			if cerr := db.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				t.Fatal(err)
			}
			return dir
		}
	}
	for _, tt := range []struct {
		name     string
		dir      func(t *testing.T) string
		schedule int64 // the compaction in effect, if not the finished one
	}{
		{name: "v3.5", dir: fixtureDir("v3.5", "m1", 0)},
		{name: "v3.6", dir: fixtureDir("v3.6", "m2", 0)},
		{name: "unfinished compaction", dir: fixtureDir("v3.6", "m3", 600), schedule: 600},
		{name: "bumped restore", dir: func(t *testing.T) string {
			dir := filepath.Join(t.TempDir(), "m1")
			if _, err := Snapshot(context.Background(), nil, SnapshotOptions{Path: fixture.Path("v3.6", "snapshot.db"), Name: "m1", DataDir: dir,
				BumpRevision: 1000, MarkCompacted: true}); err != nil {
				t.Fatal(err)
			}
			return dir
		}, schedule: 1657},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := tt.dir(t)
			full, err := Inspect(context.Background(), nil, dir, InspectOptions{})
			if err != nil {
				t.Fatal(err)
			}
			quick, err := Inspect(context.Background(), nil, dir, InspectOptions{SkipHashKV: true})
			if err != nil {
				t.Fatal(err)
			}
			if full.DB == nil || quick.DB == nil {
				t.Fatalf("errors %q, %q", full.Errors, quick.Errors)
			}
			db, err := snapkit.OpenDB(context.Background(), datadir.New(dir, "").DBPath(), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			hash, err := db.HashKV(0)
			if err != nil {
				t.Fatal(err)
			}
			if full.DB.Revision != db.Current || full.DB.CompactRevision != db.CompactRev || full.DB.HashKV != hash {
				t.Errorf("Inspect: revision %d compact %d HashKV %+v; OpenDB: %d %d %+v", full.DB.Revision, full.DB.CompactRevision, full.DB.HashKV, db.Current, db.CompactRev, hash)
			}
			want := *full.DB
			want.HashKV = snapkit.HashKVResult{}
			if got := *quick.DB; fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", want) {
				t.Errorf("SkipHashKV reads\n  %+v\nwith HashKV\n  %+v", got, want)
			}
			if tt.schedule > 0 && quick.DB.CompactRevision != tt.schedule {
				t.Errorf("compaction %d, want the scheduled %d", quick.DB.CompactRevision, tt.schedule)
			}
		})
	}
}

// A WAL whose tail lost its last records: the damage, what a repair would
// cut, and the db now ahead of the WAL are all reported.
func TestInspectTornTail(t *testing.T) {
	dir := fixture.DataDir(t, "v3.6", "m1")
	wal := datadir.New(dir, "").WALDir()
	rep, err := walkit.Verify(wal, walkit.VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tail := rep.Segments[len(rep.Segments)-1]
	zeroRange(t, filepath.Join(wal, tail.Name), tail.DataEnd-100, tail.DataEnd)
	r, err := Inspect(context.Background(), nil, dir, InspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.WAL.Damage) == 0 || r.WAL.Repair == nil || r.WAL.Repair.Damage == nil {
		t.Fatalf("damage %+v, repair %+v", r.WAL.Damage, r.WAL.Repair)
	}
	if r.WAL.LastIndex >= 667 || r.WAL.LastIndex != r.WAL.Repair.LastKeptIndex {
		t.Errorf("last index %d, repair keeps %d; want below 667 and equal", r.WAL.LastIndex, r.WAL.Repair.LastKeptIndex)
	}
	joined := strings.Join(r.Findings, "\n")
	for _, want := range []string{"WAL damage", "applied <= last index"} {
		if !strings.Contains(joined, want) {
			t.Errorf("findings %q lack %q", r.Findings, want)
		}
	}
}

func zeroRange(t *testing.T, path string, from, to int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(make([]byte, to-from), from); err != nil {
		t.Fatal(err)
	}
}

// A dir that a running member holds is reported in use, for lifeboat (in
// this process) and real etcd.
func TestInspectInUse(t *testing.T) {
	for _, kind := range []string{"lifeboat", "etcd"} {
		t.Run(kind, func(t *testing.T) {
			var dir string
			if kind == "etcd" {
				c := interoptest.StartEtcd(t, interoptest.Options{})
				dir = c.Members[0].DataDir
			} else {
				tc := newTestCluster(t, 1, "")
				m := tc.layout.Members[0]
				if _, err := Snapshot(context.Background(), nil, SnapshotOptions{Path: fixture.Path("v3.6", "snapshot.db"), Name: m.Name, Cluster: tc.specs(), DataDir: m.DataDir}); err != nil {
					t.Fatal(err)
				}
				tc.startLifeboat(nil)
				dir = m.DataDir
			}
			r, err := Inspect(context.Background(), nil, dir, InspectOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if !r.InUse || r.InUseBy != "wal+db" {
				t.Errorf("in use %v by %q, want wal+db", r.InUse, r.InUseBy)
			}
		})
	}
}

// Inspect of a dir whose db has the bytes of a known db takes the known
// db's state instead of reading it; a db with other bytes is read.
func TestInspectKnownDB(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "m.etcd")
	if _, err := Snapshot(context.Background(), nil, SnapshotOptions{Path: fixture.Path("v3.6", "snapshot.db"), Name: "m",
		Cluster: []MemberSpec{{Name: "m", PeerURLs: []string{"http://127.0.0.1:2380"}}}, DataDir: dir}); err != nil {
		t.Fatal(err)
	}
	o := InspectOptions{}
	read, err := Inspect(context.Background(), nil, dir, o)
	if err != nil || !read.OK() {
		t.Fatalf("inspect: %v %v %v", err, read.Findings, read.Errors)
	}
	sum, err := fileSHA256(filepath.Join(dir, "member", "snap", "db"))
	if err != nil {
		t.Fatal(err)
	}
	// A state that the file does not hold shows which one was used.
	marked := *read.DB
	marked.Revision = read.DB.Revision + 1000
	other := slices.Clone(sum)
	other[0] ^= 1
	for _, tc := range []struct {
		name  string
		known *knownDB
		want  int64
	}{
		{"none", nil, read.DB.Revision},
		{"same bytes", &knownDB{state: &marked, report: read.dbReport, sum: sum}, marked.Revision},
		{"other bytes", &knownDB{state: &marked, report: read.dbReport, sum: other}, read.DB.Revision},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := inspectDir(context.Background(), nil, dir, o, tc.known)
			if err != nil {
				t.Fatal(err)
			}
			if r.DB == nil || r.DB.Revision != tc.want || r.DB.Path != read.DB.Path {
				t.Fatalf("db %+v, want revision %d at %s", r.DB, tc.want, read.DB.Path)
			}
		})
	}
}

package mvcc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	bolt "go.etcd.io/bbolt"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/lifeboat-dev/lifeboat/internal/interoptest"
	"github.com/lifeboat-dev/lifeboat/server/backend"
	"github.com/lifeboat-dev/lifeboat/server/lease"
	"github.com/lifeboat-dev/lifeboat/snapkit"
	"github.com/lifeboat-dev/lifeboat/snapkit/schema"
)

// pairs returns the key bucket's revisions, committed, as strings.
func pairs(t *testing.T, be *backend.Backend) []string {
	t.Helper()
	if err := be.ForceCommit(); err != nil {
		t.Fatal(err)
	}
	var out []string
	if err := be.View(func(tx *bolt.Tx) error {
		return schema.ForEachKey(tx, schema.Revision{}, func(e schema.KeyEntry) error {
			s := e.Rev.String()
			if e.Tombstone {
				s += "t"
			}
			out = append(out, s)
			return nil
		})
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// history renders every read the store can answer, from its compaction to
// its revision, for comparing two stores.
func history(t *testing.T, ts *testStore) []string {
	t.Helper()
	var out []string
	for rev := max(ts.CompactRev(), firstRevision); rev <= ts.Rev(); rev++ {
		resp := ts.get(t, &pb.RangeRequest{Key: []byte{0}, RangeEnd: []byte{0}, Revision: rev})
		out = append(out, fmt.Sprint(rev, kvs(resp.Kvs)))
	}
	return out
}

func TestCompaction(t *testing.T) {
	ts := newTestStore(t, Config{CompactionBatchLimit: 2})
	seed(t, ts)
	done, err := ts.Compact(6)
	if err != nil {
		t.Fatal(err)
	}
	<-done
	// a@2 and b@3 are gone; the tombstone at the compaction stays until
	// the next one, as in etcd.
	if got, want := fmt.Sprint(pairs(t, ts.be)), "[4_0 5_0 6_0t 7_0 8_0]"; got != want {
		t.Errorf("key bucket %s, want %s", got, want)
	}
	var finished int64
	if err := ts.be.View(func(tx *bolt.Tx) (err error) {
		finished, _, err = schema.FinishedCompactRev(tx)
		return err
	}); err != nil || finished != 6 {
		t.Errorf("finishedCompactRev %d, %v", finished, err)
	}
	if got := fmt.Sprint(kvs(ts.get(t, &pb.RangeRequest{Key: []byte("a"), RangeEnd: []byte("z"), Revision: 6}).Kvs)); got != "[a=3@2/4/2 c=4@5/5/1]" {
		t.Errorf("at the compaction: %s", got)
	}
	for _, tt := range []struct {
		rev  int64
		want error
	}{{6, ErrCompacted}, {4, ErrCompacted}, {99, ErrFutureRev}} {
		if _, err := ts.Compact(tt.rev); !errors.Is(err, tt.want) {
			t.Errorf("compact %d: %v, want %v", tt.rev, err, tt.want)
		}
	}
	done, err = ts.Compact(8)
	if err != nil {
		t.Fatal(err)
	}
	<-done
	if got, want := fmt.Sprint(pairs(t, ts.be)), "[4_0 5_0 7_0 8_0]"; got != want {
		t.Errorf("key bucket after the second compaction %s, want %s", got, want)
	}
}

func TestRestartRestoresState(t *testing.T) {
	ts := newTestStore(t, Config{})
	seed(t, ts)
	if _, err := ts.Txn(context.Background(), &pb.TxnRequest{Success: []*pb.RequestOp{putOp("x", "1"), putOp("a", "9")}}); err != nil {
		t.Fatal(err)
	}
	done, err := ts.Compact(4)
	if err != nil {
		t.Fatal(err)
	}
	<-done
	ts.del(t, "c", "")
	want := history(t, ts)
	wantHash, err := ts.HashKV(0)
	if err != nil {
		t.Fatal(err)
	}
	ts.close()

	reg := prometheus.NewRegistry()
	again := reopen(t, ts.path, Config{Registerer: reg})
	if again.Rev() != 10 || again.CompactRev() != 4 {
		t.Errorf("revision %d compaction %d, want 10 4", again.Rev(), again.CompactRev())
	}
	if got := gauge(t, reg, "etcd_debugging_mvcc_compact_revision"); got != 4 {
		t.Errorf("compact_revision gauge %v after restart, want 4", got)
	}
	if got := history(t, again); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("history differs after restart:\n got %v\nwant %v", got, want)
	}
	if h, err := again.HashKV(0); err != nil || h != wantHash {
		t.Errorf("hashkv %+v (%v), want %+v", h, err, wantHash)
	}
	// The restored index takes new writes where the old one left off.
	if rev := again.put(t, "a", "10"); rev != 11 {
		t.Errorf("next put at %d, want 11", rev)
	}
	if got := kvString(again.get(t, &pb.RangeRequest{Key: []byte("a")}).Kvs[0]); got != "a=10@2/11/4" {
		t.Errorf("after restart: %s", got)
	}
}

func TestResumeInterruptedCompaction(t *testing.T) {
	ts := newTestStore(t, Config{})
	seed(t, ts)
	// A crash after the compaction was recorded, before any pair went.
	bt := ts.be.BatchTx()
	bt.Lock()
	tx, err := bt.Tx()
	if err == nil {
		err = schema.SetScheduledCompactRev(tx, 6)
	}
	bt.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	ts.close()

	again := reopen(t, ts.path, Config{})
	if again.CompactRev() != 6 {
		t.Errorf("compaction %d, want 6", again.CompactRev())
	}
	if _, err := again.Range(context.Background(), &pb.RangeRequest{Key: []byte("a"), Revision: 5}); !errors.Is(err, ErrCompacted) {
		t.Errorf("range below the resumed compaction: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for fmt.Sprint(pairs(t, again.be)) != "[4_0 5_0 6_0t 7_0 8_0]" {
		if time.Now().After(deadline) {
			t.Fatalf("compaction not resumed: %v", pairs(t, again.be))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestCrashNeverAppliesTwice applies raft entries, copies the db file as a
// crash would leave it (only what was committed), reopens the copy and
// replays the entries after its consistent index: the result must be the
// store that never crashed.
func TestCrashNeverAppliesTwice(t *testing.T) {
	entry := func(ts *testStore, i uint64) error {
		return ts.Apply(i, 2, func() error {
			if i%3 == 0 {
				_, err := ts.Txn(context.Background(), &pb.TxnRequest{Success: []*pb.RequestOp{putOp(fmt.Sprint("t", i), "a"), putOp(fmt.Sprint("u", i), "b")}})
				return err
			}
			if i%5 == 0 {
				return nil // an entry that does not touch the store
			}
			_, err := ts.Put(&pb.PutRequest{Key: []byte(fmt.Sprint("k", i%4)), Value: []byte(fmt.Sprint(i))})
			return err
		})
	}
	for _, limit := range []int{10000, 3} {
		t.Run(fmt.Sprint("batch limit ", limit), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "db")
			be, err := backend.Open(backend.Config{Path: path, NoSync: true, MmapSize: 1 << 24, BatchInterval: time.Hour, BatchLimit: limit})
			if err != nil {
				t.Fatal(err)
			}
			s, err := New(be, Config{})
			if err != nil {
				t.Fatal(err)
			}
			ts := &testStore{Store: s, path: path}
			t.Cleanup(ts.close)
			const n = 20
			for i := uint64(1); i <= n; i++ {
				if err := entry(ts, i); err != nil {
					t.Fatal(err)
				}
				if i == 8 {
					if err := be.ForceCommit(); err != nil {
						t.Fatal(err)
					}
				}
			}
			if ci, term := ts.ConsistentIndex(); ci != n || term != 2 {
				t.Errorf("consistent index %d term %d", ci, term)
			}
			crashed := filepath.Join(t.TempDir(), "crashed")
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(crashed, data, 0o600); err != nil {
				t.Fatal(err)
			}
			want := history(t, ts)

			re := reopen(t, crashed, Config{})
			ci, _ := re.ConsistentIndex()
			if ci < 8 || ci > n {
				t.Fatalf("consistent index after the crash %d, want 8..%d", ci, n)
			}
			for i := ci + 1; i <= n; i++ {
				if err := entry(re, i); err != nil {
					t.Fatal(err)
				}
			}
			if got := history(t, re); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("replay from index %d differs:\n got %v\nwant %v", ci, got, want)
			}
		})
	}
}

// TestSnapkitAndEtcdutlReadTheStore checks a db the store wrote with
// snapkit's status and hashkv, and with the real etcdutl.
func TestSnapkitAndEtcdutlReadTheStore(t *testing.T) {
	ts := newTestStore(t, Config{})
	seed(t, ts)
	done, err := ts.Compact(5)
	if err != nil {
		t.Fatal(err)
	}
	<-done
	if err := ts.Apply(9, 2, func() error {
		ts.put(t, "e", "5")
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	hash, err := ts.HashKV(0)
	if err != nil {
		t.Fatal(err)
	}
	ts.close()

	rep, err := snapkit.Inspect(context.Background(), ts.path, snapkit.Options{SkipTrailer: true})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Revision != 9 || !rep.OK() {
		t.Errorf("snapkit status: revision %d totalKey %d findings %v", rep.Revision, rep.TotalKey, rep.Findings)
	}
	file, err := snapkit.HashKVFile(context.Background(), ts.path, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	if file.Hash != hash.Hash || file.CompactRevision != 5 || file.HashRevision != 9 {
		t.Errorf("snapkit hashkv %+v, store %+v", file, hash)
	}

	etcdutl := interoptest.Binary(t, "etcdutl")
	out, err := exec.Command(etcdutl, "snapshot", "status", ts.path, "-w", "json").Output()
	if err != nil {
		t.Fatalf("etcdutl snapshot status: %v", err)
	}
	var st struct {
		Revision int64 `json:"revision"`
		TotalKey int   `json:"totalKey"`
	}
	if err := json.Unmarshal(out, &st); err != nil {
		t.Fatalf("etcdutl output %s: %v", out, err)
	}
	if st.Revision != 9 || st.TotalKey != rep.TotalKey {
		t.Errorf("etcdutl: revision %d totalKey %d, want 9 %d", st.Revision, st.TotalKey, rep.TotalKey)
	}
	out, err = exec.Command(etcdutl, "hashkv", ts.path, "-w", "json").Output()
	if err != nil {
		t.Fatalf("etcdutl hashkv: %v", err)
	}
	var hk struct {
		Hash            uint32 `json:"hash"`
		HashRevision    int64  `json:"hashRevision"`
		CompactRevision int64  `json:"compactRevision"`
	}
	if err := json.Unmarshal(out, &hk); err != nil {
		t.Fatalf("etcdutl hashkv output %s: %v", out, err)
	}
	if hk.Hash != hash.Hash || hk.HashRevision != 9 || hk.CompactRevision != 5 {
		t.Errorf("etcdutl hashkv %s, store %+v", out, hash)
	}
}

// TestNeverCompacted checks etcd's numbering on a store never compacted:
// it starts at revision 1, its first write is 2, its compact revision is
// -1 (in HashKV and the compact_revision gauge too), and reopening it
// records no compaction. The real etcdutl reads the same db the same way.
func TestNeverCompacted(t *testing.T) {
	for _, puts := range []int{0, 2} {
		t.Run(fmt.Sprint(puts, " puts"), func(t *testing.T) {
			reg := prometheus.NewRegistry()
			ts := newTestStore(t, Config{Registerer: reg})
			if ts.Rev() != 1 || ts.CompactRev() != -1 {
				t.Fatalf("new store: revision %d compaction %d, want 1 -1", ts.Rev(), ts.CompactRev())
			}
			for i := range puts {
				if rev := ts.put(t, fmt.Sprint("k", i), "v"); rev != int64(2+i) {
					t.Errorf("put %d at revision %d, want %d", i, rev, 2+i)
				}
			}
			wantRev := int64(1 + puts)
			if got := gauge(t, reg, "etcd_debugging_mvcc_compact_revision"); got != -1 {
				t.Errorf("compact_revision gauge %v, want -1", got)
			}
			hash, err := ts.HashKV(0)
			if err != nil {
				t.Fatal(err)
			}
			if hash.CompactRevision != -1 || hash.HashRevision != wantRev || hash.Revision != wantRev {
				t.Errorf("hashkv %+v, want compaction -1 and revision %d", hash, wantRev)
			}
			ts.close()

			again := reopen(t, ts.path, Config{})
			if again.Rev() != wantRev || again.CompactRev() != -1 {
				t.Errorf("reopened: revision %d compaction %d, want %d -1", again.Rev(), again.CompactRev(), wantRev)
			}
			if h, err := again.HashKV(0); err != nil || h != hash {
				t.Errorf("reopened: hashkv %+v (%v), want %+v", h, err, hash)
			}
			// Close waits for a compaction New may have started.
			again.Close()
			if err := again.be.ForceCommit(); err != nil {
				t.Fatal(err)
			}
			if err := again.be.View(func(tx *bolt.Tx) error {
				for name, get := range map[string]func(*bolt.Tx) (int64, bool, error){
					"scheduled": schema.ScheduledCompactRev, "finished": schema.FinishedCompactRev,
				} {
					if rev, found, err := get(tx); err != nil || found {
						t.Errorf("%sCompactRev recorded: %d %v %v", name, rev, found, err)
					}
				}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			again.be.Close()

			etcdutl := interoptest.Binary(t, "etcdutl")
			out, err := exec.Command(etcdutl, "hashkv", ts.path, "-w", "json").Output()
			if err != nil {
				t.Fatalf("etcdutl hashkv: %v", err)
			}
			var hk struct {
				Hash            uint32 `json:"hash"`
				HashRevision    int64  `json:"hashRevision"`
				CompactRevision int64  `json:"compactRevision"`
			}
			if err := json.Unmarshal(out, &hk); err != nil {
				t.Fatalf("etcdutl hashkv output %s: %v", out, err)
			}
			if hk.Hash != hash.Hash || hk.HashRevision != wantRev || hk.CompactRevision != -1 {
				t.Errorf("etcdutl hashkv %s, store %+v", out, hash)
			}
		})
	}
}

// gauge returns the value of the gauge name in reg.
func gauge(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no gauge %s", name)
	return 0
}

// A compaction that a stop interrupts, and one still queued behind it,
// tell their waiters so instead of reporting success.
func TestStopTellsCompactionWaiters(t *testing.T) {
	// One pair per batch and a long pause between batches: the first
	// compaction is still running when the store stops.
	ts := newTestStore(t, Config{CompactionBatchLimit: 1, CompactionSleepInterval: time.Hour})
	seed(t, ts)
	running, err := ts.Compact(6)
	if err != nil {
		t.Fatal(err)
	}
	queued, err := ts.Compact(7)
	if err != nil {
		t.Fatal(err)
	}
	ts.Stop()
	for name, done := range map[string]<-chan error{"running": running, "queued": queued} {
		if err := <-done; !errors.Is(err, ErrCompactionStopped) {
			t.Errorf("%s compaction: %v, want ErrCompactionStopped", name, err)
		}
	}
}

// compact compacts ts at rev and waits until the key bucket is compacted.
func compact(t *testing.T, ts *testStore, rev int64) {
	t.Helper()
	done, err := ts.Compact(rev)
	if err != nil {
		t.Fatalf("compact %d: %v", rev, err)
	}
	if err := <-done; err != nil {
		t.Fatalf("compact %d: %v", rev, err)
	}
}

// TestHashKVDuringCompaction: a compaction applied and run to its commit
// while HashKV is under way must not make HashKV hash pairs other than
// those of the compaction it reports: a member whose compaction ran a
// moment earlier or later would report the same compaction with another
// hash. The robustness suite's leader-transfer scenario met this as a
// final HashKV mismatch (a compaction committed between HashKV's batch
// commit and its read, hashed under the compaction before it).
func TestHashKVDuringCompaction(t *testing.T) {
	// seed writes revisions 2 to 8; b's tombstone is at 6.
	tests := []struct {
		name           string
		stage          string // HashKV's stage the compaction runs at
		before, during int64  // compactions before HashKV and during it; 0: none
		rev            int64  // the revision hashed
	}{
		{"first compaction", "committed", 0, 4, 8},
		{"at a tombstone", "committed", 0, 6, 8},
		{"at the hashed revision", "committed", 0, 8, 8},
		{"below the head", "committed", 0, 5, 7},
		{"after an earlier compaction", "committed", 4, 7, 8},
		{"past the hashed revision", "committed", 4, 8, 5},
		{"in the read", "read", 0, 6, 8},
		{"in the read, past the hashed revision", "read", 4, 8, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTestStore(t, Config{CompactionBatchLimit: 2})
			seed(t, ts)
			if tt.before > 0 {
				compact(t, ts, tt.before)
			}
			old, err := ts.HashKV(tt.rev)
			if err != nil {
				t.Fatal(err)
			}
			ts.testHashHook = func(stage string) {
				if stage != tt.stage {
					return
				}
				compact(t, ts, tt.during)
				if err := ts.be.ForceCommit(); err != nil {
					t.Fatal(err)
				}
			}
			got, err := ts.HashKV(tt.rev)
			ts.testHashHook = nil
			after, afterErr := ts.HashKV(tt.rev)
			// Either hash is right, so long as it goes with its
			// compaction; a compaction past the revision may fail it.
			switch {
			case err != nil:
				if !errors.Is(err, ErrCompacted) || tt.during <= tt.rev {
					t.Errorf("hashkv during the compaction at %d: %v", tt.during, err)
				}
			case got != old && (afterErr != nil || got != after):
				t.Errorf("hashkv during the compaction at %d: %+v; want %+v (before it) or %+v, %v (after it)", tt.during, got, old, after, afterErr)
			}
		})
	}
}

// A restart attaches each live key to the lease of its last put, and no
// key whose last put had no lease, or that was deleted, to any; the
// leases are read in the key index's one pass over the key bucket.
func TestRestartReattachesLeases(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	open := func() (*Store, *lease.Lessor, *backend.Backend) {
		be := openBackend(t, path)
		le, err := lease.New(be, lease.Config{})
		if err != nil {
			t.Fatal(err)
		}
		s, err := New(be, Config{Lessor: le})
		if err != nil {
			t.Fatal(err)
		}
		return s, le, be
	}
	s, le, be := open()
	for _, id := range []int64{1, 2} {
		if _, err := le.Grant(id, 3600); err != nil {
			t.Fatal(err)
		}
	}
	for _, op := range []struct {
		key   string
		lease int64
		del   bool
	}{
		{key: "a", lease: 1}, {key: "b", lease: 1}, {key: "b"}, {key: "c", lease: 1}, {key: "c", del: true},
		{key: "d", lease: 1}, {key: "d", lease: 2}, {key: "e"}, {key: "f", lease: 2}, {key: "f", del: true}, {key: "f", lease: 1},
	} {
		var err error
		if op.del {
			_, err = s.DeleteRange(&pb.DeleteRangeRequest{Key: []byte(op.key)})
		} else {
			_, err = s.Put(&pb.PutRequest{Key: []byte(op.key), Value: []byte("v"), Lease: op.lease})
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	le.Stop()
	be.Close()

	s, le, be = open()
	defer func() { s.Close(); le.Stop(); be.Close() }()
	want := map[string]int64{"a": 1, "b": 0, "c": 0, "d": 2, "e": 0, "f": 1}
	for key, id := range want {
		if got := le.LeaseOf([]byte(key)); got != id {
			t.Errorf("key %s attached to lease %d after restart, want %d", key, got, id)
		}
	}
	for id, keys := range map[int64]string{1: "[a f]", 2: "[d]"} {
		got, _ := le.Keys(id)
		if fmt.Sprintf("%s", got) != keys {
			t.Errorf("lease %d keys %s after restart, want %s", id, got, keys)
		}
	}
}

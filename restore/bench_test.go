package restore

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/lifeboat-dev/lifeboat/internal/benchkit"
	"github.com/lifeboat-dev/lifeboat/internal/interoptest"
	"github.com/lifeboat-dev/lifeboat/snapkit"
	"github.com/lifeboat-dev/lifeboat/snapkit/schema"
)

// Benchmark inputs: benchSizeEnv sets the size of the generated snapshot
// in MB (default 16, so that CI stays fast; compare on 500 or more), or
// benchSnapshotEnv names an existing snapshot file to use instead.
const (
	benchSizeEnv     = "LIFEBOAT_RESTORE_BENCH_MB"
	benchSnapshotEnv = "LIFEBOAT_RESTORE_BENCH_SNAPSHOT"
)

var bench struct {
	once sync.Once
	snap string // the snapshot file
	err  error
}

// built is cmd/restore, built once per test process.
var built struct {
	once sync.Once
	dir  string
	bin  string
	err  error
}

// restoreBinary builds cmd/restore once and returns its path.
func restoreBinary(tb testing.TB) string {
	tb.Helper()
	built.once.Do(func() {
		if built.dir, built.err = os.MkdirTemp("", "restore-bin-"); built.err != nil {
			return
		}
		_, file, _, _ := runtime.Caller(0)
		built.bin = filepath.Join(built.dir, "restore")
		out, err := exec.Command("go", "build", "-o", built.bin, filepath.Join(filepath.Dir(file), "..", "cmd", "restore")).CombinedOutput()
		if err != nil {
			built.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if built.err != nil {
		tb.Fatal(built.err)
	}
	return built.bin
}

// benchSnapshot returns the benchmark snapshot, generated once per size
// and cached under the user cache dir (never in the repo), and builds
// cmd/restore.
func benchSnapshot(tb testing.TB) (snap, bin string) {
	tb.Helper()
	bench.once.Do(func() {
		if bench.snap = os.Getenv(benchSnapshotEnv); bench.snap != "" {
			return
		}
		mb := 16
		if s := os.Getenv(benchSizeEnv); s != "" {
			if mb, bench.err = strconv.Atoi(s); bench.err != nil {
				return
			}
		}
		start := time.Now()
		var made bool
		bench.snap, made, bench.err = benchkit.Cached(fmt.Sprintf("restore-snapshot-%dMB.db", mb), func(path string) error {
			tmp, err := os.MkdirTemp(filepath.Dir(path), "gen-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(tmp)
			return genSnapshot(filepath.Join(tmp, "db"), path, int64(mb)<<20)
		})
		if made {
			tb.Logf("generated a %d MB snapshot in %v: %s", mb, time.Since(start), bench.snap)
		}
	})
	if bench.err != nil {
		tb.Fatal(bench.err)
	}
	return bench.snap, restoreBinary(tb)
}

func TestMain(m *testing.M) {
	code := m.Run()
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
	os.Exit(code)
}

// genSnapshot writes a backend of about size bytes through schema (keys
// with 200-1000 byte values, overwritten a third of the time, a member, a
// consistent index and term) and saves it as a snapshot file with its SHA-256.
func genSnapshot(dbPath, snapPath string, size int64) error {
	db, err := schema.Open(dbPath, schema.Options{NoSync: true})
	if err != nil {
		return err
	}
	defer db.Close()
	rng := rand.New(rand.NewPCG(7, 7))
	value := make([]byte, 1000)
	for i := range value {
		value[i] = byte('a' + rng.IntN(26))
	}
	const perTx = 20000
	var written int64
	rev := int64(1)
	for written < size {
		err := db.Update(func(tx *bolt.Tx) error {
			if err := schema.CreateBuckets(tx); err != nil {
				return err
			}
			for range perTx {
				rev++
				n := rng.IntN(int(rev/3 + 1))
				kv := &mvccpb.KeyValue{
					Key:         fmt.Appendf(nil, "/registry/pods/ns-%d/pod-%d", n%100, n),
					ModRevision: rev, CreateRevision: rev, Version: 1,
					Value: value[:200+rng.IntN(800)],
				}
				if err := schema.PutKeyValue(tx, schema.Revision{Main: rev}, kv); err != nil {
					return err
				}
				written += int64(len(kv.Value) + len(kv.Key) + 40)
			}
			return schema.SetConsistentIndex(tx, uint64(rev))
		})
		if err != nil {
			return err
		}
	}
	err = db.Update(func(tx *bolt.Tx) error {
		if err := schema.SetTerm(tx, 2); err != nil {
			return err
		}
		if err := schema.SetConfState(tx, raftpb.ConfState{Voters: []uint64{1}}); err != nil {
			return err
		}
		return schema.PutMember(tx, schema.Member{ID: 1, Name: "old", PeerURLs: []string{"http://old:2380"}})
	})
	if err != nil {
		return err
	}
	f, err := os.Create(snapPath)
	if err != nil {
		return err
	}
	err = db.View(func(tx *bolt.Tx) error {
		_, err := snapkit.WriteSnapshot(tx, f)
		return err
	})
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func benchSize(b *testing.B, path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	return fi.Size()
}

// Snapshot in process: the copy with its SHA-256, the one bbolt
// transaction, the WAL and the syncs.
func BenchmarkSnapshot(b *testing.B) {
	snap, _ := benchSnapshot(b)
	b.SetBytes(benchSize(b, snap))
	for b.Loop() {
		out := filepath.Join(b.TempDir(), "out")
		o := SnapshotOptions{Path: snap, DataDir: out, BumpRevision: 1000, MarkCompacted: true}
		if _, err := Snapshot(context.Background(), nil, o); err != nil {
			b.Fatal(err)
		}
		os.RemoveAll(out)
	}
}

// The restore binary against etcdutl snapshot restore, same file, same
// flags (with and without --bump-revision), each a child process under
// /usr/bin/time for its peak RSS; and restore's --compact, which etcdutl
// has not (compare it with bump/etcdutl).
func BenchmarkSnapshotVsEtcdutl(b *testing.B) {
	snap, bin := benchSnapshot(b)
	bump := []string{"--bump-revision", "1000", "--mark-compacted"}
	for _, c := range []struct {
		name    string
		flags   []string
		etcdutl bool
	}{
		{"no-bump", nil, true},
		{"bump", bump, true},
		{"bump-compact", append(bump, "--compact"), false},
	} {
		args := func(argv ...string) func(out string) []string {
			return func(out string) []string {
				return append(append(argv, snap, "--data-dir", out, "--initial-cluster-token", "bench"), c.flags...)
			}
		}
		b.Run(c.name+"/lifeboat", func(b *testing.B) { runRestore(b, benchSize(b, snap), args(bin, "snapshot")) })
		if c.etcdutl {
			b.Run(c.name+"/etcdutl", func(b *testing.B) {
				runRestore(b, benchSize(b, snap), args(interoptest.Binary(b, "etcdutl"), "snapshot", "restore"))
			})
		}
	}
}

// runRestore runs the command argv(out) b.N times into fresh dirs and
// reports the child's peak RSS and CPU time (benchkit.Run).
func runRestore(b *testing.B, size int64, argv func(out string) []string) {
	b.SetBytes(size)
	var (
		peak int64
		cpu  time.Duration
		n    int
	)
	for b.Loop() {
		b.StopTimer()
		out := filepath.Join(b.TempDir(), "out")
		args := argv(out)
		b.StartTimer()
		u, err := benchkit.Run(context.Background(), exec.Command(args[0], args[1:]...))
		b.StopTimer()
		if errors.Is(err, benchkit.ErrNoTime) {
			b.Skip(err)
		}
		if err != nil {
			b.Fatal(err)
		}
		peak, cpu, n = max(peak, u.PeakRSS), cpu+u.CPU, n+1
		os.RemoveAll(out)
		b.StartTimer()
	}
	b.ReportMetric(float64(peak)/(1<<20), "peakRSS-MiB")
	b.ReportMetric(cpu.Seconds()/float64(n), "cpu-s/op")
}

// Drill C end to end on the benchmark snapshot: the plan (new-cluster),
// its apply for three members (restore, check with HashKV), and the three
// lifeboat members started in this process until each answers a
// linearizable read. It reports each phase's seconds from the start.
func BenchmarkDrillOnlyTheBackup(b *testing.B) {
	snap, _ := benchSnapshot(b)
	ctx := context.Background()
	var plan, apply, healthy time.Duration
	for b.Loop() {
		b.StopTimer()
		tc := newTestCluster(b, 3, "")
		dirs := map[string]string{}
		for _, m := range tc.layout.Members {
			dirs[m.Name] = m.DataDir
		}
		b.StartTimer()
		start := time.Now()
		p, err := MakePlan(ctx, testLogger(), PlanOptions{From: []string{snap}, Cluster: tc.specs(), MemberDirs: dirs})
		if err != nil {
			b.Fatal(err)
		}
		plan += time.Since(start)
		if _, err := Apply(ctx, testLogger(), p, ApplyOptions{}); err != nil {
			b.Fatal(err)
		}
		apply += time.Since(start)
		tc.startLifeboat(nil)
		for _, m := range tc.layout.Members {
			waitServes(b, tc.clientOf([]string{m.ClientURL}), p.Revision)
		}
		healthy += time.Since(start)
		b.StopTimer()
		tc.stopServers()
		tc.servers = nil
		b.StartTimer()
	}
	n := float64(b.N)
	b.ReportMetric(plan.Seconds()/n, "plan-s")
	b.ReportMetric(apply.Seconds()/n, "apply-s")
	b.ReportMetric(healthy.Seconds()/n, "healthy-s")
}

// waitServes waits, up to five minutes, until the member behind cli
// answers a linearizable read at revision rev or later.
func waitServes(tb testing.TB, cli *clientv3.Client, rev int64) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	for {
		r, err := cli.Get(ctx, "health")
		if err == nil && r.Header.Revision >= rev {
			return
		}
		select {
		case <-ctx.Done():
			tb.Fatalf("no member serves revision %d: %v", rev, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

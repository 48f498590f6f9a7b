package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/lifeboat-dev/lifeboat/internal/interoptest"
	"github.com/lifeboat-dev/lifeboat/walkit"
)

// The benchmarks read one generated WAL of $LIFEBOAT_BENCH_MIB MiB (default
// 256) of entry data: puts of 100-1000 byte values, 1000 entries per Save,
// as a busy member writes them. It is kept between runs under
// $LIFEBOAT_BENCH_DIR (default: the system temp dir).
func benchWALBytes() int64 {
	if n, err := strconv.Atoi(os.Getenv("LIFEBOAT_BENCH_MIB")); err == nil && n > 0 {
		return int64(n) << 20
	}
	return 256 << 20
}

// benchWAL returns the WAL dir of the benchmark, generating it if needed.
func benchWAL(tb testing.TB) string {
	tb.Helper()
	root := os.Getenv("LIFEBOAT_BENCH_DIR")
	if root == "" {
		root = os.TempDir()
	}
	dir := filepath.Join(root, fmt.Sprintf("lifeboat-walkit-bench-%dMiB", benchWALBytes()>>20))
	done := filepath.Join(dir, "complete")
	wal := filepath.Join(dir, "wal")
	if _, err := os.Stat(done); err == nil {
		return wal
	}
	if err := os.RemoveAll(dir); err != nil {
		tb.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		tb.Fatal(err)
	}
	start := time.Now()
	if err := generateWAL(wal, benchWALBytes()); err != nil {
		tb.Fatalf("generate %s: %v", wal, err)
	}
	if err := os.WriteFile(done, nil, 0o600); err != nil {
		tb.Fatal(err)
	}
	tb.Logf("generated %s in %v", wal, time.Since(start).Round(time.Millisecond))
	return wal
}

// generateWAL writes at least size bytes of entry data with walkit's writer.
func generateWAL(dir string, size int64) error {
	w, err := walkit.Create(nil, dir, walkit.Metadata{NodeID: 0x8e9e05c52164694d, ClusterID: 0xcdf818194e3a8c32}.Marshal())
	if err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var index uint64
	for written := int64(0); written < size; {
		ents := make([]raftpb.Entry, 1000)
		for i := range ents {
			index++
			val := make([]byte, 100+rng.IntN(901))
			for j := range val {
				val[j] = byte(rng.Uint32())
			}
			rr := etcdserverpb.InternalRaftRequest{
				Header: &etcdserverpb.RequestHeader{ID: index},
				Put:    &etcdserverpb.PutRequest{Key: fmt.Appendf(nil, "/registry/bench/%02d/key-%09d", index%16, index), Value: val},
			}
			data, err := rr.Marshal()
			if err != nil {
				return err
			}
			ents[i] = raftpb.Entry{Term: 2, Index: index, Type: raftpb.EntryNormal, Data: data}
			written += int64(len(data))
		}
		if err := w.Save(raftpb.HardState{Term: 2, Vote: 0x8e9e05c52164694d, Commit: index}, ents); err != nil {
			w.Close()
			return err
		}
	}
	return w.Close()
}

// walSize is what walkit verify counts: the bytes of records (frames
// included), the MB of MB/s, and the entries.
type walSize struct{ Bytes, Entries int64 }

func measureWAL(tb testing.TB, dir string) walSize {
	tb.Helper()
	var out bytes.Buffer
	if code := Run(context.Background(), []string{"verify", "-w", "json", dir}, &out, io.Discard); code != ExitOK {
		tb.Fatalf("walkit verify %s: exit %d", dir, code)
	}
	var s walSize
	if err := json.Unmarshal(out.Bytes(), &s); err != nil {
		tb.Fatal(err)
	}
	return s
}

func benchmarkCommand(b *testing.B, args ...string) {
	dir := benchWAL(b)
	b.SetBytes(measureWAL(b, dir).Bytes)
	b.ResetTimer()
	for b.Loop() {
		if code := Run(context.Background(), append(args, dir), io.Discard, io.Discard); code != ExitOK {
			b.Fatalf("walkit %v: exit %d", args, code)
		}
	}
}

func BenchmarkVerifyWAL256MB(b *testing.B) { benchmarkCommand(b, "verify") }
func BenchmarkStatsWAL256MB(b *testing.B)  { benchmarkCommand(b, "stats", "-w", "json") }
func BenchmarkDumpWAL256MB(b *testing.B)   { benchmarkCommand(b, "dump", "-w", "jsonl") }

// BenchmarkCRC32C256MB is the ceiling: CRC-32C over the same bytes, already
// in memory.
func BenchmarkCRC32C256MB(b *testing.B) {
	data := readSegments(b, benchWAL(b))
	b.SetBytes(int64(len(data)))
	tab := crc32.MakeTable(crc32.Castagnoli)
	b.ResetTimer()
	for b.Loop() {
		crc32.Update(0, tab, data)
	}
}

func readSegments(tb testing.TB, dir string) []byte {
	tb.Helper()
	segs, err := walkit.ListSegments(dir)
	if err != nil {
		tb.Fatal(err)
	}
	var all []byte
	for _, s := range segs {
		b, err := os.ReadFile(s.Path)
		if err != nil {
			tb.Fatal(err)
		}
		all = append(all, b...)
	}
	return all[:measureWAL(tb, dir).Bytes]
}

// measurement is one row of the side-by-side table.
type measurement struct {
	what    string
	elapsed time.Duration
	maxRSS  int64 // bytes
}

// runMeasured runs a program and returns its wall time and peak RSS.
func runMeasured(t *testing.T, what string, name string, args ...string) measurement {
	t.Helper()
	cmd := exec.Command(name, args...)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = io.Discard, &stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, stderr.String())
	}
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	return measurement{what: what, elapsed: time.Since(start), maxRSS: ru.Maxrss * 1024}
}

// TestSideBySide measures the built walkit binary against etcd's own WAL
// reader (the interop oracle walread --bench) on the benchmark WAL, and
// prints a Markdown table for BENCHMARKS.md. It runs only when
// LIFEBOAT_BENCH=1, since it writes 256 MiB and reads it many times.
func TestSideBySide(t *testing.T) {
	if os.Getenv("LIFEBOAT_BENCH") != "1" {
		t.Skip("set LIFEBOAT_BENCH=1 to run the side-by-side WAL benchmark")
	}
	walread := interoptest.Oracle(t, "walread")
	dir := benchWAL(t)
	bin := filepath.Join(t.TempDir(), "walkit")
	build := exec.Command("go", "build", "-o", bin, "github.com/lifeboat-dev/lifeboat/cmd/walkit")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	ws := measureWAL(t, dir)
	size := ws.Bytes
	runs := 3
	if n, err := strconv.Atoi(os.Getenv("LIFEBOAT_BENCH_RUNS")); err == nil && n > 0 {
		runs = n
	}
	best := func(what, name string, args ...string) measurement {
		var m measurement
		for i := range runs {
			r := runMeasured(t, what, name, args...)
			if i == 0 || r.elapsed < m.elapsed {
				m.elapsed = r.elapsed
			}
			m.what, m.maxRSS = r.what, max(m.maxRSS, r.maxRSS)
		}
		return m
	}
	rows := []measurement{
		best("etcd wal.ReadAll (walread --bench)", walread, "--bench", dir),
		best("walkit verify", bin, "verify", dir),
		best("walkit stats", bin, "stats", "-w", "json", dir),
		best("walkit dump -w jsonl > /dev/null", bin, "dump", "-w", "jsonl", dir),
	}
	crc := testing.Benchmark(BenchmarkCRC32C256MB)
	var b strings.Builder
	fmt.Fprintf(&b, "WAL: %d entries, %.1f MB of records in %s (%s/%s, %d CPUs, %s, %s)\n\n",
		ws.Entries, float64(size)/1e6, dir, runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version(), time.Now().UTC().Format(time.DateOnly))
	b.WriteString("| what | best of " + strconv.Itoa(runs) + " | MB/s | peak RSS |\n|---|---:|---:|---:|\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "| %s | %v | %.0f | %.1f MiB |\n", r.what, r.elapsed.Round(time.Millisecond),
			float64(size)/1e6/r.elapsed.Seconds(), float64(r.maxRSS)/(1<<20))
	}
	fmt.Fprintf(&b, "| CRC-32C alone, in memory (Go, %s) | %v | %.0f | - |\n", runtime.GOARCH,
		time.Duration(crc.NsPerOp()).Round(time.Millisecond), float64(crc.Bytes)*float64(crc.N)/1e6/crc.T.Seconds())
	speedup := rows[0].elapsed.Seconds() / rows[1].elapsed.Seconds()
	fmt.Fprintf(&b, "\nverify vs etcd: %.1fx faster\n", speedup)
	t.Log("\n" + b.String())
	// The targets: memory bounded whatever the WAL size; verify 4x etcd.
	for _, r := range rows[1:] {
		if r.maxRSS >= 64<<20 {
			t.Errorf("%s: peak RSS %.1f MiB, want < 64 MiB", r.what, float64(r.maxRSS)/(1<<20))
		}
	}
	if speedup < 4 {
		t.Errorf("walkit verify is %.1fx etcd's reader, want >= 4x", speedup)
	}
}

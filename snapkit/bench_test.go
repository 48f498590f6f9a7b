package snapkit

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lifeboat-dev/lifeboat/internal/interoptest"
)

// benchSpec makes a snapshot of about 700 MB: 870,000 changes of 300,000
// keys with 100-900 byte values, deletes, leases and a compaction.
var benchSpec = genSpec{Revisions: 580_000, Keys: 300_000, MaxOps: 2, ValueMin: 100, ValueMax: 900,
	DeletePct: 5, Leases: 1000, CompactAt: 150_000, Seed: 42}

var bench struct {
	once sync.Once
	dir  string
	snap string // the snapshot file
	bin  string // cmd/snapkit, built
	err  error
}

// benchSnapshot generates the benchmark snapshot once per run into a
// temporary directory (SNAPKIT_BENCH_SNAPSHOT names an existing file
// instead), and builds cmd/snapkit beside it.
func benchSnapshot(b *testing.B) (snap, bin string) {
	b.Helper()
	bench.once.Do(func() {
		bench.dir, bench.err = os.MkdirTemp("", "snapkit-bench-")
		if bench.err != nil {
			return
		}
		bench.snap = os.Getenv("SNAPKIT_BENCH_SNAPSHOT")
		if bench.snap == "" {
			bench.snap = filepath.Join(bench.dir, "snapshot.db")
			start := time.Now()
			genDB(b, filepath.Join(bench.dir, "db"), bench.snap, benchSpec)
			os.Remove(filepath.Join(bench.dir, "db"))
			b.Logf("generated %s in %v", bench.snap, time.Since(start))
		}
		_, file, _, _ := runtime.Caller(0)
		bench.bin = filepath.Join(bench.dir, "snapkit")
		out, err := exec.Command("go", "build", "-o", bench.bin, filepath.Join(filepath.Dir(file), "..", "cmd", "snapkit")).CombinedOutput()
		if err != nil {
			bench.err = &exec.Error{Name: "go build: " + string(out), Err: err}
		}
	})
	if bench.err != nil {
		b.Fatal(bench.err)
	}
	return bench.snap, bench.bin
}

func TestMain(m *testing.M) {
	code := m.Run()
	if bench.dir != "" {
		os.RemoveAll(bench.dir)
	}
	os.Exit(code)
}

// runProcess runs argv b.N times under /usr/bin/time and reports the
// child's peak RSS and the CPU time it used (user and system, all
// threads), which a loaded machine disturbs less than the wall time.
// (The rusage that Go's os/exec returns is no use for the RSS: a child
// started with vfork inherits this process's high-water mark.)
func runProcess(b *testing.B, size int64, argv ...string) {
	const timeBin = "/usr/bin/time"
	if _, err := os.Stat(timeBin); err != nil {
		b.Skipf("%s is needed to measure the child's RSS: %v", timeBin, err)
	}
	b.SetBytes(size)
	var (
		peakKB   int64
		cpu      float64
		n        int
		out, err bytes.Buffer
	)
	for b.Loop() {
		out.Reset()
		err.Reset()
		cmd := exec.Command(timeBin, append([]string{"-f", "%M %U %S"}, argv...)...)
		cmd.Stdout, cmd.Stderr = &out, &err
		if e := cmd.Run(); e != nil {
			b.Fatalf("%v: %v\n%s", argv, e, err.String())
		}
		lines := strings.Split(strings.TrimSpace(err.String()), "\n")
		var kb int64
		var user, sys float64
		if _, e := fmt.Sscan(lines[len(lines)-1], &kb, &user, &sys); e != nil {
			b.Fatalf("%s output %q: %v", timeBin, err.String(), e)
		}
		peakKB = max(peakKB, kb)
		cpu += user + sys
		n++
	}
	b.ReportMetric(float64(peakKB)/1024, "peakRSS-MiB")
	b.ReportMetric(cpu/float64(n), "cpu-s/op")
}

func fileSize(b *testing.B, path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	return fi.Size()
}

// `snapkit status`: etcdutl's numbers, the trailer verified, every check.
func BenchmarkStatus700MB(b *testing.B) {
	snap, bin := benchSnapshot(b)
	runProcess(b, fileSize(b, snap), bin, "status", "-w", "json", snap)
}

// `snapkit verify`: the same pass, every finding listed.
func BenchmarkVerify700MB(b *testing.B) {
	snap, bin := benchSnapshot(b)
	runProcess(b, fileSize(b, snap), bin, "verify", snap)
}

// `etcdutl snapshot status`, on the same file, for comparison. It opens
// the file read-only, so no copy is needed.
func BenchmarkEtcdutlStatus700MB(b *testing.B) {
	etcdutl := interoptest.Binary(b, "etcdutl")
	snap, _ := benchSnapshot(b)
	runProcess(b, fileSize(b, snap), etcdutl, "snapshot", "status", "-w", "json", snap)
}

// Inspect in process, without and with the trailer.
func BenchmarkInspect700MB(b *testing.B) {
	snap, _ := benchSnapshot(b)
	for _, skip := range []bool{true, false} {
		name := "walk+trailer"
		if skip {
			name = "walk"
		}
		b.Run(name, func(b *testing.B) {
			b.SetBytes(fileSize(b, snap))
			for b.Loop() {
				if _, err := Inspect(context.Background(), snap, Options{SkipTrailer: skip}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// Raw SHA-256 of the file: the floor for anything that checks the trailer.
func BenchmarkVerifyTrailer700MB(b *testing.B) {
	snap, _ := benchSnapshot(b)
	src, err := Resolve(snap)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(src.DBSize)
	for b.Loop() {
		if tr, err := VerifyTrailer(context.Background(), src, nil); err != nil || !tr.Valid {
			b.Fatalf("%+v %v", tr, err)
		}
	}
}

package walkit

import (
	"crypto/rand"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
)

// benchWALs caches the WALs the benchmarks generate, one per size, for the
// life of the test binary (removed by TestMain).
var benchWALs struct {
	sync.Mutex
	root string
	dirs map[int64]string
}

func TestMain(m *testing.M) {
	code := m.Run()
	if benchWALs.root != "" {
		os.RemoveAll(benchWALs.root)
	}
	os.Exit(code)
}

const benchEntryData = 1024 // bytes of data per entry: a put of a small value

// benchWAL returns a WAL of at least size bytes of records, written by
// walkit in 64,000,000-byte segments: entries of 1 KiB, saved 64 at a time
// with a HardState, as a busy member writes them.
func benchWAL(b *testing.B, size int64) string {
	b.Helper()
	benchWALs.Lock()
	defer benchWALs.Unlock()
	if dir, ok := benchWALs.dirs[size]; ok {
		return dir
	}
	if benchWALs.root == "" {
		root, err := os.MkdirTemp("", "walkit-bench-")
		if err != nil {
			b.Fatal(err)
		}
		benchWALs.root, benchWALs.dirs = root, map[int64]string{}
	}
	dir := filepath.Join(benchWALs.root, fmt.Sprint(size))
	w, err := Create(nil, dir, Metadata{NodeID: 1, ClusterID: 2}.Marshal())
	if err != nil {
		b.Fatal(err)
	}
	w.SetUnsafeNoFsync()
	data := make([]byte, benchEntryData)
	rand.Read(data)
	ents := make([]raftpb.Entry, 64)
	var index uint64
	for written := int64(0); written < size; {
		for i := range ents {
			index++
			ents[i] = raftpb.Entry{Term: 3, Index: index, Data: data}
		}
		if err := w.Save(raftpb.HardState{Term: 3, Vote: 1, Commit: index}, ents); err != nil {
			b.Fatal(err)
		}
		written += int64(len(ents)) * (benchEntryData + 32)
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	benchWALs.dirs[size] = dir
	return dir
}

// walBytes is the number of record bytes in dir: what a reader must go through.
func walBytes(b *testing.B, dir string) int64 {
	rep, err := Verify(dir, VerifyOptions{})
	if err != nil || !rep.OK() {
		b.Fatalf("%v %+v", err, rep)
	}
	return rep.Bytes
}

func benchmarkVerify(b *testing.B, size int64) {
	dir := benchWAL(b, size)
	b.SetBytes(walBytes(b, dir))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		rep, err := Verify(dir, VerifyOptions{})
		if err != nil || !rep.OK() {
			b.Fatal(err)
		}
	}
}

func benchmarkReadAll(b *testing.B, size int64) {
	dir := benchWAL(b, size)
	b.SetBytes(walBytes(b, dir))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		w, err := OpenForRead(nil, dir, Snapshot{})
		if err != nil {
			b.Fatal(err)
		}
		if _, _, _, err := w.ReadAll(); err != nil {
			b.Fatal(err)
		}
		w.Close()
	}
}

func BenchmarkVerifySegment64MB(b *testing.B)  { benchmarkVerify(b, 60e6) }
func BenchmarkReadAllSegment64MB(b *testing.B) { benchmarkReadAll(b, 60e6) }

func BenchmarkVerifyWAL256MB(b *testing.B) {
	if testing.Short() {
		b.Skip("generates a 256 MB WAL; run without -short")
	}
	benchmarkVerify(b, 256e6)
}

func BenchmarkReadAllWAL256MB(b *testing.B) {
	if testing.Short() {
		b.Skip("generates a 256 MB WAL; run without -short")
	}
	benchmarkReadAll(b, 256e6)
}

// BenchmarkSaveNoFsync1KiBEntries is the writer's own cost: 64 entries and a
// HardState per Save, without the disk's fdatasync.
func BenchmarkSaveNoFsync1KiBEntries(b *testing.B) {
	w, err := Create(nil, filepath.Join(b.TempDir(), "wal"), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	w.SetUnsafeNoFsync()
	data := make([]byte, benchEntryData)
	ents := make([]raftpb.Entry, 64)
	var index uint64
	b.SetBytes(int64(len(ents) * benchEntryData))
	b.ReportAllocs()
	for b.Loop() {
		for i := range ents {
			index++
			ents[i] = raftpb.Entry{Term: 1, Index: index, Data: data}
		}
		if err := w.Save(raftpb.HardState{Term: 1, Commit: index}, ents); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCRC32C is the machine's raw CRC-32C speed, the ceiling for Verify.
func BenchmarkCRC32C(b *testing.B) {
	buf := make([]byte, 1<<20)
	rand.Read(buf)
	b.SetBytes(int64(len(buf)))
	var c uint32
	for b.Loop() {
		c = crc32.Update(c, crcTable, buf)
	}
	_ = c
}

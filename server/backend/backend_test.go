package backend

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	bolt "go.etcd.io/bbolt"

	"github.com/lifeboat-dev/lifeboat/snapkit/schema"
)

func open(t testing.TB, cfg Config) *Backend {
	t.Helper()
	if cfg.Path == "" {
		cfg.Path = filepath.Join(t.TempDir(), "db")
	}
	cfg.NoSync = true
	cfg.MmapSize = 1 << 20
	b, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func rk(main int64) []byte { return schema.RevisionBytes(schema.Revision{Main: main}) }

func put(t testing.TB, b *Backend, main int64, v string) {
	t.Helper()
	bt := b.BatchTx()
	bt.Lock()
	defer bt.Unlock()
	if err := bt.PutKey(rk(main), []byte(v)); err != nil {
		t.Fatal(err)
	}
}

// committed reads the key bucket as bbolt has it on disk.
func committed(t *testing.T, b *Backend, main int64) []byte {
	t.Helper()
	var v []byte
	if err := b.View(func(tx *bolt.Tx) error {
		v = bytes.Clone(tx.Bucket(schema.KeyBucket).Get(rk(main)))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestReadsSeePublishedWritesBeforeCommit(t *testing.T) {
	b := open(t, Config{BatchInterval: time.Hour})
	bt := b.BatchTx()
	bt.Lock()
	if err := bt.PutKey(rk(1), []byte("one")); err != nil {
		t.Fatal(err)
	}
	r, err := b.ReadTx()
	if err != nil {
		t.Fatal(err)
	}
	if v := r.GetKey(rk(1)); v != nil {
		t.Errorf("a write is visible before Unlock: %q", v)
	}
	r.End()
	if v := bt.GetKey(rk(1)); string(v) != "one" {
		t.Errorf("the batch does not see its own write: %q", v)
	}
	bt.Unlock()

	r, err = b.ReadTx()
	if err != nil {
		t.Fatal(err)
	}
	defer r.End()
	if v := r.GetKey(rk(1)); string(v) != "one" {
		t.Errorf("published write: got %q, want one", v)
	}
	if v := committed(t, b, 1); v != nil {
		t.Errorf("committed before the interval: %q", v)
	}
}

func TestCommitTriggers(t *testing.T) {
	tests := []struct {
		name  string
		cfg   Config
		puts  int
		force bool
	}{
		{"batch limit", Config{BatchInterval: time.Hour, BatchLimit: 3}, 3, false},
		{"interval", Config{BatchInterval: 20 * time.Millisecond}, 1, false},
		{"force commit", Config{BatchInterval: time.Hour}, 1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := open(t, tt.cfg)
			for i := 1; i <= tt.puts; i++ {
				put(t, b, int64(i), "v")
			}
			if tt.force {
				if err := b.ForceCommit(); err != nil {
					t.Fatal(err)
				}
			}
			deadline := time.Now().Add(5 * time.Second)
			for committed(t, b, int64(tt.puts)) == nil {
				if time.Now().After(deadline) {
					t.Fatal("never committed")
				}
				time.Sleep(5 * time.Millisecond)
			}
		})
	}
}

func TestConsistentIndexInTheSameTransaction(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	b := open(t, Config{Path: path, BatchInterval: time.Hour})
	bt := b.BatchTx()
	bt.Lock()
	if err := bt.PutKey(rk(1), []byte("a")); err != nil {
		t.Fatal(err)
	}
	bt.SetConsistentIndex(7, 2)
	bt.Unlock()
	if err := b.ForceCommit(); err != nil {
		t.Fatal(err)
	}
	// Entry 8 is applied but not committed: a copy of the file now is what
	// a crash would leave.
	bt.Lock()
	if err := bt.PutKey(rk(2), []byte("b")); err != nil {
		t.Fatal(err)
	}
	bt.SetConsistentIndex(8, 2)
	bt.Unlock()
	crashed := filepath.Join(t.TempDir(), "crashed")
	copyFile(t, path, crashed)

	db, err := schema.Open(crashed, schema.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.View(func(tx *bolt.Tx) error {
		ci, err := schema.ConsistentIndex(tx)
		if err != nil {
			return err
		}
		term, err := schema.Term(tx)
		if err != nil {
			return err
		}
		if ci != 7 || term != 2 {
			t.Errorf("consistent index %d term %d, want 7 2", ci, term)
		}
		if v := tx.Bucket(schema.KeyBucket).Get(rk(2)); v != nil {
			t.Errorf("data of entry 8 committed without its index")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestRangeKeysMergesBufferAndDisk(t *testing.T) {
	b := open(t, Config{BatchInterval: time.Hour})
	for i := int64(1); i <= 4; i++ {
		put(t, b, i, fmt.Sprint("disk", i))
	}
	if err := b.ForceCommit(); err != nil {
		t.Fatal(err)
	}
	for i := int64(5); i <= 7; i++ {
		put(t, b, i, fmt.Sprint("buf", i))
	}
	r, err := b.ReadTx()
	if err != nil {
		t.Fatal(err)
	}
	defer r.End()
	tests := []struct {
		name     string
		from, to int64
		stop     int
		want     []string
	}{
		{"all", 0, 0, 0, []string{"disk1", "disk2", "disk3", "disk4", "buf5", "buf6", "buf7"}},
		{"across the edge", 3, 6, 0, []string{"disk3", "disk4", "buf5"}},
		{"buffer only", 6, 0, 0, []string{"buf6", "buf7"}},
		{"stops", 1, 0, 2, []string{"disk1", "disk2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var to []byte
			if tt.to > 0 {
				to = rk(tt.to)
			}
			var got []string
			r.RangeKeys(rk(tt.from), to, func(_, v []byte) bool {
				got = append(got, string(v))
				return tt.stop == 0 || len(got) < tt.stop
			})
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestReaderKeepsItsViewAcrossCommit(t *testing.T) {
	b := open(t, Config{BatchInterval: time.Hour})
	put(t, b, 1, "a")
	r, err := b.ReadTx()
	if err != nil {
		t.Fatal(err)
	}
	defer r.End()
	if err := b.ForceCommit(); err != nil {
		t.Fatal(err)
	}
	put(t, b, 2, "b")
	if v := r.GetKey(rk(1)); string(v) != "a" {
		t.Errorf("lost a write across a commit: %q", v)
	}
	if v := r.GetKey(rk(2)); v != nil {
		t.Errorf("sees a write made after it began: %q", v)
	}
}

func TestDefragSnapshotAndMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	b := open(t, Config{BatchInterval: time.Hour, Registerer: reg})
	for i := int64(1); i <= 2000; i++ {
		put(t, b, i, string(bytes.Repeat([]byte("x"), 512)))
	}
	if err := b.ForceCommit(); err != nil {
		t.Fatal(err)
	}
	bt := b.BatchTx()
	bt.Lock()
	for i := int64(1); i <= 1900; i++ {
		if err := bt.DeleteKey(rk(i)); err != nil {
			t.Fatal(err)
		}
	}
	bt.Unlock()
	if err := b.ForceCommit(); err != nil {
		t.Fatal(err)
	}
	before, inUse := b.Size(), b.SizeInUse()
	if inUse >= before {
		t.Errorf("size in use %d not below size %d after deletes", inUse, before)
	}
	hash, err := b.Hash()
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Defrag(); err != nil {
		t.Fatal(err)
	}
	if b.Size() >= before {
		t.Errorf("defrag did not shrink: %d -> %d", before, b.Size())
	}
	if after, err := b.Hash(); err != nil || after != hash {
		t.Errorf("hash changed by defrag: %08x -> %08x (%v)", hash, after, err)
	}
	put(t, b, 2001, "after")
	var buf bytes.Buffer
	n, err := b.Snapshot(&buf)
	if err != nil || n != int64(buf.Len()) {
		t.Fatalf("snapshot: %d bytes, %v", n, err)
	}
	snap := filepath.Join(t.TempDir(), "snap.db")
	if err := os.WriteFile(snap, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	db, err := schema.Open(snap, schema.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(schema.KeyBucket).Get(rk(2001)); string(v) != "after" {
			t.Errorf("snapshot lacks the last write: %q", v)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	for _, mf := range mfs {
		found[mf.GetName()] = true
	}
	for _, name := range []string{"etcd_disk_backend_commit_duration_seconds", "etcd_disk_backend_defrag_duration_seconds",
		"etcd_mvcc_db_total_size_in_bytes", "etcd_mvcc_db_total_size_in_use_in_bytes"} {
		if !found[name] {
			t.Errorf("metric %s missing", name)
		}
	}
}

func TestClosedBackend(t *testing.T) {
	b := open(t, Config{})
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	bt := b.BatchTx()
	bt.Lock()
	defer bt.Unlock()
	if err := bt.PutKey(rk(1), nil); err != ErrClosed {
		t.Errorf("put after close: %v, want %v", err, ErrClosed)
	}
}

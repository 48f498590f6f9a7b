package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/lifeboat-dev/lifeboat/interop/internal/fixturetest"
)

// etcdBinDir builds (or finds) etcd v3.6 with build-etcd and returns its
// directory; it skips the test when that fails, unless LIFEBOAT_INTEROP=require,
// and at once under LIFEBOAT_INTEROP=off.
func etcdBinDir(t *testing.T) string {
	t.Helper()
	if os.Getenv("LIFEBOAT_INTEROP") == "off" {
		t.Skip("LIFEBOAT_INTEROP=off")
	}
	out, err := exec.Command("go", "run", "../build-etcd", "etcd", "etcdctl", "etcdutl").Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		if os.Getenv("LIFEBOAT_INTEROP") == "require" {
			t.Fatalf("build-etcd: %v\n%s", err, stderr)
		}
		t.Skipf("real etcd unavailable (set LIFEBOAT_INTEROP=require to fail): %v\n%s", err, stderr)
	}
	first, _, _ := strings.Cut(string(out), "\n")
	return filepath.Dir(first)
}

// A full run against real etcd v3.6 on other ports than generate.sh uses.
// The KV hash depends only on the seeded workload, so it must equal the one
// recorded in the committed fixtures/v3.6: they were made by this program.
func TestGenerateV36(t *testing.T) {
	if testing.Short() {
		t.Skip("starts four etcd members")
	}
	out := filepath.Join(t.TempDir(), "v3.6")
	lg := slog.New(slog.NewTextHandler(io.Discard, nil))
	args := []string{"--bin", etcdBinDir(t), "--out", out, "--token", "genfixtures-test", "--port-base", "27480"}
	if err := run(lg, args); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"VERSION", "m1.tar.gz", "m2.tar.gz", "m3.tar.gz", "solo.tar.gz", "snapshot.db",
		"snapshot-status.json", "endpoint-status.json", "endpoint-hashkv.json", "members.json"} {
		if _, err := os.Stat(filepath.Join(out, name)); err != nil {
			t.Errorf("missing %s: %v", name, err)
		}
	}
	var status struct{ Revision int64 }
	readJSON(t, filepath.Join(out, "snapshot-status.json"), &status)
	if status.Revision != 657 {
		t.Errorf("snapshot revision %d, want 657 (500 puts, 2 deletes, 2 leased puts, a revoke, a txn, 150 puts)", status.Revision)
	}
	if got, want := kvHash(t, filepath.Join(out, "endpoint-hashkv.json")), kvHash(t, fixturetest.Path("v3.6", "endpoint-hashkv.json")); got != want {
		t.Errorf("KV hash %d, the committed fixtures/v3.6 have %d: regenerate them with fixtures/generate.sh", got, want)
	}
	snaps := archived(t, filepath.Join(out, "solo.tar.gz"), ".snap")
	if len(snaps) != 2 {
		t.Errorf("solo has .snap files %v, want 2 from --snapshot-count 50", snaps)
	}
	if wals := archived(t, filepath.Join(out, "m1.tar.gz"), ".wal"); len(wals) == 0 || !strings.HasPrefix(wals[0], "m1/member/wal/") {
		t.Errorf("m1 has WAL files %v, want m1/member/wal/*.wal", wals)
	}
}

func TestArchiveIsDeterministic(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "member", "wal"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "member", "wal", "x.wal"), make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	var got [][]byte
	for i := range 2 {
		dst := filepath.Join(t.TempDir(), "a.tar.gz")
		if i == 1 { // a later mtime must not change the archive
			if err := os.Chtimes(filepath.Join(dir, "member", "wal", "x.wal"), archiveTime, archiveTime.AddDate(1, 0, 0)); err != nil {
				t.Fatal(err)
			}
		}
		if err := archive(dst, dir, "m9"); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(dst)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, b)
		if names := archived(t, dst, ""); !slices.Equal(names, []string{"m9/", "m9/member/", "m9/member/wal/", "m9/member/wal/x.wal"}) {
			t.Fatalf("archive holds %v", names)
		}
	}
	if !bytes.Equal(got[0], got[1]) {
		t.Fatal("two archives of the same files differ")
	}
	if len(got[0]) > 64<<10 {
		t.Fatalf("1 MiB of zeros archived to %d bytes", len(got[0]))
	}
}

func TestUsage(t *testing.T) {
	lg := slog.New(slog.NewTextHandler(io.Discard, nil))
	if err := run(lg, []string{"--out", t.TempDir()}); err == nil || !strings.Contains(err.Error(), "usage") {
		t.Fatalf("err = %v, want usage", err)
	}
	err := run(lg, []string{"--bin", t.TempDir(), "--out", t.TempDir(), "--token", "x"})
	if err == nil || !strings.Contains(err.Error(), "etcd") {
		t.Fatalf("err = %v, want the missing etcd binary named", err)
	}
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func kvHash(t *testing.T, path string) uint32 {
	t.Helper()
	var recs []struct{ HashKV struct{ Hash uint32 } }
	readJSON(t, path, &recs)
	if len(recs) == 0 {
		t.Fatalf("%s: no members", path)
	}
	return recs[0].HashKV.Hash
}

// archived lists the names in a .tar.gz that end with suffix.
func archived(t *testing.T, path, suffix string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	tr := tar.NewReader(zr)
	var names []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return names
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if strings.HasSuffix(h.Name, suffix) {
			names = append(names, h.Name)
		}
	}
}

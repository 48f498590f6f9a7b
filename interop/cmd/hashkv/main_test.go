package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lifeboat-dev/lifeboat/interop/internal/fixturetest"
)

// The db of a stopped member must hash as the live member did just before
// the fixture was taken (endpoint-hashkv.json), and hashkv must not touch it.
func TestMatchesLiveHashKV(t *testing.T) {
	var live []struct {
		HashKV struct {
			Header          struct{ Revision int64 }
			Hash            uint32
			CompactRevision int64 `json:"compact_revision"`
		}
	}
	raw, err := os.ReadFile(fixturetest.Path("v3.6", "endpoint-hashkv.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &live); err != nil || len(live) == 0 {
		t.Fatalf("endpoint-hashkv.json: %v", err)
	}
	want := live[0].HashKV
	db := filepath.Join(fixturetest.DataDir(t, "v3.6", "m1"), "member", "snap", "db")
	before, err := os.ReadFile(db)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := run([]string{"--rev", itoa(want.Header.Revision), db}, &buf); err != nil {
		t.Fatal(err)
	}
	var got Output
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got.Hash != want.Hash || got.CompactRevision != want.CompactRevision || got.HashRevision != want.Header.Revision {
		t.Fatalf("hashkv = %+v, live member said %+v", got, want)
	}
	after, err := os.ReadFile(db)
	if err != nil || !bytes.Equal(before, after) {
		t.Fatalf("hashkv modified its input %s (%v)", db, err)
	}

	err = run([]string{"--rev", itoa(want.CompactRevision - 1), db}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "compacted") {
		t.Fatalf("hash below the compaction: err = %v, want etcd's compacted error", err)
	}
}

func itoa(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}

func TestNotADB(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	if err := os.WriteFile(path, bytes.Repeat([]byte("junk"), 4096), 0o600); err != nil {
		t.Fatal(err)
	}
	err := run([]string{path}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "not a bbolt db") {
		t.Fatalf("err = %v, want it to name %s as not a bbolt db", err, path)
	}
}

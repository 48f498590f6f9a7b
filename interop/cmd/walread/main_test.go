package main

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lifeboat-dev/lifeboat/interop/internal/fixturetest"
)

func readWAL(t *testing.T, args ...string) Output {
	t.Helper()
	var buf bytes.Buffer
	if err := run(args, &buf); err != nil {
		t.Fatalf("walread %v: %v", args, err)
	}
	var out Output
	if err := json.Unmarshal(buf.Bytes(), &out); err != nil {
		t.Fatalf("walread %v printed %q: %v", args, buf.String(), err)
	}
	return out
}

func TestReadFixtureMember(t *testing.T) {
	dir := filepath.Join(fixturetest.DataDir(t, "v3.6", "m1"), "member", "wal")
	out := readWAL(t, dir)
	if out.Metadata == "" || len(out.Entries) == 0 {
		t.Fatalf("no metadata or entries: %+v", out)
	}
	for i, e := range out.Entries {
		if e.Index != uint64(i+1) {
			t.Fatalf("entry %d has index %d, want %d", i, e.Index, i+1)
		}
	}
	if last := out.Entries[len(out.Entries)-1].Index; out.HardState.Commit != last {
		t.Errorf("commit %d, last entry %d: a cleanly stopped member has committed all it holds", out.HardState.Commit, last)
	}
	if len(out.Snapshots) < 2 || out.Snapshots[0].Index != 0 {
		t.Fatalf("snapshots = %+v, want the empty one and the --snapshot-count ones", out.Snapshots)
	}
	s := out.Snapshots[len(out.Snapshots)-1]
	if s.ConfState == nil || len(s.ConfState.Voters) != 3 {
		t.Fatalf("last snapshot %+v: want a conf state with 3 voters", s)
	}

	at := readWAL(t, "--snap-index", itoa(s.Index), "--snap-term", itoa(s.Term), dir)
	if len(at.Entries) == 0 || at.Entries[0].Index != s.Index+1 {
		t.Fatalf("opened at snapshot %d: first entry %+v, want index %d", s.Index, at.Entries[:1], s.Index+1)
	}

	var buf bytes.Buffer
	err := run([]string{"--snap-index", itoa(s.Index), "--snap-term", itoa(s.Term + 1), dir}, &buf)
	if err == nil || !strings.Contains(err.Error(), "snapshot mismatch") {
		t.Fatalf("open at a wrong term: err = %v, want etcd's snapshot mismatch", err)
	}

	buf.Reset()
	if err := run([]string{"--bench", dir}, &buf); err != nil {
		t.Fatal(err)
	}
	var b BenchOutput
	if err := json.Unmarshal(buf.Bytes(), &b); err != nil || b.Entries != len(out.Entries) || b.ElapsedNs <= 0 {
		t.Fatalf("--bench printed %q (%v), want %d entries and a positive time", buf.String(), err, len(out.Entries))
	}
}

func TestReadMissingDir(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nowal")
	err := run([]string{missing}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), missing) {
		t.Fatalf("err = %v, want an error naming %s", err, missing)
	}
}

func itoa(n uint64) string {
	b, _ := json.Marshal(n)
	return string(b)
}

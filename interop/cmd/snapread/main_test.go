package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"go.etcd.io/etcd/server/v3/storage/wal"
	"go.uber.org/zap"

	"github.com/lifeboat-dev/lifeboat/interop/internal/fixturetest"
)

func readSnap(t *testing.T, path string) Output {
	t.Helper()
	var buf bytes.Buffer
	if err := run([]string{path}, &buf); err != nil {
		t.Fatalf("snapread %s: %v", path, err)
	}
	var out Output
	if err := json.Unmarshal(buf.Bytes(), &out); err != nil {
		t.Fatalf("snapread %s printed %q: %v", path, buf.String(), err)
	}
	return out
}

// The newest .snap must be the newest snapshot record of the WAL, and hold
// the v2 store as JSON.
func TestLoadMatchesWALSnapshots(t *testing.T) {
	for _, set := range []string{"v3.6", "v3.5"} {
		t.Run(set, func(t *testing.T) {
			member := filepath.Join(fixturetest.DataDir(t, set, "m1"), "member")
			walSnaps, err := wal.ValidSnapshotEntries(zap.NewNop(), filepath.Join(member, "wal"))
			if err != nil {
				t.Fatal(err)
			}
			newest := walSnaps[len(walSnaps)-1]
			out := readSnap(t, filepath.Join(member, "snap"))
			if out.Metadata.Index != newest.Index || out.Metadata.Term != newest.Term {
				t.Fatalf("newest .snap at %d/%d, newest WAL snapshot at %d/%d", out.Metadata.Index, out.Metadata.Term, newest.Index, newest.Term)
			}
			if len(out.Metadata.ConfState.Voters) != len(newest.ConfState.Voters) {
				t.Fatalf("conf state %+v, WAL says %+v", out.Metadata.ConfState, newest.ConfState)
			}
			data, err := base64.StdEncoding.DecodeString(out.Data)
			if err != nil || !json.Valid(data) {
				t.Fatalf("data is not the v2 store's JSON (%v): %.80q", err, data)
			}
			one := readSnap(t, filepath.Join(member, "snap", out.File))
			if one.Data != out.Data {
				t.Fatalf("snap.Read of %s differs from Snapshotter.Load", out.File)
			}
		})
	}
}

func TestUsage(t *testing.T) {
	for _, args := range [][]string{nil, {"a", "b"}, {"--x"}} {
		if err := run(args, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "usage") {
			t.Errorf("run(%q) = %v, want a usage error", args, err)
		}
	}
}

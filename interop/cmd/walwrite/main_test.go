package main

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"go.etcd.io/etcd/server/v3/storage/wal"
	"go.etcd.io/etcd/server/v3/storage/wal/walpb"
	"go.uber.org/zap"

	"github.com/lifeboat-dev/lifeboat/interop/internal/waljson"
)

func TestWriteSmallSegmentsReadsBack(t *testing.T) {
	var ents []waljson.Entry
	for i := uint64(1); i <= 200; i++ {
		d := base64.StdEncoding.EncodeToString([]byte(strings.Repeat("x", int(i%50))))
		ents = append(ents, waljson.Entry{Term: 1, Index: i, Data: &d})
	}
	ents[0].Data = nil // a leader no-op
	// etcd cuts a segment at most once per Save, so save in batches.
	script := Script{Metadata: base64.StdEncoding.EncodeToString([]byte("meta"))}
	for i := 0; i < len(ents); i += 20 {
		hs := &waljson.HardState{Term: 1, Vote: 1, Commit: uint64(i + 20)}
		script.Ops = append(script.Ops, Op{Save: &Save{HardState: hs, Entries: ents[i : i+20]}})
		if i == 60 {
			script.Ops = append(script.Ops, Op{Snapshot: &waljson.Snapshot{Index: 50, Term: 1, ConfState: &waljson.ConfState{Voters: []uint64{1}}}})
		}
	}
	in, err := json.Marshal(script)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "wal")
	if err := run([]string{"--out", dir, "--segment-size", "2048"}, strings.NewReader(string(in))); err != nil {
		t.Fatal(err)
	}
	names, err := filepath.Glob(filepath.Join(dir, "*.wal"))
	if err != nil || len(names) < 3 {
		t.Fatalf("segments %v (%v): want several with --segment-size 2048", names, err)
	}

	w, err := wal.OpenForRead(zap.NewNop(), dir, walpb.Snapshot{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	md, hs, got, err := w.ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if string(md) != "meta" || hs.Commit != 200 {
		t.Fatalf("metadata %q commit %d, want meta and 200", md, hs.Commit)
	}
	if back := waljson.FromEntries(got); !reflect.DeepEqual(back, ents) {
		t.Fatalf("entries read back differ from those written")
	}
	snaps, err := wal.ValidSnapshotEntries(zap.NewNop(), dir)
	if err != nil || len(snaps) != 2 || snaps[1].Index != 50 {
		t.Fatalf("snapshots %+v (%v), want the empty one and 50", snaps, err)
	}
}

func TestBadScripts(t *testing.T) {
	for _, tc := range []struct{ name, script, want string }{
		{"unknown field", `{"metadata":"","ops":[{"put":{}}]}`, "unknown field"},
		{"empty op", `{"metadata":"","ops":[{}]}`, "op 0: want exactly one"},
		{"bad base64", `{"metadata":"","ops":[{"save":{"entries":[{"term":1,"index":1,"data":"!!"}]}}]}`, "op 0: entry 0 (index 1): data"},
		{"snapshot beyond entries", `{"metadata":"","ops":[{"snapshot":{"index":5,"term":1}}]}`, "snapshot 5/1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "wal")
			err := run([]string{"--out", dir}, strings.NewReader(tc.script))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
	if err := run([]string{"--out", filepath.Join(t.TempDir(), "w"), "--segment-size", "0"}, strings.NewReader("{}")); err == nil {
		t.Fatal("--segment-size 0 accepted")
	}
	if _, err := os.Stat("wal"); err == nil {
		t.Fatal("a test wrote into the package directory")
	}
}

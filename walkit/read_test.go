package walkit

import (
	"bytes"
	"errors"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/lifeboat-dev/lifeboat/internal/interoptest"
)

// TestReadAllErrorsLikeEtcd opens WALs at snapshots they cannot serve, and a
// WAL whose metadata changes between segments: walkit fails with the
// sentinel error and etcd's reader fails with its own.
func TestReadAllErrorsLikeEtcd(t *testing.T) {
	bin := interoptest.Oracle(t, "walread")
	dir, _ := writeTestWAL(t, 600)
	snaps, err := ValidSnapshotEntries(nil, dir)
	if err != nil || len(snaps) < 2 {
		t.Fatalf("%d snapshots, %v", len(snaps), err)
	}
	s := snaps[len(snaps)-1]

	conflict := filepath.Join(t.TempDir(), "wal")
	w, err := create(nil, conflict, []byte("a"), 4096)
	if err != nil {
		t.Fatal(err)
	}
	for i := uint64(1); len(w.locks) < 3; i++ {
		if i == 10 {
			w.metadata = []byte("b") // the next cut writes other metadata, with a valid CRC
		}
		if err := w.Save(stateAt(i), entries(i, i, 9, 500)); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	rep, err := Verify(conflict, VerifyOptions{})
	if err != nil || len(rep.Findings) != 1 || rep.Findings[0].Kind != MetadataConflict {
		t.Fatalf("Verify of changing metadata: %v %+v", err, rep.Findings)
	}

	// Entries 1..5, then 8: a hole that the snapshot does not cover.
	hole := filepath.Join(t.TempDir(), "wal")
	w, err = Create(nil, hole, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, ents := range [][]raftpb.Entry{entries(1, 5, 9, 10), entries(8, 9, 9, 10)} {
		if err := w.Save(stateAt(ents[len(ents)-1].Index), ents); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	// A record of a type etcd never writes, with a valid CRC.
	unknown := filepath.Join(t.TempDir(), "wal")
	w, err = Create(nil, unknown, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Save(stateAt(3), entries(1, 3, 9, 10)); err != nil {
		t.Fatal(err)
	}
	if err := w.write(w.appendRecord(nil, RecordType(9), []byte("?"))); err != nil {
		t.Fatal(err)
	}
	w.Close()

	isSnap := func(index uint64) func(Record) bool {
		return func(rec Record) bool {
			sn, err := DecodeSnapshot(rec.Data)
			return rec.Type == SnapshotType && err == nil && sn.Index == index
		}
	}
	cases := []struct {
		name    string
		dir     string
		snap    Snapshot
		want    error
		at      func(Record) bool // the record the error names; nil: the first one strict reading rejects
		etcdErr string
	}{
		{"snapshot term differs", dir, Snapshot{Index: s.Index, Term: s.Term + 1}, ErrSnapshotMismatch, isSnap(s.Index), "snapshot mismatch"},
		{"no snapshot record", dir, Snapshot{Index: s.Index + 1, Term: s.Term}, ErrSnapshotNotFound, nil, "snapshot not found"},
		{"metadata changes", conflict, Snapshot{}, ErrMetadataConflict, nil, "conflicting metadata"},
		{"hole in the entries", hole, Snapshot{}, ErrSliceOutOfRange, nil, "slice bounds out of range"},
		{"unknown record type", unknown, Snapshot{}, nil, nil, "unexpected block type 9"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, err := OpenForRead(nil, c.dir, c.snap)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			_, _, _, err = r.ReadAll()
			if err == nil || c.want != nil && !errors.Is(err, c.want) {
				t.Fatalf("ReadAll: %v, want %v", err, c.want)
			}
			// Each error but the one about the whole WAL names the record.
			if c.want != ErrSnapshotNotFound {
				if where := recordWhere(t, c.dir, c.at); !strings.Contains(err.Error(), where) {
					t.Errorf("ReadAll: %q does not say %q", err, where)
				}
			}
			cmd := exec.Command(bin, "--snap-index", strconv.FormatUint(c.snap.Index, 10), "--snap-term", strconv.FormatUint(c.snap.Term, 10), c.dir)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Run(); err == nil || !strings.Contains(stderr.String(), c.etcdErr) {
				t.Fatalf("etcd's reader: %v, %q; want an error with %q", err, stderr.String(), c.etcdErr)
			}
		})
	}
}

// recordWhere reads dir strictly and returns where the first record that
// match accepts starts (with match nil, the first damaged one), as errors
// say it.
func recordWhere(t *testing.T, dir string, match func(Record) bool) string {
	t.Helper()
	r, err := NewReader(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for {
		rec, pos, err := r.Next()
		var de *DamageError
		switch {
		case errors.As(err, &de):
			if match == nil {
				return de.Pos.where()
			}
		case err != nil:
			t.Fatalf("no such record in %s: %v", dir, err)
		case match != nil && match(rec):
			return pos.where()
		}
	}
}

// TestReadAllAtSnapshotKeepsLaterOverrides reads at a snapshot: entries at or
// below it are skipped and a later entry at an index replaces what followed.
func TestReadAllAtSnapshotKeepsLaterOverrides(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "wal")
	w, err := create(nil, dir, nil, 4096)
	if err != nil {
		t.Fatal(err)
	}
	cs := &raftpb.ConfState{Voters: []uint64{1}}
	steps := []func() error{
		func() error { return w.Save(raftpb.HardState{Term: 1, Commit: 10}, entries(1, 10, 1, 100)) },
		func() error { return w.SaveSnapshot(Snapshot{Index: 5, Term: 1, ConfState: cs}) },
		func() error { return w.Save(raftpb.HardState{Term: 2, Commit: 10}, entries(8, 12, 2, 100)) },
	}
	for _, step := range steps {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	got := compareWithOracle(t, dir, Snapshot{Index: 5, Term: 1})
	var idx, terms []uint64
	for _, e := range got.Entries {
		idx, terms = append(idx, e.Index), append(terms, e.Term)
	}
	// Independent expectation: 6, 7 from term 1, then 8..12 from term 2.
	wantIdx, wantTerms := []uint64{6, 7, 8, 9, 10, 11, 12}, []uint64{1, 1, 2, 2, 2, 2, 2}
	if !slices.Equal(idx, wantIdx) || !slices.Equal(terms, wantTerms) {
		t.Fatalf("entries %v terms %v, want %v %v", idx, terms, wantIdx, wantTerms)
	}
}

package walkit

import (
	"slices"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
)

func TestPurgeStopsAtLockedSegments(t *testing.T) {
	dir := t.TempDir()
	w, err := create(nil, dir, []byte("meta"), 4096)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	var last uint64
	for last = 1; len(w.names) < 5; last++ {
		if err := w.Save(raftpb.HardState{Term: 1, Commit: last}, entries(last, last, 1, 1000)); err != nil {
			t.Fatal(err)
		}
	}
	names := func() []string {
		segs, err := ListSegments(dir)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, s := range segs {
			out = append(out, s.Name)
		}
		return out
	}
	before := names()

	// Every segment is still locked by the WAL: nothing goes.
	if removed, err := Purge(nil, dir, 1); err != nil || len(removed) != 0 {
		t.Fatalf("Purge with all segments locked: removed %v, %v", removed, err)
	}

	// A snapshot at the first index of the fourth segment releases the
	// segments before the third (as etcd's ReleaseLockTo, it keeps the one
	// before the segment that starts at the index); keep 1 may then remove
	// exactly those two.
	_, fourth, _ := parseSegmentName(before[3])
	if err := w.SaveSnapshot(Snapshot{Index: fourth, Term: 1, ConfState: &raftpb.ConfState{Voters: []uint64{1}}}); err != nil {
		t.Fatal(err)
	}
	if err := w.ReleaseLockTo(fourth); err != nil {
		t.Fatal(err)
	}
	removed, err := Purge(nil, dir, 1)
	if err != nil {
		t.Fatal(err)
	}
	if want := before[:2]; !slices.Equal(removed, want) {
		t.Fatalf("removed %v, want %v", removed, want)
	}
	if got := names(); !slices.Equal(got, before[2:]) {
		t.Fatalf("left %v, want %v", got, before[2:])
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	// What is left still reads from the snapshot on.
	r, err := OpenForRead(nil, dir, Snapshot{Index: fourth, Term: 1, ConfState: &raftpb.ConfState{Voters: []uint64{1}}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	_, _, ents, err := r.ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) == 0 || ents[0].Index != fourth+1 || ents[len(ents)-1].Index != last-1 {
		t.Fatalf("entries after purge: %d, first %v", len(ents), ents)
	}
}

func TestPurgeKeepZeroAndMissingDir(t *testing.T) {
	if removed, err := Purge(nil, t.TempDir(), 0); err != nil || removed != nil {
		t.Fatalf("keep 0: %v, %v", removed, err)
	}
	if _, err := Purge(nil, t.TempDir()+"/nope", 3); err == nil {
		t.Fatal("Purge of a missing dir: no error")
	}
}

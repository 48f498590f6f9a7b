package walkit

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
)

func entries(from, to, term uint64, size int) []raftpb.Entry {
	var ents []raftpb.Entry
	for i := from; i <= to; i++ {
		ents = append(ents, raftpb.Entry{Term: term, Index: i, Data: []byte(strings.Repeat("v", size))})
	}
	return ents
}

// recordTypes lists the record types of a segment, read on its own.
func recordTypes(t *testing.T, seg Segment) []RecordType {
	t.Helper()
	d := newDecoder(fileSources([]Segment{seg}), true)
	defer d.close()
	var types []RecordType
	for {
		rec, _, err := d.next()
		if errors.Is(err, io.EOF) {
			return types
		}
		if err != nil {
			t.Fatalf("%s: %v", seg.Name, err)
		}
		types = append(types, rec.Type)
	}
}

func TestCutNamesTruncatesAndStartsSegments(t *testing.T) {
	const segSize = 4096
	dir := filepath.Join(t.TempDir(), "wal")
	w, err := create(nil, dir, []byte("md"), segSize)
	if err != nil {
		t.Fatal(err)
	}
	st := raftpb.HardState{Term: 2, Vote: 1}
	for i := uint64(1); i <= 60; i++ {
		st.Commit = i
		if err := w.Save(st, entries(i, i, 2, 300)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	segs, err := ListSegments(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(segs) < 3 {
		t.Fatalf("%d segments, want cuts", len(segs))
	}
	w2, err := OpenForRead(nil, dir, Snapshot{})
	if err != nil {
		t.Fatal(err)
	}
	defer w2.Close()
	for i, s := range segs {
		types := recordTypes(t, s)
		if i > 0 {
			// A cut segment starts with CRC, metadata and the last hard state, and is named after the next entry.
			if len(types) < 3 || types[0] != CrcType || types[1] != MetadataType || types[2] != StateType {
				t.Errorf("%s starts with %v", s.Name, types)
			}
			prev := segs[i-1]
			rep, err := Verify(dir, VerifyOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if want := rep.Segments[i-1].LastIndex + 1; s.Index != want {
				t.Errorf("%s: first index %d, want %d", s.Name, s.Index, want)
			}
			if prev.Size < segSize || prev.Size != rep.Segments[i-1].DataEnd {
				t.Errorf("%s: %d bytes, data ends at %d; want it cut at its data, at least %d", prev.Name, prev.Size, rep.Segments[i-1].DataEnd, segSize)
			}
		}
	}
	_, gotSt, ents, err := w2.ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 60 || gotSt != st {
		t.Fatalf("read %d entries and %+v, want 60 and %+v", len(ents), gotSt, st)
	}
}

func TestSpareFileIsPreallocatedLockedAndRemoved(t *testing.T) {
	const segSize = 8192
	dir := filepath.Join(t.TempDir(), "wal")
	w, err := create(nil, dir, nil, segSize)
	if err != nil {
		t.Fatal(err)
	}
	checkSpare := func(name string) {
		t.Helper()
		// The spare is prepared in the background: taking it waits for it.
		r := <-w.spare.ch
		w.spare.ch <- r
		info, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatalf("spare %s: %v", name, err)
		}
		if info.Size() != segSize {
			t.Errorf("spare %s is %d bytes, want %d", name, info.Size(), segSize)
		}
		if _, err := openLocked(filepath.Join(dir, name), os.O_RDWR, false); !errors.Is(err, ErrLocked) {
			t.Errorf("spare %s not locked: %v", name, err)
		}
	}
	checkSpare("0.tmp")
	for i := uint64(1); len(w.locks) < 2; i++ {
		if err := w.Save(raftpb.HardState{Term: 1, Commit: i}, entries(i, i, 1, 1000)); err != nil {
			t.Fatal(err)
		}
	}
	checkSpare("1.tmp")
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"0.tmp", "1.tmp"} {
		if _, err := os.Stat(filepath.Join(dir, name)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s after Close: %v", name, err)
		}
	}
}

func TestLockConflict(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "wal")
	w, err := create(nil, dir, nil, 4096)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	_, err = Open(nil, dir, Snapshot{})
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "file already locked") {
		t.Fatalf("Open of a WAL in use: %v, want ErrLocked", err)
	}
	r, err := OpenForRead(nil, dir, Snapshot{})
	if err != nil {
		t.Fatalf("OpenForRead of a WAL in use: %v", err)
	}
	defer r.Close()
	if _, _, _, err := r.ReadAll(); err != nil {
		t.Fatal(err)
	}
	if err := r.Save(raftpb.HardState{Term: 1}, nil); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("Save on a read-only WAL: %v", err)
	}
}

func TestReleaseLockTo(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "wal")
	w, err := create(nil, dir, nil, 4096)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for i := uint64(1); len(w.locks) < 5; i++ {
		if err := w.Save(raftpb.HardState{Term: 1, Commit: i}, entries(i, i, 1, 1500)); err != nil {
			t.Fatal(err)
		}
	}
	segs, err := ListSegments(dir)
	if err != nil {
		t.Fatal(err)
	}
	// Releasing to the first index of segment 3 keeps segment 2, which may
	// still hold entries below it, and everything after.
	if err := w.ReleaseLockTo(segs[3].Index); err != nil {
		t.Fatal(err)
	}
	for i, s := range segs {
		f, err := openLocked(s.Path, os.O_RDWR, false)
		locked := errors.Is(err, ErrLocked)
		if err == nil {
			f.Close()
		} else if !locked {
			t.Fatal(err)
		}
		if want := i >= 2; locked != want {
			t.Errorf("%s locked=%v, want %v", s.Name, locked, want)
		}
	}
}

func TestReopenAndAppend(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "wal")
	w, err := create(nil, dir, []byte("md"), 4096)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Save(raftpb.HardState{Term: 1, Vote: 1, Commit: 10}, entries(1, 10, 1, 200)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	for round := uint64(1); round <= 3; round++ {
		w, err := open(nil, dir, Snapshot{}, true, 4096)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Save(raftpb.HardState{}, nil); err == nil {
			t.Fatal("Save before ReadAll succeeded")
		}
		md, st, ents, err := w.ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		last := 10 * round
		if string(md) != "md" || st.Commit != last || uint64(len(ents)) != last {
			t.Fatalf("round %d: metadata %q, commit %d, %d entries", round, md, st.Commit, len(ents))
		}
		if err := w.Save(raftpb.HardState{Term: 1, Vote: 1, Commit: last + 10}, entries(last+1, last+10, 1, 200)); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	compareWithOracle(t, dir, Snapshot{})
}

func TestSaveSyncsOnlyWhenRaftMustSync(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "wal")
	w, err := create(nil, dir, nil, SegmentSizeBytes)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	steps := []struct {
		name string
		st   raftpb.HardState
		ents []raftpb.Entry
		sync bool
	}{
		{"first hard state", raftpb.HardState{Term: 1, Vote: 1}, nil, true},
		{"entries", raftpb.HardState{}, entries(1, 3, 1, 10), true},
		{"commit only", raftpb.HardState{Term: 1, Vote: 1, Commit: 3}, nil, false},
		{"nothing", raftpb.HardState{}, nil, false},
		{"vote change", raftpb.HardState{Term: 1, Vote: 2, Commit: 3}, nil, true},
		{"term change", raftpb.HardState{Term: 2, Vote: 2, Commit: 3}, nil, true},
		{"entries and commit", raftpb.HardState{Term: 2, Vote: 2, Commit: 4}, entries(4, 4, 2, 10), true},
	}
	for _, s := range steps {
		before := w.syncs
		if err := w.Save(s.st, s.ents); err != nil {
			t.Fatal(err)
		}
		if got := w.syncs > before; got != s.sync {
			t.Errorf("%s: synced=%v, want %v", s.name, got, s.sync)
		}
	}
	before := w.syncs
	if err := w.SaveSnapshot(Snapshot{Index: 2, Term: 1, ConfState: &raftpb.ConfState{Voters: []uint64{1}}}); err != nil {
		t.Fatal(err)
	}
	if w.syncs == before {
		t.Error("SaveSnapshot did not sync")
	}
	if err := w.SaveSnapshot(Snapshot{Index: 3, Term: 1}); err == nil {
		t.Error("SaveSnapshot without ConfState accepted")
	}
}

func stateAt(commit uint64) raftpb.HardState {
	return raftpb.HardState{Term: 9, Vote: 1, Commit: commit}
}

// TestOpenForAppendZeroesAfterLastRecord: ReadAll for append truncates the
// tail at its last record and preallocates it again, so that stray bytes
// after the end marker (which etcd's reader never looks at) are gone.
func TestOpenForAppendZeroesAfterLastRecord(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "wal")
	w, err := create(nil, dir, nil, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Save(stateAt(5), entries(1, 5, 9, 100)); err != nil {
		t.Fatal(err)
	}
	w.Close()
	path := filepath.Join(dir, SegmentName(0, 0))
	b := readFile(t, path)
	end := walkFrames(b)[len(walkFrames(b))-1].end
	b[end+100] = 0xee
	mustWriteFile(t, path, b)

	w, err = Open(nil, dir, Snapshot{})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, ents, err := w.ReadAll(); err != nil || len(ents) != 5 {
		t.Fatalf("ReadAll: %d entries, %v", len(ents), err)
	}
	w.Close()
	after := readFile(t, path)
	if len(after) != len(b) || !allZero(after[end:]) {
		t.Fatalf("tail is %d bytes (was %d); zero after the records: %v", len(after), len(b), allZero(after[end:]))
	}
}

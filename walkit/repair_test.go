package walkit

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// writeTestWAL writes testScript(n) with walkit in small segments.
func writeTestWAL(t *testing.T, n int) (string, []Segment) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "wal")
	w := applyScript(t, dir, 64<<10, testScript(n))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	segs, err := ListSegments(dir)
	if err != nil {
		t.Fatal(err)
	}
	return dir, segs
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRepairTruncatesTornTail(t *testing.T) {
	dir, segs := writeTestWAL(t, 300)
	last := segs[len(segs)-1]
	orig := readFile(t, last.Path)
	frames := walkFrames(orig)
	victim := frames[len(frames)-1]
	torn := bytes.Clone(orig)
	clear(torn[victim.start+8 : victim.end])
	mustWriteFile(t, last.Path, torn)

	w, err := Open(nil, dir, Snapshot{})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := w.ReadAll(); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("ReadAll for append over a torn tail: %v, want unexpected EOF", err)
	}
	w.Close()
	if !Repair(nil, dir) {
		t.Fatal("Repair failed")
	}
	if got := readFile(t, last.Path+".broken"); !bytes.Equal(got, torn) {
		t.Fatal(".broken copy differs from the segment before repair")
	}
	if got := readFile(t, last.Path); !bytes.Equal(got, torn[:victim.start]) {
		t.Fatalf("repaired segment is %d bytes, want the %d before the torn record", len(got), victim.start)
	}
	w, err = Open(nil, dir, Snapshot{})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := w.ReadAll(); err != nil {
		t.Fatalf("ReadAll after Repair: %v", err)
	}
	w.Close()
	compareWithOracle(t, dir, Snapshot{})
	if !Repair(nil, dir) {
		t.Fatal("Repair of a clean WAL reported failure")
	}
}

func TestRepairRefusesMidFileCorruption(t *testing.T) {
	dir, segs := writeTestWAL(t, 300)
	last := segs[len(segs)-1]
	b := readFile(t, last.Path)
	fs := walkFrames(b)
	f := fs[len(fs)/2]
	b[(f.start+f.end)/2] ^= 0x10
	mustWriteFile(t, last.Path, b)
	if Repair(nil, dir) {
		t.Fatal("Repair accepted a CRC mismatch that is not a torn tail")
	}
}

// entriesAfter lists, with the Reader on the intact WAL, the entries that
// sit after the record at (seg, offset).
func entriesAfter(t *testing.T, dir, seg string, offset int64) []LostEntry {
	t.Helper()
	r, err := NewReader(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var lost []LostEntry
	after := false
	for {
		rec, pos, err := r.Next()
		if errors.Is(err, io.EOF) {
			return lost
		}
		if err != nil {
			t.Fatal(err)
		}
		if after && rec.Type == EntryType {
			e, err := decodeEntry(rec.Data, true)
			if err != nil {
				t.Fatal(err)
			}
			lost = append(lost, LostEntry{Index: e.Index, Term: e.Term, Type: e.Type, Segment: pos.Segment, Offset: pos.Offset})
		}
		if pos.Segment == seg && pos.Offset == offset {
			after = true
		}
	}
}

func TestPlanRepairCutsAtFirstBadRecordInAnySegment(t *testing.T) {
	dir, segs := writeTestWAL(t, 600)
	if len(segs) < 5 {
		t.Fatalf("%d segments", len(segs))
	}
	target := segs[2]
	orig := readFile(t, target.Path)
	victim := walkFrames(orig)[8]
	want := entriesAfter(t, dir, target.Name, int64(victim.start))
	originals := map[string][]byte{}
	for _, s := range segs {
		originals[s.Name] = readFile(t, s.Path)
	}
	bad := bytes.Clone(orig)
	bad[(victim.start+victim.end)/2] ^= 0x04
	mustWriteFile(t, target.Path, bad)
	originals[target.Name] = bad

	plan, err := PlanRepair(dir)
	if err != nil {
		t.Fatal(err)
	}
	if plan.Damage == nil || plan.Damage.Segment != target.Name || plan.Damage.Offset != int64(victim.start) {
		t.Fatalf("plan damage %+v, want %s at %d", plan.Damage, target.Name, victim.start)
	}
	wantChanges := []FileChange{{Segment: target.Name, Action: "truncate", Size: target.Size, Truncate: int64(victim.start)}}
	for _, s := range segs[3:] {
		wantChanges = append(wantChanges, FileChange{Segment: s.Name, Action: "remove", Size: s.Size})
	}
	if !reflect.DeepEqual(plan.Changes, wantChanges) {
		t.Fatalf("changes %+v, want %+v", plan.Changes, wantChanges)
	}
	if !reflect.DeepEqual(plan.LostEntries, want) {
		t.Fatalf("plan loses %d entries, want the %d after the bad record", len(plan.LostEntries), len(want))
	}

	// A WAL in use is not touched.
	w, err := Open(nil, dir, Snapshot{})
	if err != nil {
		t.Fatal(err)
	}
	if err := plan.Apply(nil); !errors.Is(err, ErrLocked) {
		t.Fatalf("Apply on a locked WAL: %v", err)
	}
	w.Close()

	if err := plan.Apply(nil); err != nil {
		t.Fatal(err)
	}
	for _, c := range plan.Changes {
		path := filepath.Join(dir, c.Segment)
		if got := readFile(t, path+".broken"); !bytes.Equal(got, originals[c.Segment]) {
			t.Errorf("%s.broken is not the original", c.Segment)
		}
		_, err := os.Stat(path)
		switch c.Action {
		case "truncate":
			if got := readFile(t, path); !bytes.Equal(got, originals[c.Segment][:c.Truncate]) {
				t.Errorf("%s: not the original's first %d bytes", c.Segment, c.Truncate)
			}
		case "remove":
			if !errors.Is(err, os.ErrNotExist) {
				t.Errorf("%s still there: %v", c.Segment, err)
			}
		}
	}
	rep, err := Verify(dir, VerifyOptions{})
	if err != nil || !rep.OK() {
		t.Fatalf("Verify after Apply: %v %+v", err, rep.Findings)
	}
	got := compareWithOracle(t, dir, Snapshot{})
	if last := got.Entries[len(got.Entries)-1].Index; last != plan.LastKeptIndex {
		t.Fatalf("last entry %d after repair, plan said %d", last, plan.LastKeptIndex)
	}
	// Appending works on the repaired WAL.
	w, err = Open(nil, dir, Snapshot{})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := w.ReadAll(); err != nil {
		t.Fatal(err)
	}
	if err := w.Save(stateAt(plan.LastKeptIndex+1), entries(plan.LastKeptIndex+1, plan.LastKeptIndex+1, 9, 10)); err != nil {
		t.Fatal(err)
	}
	w.Close()
	compareWithOracle(t, dir, Snapshot{})
}

func TestPlanRepairHeaderOfFirstSegmentIsUnrepairable(t *testing.T) {
	dir, segs := writeTestWAL(t, 100)
	b := readFile(t, segs[0].Path)
	b[9] = byte(StateType) // the metadata record's type
	mustWriteFile(t, segs[0].Path, b)
	if _, err := PlanRepair(dir); !errors.Is(err, ErrUnrepairable) {
		t.Fatalf("PlanRepair: %v, want ErrUnrepairable", err)
	}
}

func TestPlanRepairOfIntactWALDoesNothing(t *testing.T) {
	dir, _ := writeTestWAL(t, 100)
	plan, err := PlanRepair(dir)
	if err != nil {
		t.Fatal(err)
	}
	if plan.Damage != nil || len(plan.Changes) != 0 || len(plan.LostEntries) != 0 {
		t.Fatalf("plan for an intact WAL: %+v", plan)
	}
}

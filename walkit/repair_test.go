package walkit

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/lifeboat-dev/lifeboat/internal/fixture"
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
	if err := Repair(nil, dir); err != nil {
		t.Fatalf("Repair: %v", err)
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
	if err := Repair(nil, dir); err != nil {
		t.Fatalf("Repair of a clean WAL: %v", err)
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
	err := Repair(nil, dir)
	var de *DamageError
	if !errors.As(err, &de) || !errors.Is(err, ErrCRCMismatch) || de.Pos.Segment != last.Name || de.Pos.Offset != int64(f.start) {
		t.Fatalf("Repair of a CRC mismatch that is not a torn tail: %v, want the damage at %s offset %d", err, last.Name, f.start)
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

// corruptEntry flips a byte inside the record of the entry at index.
func corruptEntry(t *testing.T, dir string, index uint64) {
	t.Helper()
	r, err := NewReader(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for {
		rec, pos, err := r.Next()
		if err != nil {
			t.Fatalf("entry %d not found: %v", index, err)
		}
		if rec.Type != EntryType {
			continue
		}
		if e, err := decodeEntry(rec.Data, true); err != nil || e.Index != index {
			continue
		}
		path := filepath.Join(dir, pos.Segment)
		b := readFile(t, path)
		b[pos.Offset+frameSize+4] ^= 0xff
		mustWriteFile(t, path, b)
		return
	}
}

// The plan counts the raft indexes a cut drops, the damaged entry's
// included, from the end of the kept log: a snapshot record above the last
// kept entry ends it.
func TestPlanRepairCountsLostIndexes(t *testing.T) {
	tests := []struct {
		name    string
		wal     func(t *testing.T) string
		damaged uint64
		want    RepairPlan // the counts only
	}{
		{
			"solo fixture, entry 80", func(t *testing.T) string { return fixture.WALDir(t, "v3.6", "solo") }, 80,
			RepairPlan{LastKeptIndex: 79, EndIndex: 79, FirstLostIndex: 80, LastLostIndex: 125},
		},
		{
			"entry after a snapshot record", func(t *testing.T) string {
				dir := filepath.Join(t.TempDir(), "wal")
				w, err := Create(nil, dir, nil)
				if err != nil {
					t.Fatal(err)
				}
				defer w.Close()
				if err := w.Save(stateAt(10), entries(1, 10, 9, 10)); err != nil {
					t.Fatal(err)
				}
				if err := w.SaveSnapshot(Snapshot{Index: 50, Term: 9, ConfState: &raftpb.ConfState{Voters: []uint64{1}}}); err != nil {
					t.Fatal(err)
				}
				if err := w.Save(stateAt(60), entries(51, 60, 9, 10)); err != nil {
					t.Fatal(err)
				}
				return dir
			}, 51,
			RepairPlan{LastKeptIndex: 10, EndIndex: 50, FirstLostIndex: 51, LastLostIndex: 60},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := tt.wal(t)
			corruptEntry(t, dir, tt.damaged)
			plan, err := PlanRepair(dir)
			if err != nil {
				t.Fatal(err)
			}
			got := RepairPlan{LastKeptIndex: plan.LastKeptIndex, EndIndex: plan.EndIndex, FirstLostIndex: plan.FirstLostIndex, LastLostIndex: plan.LastLostIndex}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("plan %+v, want %+v", got, tt.want)
			}
			if n, want := plan.LostIndexes(), tt.want.LastLostIndex-tt.want.FirstLostIndex+1; n != want {
				t.Errorf("LostIndexes() = %d, want %d", n, want)
			}
			if n, want := len(plan.LostEntries), int(tt.want.LastLostIndex-tt.damaged); n != want {
				t.Errorf("%d readable lost entries, want %d (all but the damaged one)", n, want)
			}
		})
	}
}

// Damage before a sequence gap is where the WAL breaks first: the plan cuts
// there, not at the gap that verify lists first.
func TestPlanRepairCutsAtDamageBeforeAGap(t *testing.T) {
	dir, segs := writeTestWAL(t, 600)
	if len(segs) < 5 {
		t.Fatalf("%d segments", len(segs))
	}
	if err := os.Remove(segs[3].Path); err != nil {
		t.Fatal(err)
	}
	b := readFile(t, segs[1].Path)
	victim := walkFrames(b)[5]
	b[(victim.start+victim.end)/2] ^= 0x04
	mustWriteFile(t, segs[1].Path, b)
	plan, err := PlanRepair(dir)
	if err != nil {
		t.Fatal(err)
	}
	if plan.Damage == nil || plan.Damage.Segment != segs[1].Name || plan.Damage.Offset != int64(victim.start) {
		t.Fatalf("plan damage %+v, want %s at %d", plan.Damage, segs[1].Name, victim.start)
	}
	want := []string{segs[1].Name, segs[2].Name}
	for _, s := range segs[4:] {
		want = append(want, s.Name)
	}
	var got []string
	for _, c := range plan.Changes {
		got = append(got, c.Segment)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("changes %v, want %v", got, want)
	}
}

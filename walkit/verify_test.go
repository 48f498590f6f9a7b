package walkit

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestVerifyReportsSegmentsAndProgress(t *testing.T) {
	dir, segs := writeTestWAL(t, 600)
	var calls [][2]int64
	rep, err := Verify(dir, VerifyOptions{Progress: func(done, total int64) { calls = append(calls, [2]int64{done, total}) }})
	if err != nil || !rep.OK() {
		t.Fatalf("%v %+v", err, rep)
	}
	var total int64
	for _, s := range segs {
		total += s.Size
	}
	for i := 1; i < len(calls); i++ {
		if calls[i][0] < calls[i-1][0] || calls[i][1] != total {
			t.Fatalf("progress %v not monotonic up to %d", calls, total)
		}
	}
	if last := calls[len(calls)-1]; last[0] != total {
		t.Fatalf("progress ends at %v, want %d", last, total)
	}
	// Each segment's entries continue the previous one's, and the totals add up.
	entries, records := 0, 0
	for i, sr := range rep.Segments {
		entries += sr.Entries
		records += sr.Records
		if sr.Name != segs[i].Name || !sr.CRCOK || sr.FirstBadOffset != -1 || sr.DataEnd == 0 || len(sr.Terms) == 0 {
			t.Errorf("segment report %+v", sr)
		}
	}
	if entries != rep.Entries || records != rep.Records {
		t.Fatalf("segment totals %d entries %d records, report %d and %d", entries, records, rep.Entries, rep.Records)
	}
}

func TestVerifyFindsSequenceGap(t *testing.T) {
	dir, segs := writeTestWAL(t, 600)
	gone := segs[2]
	if err := os.Remove(gone.Path); err != nil {
		t.Fatal(err)
	}
	if _, err := ListSegments(dir); !errors.Is(err, ErrSequenceGap) {
		t.Fatalf("ListSegments: %v, want ErrSequenceGap", err)
	}
	rep, err := Verify(dir, VerifyOptions{ContinueOnError: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Findings) == 0 || rep.Findings[0].Kind != SequenceGap || rep.Findings[0].Segment != segs[3].Name {
		t.Fatalf("findings %+v, want a sequence gap before %s", rep.Findings, segs[3].Name)
	}
	// The chain of CRCs breaks at the gap too: segment 3's CRC record holds
	// segment 2's running CRC, not segment 1's.
	if len(rep.Findings) < 2 || rep.Findings[1].Kind != CRCMismatch || rep.Findings[1].Segment != segs[3].Name || rep.Findings[1].Offset != 0 {
		t.Fatalf("findings %+v, want a crc mismatch at the start of %s", rep.Findings, segs[3].Name)
	}
	plan, err := PlanRepair(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Changes) == 0 || plan.Changes[0].Segment != segs[3].Name || plan.Changes[0].Action != "remove" {
		t.Fatalf("plan %+v, want the segments after the gap removed", plan.Changes)
	}
	if want := rep.Segments[1].LastIndex; plan.LastKeptIndex != want {
		t.Fatalf("plan keeps entries to %d, want %d (the last before the gap)", plan.LastKeptIndex, want)
	}
}

func TestDataAfterEndMarkerIsFound(t *testing.T) {
	dir, segs := writeTestWAL(t, 100)
	last := segs[len(segs)-1]
	b := readFile(t, last.Path)
	frames := walkFrames(b)
	end := frames[len(frames)-1].end
	b[end+4000] = 0x5a // a stray byte in the preallocated zeros
	mustWriteFile(t, filepath.Join(dir, last.Name), b)
	rep, err := Verify(dir, VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Findings) != 1 || rep.Findings[0].Kind != DataAfterEnd || rep.Findings[0].Offset != int64(end) {
		t.Fatalf("findings %+v, want data after the end marker at %d", rep.Findings, end)
	}
}

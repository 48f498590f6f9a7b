package walkit

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/lifeboat-dev/lifeboat/internal/interoptest"
)

// formatsCreateExample is the worked example of FORMATS.md §2: the 72 bytes
// that etcd's wal.Create(metadata="somedata") writes.
const formatsCreateExample = `
04 00 00 00 00 00 00 84  08 04 10 00 00 00 00 00
12 00 00 00 00 00 00 86  08 01 10 85 d4 fd a0 07
1a 08 73 6f 6d 65 64 61  74 61 00 00 00 00 00 00
0e 00 00 00 00 00 00 82  08 05 10 80 db 81 c1 01
1a 04 08 00 10 00 00 00`

func hexBytes(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// segmentData returns a segment's bytes up to the end of its records.
func segmentData(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	frames := walkFrames(b)
	return b[:frames[len(frames)-1].end]
}

func TestCreateWritesFormatsExample(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "wal")
	w, err := Create(nil, dir, []byte("somedata"))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, SegmentName(0, 0))
	all, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := hexBytes(t, formatsCreateExample)
	if len(all) != SegmentSizeBytes {
		t.Errorf("segment is %d bytes, want it preallocated to %d", len(all), SegmentSizeBytes)
	}
	if !bytes.Equal(all[:len(want)], want) || !allZero(all[len(want):]) {
		t.Errorf("Create wrote\n%x\nwant\n%x", all[:len(want)], want)
	}
	if _, err := os.Stat(dir + ".tmp"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s.tmp left behind: %v", dir, err)
	}
}

// TestCreateWritesWhatEtcdWrites checks the same example against etcd's own
// wal.Create, run by the walwrite oracle.
func TestCreateWritesWhatEtcdWrites(t *testing.T) {
	bin := interoptest.Oracle(t, "walwrite")
	md := []byte("somedata")
	edir := filepath.Join(t.TempDir(), "etcd")
	runWalwrite(t, bin, edir, 0, walScript{Metadata: base64.StdEncoding.EncodeToString(md)})
	ours := filepath.Join(t.TempDir(), "walkit")
	w, err := Create(nil, ours, md)
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	name := SegmentName(0, 0)
	got, want := segmentData(t, filepath.Join(ours, name)), segmentData(t, filepath.Join(edir, name))
	if !bytes.Equal(got, want) {
		t.Errorf("walkit wrote\n%x\netcd\n%x", got, want)
	}
}

func TestCreateRefusesExistingWAL(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "wal")
	w, err := create(nil, dir, nil, 4096)
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	if _, err := Create(nil, dir, nil); !errors.Is(err, os.ErrExist) {
		t.Fatalf("second Create: %v, want os.ErrExist", err)
	}
}

// walScript is interop/cmd/walwrite's input.
type walScript struct {
	Metadata string     `json:"metadata"`
	Ops      []scriptOp `json:"ops"`
}

type scriptOp struct {
	Save     *scriptSave   `json:"save,omitempty"`
	Snapshot *jsonSnapshot `json:"snapshot,omitempty"`
}

type scriptSave struct {
	HardState *jsonHardState `json:"hardState,omitempty"`
	Entries   []jsonEntry    `json:"entries"`
}

func runWalwrite(t *testing.T, bin, dir string, segSize int64, s walScript) {
	t.Helper()
	in, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"--out", dir}
	if segSize > 0 {
		args = append(args, "--segment-size", fmt.Sprint(segSize))
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdin = bytes.NewReader(in)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("walwrite: %v: %s", err, out)
	}
}

// testScript is a history with overwritten entries, snapshots, no-ops, conf
// changes and entries of every size up to a few KiB.
func testScript(n int) walScript {
	var ops []scriptOp
	var batch []jsonEntry
	term := uint64(1)
	for i := 1; i <= n; i++ {
		e := jsonEntry{Term: term, Index: uint64(i)}
		switch {
		case i%97 == 1:
			// a leader no-op: nil data
		case i%50 == 0:
			e.Type = int32(raftpb.EntryConfChange)
			cc := raftpb.ConfChange{Type: raftpb.ConfChangeAddNode, NodeID: uint64(i), Context: []byte(`{"id":1}`)}
			b, _ := cc.Marshal()
			s := base64.StdEncoding.EncodeToString(b)
			e.Data = &s
		default:
			s := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{byte(i)}, i*37%3000))
			e.Data = &s
		}
		batch = append(batch, e)
		if len(batch) == 7 || i == n {
			ops = append(ops, scriptOp{Save: &scriptSave{HardState: &jsonHardState{Term: term, Vote: 1, Commit: uint64(i)}, Entries: batch}})
			batch = nil
		}
		if i%120 == 0 {
			ops = append(ops, scriptOp{Snapshot: &jsonSnapshot{Index: uint64(i) - 10, Term: term, ConfState: &jsonConfState{Voters: []uint64{1, 2, 3}}}})
		}
		if i%200 == 0 {
			// A new leader overwrites the last 5 entries in a higher term.
			term++
			var over []jsonEntry
			for j := i - 4; j <= i; j++ {
				over = append(over, jsonEntry{Term: term, Index: uint64(j)})
			}
			ops = append(ops, scriptOp{Save: &scriptSave{HardState: &jsonHardState{Term: term, Vote: 2, Commit: uint64(i - 5)}, Entries: over}})
		}
	}
	return walScript{Metadata: base64.StdEncoding.EncodeToString(Metadata{NodeID: 0x8e9e05c52164694d, ClusterID: 0xcdf818194e3a8c32}.Marshal()), Ops: ops}
}

// applyScript writes the script with walkit.
func applyScript(t *testing.T, dir string, segSize int64, s walScript) *WAL {
	t.Helper()
	md, _ := base64.StdEncoding.DecodeString(s.Metadata)
	w, err := create(nil, dir, md, segSize)
	if err != nil {
		t.Fatal(err)
	}
	for i, op := range s.Ops {
		if op.Snapshot != nil {
			sn := Snapshot{Index: op.Snapshot.Index, Term: op.Snapshot.Term}
			if cs := op.Snapshot.ConfState; cs != nil {
				sn.ConfState = &raftpb.ConfState{Voters: cs.Voters, Learners: cs.Learners}
			}
			if err := w.SaveSnapshot(sn); err != nil {
				t.Fatalf("op %d: %v", i, err)
			}
			continue
		}
		var ents []raftpb.Entry
		for _, je := range op.Save.Entries {
			e := raftpb.Entry{Term: je.Term, Index: je.Index, Type: raftpb.EntryType(je.Type)}
			if je.Data != nil {
				e.Data, _ = base64.StdEncoding.DecodeString(*je.Data)
			}
			ents = append(ents, e)
		}
		var st raftpb.HardState
		if hs := op.Save.HardState; hs != nil {
			st = raftpb.HardState{Term: hs.Term, Vote: hs.Vote, Commit: hs.Commit}
		}
		if err := w.Save(st, ents); err != nil {
			t.Fatalf("op %d: %v", i, err)
		}
	}
	return w
}

// TestWritesReadAcrossImplementations writes the same history with walkit and
// with etcd, in small segments, and reads each with both.
func TestWritesReadAcrossImplementations(t *testing.T) {
	const segSize = 64 << 10
	script := testScript(1000)
	ours := filepath.Join(t.TempDir(), "walkit")
	w := applyScript(t, ours, segSize, script)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	theirs := filepath.Join(t.TempDir(), "etcd")
	runWalwrite(t, interoptest.Oracle(t, "walwrite"), theirs, segSize, script)

	for _, dir := range []string{ours, theirs} {
		segs, err := ListSegments(dir)
		if err != nil {
			t.Fatal(err)
		}
		if len(segs) < 5 {
			t.Fatalf("%s: %d segments, want several", dir, len(segs))
		}
		rep, err := Verify(dir, VerifyOptions{ContinueOnError: true})
		if err != nil || !rep.OK() {
			t.Fatalf("Verify %s: %v %+v", dir, err, rep.Findings)
		}
	}
	a := compareWithOracle(t, ours, Snapshot{})
	b := compareWithOracle(t, theirs, Snapshot{})
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("walkit's and etcd's WALs of one history read differently")
	}
	for _, s := range a.Snapshots {
		compareWithOracle(t, ours, Snapshot{Index: s.Index, Term: s.Term})
		compareWithOracle(t, theirs, Snapshot{Index: s.Index, Term: s.Term})
	}
	if len(a.Snapshots) == 0 || len(a.Entries) != 1000 {
		t.Fatalf("read %d entries and %d snapshots, want 1000 and some", len(a.Entries), len(a.Snapshots))
	}
}

// TestOneSegmentIsByteIdenticalToEtcd writes a history that fits in one
// segment with walkit and with etcd: the records must be the same bytes.
// (Across cuts the files may differ where etcd decides to cut: it measures
// the tail before flushing its page buffer; both read the same.)
func TestOneSegmentIsByteIdenticalToEtcd(t *testing.T) {
	script := testScript(400)
	ours := filepath.Join(t.TempDir(), "walkit")
	w := applyScript(t, ours, SegmentSizeBytes, script)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	theirs := filepath.Join(t.TempDir(), "etcd")
	runWalwrite(t, interoptest.Oracle(t, "walwrite"), theirs, 0, script)
	name := SegmentName(0, 0)
	got, want := segmentData(t, filepath.Join(ours, name)), segmentData(t, filepath.Join(theirs, name))
	if !bytes.Equal(got, want) {
		n := 0
		for n < min(len(got), len(want)) && got[n] == want[n] {
			n++
		}
		t.Fatalf("walkit wrote %d bytes, etcd %d; first difference at offset %d", len(got), len(want), n)
	}
}

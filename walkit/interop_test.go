package walkit

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"os"
	"os/exec"
	"reflect"
	"strconv"
	"testing"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/lifeboat-dev/lifeboat/internal/fixture"
	"github.com/lifeboat-dev/lifeboat/internal/interoptest"
)

// oracleOutput is what interop/cmd/walread prints: etcd's own wal package's view.
type oracleOutput struct {
	Metadata  string         `json:"metadata"`
	HardState jsonHardState  `json:"hardState"`
	Entries   []jsonEntry    `json:"entries"`
	Snapshots []jsonSnapshot `json:"snapshots"`
}

type jsonHardState struct {
	Term   uint64 `json:"term"`
	Vote   uint64 `json:"vote"`
	Commit uint64 `json:"commit"`
}

type jsonEntry struct {
	Term  uint64  `json:"term"`
	Index uint64  `json:"index"`
	Type  int32   `json:"type"`
	Data  *string `json:"data,omitempty"`
}

type jsonConfState struct {
	Voters         []uint64 `json:"voters"`
	Learners       []uint64 `json:"learners"`
	VotersOutgoing []uint64 `json:"votersOutgoing"`
	LearnersNext   []uint64 `json:"learnersNext"`
	AutoLeave      bool     `json:"autoLeave"`
}

type jsonSnapshot struct {
	Index     uint64         `json:"index"`
	Term      uint64         `json:"term"`
	ConfState *jsonConfState `json:"confState,omitempty"`
}

func toJSONEntries(ents []raftpb.Entry) []jsonEntry {
	out := make([]jsonEntry, 0, len(ents))
	for _, e := range ents {
		je := jsonEntry{Term: e.Term, Index: e.Index, Type: int32(e.Type)}
		if e.Data != nil {
			s := base64.StdEncoding.EncodeToString(e.Data)
			je.Data = &s
		}
		out = append(out, je)
	}
	return out
}

func nonNil(v []uint64) []uint64 {
	if v == nil {
		return []uint64{}
	}
	return v
}

func toJSONSnapshots(snaps []Snapshot) []jsonSnapshot {
	out := make([]jsonSnapshot, 0, len(snaps))
	for _, s := range snaps {
		js := jsonSnapshot{Index: s.Index, Term: s.Term}
		if cs := s.ConfState; cs != nil {
			js.ConfState = &jsonConfState{Voters: nonNil(cs.Voters), Learners: nonNil(cs.Learners),
				VotersOutgoing: nonNil(cs.VotersOutgoing), LearnersNext: nonNil(cs.LearnersNext), AutoLeave: cs.AutoLeave}
		}
		out = append(out, js)
	}
	return out
}

// normalize makes the oracle's nil and empty slices comparable to ours.
func normalize(o *oracleOutput) {
	if o.Entries == nil {
		o.Entries = []jsonEntry{}
	}
	if o.Snapshots == nil {
		o.Snapshots = []jsonSnapshot{}
	}
	for i := range o.Snapshots {
		if cs := o.Snapshots[i].ConfState; cs != nil {
			cs.Voters, cs.Learners = nonNil(cs.Voters), nonNil(cs.Learners)
			cs.VotersOutgoing, cs.LearnersNext = nonNil(cs.VotersOutgoing), nonNil(cs.LearnersNext)
		}
	}
}

// runWalread runs etcd's reader on dir at the snapshot.
func runWalread(t *testing.T, dir string, snap Snapshot) oracleOutput {
	t.Helper()
	bin := interoptest.Oracle(t, "walread")
	cmd := exec.Command(bin, "--snap-index", strconv.FormatUint(snap.Index, 10), "--snap-term", strconv.FormatUint(snap.Term, 10), dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("walread %s: %v: %s", dir, err, stderr.String())
	}
	var o oracleOutput
	if err := json.Unmarshal(out, &o); err != nil {
		t.Fatalf("walread output: %v", err)
	}
	normalize(&o)
	return o
}

// readOurs reads dir with walkit the way walread does with etcd.
func readOurs(t *testing.T, dir string, snap Snapshot) oracleOutput {
	t.Helper()
	w, err := OpenForRead(nil, dir, snap)
	if err != nil {
		t.Fatalf("OpenForRead %s: %v", dir, err)
	}
	defer w.Close()
	md, st, ents, err := w.ReadAll()
	if err != nil {
		t.Fatalf("ReadAll %s: %v", dir, err)
	}
	snaps, err := ValidSnapshotEntries(nil, dir)
	if err != nil {
		t.Fatalf("ValidSnapshotEntries %s: %v", dir, err)
	}
	o := oracleOutput{Metadata: base64.StdEncoding.EncodeToString(md),
		HardState: jsonHardState{st.Term, st.Vote, st.Commit},
		Entries:   toJSONEntries(ents), Snapshots: toJSONSnapshots(snaps)}
	normalize(&o)
	return o
}

func compareWithOracle(t *testing.T, dir string, snap Snapshot) oracleOutput {
	t.Helper()
	want := runWalread(t, dir, snap)
	got := readOurs(t, dir, snap)
	if !reflect.DeepEqual(got, want) {
		gj, _ := json.Marshal(got)
		wj, _ := json.Marshal(want)
		t.Fatalf("%s at snapshot %d/%d:\nwalkit: %.2000s\netcd:   %.2000s", dir, snap.Index, snap.Term, gj, wj)
	}
	return got
}

// TestFixturesReadLikeEtcd reads every fixture member's WAL with walkit and
// with etcd's wal package, at the zero snapshot and at each valid snapshot.
func TestFixturesReadLikeEtcd(t *testing.T) {
	for _, set := range fixture.Sets {
		for _, m := range fixture.Members {
			t.Run(set+"/"+m, func(t *testing.T) {
				dir := fixture.WALDir(t, set, m)
				rep, err := Verify(dir, VerifyOptions{ContinueOnError: true})
				if err != nil {
					t.Fatal(err)
				}
				if !rep.OK() {
					t.Fatalf("Verify found damage in a fixture: %+v", rep.Findings)
				}
				o := compareWithOracle(t, dir, Snapshot{})
				if len(o.Entries) == 0 || o.HardState.Commit == 0 {
					t.Fatalf("fixture read as empty: %d entries, hard state %+v", len(o.Entries), o.HardState)
				}
				for _, s := range o.Snapshots {
					if s.Index > 0 {
						compareWithOracle(t, dir, Snapshot{Index: s.Index, Term: s.Term})
					}
				}
			})
		}
	}
}

func mustWriteFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

package inspect

import (
	"errors"
	"io"
	"path/filepath"
	"testing"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/lifeboat-dev/lifeboat/walkit"
)

// TestDecodeRecord writes a small WAL with walkit's writer and checks that
// every record it reads back is explained: metadata, snapshot, entries (with
// the index filter skipping the data of those it rejects), state.
func TestDecodeRecord(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "wal")
	meta := walkit.Metadata{NodeID: 0xa1, ClusterID: 0xc1}
	w, err := walkit.Create(nil, dir, meta.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	put := normal(t, &etcdserverpb.InternalRaftRequest{Put: &etcdserverpb.PutRequest{Key: []byte("k"), Value: []byte("v")}})
	ents := []raftpb.Entry{
		{Type: raftpb.EntryConfChange, Term: 1, Index: 1, Data: mustMarshal(t, &raftpb.ConfChange{Type: raftpb.ConfChangeAddNode, NodeID: 0xa1})},
		{Type: raftpb.EntryNormal, Term: 2, Index: 2},
		{Type: raftpb.EntryNormal, Term: 2, Index: 3, Data: put.Data},
	}
	hs := raftpb.HardState{Term: 2, Vote: 0xa1, Commit: 3}
	if err := w.Save(hs, ents); err != nil {
		t.Fatal(err)
	}
	cs := &raftpb.ConfState{Voters: []uint64{0xa1}}
	if err := w.SaveSnapshot(walkit.Snapshot{Index: 3, Term: 2, ConfState: cs}); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	r, err := walkit.NewReader(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	onlyIndex3 := func(index, _ uint64) bool { return index == 3 }
	var got []Record
	for range 100 {
		rec, pos, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		dr, err := DecodeRecord(rec, pos, Options{}, onlyIndex3)
		if err != nil {
			t.Fatal(err)
		}
		if dr.Segment != pos.Segment || dr.Offset != pos.Offset {
			t.Errorf("position %s@%d, want %s@%d", dr.Segment, dr.Offset, pos.Segment, pos.Offset)
		}
		got = append(got, dr)
	}
	kinds := []string{"crc", "metadata", "snapshot", "entry", "entry", "entry", "state", "snapshot"}
	if len(got) != len(kinds) {
		t.Fatalf("%d records, want %d: %+v", len(got), len(kinds), got)
	}
	for i, k := range kinds {
		if got[i].Kind != k {
			t.Errorf("record %d is %s, want %s", i, got[i].Kind, k)
		}
	}
	if m := got[1].Metadata; m == nil || uint64(m.NodeID) != meta.NodeID || uint64(m.ClusterID) != meta.ClusterID {
		t.Errorf("metadata %+v, want %+v", got[1].Metadata, meta)
	}
	if e := got[3].Entry; e.Index != 1 || e.Type != "" || e.ConfChange != nil {
		t.Errorf("entry 1 was decoded past the filter: %+v", e)
	}
	if e := got[5].Entry; e.Index != 3 || e.Type != TypeIRRPut || string(e.Put.Key.Raw) != "k" {
		t.Errorf("entry 3: %+v", e)
	}
	if s := got[6].HardState; s == nil || s.Term != hs.Term || uint64(s.Vote) != hs.Vote || s.Commit != hs.Commit {
		t.Errorf("state %+v, want %+v", got[6].HardState, hs)
	}
	if s := got[7].Snapshot; s == nil || s.Index != 3 || s.Term != 2 || s.ConfState == nil || s.ConfState.Voters[0] != 0xa1 {
		t.Errorf("snapshot %+v", got[7].Snapshot)
	}
	for _, r := range got {
		if r.Summary() == "" {
			t.Errorf("%s record has no summary", r.Kind)
		}
	}

	b := NewStats(1, 0, Options{})
	for i := range got {
		b.Add(&got[i])
	}
	s := b.Stats()
	if s.Records["entry"] != 3 || s.Records["snapshot"] != 2 || len(s.Snapshots) != 2 || s.HardState.Commit != 3 || uint64(s.NodeID) != meta.NodeID {
		t.Errorf("stats %+v", s)
	}
}

func TestDamageRecord(t *testing.T) {
	de := &walkit.DamageError{Kind: walkit.CRCMismatch, Pos: walkit.Position{Segment: "s.wal", Offset: 64, Record: 3},
		LastGoodIndex: 9, Err: walkit.ErrCRCMismatch}
	r := DamageRecord(de)
	if r.Kind != "damage" || r.Segment != "s.wal" || r.Offset != 64 || r.Damage.LastGoodIndex != 9 || r.Damage.Kind != walkit.CRCMismatch.String() {
		t.Errorf("damage record %+v %+v", r, r.Damage)
	}
}

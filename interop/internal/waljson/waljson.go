package waljson

import (
	"encoding/base64"
	"fmt"

	"go.etcd.io/etcd/server/v3/storage/wal/walpb"
	"go.etcd.io/raft/v3/raftpb"
)

// HardState is raftpb.HardState.
type HardState struct {
	Term   uint64 `json:"term"`
	Vote   uint64 `json:"vote"`
	Commit uint64 `json:"commit"`
}

// Entry is raftpb.Entry; Type is raftpb.EntryType as a number.
type Entry struct {
	Term  uint64  `json:"term"`
	Index uint64  `json:"index"`
	Type  int32   `json:"type"`
	Data  *string `json:"data,omitempty"`
}

// ConfState is raftpb.ConfState. Empty lists print as [].
type ConfState struct {
	Voters         []uint64 `json:"voters"`
	Learners       []uint64 `json:"learners"`
	VotersOutgoing []uint64 `json:"votersOutgoing"`
	LearnersNext   []uint64 `json:"learnersNext"`
	AutoLeave      bool     `json:"autoLeave"`
}

// Snapshot is walpb.Snapshot; ConfState is omitted when nil.
type Snapshot struct {
	Index     uint64     `json:"index"`
	Term      uint64     `json:"term"`
	ConfState *ConfState `json:"confState,omitempty"`
}

// FromHardState converts a raftpb.HardState.
func FromHardState(hs raftpb.HardState) HardState {
	return HardState{Term: hs.Term, Vote: hs.Vote, Commit: hs.Commit}
}

// Raft converts back to raftpb.HardState.
func (h HardState) Raft() raftpb.HardState {
	return raftpb.HardState{Term: h.Term, Vote: h.Vote, Commit: h.Commit}
}

// FromEntries converts raft entries, keeping nil data distinct from empty.
func FromEntries(ents []raftpb.Entry) []Entry {
	out := make([]Entry, len(ents))
	for i, e := range ents {
		out[i] = Entry{Term: e.Term, Index: e.Index, Type: int32(e.Type)}
		if e.Data != nil {
			s := base64.StdEncoding.EncodeToString(e.Data)
			out[i].Data = &s
		}
	}
	return out
}

// RaftEntries converts back to raft entries.
func RaftEntries(ents []Entry) ([]raftpb.Entry, error) {
	out := make([]raftpb.Entry, len(ents))
	for i, e := range ents {
		out[i] = raftpb.Entry{Term: e.Term, Index: e.Index, Type: raftpb.EntryType(e.Type)}
		if e.Data != nil {
			data, err := base64.StdEncoding.DecodeString(*e.Data)
			if err != nil {
				return nil, fmt.Errorf("entry %d (index %d): data: %w", i, e.Index, err)
			}
			if data == nil {
				data = []byte{}
			}
			out[i].Data = data
		}
	}
	return out, nil
}

// FromConfState converts a raftpb.ConfState; nil gives nil.
func FromConfState(cs *raftpb.ConfState) *ConfState {
	if cs == nil {
		return nil
	}
	return &ConfState{
		Voters:         nonNil(cs.Voters),
		Learners:       nonNil(cs.Learners),
		VotersOutgoing: nonNil(cs.VotersOutgoing),
		LearnersNext:   nonNil(cs.LearnersNext),
		AutoLeave:      cs.AutoLeave,
	}
}

// Raft converts back to a raftpb.ConfState; nil gives nil.
func (c *ConfState) Raft() *raftpb.ConfState {
	if c == nil {
		return nil
	}
	return &raftpb.ConfState{
		Voters:         c.Voters,
		Learners:       c.Learners,
		VotersOutgoing: c.VotersOutgoing,
		LearnersNext:   c.LearnersNext,
		AutoLeave:      c.AutoLeave,
	}
}

// FromSnapshots converts WAL snapshot records.
func FromSnapshots(snaps []walpb.Snapshot) []Snapshot {
	out := make([]Snapshot, len(snaps))
	for i, s := range snaps {
		out[i] = Snapshot{Index: s.Index, Term: s.Term, ConfState: FromConfState(s.ConfState)}
	}
	return out
}

// WAL converts back to a walpb.Snapshot.
func (s Snapshot) WAL() walpb.Snapshot {
	return walpb.Snapshot{Index: s.Index, Term: s.Term, ConfState: s.ConfState.Raft()}
}

func nonNil(v []uint64) []uint64 {
	if v == nil {
		return []uint64{}
	}
	return v
}

package snapkit

import (
	"errors"
	"fmt"
	"path/filepath"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/lifeboat-dev/lifeboat/snapkit/schema"
	"github.com/lifeboat-dev/lifeboat/snapkit/snap"
)

// SnapStatus is what a raft .snap file (member/snap/<term>-<index>.snap)
// holds: the raft snapshot's metadata and the membership kept in its v2
// store.
type SnapStatus struct {
	Source    Source           `json:"source"`
	Term      uint64           `json:"term"`
	Index     uint64           `json:"index"`
	ConfState raftpb.ConfState `json:"confState"`
	// DataSize is the size of the v2 store (JSON) the snapshot carries.
	DataSize       int            `json:"dataSize"`
	Members        []MemberStatus `json:"members"`
	Removed        []string       `json:"removedMembers,omitempty"` // hex IDs
	ClusterVersion string         `json:"clusterVersion,omitempty"`
	Findings       []Finding      `json:"findings"`
}

// CheckSnap is the check of a .snap file's name against its metadata and
// of its v2 store.
const CheckSnap = "snap"

// OK reports whether no check found anything.
func (s *SnapStatus) OK() bool { return len(s.Findings) == 0 }

// InspectSnap reads the .snap file at path. A file that does not decode
// (CRC mismatch, bad protobuf, empty) is an error wrapping ErrDamaged; a
// name that disagrees with the metadata, or a v2 store whose membership
// does not decode, is a finding.
func InspectSnap(path string) (*SnapStatus, error) {
	src, err := Resolve(path)
	if err != nil {
		return nil, err
	}
	if src.Kind != KindSnap {
		return nil, fmt.Errorf("snapkit: %s: not a .snap file", path)
	}
	s, err := snap.Read(path)
	if err != nil {
		return nil, errors.Join(ErrDamaged, err)
	}
	st := &SnapStatus{Source: src, Term: s.Metadata.Term, Index: s.Metadata.Index, ConfState: s.Metadata.ConfState,
		DataSize: len(s.Data), Members: []MemberStatus{}}
	if term, index, err := snap.ParseName(filepath.Base(path)); err != nil {
		st.Findings = append(st.Findings, Finding{Check: CheckSnap, Message: err.Error()})
	} else if term != st.Term || index != st.Index {
		st.Findings = append(st.Findings, Finding{Check: CheckSnap,
			Message: fmt.Sprintf("the name says term %d index %d, the metadata term %d index %d", term, index, st.Term, st.Index)})
	}
	m, err := snap.DecodeMembership(s.Data)
	if err != nil {
		st.Findings = append(st.Findings, Finding{Check: CheckSnap, Message: err.Error()})
		return st, nil
	}
	for _, mb := range m.Members {
		st.Members = append(st.Members, memberStatus(mb))
	}
	for _, id := range m.Removed {
		st.Removed = append(st.Removed, schema.FormatID(id))
	}
	st.ClusterVersion = m.ClusterVersion
	return st, nil
}

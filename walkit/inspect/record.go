package inspect

import (
	"fmt"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/lifeboat-dev/lifeboat/walkit"
)

// Record is one WAL record decoded for people, where it stands. An entry
// record embeds its Entry, whose fields appear at the top level in JSON.
// Damage stands in for a record that could not be read.
type Record struct {
	Segment string `json:"segment"`
	Offset  int64  `json:"offset"`
	Kind    string `json:"record"` // metadata, entry, state, crc, snapshot, or damage
	*Entry
	Metadata  *Metadata  `json:"metadata,omitempty"`
	HardState *HardState `json:"hardState,omitempty"`
	Snapshot  *Snapshot  `json:"snapshot,omitempty"`
	CRC       string     `json:"crc,omitempty"` // a CRC record's running CRC, 0x%08x
	Damage    *Damage    `json:"damage,omitempty"`
}

// Metadata is etcd's WAL metadata: who wrote the WAL.
type Metadata struct {
	NodeID    ID `json:"nodeId"`
	ClusterID ID `json:"clusterId"`
}

// Snapshot is a WAL snapshot record.
type Snapshot struct {
	Index     uint64            `json:"index"`
	Term      uint64            `json:"term"`
	ConfState *raftpb.ConfState `json:"confState,omitempty"`
}

// Damage is a record walkit could not read, with what it found.
type Damage struct {
	Kind          string `json:"kind"`
	LastGoodIndex uint64 `json:"lastGoodIndex"`
	Message       string `json:"message"`
}

// DecodeRecord explains one record that walkit's Reader returned. The
// entry data is decoded only when decodeEntry says so (after a cheap look
// at index and term), so that filtered dumps stay fast.
func DecodeRecord(rec walkit.Record, pos walkit.Position, opt Options, decodeEntry func(index, term uint64) bool) (Record, error) {
	r := Record{Segment: pos.Segment, Offset: pos.Offset, Kind: rec.Type.String()}
	fail := func(err error) (Record, error) {
		return r, fmt.Errorf("inspect: segment %s offset %d: %s record: %w", pos.Segment, pos.Offset, rec.Type, err)
	}
	switch rec.Type {
	case walkit.EntryType:
		var ent raftpb.Entry
		if err := ent.Unmarshal(rec.Data); err != nil {
			return fail(err)
		}
		if decodeEntry != nil && !decodeEntry(ent.Index, ent.Term) {
			r.Entry = &Entry{Index: ent.Index, Term: ent.Term, Size: len(ent.Data)}
			return r, nil
		}
		e := Decode(ent, opt)
		r.Entry = &e
	case walkit.StateType:
		var hs raftpb.HardState
		if err := hs.Unmarshal(rec.Data); err != nil {
			return fail(err)
		}
		r.HardState = &HardState{Term: hs.Term, Vote: ID(hs.Vote), Commit: hs.Commit}
	case walkit.MetadataType:
		m, err := walkit.ParseMetadata(rec.Data)
		if err != nil {
			return fail(err)
		}
		r.Metadata = &Metadata{NodeID: ID(m.NodeID), ClusterID: ID(m.ClusterID)}
	case walkit.SnapshotType:
		s, err := walkit.DecodeSnapshot(rec.Data)
		if err != nil {
			return fail(err)
		}
		r.Snapshot = &Snapshot{Index: s.Index, Term: s.Term, ConfState: s.ConfState}
	case walkit.CrcType:
		r.CRC = fmt.Sprintf("0x%08x", rec.CRC)
	}
	return r, nil
}

// DamageRecord stands for a record the Reader could not read.
func DamageRecord(de *walkit.DamageError) Record {
	return Record{Segment: de.Pos.Segment, Offset: de.Pos.Offset, Kind: "damage",
		Damage: &Damage{Kind: de.Kind.String(), LastGoodIndex: de.LastGoodIndex, Message: de.Err.Error()}}
}

// Summary is a one-line account of any record, for tables.
func (r *Record) Summary() string {
	switch {
	case r.Entry != nil:
		return r.Entry.Summary()
	case r.Metadata != nil:
		return fmt.Sprintf("node=%s cluster=%s", r.Metadata.NodeID, r.Metadata.ClusterID)
	case r.HardState != nil:
		return fmt.Sprintf("term=%d vote=%s commit=%d", r.HardState.Term, r.HardState.Vote, r.HardState.Commit)
	case r.Snapshot != nil:
		s := fmt.Sprintf("index=%d term=%d", r.Snapshot.Index, r.Snapshot.Term)
		if cs := r.Snapshot.ConfState; cs != nil {
			s += fmt.Sprintf(" voters=%s learners=%s", ids(cs.Voters), ids(cs.Learners))
		}
		return s
	case r.Damage != nil:
		return fmt.Sprintf("%s: %s (last good entry %d)", r.Damage.Kind, r.Damage.Message, r.Damage.LastGoodIndex)
	case r.CRC != "":
		return "crc=" + r.CRC
	}
	return ""
}

func ids(xs []uint64) string {
	s := "["
	for i, x := range xs {
		if i > 0 {
			s += ","
		}
		s += ID(x).String()
	}
	return s + "]"
}

// Add counts a record in the statistics.
func (b *StatsBuilder) Add(r *Record) {
	b.s.Records[r.Kind]++
	switch {
	case r.Entry != nil:
		b.addEntry(r.Entry)
	case r.Metadata != nil:
		b.s.NodeID, b.s.ClusterID = r.Metadata.NodeID, r.Metadata.ClusterID
	case r.HardState != nil:
		hs := *r.HardState
		b.s.HardState = &hs
	case r.Snapshot != nil:
		b.s.Snapshots = append(b.s.Snapshots, SnapshotRef{Index: r.Snapshot.Index, Term: r.Snapshot.Term})
	}
}

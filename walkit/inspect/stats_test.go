package inspect

import (
	"testing"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/raft/v3/raftpb"
)

func TestPrefixOf(t *testing.T) {
	tests := []struct {
		key   string
		depth int
		want  string
	}{
		{"/registry/pods/default/web", 2, "/registry/pods/"},
		{"/registry/pods/default/web", 1, "/registry/"},
		{"a/b/c", 2, "a/b/"},
		{"a/b/c", 0, "a/b/c"},
		{"/short", 2, "/short"},
		{"plain", 1, "plain"},
		{"", 1, ""},
	}
	for _, tt := range tests {
		if got := string(PrefixOf([]byte(tt.key), tt.depth)); got != tt.want {
			t.Errorf("PrefixOf(%q, %d) = %q, want %q", tt.key, tt.depth, got, tt.want)
		}
	}
}

func TestStats(t *testing.T) {
	put := func(index uint64, key, val string) raftpb.Entry {
		e := normal(t, &etcdserverpb.InternalRaftRequest{Put: &etcdserverpb.PutRequest{Key: []byte(key), Value: []byte(val)}})
		e.Index, e.Term = index, 2
		return e
	}
	del := normal(t, &etcdserverpb.InternalRaftRequest{DeleteRange: &etcdserverpb.DeleteRangeRequest{Key: []byte("/b/1")}})
	del.Index, del.Term = 4, 3
	ents := []raftpb.Entry{
		{Type: raftpb.EntryNormal, Term: 2, Index: 1},
		put(2, "/a/1", "xxxx"),
		put(3, "/b/1", "yy"),
		del,
		put(4, "/a/2", "z"), // rewritten index
	}
	b := NewStats(1, 1, Options{})
	var dataBytes int64
	for _, ent := range ents {
		e := Decode(ent, Options{})
		b.Add(&Record{Kind: "entry", Entry: &e})
		dataBytes += int64(len(ent.Data))
	}
	b.Add(&Record{Kind: "state", HardState: &HardState{Term: 3, Vote: 0xa, Commit: 4}})
	b.Add(&Record{Kind: "snapshot", Snapshot: &Snapshot{}})
	b.Add(&Record{Kind: "metadata", Metadata: &Metadata{NodeID: 1, ClusterID: 2}})
	b.AddSegment(64)
	s := b.Stats()
	if s.Records["entry"] != len(ents) || s.Records["state"] != 1 || s.NodeID != 1 || s.ClusterID != 2 || s.Segments != 1 || s.SegmentBytes != 64 {
		t.Errorf("records: %+v", s)
	}
	if s.Entries != len(ents) || s.FirstIndex != 1 || s.LastIndex != 4 || s.FirstTerm != 2 || s.LastTerm != 2 {
		t.Errorf("range: %+v", s)
	}
	if s.EntryBytes != dataBytes {
		t.Errorf("entry bytes %d, want %d", s.EntryBytes, dataBytes)
	}
	if s.Rewritten != 1 {
		t.Errorf("rewritten %d, want 1", s.Rewritten)
	}
	if s.EntryTypes[TypeNormal] != 5 || s.RequestTypes[TypeIRRPut] != 3 || s.RequestTypes[TypeNoOp] != 1 || s.RequestTypes[TypeIRRDeleteRange] != 1 {
		t.Errorf("types: %v %v", s.EntryTypes, s.RequestTypes)
	}
	if s.HardState == nil || s.HardState.Commit != 4 || len(s.Snapshots) != 1 {
		t.Errorf("state/snapshots: %+v %+v", s.HardState, s.Snapshots)
	}
	// top 1 of depth 1: "/a/" holds 2 puts of (4+4)+(4+1) bytes.
	if len(s.TopPrefixes) != 1 || string(s.TopPrefixes[0].Prefix.Raw) != "/a/" || s.TopPrefixes[0].Bytes != 13 || s.TopPrefixes[0].Puts != 2 {
		t.Errorf("top prefixes: %+v", s.TopPrefixes)
	}
	all := NewStats(1, 0, Options{})
	for _, ent := range ents {
		e := Decode(ent, Options{})
		all.Add(&Record{Kind: "entry", Entry: &e})
	}
	if tp := all.Stats().TopPrefixes; len(tp) != 2 || string(tp[1].Prefix.Raw) != "/b/" || tp[1].Deletes != 1 || tp[1].Puts != 1 {
		t.Errorf("all prefixes: %+v", tp)
	}
}

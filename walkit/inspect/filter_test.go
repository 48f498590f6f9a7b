package inspect

import (
	"testing"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/raft/v3/raftpb"
)

func TestOverlaps(t *testing.T) {
	tests := []struct {
		key, end, prefix string
		want             bool
	}{
		{"/a/b", "", "/a/", true},
		{"/b", "", "/a/", false},
		{"/0", "/z", "/a/", true},    // range spans the prefix
		{"/a/x", "/b", "/a/", true},  // range starts inside it
		{"/0", "/a/", "/a/", false},  // ends where the prefix starts
		{"/a0", "/b", "/a/", false},  // starts after the prefix ends ('0' > '/')
		{"/0", "\x00", "/a/", true},  // every key from /0 on
		{"/b", "\x00", "/a/", false}, // every key from /b on
		{"\xff", "", "\xff", true},   // prefix with no end
		{"\xff\x01", "\xff\x02", "\xff", true},
	}
	for _, tt := range tests {
		k := KeyRange{Key: []byte(tt.key), End: []byte(tt.end)}
		if got := k.Overlaps([]byte(tt.prefix)); got != tt.want {
			t.Errorf("[%q,%q) under %q: %t, want %t", tt.key, tt.end, tt.prefix, got, tt.want)
		}
	}
}

func TestFilter(t *testing.T) {
	putEnt := func(index, term uint64, key string) Entry {
		return Decode(normal(t, &etcdserverpb.InternalRaftRequest{Put: &etcdserverpb.PutRequest{Key: []byte(key)}}), Options{}).withPos(index, term)
	}
	txnEnt := Decode(normal(t, &etcdserverpb.InternalRaftRequest{Txn: &etcdserverpb.TxnRequest{
		Failure: []*etcdserverpb.RequestOp{{Request: &etcdserverpb.RequestOp_RequestTxn{RequestTxn: &etcdserverpb.TxnRequest{
			Success: []*etcdserverpb.RequestOp{{Request: &etcdserverpb.RequestOp_RequestDeleteRange{
				RequestDeleteRange: &etcdserverpb.DeleteRangeRequest{Key: []byte("/x/"), RangeEnd: []byte("/x0")}}}}}}}}}}), Options{}).withPos(12, 2)
	v2Ent := Decode(normal(t, &etcdserverpb.Request{Method: "PUT", Path: "/0/members/1/attributes"}), Options{}).withPos(13, 2)
	noop := Decode(raftpb.Entry{Type: raftpb.EntryNormal}, Options{}).withPos(14, 3)
	entries := []Entry{putEnt(10, 2, "/a/1"), putEnt(11, 2, "/b/1"), txnEnt, v2Ent, noop}
	tests := []struct {
		name   string
		f      Filter
		wantIx []uint64
	}{
		{"all", Filter{}, []uint64{10, 11, 12, 13, 14}},
		{"start", Filter{StartIndex: 12}, []uint64{12, 13, 14}},
		{"end", Filter{EndIndex: 11}, []uint64{10, 11}},
		{"term", Filter{Term: 3}, []uint64{14}},
		{"type put", Filter{Types: []Type{TypeIRRPut}}, []uint64{10, 11}},
		{"group irr", Filter{Types: []Type{TypeInternalRaftRequest}}, []uint64{10, 11, 12}},
		{"normal", Filter{Types: []Type{TypeNormal}}, []uint64{10, 11, 12, 13, 14}},
		{"noop or request", Filter{Types: []Type{TypeNoOp, TypeRequest}}, []uint64{13, 14}},
		{"prefix", Filter{KeyPrefix: []byte("/a/")}, []uint64{10}},
		{"prefix in nested txn", Filter{KeyPrefix: []byte("/x/y")}, []uint64{12}},
		{"prefix v2 path", Filter{KeyPrefix: []byte("/0/members/")}, []uint64{13}},
		{"prefix and type", Filter{KeyPrefix: []byte("/"), Types: []Type{TypeIRRTxn}}, []uint64{12}},
	}
	for _, tt := range tests {
		var got []uint64
		for i := range entries {
			if tt.f.Match(&entries[i]) {
				got = append(got, entries[i].Index)
			}
		}
		if len(got) != len(tt.wantIx) {
			t.Errorf("%s: got %v, want %v", tt.name, got, tt.wantIx)
			continue
		}
		for i := range got {
			if got[i] != tt.wantIx[i] {
				t.Errorf("%s: got %v, want %v", tt.name, got, tt.wantIx)
				break
			}
		}
	}
}

func (e Entry) withPos(index, term uint64) Entry {
	e.Index, e.Term = index, term
	return e
}

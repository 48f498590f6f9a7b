package inspect

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"go.etcd.io/etcd/api/v3/authpb"
	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/membershippb"
	"go.etcd.io/raft/v3/raftpb"
)

type marshaler interface{ Marshal() ([]byte, error) }

func mustMarshal(t *testing.T, m marshaler) []byte {
	t.Helper()
	b, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func normal(t *testing.T, m marshaler) raftpb.Entry {
	return raftpb.Entry{Type: raftpb.EntryNormal, Term: 3, Index: 42, Data: mustMarshal(t, m)}
}

func TestDecode(t *testing.T) {
	tru := true
	put := &etcdserverpb.PutRequest{Key: []byte("/registry/pods/web"), Value: []byte("hello"), Lease: 0x1234}
	txn := &etcdserverpb.TxnRequest{
		Compare: []*etcdserverpb.Compare{{Key: []byte("a"), Target: etcdserverpb.Compare_MOD,
			Result: etcdserverpb.Compare_EQUAL, TargetUnion: &etcdserverpb.Compare_ModRevision{ModRevision: 7}}},
		Success: []*etcdserverpb.RequestOp{{Request: &etcdserverpb.RequestOp_RequestPut{RequestPut: put}}},
		Failure: []*etcdserverpb.RequestOp{{Request: &etcdserverpb.RequestOp_RequestRange{
			RequestRange: &etcdserverpb.RangeRequest{Key: []byte("a")}}}},
	}
	const memberID = 12063228901127971775
	hexID := fmt.Sprintf("%x", uint64(memberID))
	member := `{"id":12063228901127971775,"peerURLs":["http://127.0.0.1:27381"],"name":"m1","isPromote":true}`
	tests := []struct {
		name     string
		ent      raftpb.Entry
		typ      Type
		names    []Type
		summary  []string // substrings of Summary
		jsonHas  []string // substrings of the JSON
		jsonNot  []string
		hasError bool
	}{
		{name: "no-op", ent: raftpb.Entry{Type: raftpb.EntryNormal, Term: 2, Index: 5},
			typ: TypeNoOp, names: []Type{TypeNormal, TypeNoOp}, summary: []string{"no-op"}},
		{name: "put", ent: normal(t, &etcdserverpb.InternalRaftRequest{Header: &etcdserverpb.RequestHeader{ID: 0xabc}, Put: put}),
			typ: TypeIRRPut, names: []Type{TypeNormal, TypeInternalRaftRequest, TypeIRRPut},
			summary: []string{`put key="/registry/pods/web"`, `value="hello"`, "lease=1234"},
			jsonHas: []string{`"key":"/registry/pods/web"`, `"value":"hello"`, `"valueSize":5`, `"header":{"id":"abc"}`}},
		{name: "binary put", ent: normal(t, &etcdserverpb.InternalRaftRequest{Put: &etcdserverpb.PutRequest{Key: []byte{0xff, 0}, Value: []byte("v")}}),
			typ: TypeIRRPut, summary: []string{"key=base64:/wA="}, jsonHas: []string{`"key":"base64:/wA="`}},
		{name: "delete range", ent: normal(t, &etcdserverpb.InternalRaftRequest{DeleteRange: &etcdserverpb.DeleteRangeRequest{Key: []byte("a"), RangeEnd: []byte("b")}}),
			typ: TypeIRRDeleteRange, summary: []string{`delete_range key="a" range_end="b"`}, jsonHas: []string{`"deleteRange":{"key":"a","rangeEnd":"b"}`}},
		{name: "txn", ent: normal(t, &etcdserverpb.InternalRaftRequest{Txn: txn}),
			typ: TypeIRRTxn, summary: []string{`MOD("a") EQUAL 7`, `then [put key="/registry/pods/web"`, `else [range key="a"]`},
			jsonHas: []string{`"target":"MOD"`, `"operand":7`}},
		{name: "range", ent: normal(t, &etcdserverpb.InternalRaftRequest{Range: &etcdserverpb.RangeRequest{Key: []byte("k"), Revision: 9}}),
			typ: TypeIRRRange, summary: []string{`range key="k" revision=9`}},
		{name: "compaction", ent: normal(t, &etcdserverpb.InternalRaftRequest{Compaction: &etcdserverpb.CompactionRequest{Revision: 100, Physical: true}}),
			typ: TypeIRRCompaction, summary: []string{"compaction revision=100 physical=true"}},
		{name: "lease grant", ent: normal(t, &etcdserverpb.InternalRaftRequest{LeaseGrant: &etcdserverpb.LeaseGrantRequest{ID: 0x10, TTL: 60}}),
			typ: TypeIRRLeaseGrant, summary: []string{"lease_grant id=10 ttl=60"}},
		{name: "lease revoke", ent: normal(t, &etcdserverpb.InternalRaftRequest{LeaseRevoke: &etcdserverpb.LeaseRevokeRequest{ID: 0x10}}),
			typ: TypeIRRLeaseRevoke, summary: []string{"lease_revoke id=10"}},
		{name: "lease checkpoint", ent: normal(t, &etcdserverpb.InternalRaftRequest{LeaseCheckpoint: &etcdserverpb.LeaseCheckpointRequest{
			Checkpoints: []*etcdserverpb.LeaseCheckpoint{{ID: 0x10, Remaining_TTL: 30}}}}),
			typ: TypeIRRLeaseCheckpoint, summary: []string{"lease_checkpoint id=10 remaining_ttl=30"}},
		{name: "alarm", ent: normal(t, &etcdserverpb.InternalRaftRequest{Alarm: &etcdserverpb.AlarmRequest{
			Action: etcdserverpb.AlarmRequest_ACTIVATE, MemberID: 0x99, Alarm: etcdserverpb.AlarmType_NOSPACE}}),
			typ: TypeIRRAlarm, summary: []string{"alarm ACTIVATE NOSPACE member=99"}},
		{name: "auth user add hides the password", ent: normal(t, &etcdserverpb.InternalRaftRequest{
			AuthUserAdd: &etcdserverpb.AuthUserAddRequest{Name: "root", Password: "s3cret", HashedPassword: "h4sh"}}),
			typ: TypeIRRAuthUserAdd, summary: []string{"auth_user_add user=root"}, jsonNot: []string{"s3cret", "h4sh"}},
		{name: "auth grant permission", ent: normal(t, &etcdserverpb.InternalRaftRequest{
			AuthRoleGrantPermission: &etcdserverpb.AuthRoleGrantPermissionRequest{Name: "r", Perm: &authpb.Permission{PermType: authpb.WRITE, Key: []byte("/a")}}}),
			typ: TypeIRRAuthRoleGrantPermission, summary: []string{`auth_role_grant_permission role=r perm=WRITE key="/a"`}},
		{name: "authenticate hides the token", ent: normal(t, &etcdserverpb.InternalRaftRequest{
			Authenticate: &etcdserverpb.InternalAuthenticateRequest{Name: "root", Password: "pw", SimpleToken: "tok"}}),
			typ: TypeIRRAuthenticate, jsonNot: []string{`"pw"`, "tok"}},
		{name: "cluster version", ent: normal(t, &etcdserverpb.InternalRaftRequest{ClusterVersionSet: &membershippb.ClusterVersionSetRequest{Ver: "3.6.0"}}),
			typ: TypeIRRClusterVersionSet, summary: []string{"cluster_version_set version=3.6.0"}},
		{name: "member attributes", ent: normal(t, &etcdserverpb.InternalRaftRequest{ClusterMemberAttrSet: &membershippb.ClusterMemberAttrSetRequest{
			Member_ID: 0xab, MemberAttributes: &membershippb.Attributes{Name: "m1", ClientUrls: []string{"http://c"}}}}),
			typ: TypeIRRClusterMemberAttrSet, summary: []string{"member=ab name=m1 client_urls=http://c"}},
		{name: "downgrade", ent: normal(t, &etcdserverpb.InternalRaftRequest{DowngradeInfoSet: &membershippb.DowngradeInfoSetRequest{Enabled: true, Ver: "3.5.0"}}),
			typ: TypeIRRDowngradeInfoSet, summary: []string{"downgrade_info_set enabled=true version=3.5.0"}},
		{name: "v2 request", ent: normal(t, &etcdserverpb.Request{ID: 7, Method: "PUT", Path: "/0/version", Val: "3.5.0", PrevExist: &tru}),
			typ: TypeRequest, names: []Type{TypeNormal, TypeRequest}, summary: []string{`PUT "/0/version" val="3.5.0"`},
			jsonHas: []string{`"method":"PUT"`, `"path":"/0/version"`, `"prevExist":true`}},
		{name: "header only", ent: normal(t, &etcdserverpb.InternalRaftRequest{Header: &etcdserverpb.RequestHeader{ID: 1}}),
			typ: TypeInternalRaftRequest, names: []Type{TypeNormal, TypeInternalRaftRequest}},
		{name: "garbage", ent: raftpb.Entry{Type: raftpb.EntryNormal, Data: []byte{0xff, 0xff, 0xff}},
			typ: TypeUnknownNormal, names: []Type{TypeNormal, TypeUnknownNormal}, summary: []string{"undecodable"}, hasError: true},
		{name: "add member", ent: raftpb.Entry{Type: raftpb.EntryConfChange, Data: mustMarshal(t, &raftpb.ConfChange{
			Type: raftpb.ConfChangeAddNode, NodeID: memberID, Context: []byte(member)})},
			typ: TypeConfigChange, names: []Type{TypeConfigChange},
			summary: []string{"AddNode id=" + hexID + " name=m1 peer_urls=http://127.0.0.1:27381 promote"},
			jsonHas: []string{`"member":{"id":"` + hexID + `","name":"m1"`, `"isPromote":true`}},
		{name: "remove member", ent: raftpb.Entry{Type: raftpb.EntryConfChange, Data: mustMarshal(t, &raftpb.ConfChange{
			Type: raftpb.ConfChangeRemoveNode, NodeID: 0x5})},
			typ: TypeConfigChange, summary: []string{"RemoveNode id=5"}, jsonNot: []string{"member"}},
		{name: "conf change v2", ent: raftpb.Entry{Type: raftpb.EntryConfChangeV2, Data: mustMarshal(t, &raftpb.ConfChangeV2{
			Changes: []raftpb.ConfChangeSingle{{Type: raftpb.ConfChangeAddLearnerNode, NodeID: 6}}})},
			typ: TypeConfigChangeV2, names: []Type{TypeConfigChange, TypeConfigChangeV2}, summary: []string{"AddLearnerNode id=6"}},
		{name: "bad conf change", ent: raftpb.Entry{Type: raftpb.EntryConfChange, Data: []byte{0x0a}},
			typ: TypeConfigChange, hasError: true},
		{name: "unknown raft type", ent: raftpb.Entry{Type: 7}, typ: TypeUnknown, hasError: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := Decode(tt.ent, Options{})
			if e.Type != tt.typ {
				t.Fatalf("type %s, want %s (error %q)", e.Type, tt.typ, e.Error)
			}
			if e.Index != tt.ent.Index || e.Term != tt.ent.Term || e.Size != len(tt.ent.Data) {
				t.Errorf("index/term/size %d/%d/%d, want %d/%d/%d", e.Index, e.Term, e.Size, tt.ent.Index, tt.ent.Term, len(tt.ent.Data))
			}
			if (e.Error != "") != tt.hasError {
				t.Errorf("error %q, want error: %t", e.Error, tt.hasError)
			}
			if tt.names != nil && strings.Join(typeStrings(e.Names()), ",") != strings.Join(typeStrings(tt.names), ",") {
				t.Errorf("names %v, want %v", e.Names(), tt.names)
			}
			sum := e.Summary()
			for _, s := range tt.summary {
				if !strings.Contains(sum, s) {
					t.Errorf("summary %q lacks %q", sum, s)
				}
			}
			js, err := json.Marshal(e)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range tt.jsonHas {
				if !strings.Contains(string(js), s) {
					t.Errorf("json %s lacks %s", js, s)
				}
			}
			for _, s := range tt.jsonNot {
				if strings.Contains(string(js), s) || strings.Contains(sum, s) {
					t.Errorf("output shows %s: %s / %s", s, js, sum)
				}
			}
		})
	}
}

func typeStrings(ts []Type) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = string(t)
	}
	return out
}

func TestBytesRendering(t *testing.T) {
	tests := []struct {
		raw        []byte
		hex        bool
		json, text string
	}{
		{[]byte("foo"), false, `"foo"`, `"foo"`},
		{[]byte("héllo\n"), false, `"héllo\n"`, `"héllo\n"`},
		{[]byte{0, 1}, false, `"base64:AAE="`, "base64:AAE="},
		{[]byte{0xc3}, false, `"base64:ww=="`, "base64:ww=="},
		{[]byte("base64:x"), false, `"base64:YmFzZTY0Ong="`, `"base64:x"`},
		{[]byte("foo"), true, `"666f6f"`, "0x666f6f"},
	}
	for _, tt := range tests {
		b := Bytes{Raw: tt.raw, Hex: tt.hex}
		js, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		if string(js) != tt.json || b.String() != tt.text {
			t.Errorf("%q hex=%t: json %s text %s, want %s and %s", tt.raw, tt.hex, js, b, tt.json, tt.text)
		}
	}
	long := Bytes{Raw: []byte(strings.Repeat("é", 100))}
	if s := long.Short(11); !strings.HasSuffix(s, "...(200 bytes)") || !strings.HasPrefix(s, `"éééé`) {
		t.Errorf("Short cut badly: %q", s)
	}
}

func TestParseTypes(t *testing.T) {
	got, err := ParseTypes("IRRPut, configchange,,Request")
	if err != nil {
		t.Fatal(err)
	}
	if want := []Type{TypeIRRPut, TypeConfigChange, TypeRequest}; strings.Join(typeStrings(got), ",") != strings.Join(typeStrings(want), ",") {
		t.Errorf("got %v, want %v", got, want)
	}
	if _, err := ParseTypes("IRRPutt"); err == nil || !strings.Contains(err.Error(), `"IRRPutt"`) || !strings.Contains(err.Error(), "IRRDeleteRange") {
		t.Errorf("unknown name: %v", err)
	}
}

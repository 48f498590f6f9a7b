package mvcc

import (
	"context"
	"errors"
	"fmt"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
)

// seed writes revisions 2 to 8 (an empty store is at revision 1 and the
// first write is 2, as in etcd); afterwards a=3@2/4/2 b=6@7/7/1 c=4@5/5/1
// d=0@8/8/1, and b was deleted at 6.
func seed(t testing.TB, ts *testStore) {
	t.Helper()
	ts.put(t, "a", "1")
	ts.put(t, "b", "2")
	ts.put(t, "a", "3")
	ts.put(t, "c", "4")
	if n := ts.del(t, "b", ""); n != 1 {
		t.Fatalf("deleted %d, want 1", n)
	}
	ts.put(t, "b", "6")
	ts.put(t, "d", "0")
}

func TestRange(t *testing.T) {
	ts := newTestStore(t, Config{})
	seed(t, ts)
	all := func(r *pb.RangeRequest) *pb.RangeRequest {
		r.Key, r.RangeEnd = []byte("a"), []byte("e")
		return r
	}
	tests := []struct {
		name  string
		req   *pb.RangeRequest
		want  []string
		count int64
		more  bool
	}{
		{"one key", &pb.RangeRequest{Key: []byte("a")}, []string{"a=3@2/4/2"}, 1, false},
		{"missing key", &pb.RangeRequest{Key: []byte("zz")}, []string{}, 0, false},
		{"from key", &pb.RangeRequest{Key: []byte("b"), RangeEnd: []byte{0}}, []string{"b=6@7/7/1", "c=4@5/5/1", "d=0@8/8/1"}, 3, false},
		{"range", all(&pb.RangeRequest{}), []string{"a=3@2/4/2", "b=6@7/7/1", "c=4@5/5/1", "d=0@8/8/1"}, 4, false},
		{"limit", all(&pb.RangeRequest{Limit: 2}), []string{"a=3@2/4/2", "b=6@7/7/1"}, 4, true},
		{"limit equal to count", all(&pb.RangeRequest{Limit: 4}), []string{"a=3@2/4/2", "b=6@7/7/1", "c=4@5/5/1", "d=0@8/8/1"}, 4, false},
		{"at revision 5", all(&pb.RangeRequest{Revision: 5}), []string{"a=3@2/4/2", "b=2@3/3/1", "c=4@5/5/1"}, 3, false},
		{"at revision 6, b deleted", all(&pb.RangeRequest{Revision: 6}), []string{"a=3@2/4/2", "c=4@5/5/1"}, 2, false},
		{"at revision 2, the first write", all(&pb.RangeRequest{Revision: 2}), []string{"a=1@2/2/1"}, 1, false},
		{"at revision 1, the empty store", all(&pb.RangeRequest{Revision: 1}), []string{}, 0, false},
		{"count only", all(&pb.RangeRequest{CountOnly: true}), []string{}, 4, false},
		{"keys only", &pb.RangeRequest{Key: []byte("c"), KeysOnly: true}, []string{"c=@5/5/1"}, 1, false},
		{"sort mod descend", all(&pb.RangeRequest{SortTarget: pb.RangeRequest_MOD, SortOrder: pb.RangeRequest_DESCEND}),
			[]string{"d=0@8/8/1", "b=6@7/7/1", "c=4@5/5/1", "a=3@2/4/2"}, 4, false},
		{"sort value ascend", all(&pb.RangeRequest{SortTarget: pb.RangeRequest_VALUE, SortOrder: pb.RangeRequest_ASCEND}),
			[]string{"d=0@8/8/1", "a=3@2/4/2", "c=4@5/5/1", "b=6@7/7/1"}, 4, false},
		{"sort create without order ascends", all(&pb.RangeRequest{SortTarget: pb.RangeRequest_CREATE}),
			[]string{"a=3@2/4/2", "c=4@5/5/1", "b=6@7/7/1", "d=0@8/8/1"}, 4, false},
		{"sort key descend", all(&pb.RangeRequest{SortOrder: pb.RangeRequest_DESCEND}),
			[]string{"d=0@8/8/1", "c=4@5/5/1", "b=6@7/7/1", "a=3@2/4/2"}, 4, false},
		{"sort version descend, limit 1", all(&pb.RangeRequest{SortTarget: pb.RangeRequest_VERSION, SortOrder: pb.RangeRequest_DESCEND, Limit: 1}),
			[]string{"a=3@2/4/2"}, 4, true},
		{"min mod revision", all(&pb.RangeRequest{MinModRevision: 5}), []string{"b=6@7/7/1", "c=4@5/5/1", "d=0@8/8/1"}, 4, false},
		{"max mod revision", all(&pb.RangeRequest{MaxModRevision: 5}), []string{"a=3@2/4/2", "c=4@5/5/1"}, 4, false},
		{"min create revision", all(&pb.RangeRequest{MinCreateRevision: 7}), []string{"b=6@7/7/1", "d=0@8/8/1"}, 4, false},
		{"max create revision with limit", all(&pb.RangeRequest{MaxCreateRevision: 5, Limit: 1}), []string{"a=3@2/4/2"}, 4, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := ts.get(t, tt.req)
			if got := fmt.Sprint(kvs(resp.Kvs)); got != fmt.Sprint(tt.want) {
				t.Errorf("kvs %v, want %v", got, tt.want)
			}
			if resp.Count != tt.count || resp.More != tt.more {
				t.Errorf("count %d more %v, want %d %v", resp.Count, resp.More, tt.count, tt.more)
			}
			if resp.Header.Revision != 8 {
				t.Errorf("header revision %d, want 8", resp.Header.Revision)
			}
		})
	}
}

func TestRangeErrors(t *testing.T) {
	ts := newTestStore(t, Config{})
	seed(t, ts)
	done, err := ts.Compact(5)
	if err != nil {
		t.Fatal(err)
	}
	<-done
	tests := []struct {
		rev  int64
		want error
	}{
		{9, ErrFutureRev},
		{4, ErrCompacted},
		{5, nil},
		{0, nil},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.rev), func(t *testing.T) {
			_, err := ts.Range(context.Background(), &pb.RangeRequest{Key: []byte("a"), Revision: tt.rev})
			if !errors.Is(err, tt.want) {
				t.Errorf("got %v, want %v", err, tt.want)
			}
		})
	}
}

func TestPut(t *testing.T) {
	tests := []struct {
		name    string
		req     *pb.PutRequest
		wantErr error
		prev    string
		after   string
	}{
		{"new key", &pb.PutRequest{Key: []byte("n"), Value: []byte("v")}, nil, "<nil>", "n=v@9/9/1"},
		{"overwrite with prev_kv", &pb.PutRequest{Key: []byte("a"), Value: []byte("v"), PrevKv: true}, nil, "a=3@2/4/2", "a=v@2/9/3"},
		{"recreate after delete", &pb.PutRequest{Key: []byte("b"), Value: []byte("v")}, nil, "<nil>", "b=v@7/9/2"},
		{"ignore value", &pb.PutRequest{Key: []byte("c"), IgnoreValue: true, PrevKv: true}, nil, "c=4@5/5/1", "c=4@5/9/2"},
		{"ignore value on a missing key", &pb.PutRequest{Key: []byte("n"), IgnoreValue: true}, rpctypes.ErrGRPCKeyNotFound, "", ""},
		{"ignore lease on a missing key", &pb.PutRequest{Key: []byte("n"), IgnoreLease: true}, rpctypes.ErrGRPCKeyNotFound, "", ""},
		{"missing lease", &pb.PutRequest{Key: []byte("n"), Lease: 5}, rpctypes.ErrGRPCLeaseNotFound, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTestStore(t, Config{})
			seed(t, ts)
			resp, err := ts.Put(tt.req)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				if ts.Rev() != 8 {
					t.Errorf("a failed put moved the revision to %d", ts.Rev())
				}
				return
			}
			if resp.Header.Revision != 9 {
				t.Errorf("revision %d, want 9", resp.Header.Revision)
			}
			if tt.req.PrevKv {
				if got := kvString(resp.PrevKv); got != tt.prev {
					t.Errorf("prev_kv %s, want %s", got, tt.prev)
				}
			}
			got := ts.get(t, &pb.RangeRequest{Key: tt.req.Key})
			if s := fmt.Sprint(kvs(got.Kvs)); s != fmt.Sprint([]string{tt.after}) {
				t.Errorf("after: %s, want %s", s, tt.after)
			}
		})
	}
}

func TestDeleteRange(t *testing.T) {
	tests := []struct {
		name      string
		key, end  string
		deleted   int64
		rev       int64
		remaining []string
	}{
		{"one key", "a", "", 1, 9, []string{"b", "c", "d"}},
		{"missing key does not take a revision", "x", "", 0, 8, []string{"a", "b", "c", "d"}},
		{"range", "b", "d", 2, 9, []string{"a", "d"}},
		{"from key", "c", "\x00", 2, 9, []string{"a", "b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTestStore(t, Config{})
			seed(t, ts)
			resp, err := ts.DeleteRange(&pb.DeleteRangeRequest{Key: []byte(tt.key), RangeEnd: []byte(tt.end), PrevKv: true})
			if err != nil {
				t.Fatal(err)
			}
			if resp.Deleted != tt.deleted || int64(len(resp.PrevKvs)) != tt.deleted || resp.Header.Revision != tt.rev || ts.Rev() != tt.rev {
				t.Errorf("deleted %d prev %d revision %d store %d, want %d %d", resp.Deleted, len(resp.PrevKvs), resp.Header.Revision, ts.Rev(), tt.deleted, tt.rev)
			}
			var keys []string
			for _, kv := range ts.get(t, &pb.RangeRequest{Key: []byte("a"), RangeEnd: []byte("z")}).Kvs {
				keys = append(keys, string(kv.Key))
			}
			if fmt.Sprint(keys) != fmt.Sprint(tt.remaining) {
				t.Errorf("remaining %v, want %v", keys, tt.remaining)
			}
			// The deleted keys still read at the revision before.
			if got := ts.get(t, &pb.RangeRequest{Key: []byte("a"), RangeEnd: []byte("z"), Revision: 8}).Count; got != 4 {
				t.Errorf("count at 8: %d, want 4", got)
			}
		})
	}
}

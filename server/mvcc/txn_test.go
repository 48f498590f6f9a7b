package mvcc

import (
	"context"
	"errors"
	"fmt"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
)

func cmpOp(key string, target pb.Compare_CompareTarget, result pb.Compare_CompareResult, v any) *pb.Compare {
	c := &pb.Compare{Key: []byte(key), Target: target, Result: result}
	switch target {
	case pb.Compare_VALUE:
		c.TargetUnion = &pb.Compare_Value{Value: []byte(v.(string))}
	case pb.Compare_VERSION:
		c.TargetUnion = &pb.Compare_Version{Version: int64(v.(int))}
	case pb.Compare_CREATE:
		c.TargetUnion = &pb.Compare_CreateRevision{CreateRevision: int64(v.(int))}
	case pb.Compare_MOD:
		c.TargetUnion = &pb.Compare_ModRevision{ModRevision: int64(v.(int))}
	case pb.Compare_LEASE:
		c.TargetUnion = &pb.Compare_Lease{Lease: int64(v.(int))}
	}
	return c
}

func withEnd(c *pb.Compare, end string) *pb.Compare {
	c.RangeEnd = []byte(end)
	return c
}

func putOp(k, v string) *pb.RequestOp {
	return &pb.RequestOp{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte(k), Value: []byte(v)}}}
}

func rangeOp(k string) *pb.RequestOp {
	return &pb.RequestOp{Request: &pb.RequestOp_RequestRange{RequestRange: &pb.RangeRequest{Key: []byte(k)}}}
}

func txnOp(t *pb.TxnRequest) *pb.RequestOp {
	return &pb.RequestOp{Request: &pb.RequestOp_RequestTxn{RequestTxn: t}}
}

func TestTxnCompares(t *testing.T) {
	ts := newTestStore(t, Config{})
	seed(t, ts)
	tests := []struct {
		name string
		cmp  *pb.Compare
		want bool
	}{
		{"value equal", cmpOp("a", pb.Compare_VALUE, pb.Compare_EQUAL, "3"), true},
		{"value not equal", cmpOp("a", pb.Compare_VALUE, pb.Compare_NOT_EQUAL, "3"), false},
		{"value greater", cmpOp("a", pb.Compare_VALUE, pb.Compare_GREATER, "2"), true},
		{"value of a missing key never holds", cmpOp("zz", pb.Compare_VALUE, pb.Compare_NOT_EQUAL, "x"), false},
		{"version greater", cmpOp("a", pb.Compare_VERSION, pb.Compare_GREATER, 1), true},
		{"version of a missing key is 0", cmpOp("zz", pb.Compare_VERSION, pb.Compare_EQUAL, 0), true},
		{"version restarts at 1 after a delete", cmpOp("b", pb.Compare_VERSION, pb.Compare_EQUAL, 1), true},
		{"create equal", cmpOp("b", pb.Compare_CREATE, pb.Compare_EQUAL, 7), true},
		{"create less", cmpOp("b", pb.Compare_CREATE, pb.Compare_LESS, 7), false},
		{"mod less", cmpOp("c", pb.Compare_MOD, pb.Compare_LESS, 6), true},
		{"mod greater", cmpOp("c", pb.Compare_MOD, pb.Compare_GREATER, 6), false},
		{"lease equal 0", cmpOp("a", pb.Compare_LEASE, pb.Compare_EQUAL, 0), true},
		{"lease not equal 0", cmpOp("a", pb.Compare_LEASE, pb.Compare_NOT_EQUAL, 0), false},
		{"range: every key holds", withEnd(cmpOp("a", pb.Compare_VERSION, pb.Compare_GREATER, 0), "e"), true},
		{"range: one key fails", withEnd(cmpOp("a", pb.Compare_VERSION, pb.Compare_GREATER, 1), "e"), false},
		{"from key", withEnd(cmpOp("c", pb.Compare_MOD, pb.Compare_GREATER, 4), "\x00"), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := ts.Txn(context.Background(), &pb.TxnRequest{
				Compare: []*pb.Compare{tt.cmp}, Success: []*pb.RequestOp{rangeOp("a")}, Failure: []*pb.RequestOp{rangeOp("c")},
			})
			if err != nil {
				t.Fatal(err)
			}
			if resp.Succeeded != tt.want {
				t.Errorf("succeeded %v, want %v", resp.Succeeded, tt.want)
			}
			got := string(resp.Responses[0].GetResponseRange().Kvs[0].Key)
			if want := map[bool]string{true: "a", false: "c"}[tt.want]; got != want {
				t.Errorf("ran the branch reading %s, want %s", got, want)
			}
			if resp.Header.Revision != 8 || ts.Rev() != 8 {
				t.Errorf("a read-only txn moved the revision: %d %d", resp.Header.Revision, ts.Rev())
			}
		})
	}
}

func TestTxnWrites(t *testing.T) {
	tests := []struct {
		name    string
		req     *pb.TxnRequest
		wantErr error
		rev     int64
		check   map[string]string // key -> kvString after
	}{
		{
			name: "ops share one revision with sub revisions, and see each other",
			req: &pb.TxnRequest{Success: []*pb.RequestOp{
				putOp("x", "1"), putOp("y", "2"), rangeOp("x"),
				{Request: &pb.RequestOp_RequestDeleteRange{RequestDeleteRange: &pb.DeleteRangeRequest{Key: []byte("a")}}},
			}},
			rev:   9,
			check: map[string]string{"x": "x=1@9/9/1", "y": "y=2@9/9/1", "a": ""},
		},
		{
			name: "nested txn follows its own compare",
			req: &pb.TxnRequest{
				Compare: []*pb.Compare{cmpOp("a", pb.Compare_VALUE, pb.Compare_EQUAL, "nope")},
				Failure: []*pb.RequestOp{putOp("x", "outer"), txnOp(&pb.TxnRequest{
					Compare: []*pb.Compare{cmpOp("c", pb.Compare_VERSION, pb.Compare_EQUAL, 1)},
					Success: []*pb.RequestOp{putOp("y", "inner")},
					Failure: []*pb.RequestOp{putOp("z", "wrong")},
				})},
			},
			rev:   9,
			check: map[string]string{"x": "x=outer@9/9/1", "y": "y=inner@9/9/1", "z": ""},
		},
		{
			name:    "missing lease fails the whole txn",
			req:     &pb.TxnRequest{Success: []*pb.RequestOp{putOp("x", "1"), {Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte("y"), Lease: 9}}}}},
			wantErr: rpctypes.ErrGRPCLeaseNotFound,
			rev:     8,
			check:   map[string]string{"x": ""},
		},
		{
			name:    "ignore_value on a missing key fails the whole txn",
			req:     &pb.TxnRequest{Success: []*pb.RequestOp{putOp("x", "1"), {Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte("nope"), IgnoreValue: true}}}}},
			wantErr: rpctypes.ErrGRPCKeyNotFound,
			rev:     8,
			check:   map[string]string{"x": ""},
		},
		{
			name:    "range at a future revision fails the txn",
			req:     &pb.TxnRequest{Success: []*pb.RequestOp{putOp("x", "1"), {Request: &pb.RequestOp_RequestRange{RequestRange: &pb.RangeRequest{Key: []byte("a"), Revision: 99}}}}},
			wantErr: ErrFutureRev,
			rev:     8,
			check:   map[string]string{"x": ""},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTestStore(t, Config{})
			seed(t, ts)
			resp, err := ts.Txn(context.Background(), tt.req)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err %v, want %v", err, tt.wantErr)
			}
			if err == nil && resp.Header.Revision != tt.rev {
				t.Errorf("header revision %d, want %d", resp.Header.Revision, tt.rev)
			}
			if ts.Rev() != tt.rev {
				t.Errorf("store revision %d, want %d", ts.Rev(), tt.rev)
			}
			for k, want := range tt.check {
				got := ts.get(t, &pb.RangeRequest{Key: []byte(k)})
				s := ""
				if len(got.Kvs) > 0 {
					s = kvString(got.Kvs[0])
				}
				if s != want {
					t.Errorf("%s: %q, want %q", k, s, want)
				}
			}
		})
	}
}

func TestTxnResponses(t *testing.T) {
	ts := newTestStore(t, Config{})
	seed(t, ts)
	resp, err := ts.Txn(context.Background(), &pb.TxnRequest{Success: []*pb.RequestOp{
		putOp("x", "1"), rangeOp("x"), txnOp(&pb.TxnRequest{Success: []*pb.RequestOp{rangeOp("a")}}),
	}})
	if err != nil {
		t.Fatal(err)
	}
	if r := resp.Responses[0].GetResponsePut(); r == nil || r.Header.Revision != 9 {
		t.Errorf("put response %v", r)
	}
	if r := resp.Responses[1].GetResponseRange(); r == nil || fmt.Sprint(kvs(r.Kvs)) != "[x=1@9/9/1]" || r.Header.Revision != 9 {
		t.Errorf("range after put in the same txn: %v", r)
	}
	if r := resp.Responses[2].GetResponseTxn(); r == nil || !r.Succeeded || len(r.Responses) != 1 {
		t.Errorf("nested txn response %v", r)
	}
}

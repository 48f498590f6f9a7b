package robustness

import (
	"strings"
	"testing"
	"time"
)

// Shorthands for hand-made histories; times are in milliseconds.

// casCreate puts key only if it does not exist.
func casCreate(key, value string) Request {
	return Request{Txn: TxnRequest{
		If:   []Compare{{Key: key, Target: CompareMod, Result: Equal, Number: 0}},
		Then: []TxnOp{{Kind: Put, Key: key, Value: value}},
		Else: []TxnOp{{Kind: Range, Key: key}},
	}}
}

func grant(id, ttl int64) Request { return Request{Kind: LeaseGrant, Lease: id, TTL: ttl} }
func revoke(id int64) Request     { return Request{Kind: LeaseRevoke, Lease: id} }

func wrote(rev int64) Response { return Response{Rev: rev, Succeeded: true, Results: []OpResult{{}}} }
func leaseOK(rev int64) Response {
	return Response{Rev: rev, Succeeded: true}
}
func failed(err string) Response { return Response{Err: err} }
func unknown() Response          { return Response{Unknown: true} }
func deleted(rev, n int64) Response {
	return Response{Rev: rev, Succeeded: true, Results: []OpResult{{Deleted: n}}}
}
func read(rev int64, kvs ...KV) Response {
	return Response{Rev: rev, Succeeded: true, Results: []OpResult{{KVs: kvs}}}
}
func elseRead(rev int64, kvs ...KV) Response {
	r := read(rev, kvs...)
	r.Succeeded = false
	return r
}

// kv is key=value written at mod, created at create, with version.
func kv(key, value string, mod, create, version int64) KV {
	return KV{Key: key, Value: value, Mod: mod, Create: create, Version: version}
}

type histBuilder struct{ h History }

func (b *histBuilder) op(client int, call, ret int, req Request, resp Response) *histBuilder {
	r := time.Duration(ret) * time.Millisecond
	if resp.Unknown {
		r = Infinity
	}
	b.h.Operations = append(b.h.Operations, Operation{ID: len(b.h.Operations), Client: client, Req: req, Resp: resp,
		Call: time.Duration(call) * time.Millisecond, Return: r})
	return b
}

func TestCheckLinearizable(t *testing.T) {
	tests := []struct {
		name string
		h    *histBuilder
		ok   bool
	}{
		{"put then get", new(histBuilder).
			op(0, 0, 10, put("a", "1"), wrote(2)).
			op(1, 20, 30, get("a"), read(2, kv("a", "1", 2, 2, 1))), true},
		{"a get after an acknowledged put misses it (stale read)", new(histBuilder).
			op(0, 0, 10, put("a", "1"), wrote(2)).
			op(1, 20, 30, get("a"), read(1)), false},
		{"a get concurrent with a put may miss it", new(histBuilder).
			op(0, 0, 10, put("a", "1"), wrote(2)).
			op(1, 5, 30, get("a"), read(1)), true},
		{"a get concurrent with a put may see it", new(histBuilder).
			op(0, 0, 10, put("a", "1"), wrote(2)).
			op(1, 5, 30, get("a"), read(2, kv("a", "1", 2, 2, 1))), true},
		{"the response revision must be the write's", new(histBuilder).
			op(0, 0, 10, put("a", "1"), wrote(3)), false},
		{"a get must report the current revision", new(histBuilder).
			op(0, 0, 10, put("a", "1"), wrote(2)).
			op(0, 20, 30, get("b"), read(1)), false},
		{"versions and create revisions follow the key's life", new(histBuilder).
			op(0, 0, 10, put("a", "1"), wrote(2)).
			op(0, 11, 20, put("a", "2"), wrote(3)).
			op(0, 21, 30, get("a"), read(3, kv("a", "2", 3, 2, 2))), true},
		{"a wrong version is caught", new(histBuilder).
			op(0, 0, 10, put("a", "1"), wrote(2)).
			op(0, 11, 20, put("a", "2"), wrote(3)).
			op(0, 21, 30, get("a"), read(3, kv("a", "2", 3, 3, 1))), false},
		{"an acknowledged put lost after a later read", new(histBuilder).
			op(0, 0, 10, put("a", "1"), wrote(2)).
			op(1, 20, 30, get("a"), read(2, kv("a", "1", 2, 2, 1))).
			op(1, 40, 50, get("a"), read(2)), false},
		{"a put of unknown outcome may have applied", new(histBuilder).
			op(0, 0, 0, put("a", "1"), unknown()).
			op(1, 20, 30, get("a"), read(2, kv("a", "1", 2, 2, 1))), true},
		{"a put of unknown outcome may not have applied", new(histBuilder).
			op(0, 0, 0, put("a", "1"), unknown()).
			op(1, 20, 30, get("a"), read(1)), true},
		{"a put of unknown outcome seen by a read cannot be undone later", new(histBuilder).
			op(0, 0, 0, put("a", "1"), unknown()).
			op(1, 20, 30, get("a"), read(2, kv("a", "1", 2, 2, 1))).
			op(1, 40, 50, get("a"), read(1)), false},
		{"a put of unknown outcome that nobody read is seen by a delete", new(histBuilder).
			op(0, 0, 0, put("a", "1"), unknown()).
			op(1, 20, 30, del("a"), deleted(3, 1)), true},
		{"a put of unknown outcome that nobody read moves the revision", new(histBuilder).
			op(0, 0, 0, put("a", "1"), unknown()).
			op(1, 20, 30, put("b", "2"), wrote(3)), true},
		{"a delete cannot find a key never written", new(histBuilder).
			op(1, 20, 30, del("a"), deleted(2, 1)), false},
		{"a delete of a missing key keeps the revision", new(histBuilder).
			op(0, 0, 10, del("a"), deleted(1, 0)), true},
		{"two creates of one key cannot both succeed", new(histBuilder).
			op(0, 0, 10, casCreate("a", "1"), wrote(2)).
			op(1, 0, 10, casCreate("a", "2"), wrote(3)), false},
		{"one create wins, the other takes else", new(histBuilder).
			op(0, 0, 10, casCreate("a", "1"), wrote(2)).
			op(1, 0, 10, casCreate("a", "2"), elseRead(2, kv("a", "1", 2, 2, 1))), true},
		{"a revoke deletes the lease's keys", new(histBuilder).
			op(0, 0, 10, grant(7, 600), leaseOK(1)).
			op(0, 11, 20, putLease("a", "1", 7), wrote(2)).
			op(0, 21, 30, revoke(7), leaseOK(3)).
			op(0, 31, 40, get("a"), read(3)), true},
		{"a key outlives its revoked lease", new(histBuilder).
			op(0, 0, 10, grant(7, 600), leaseOK(1)).
			op(0, 11, 20, putLease("a", "1", 7), wrote(2)).
			op(0, 21, 30, revoke(7), leaseOK(3)).
			op(0, 31, 40, get("a"), read(3, KV{Key: "a", Value: "1", Mod: 2, Create: 2, Version: 1, Lease: 7})), false},
		{"a put with a lease never granted fails", new(histBuilder).
			op(0, 0, 10, putLease("a", "1", 7), failed(ErrLeaseNotFound)), true},
		{"a put with a granted lease cannot fail for want of it", new(histBuilder).
			op(0, 0, 10, grant(7, 600), leaseOK(1)).
			op(0, 11, 20, putLease("a", "1", 7), failed(ErrLeaseNotFound)), false},
		{"a lease expires after its TTL", new(histBuilder).
			op(0, 0, 10, grant(7, 1), leaseOK(1)).
			op(0, 11, 20, putLease("a", "1", 7), wrote(2)).
			op(0, 2000, 2010, get("a"), read(3)), true},
		{"a lease does not expire before its TTL", new(histBuilder).
			op(0, 0, 10, grant(7, 1), leaseOK(1)).
			op(0, 11, 20, putLease("a", "1", 7), wrote(2)).
			op(0, 500, 510, get("a"), read(3)).
			op(0, 2000, 2010, get("b"), read(3)), false},
		{"a revoke of an expired lease fails", new(histBuilder).
			op(0, 0, 10, grant(7, 1), leaseOK(1)).
			op(0, 2000, 2010, revoke(7), failed(ErrLeaseNotFound)), true},
		{"a lease cannot be granted twice", new(histBuilder).
			op(0, 0, 10, grant(7, 600), leaseOK(1)).
			op(0, 20, 30, grant(7, 600), leaseOK(1)), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := CheckLinearizable(tt.h.h, nil, 10*time.Second)
			if r.Unknown {
				t.Fatal("check timed out")
			}
			if ok := len(r.Anomalies) == 0; ok != tt.ok {
				t.Fatalf("linearizable = %v, want %v; %v", ok, tt.ok, r.Anomalies)
			}
			if !tt.ok && !strings.Contains(r.Anomalies[0].Message, "none of these fits next") {
				t.Fatalf("the anomaly does not show where it got stuck: %v", r.Anomalies[0])
			}
		})
	}
}

// TestOperationsPlacedByRaftLog shows what the committed log decides about
// operations of unknown outcome: one never committed had no effect, one
// committed took effect before the next acknowledged request in the log.
func TestOperationsPlacedByRaftLog(t *testing.T) {
	log := &RaftLog{Tokens: map[string][]uint64{putToken("1"): {5}, putToken("2"): {6}}}
	tests := []struct {
		name string
		h    *histBuilder
		log  *RaftLog
		ok   bool
	}{
		{"without the log an unknown put may come last", new(histBuilder).
			op(0, 0, 0, put("a", "1"), unknown()).
			op(1, 1, 10, put("b", "2"), wrote(2)).
			op(1, 30, 40, get("a"), read(2)), nil, true},
		{"committed before an acknowledged put, it precedes it", new(histBuilder).
			op(0, 0, 0, put("a", "1"), unknown()).
			op(1, 1, 10, put("b", "2"), wrote(3)).
			op(1, 30, 40, get("a"), read(3)), log, false},
		{"committed before an acknowledged put, it is read after it", new(histBuilder).
			op(0, 0, 0, put("a", "1"), unknown()).
			op(1, 1, 10, put("b", "2"), wrote(3)).
			op(1, 30, 40, get("a"), read(3, kv("a", "1", 2, 2, 1))), log, true},
		{"never committed, it had no effect", new(histBuilder).
			op(0, 0, 0, put("a", "9"), unknown()).
			op(1, 30, 40, get("a"), read(2, kv("a", "9", 2, 2, 1))), log, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := CheckLinearizable(tt.h.h, tt.log, 10*time.Second)
			if ok := len(r.Anomalies) == 0 && !r.Unknown; ok != tt.ok {
				t.Fatalf("linearizable = %v, want %v; %v", ok, tt.ok, r.Anomalies)
			}
		})
	}
}

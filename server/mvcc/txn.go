package mvcc

import (
	"bytes"
	"cmp"
	"context"
	"fmt"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"

	"github.com/lifeboat-dev/lifeboat/snapkit/keyindex"
)

// Put applies a PutRequest. A lease that does not exist gives
// rpctypes.ErrGRPCLeaseNotFound; ignore_value or ignore_lease on a missing
// key gives rpctypes.ErrGRPCKeyNotFound. Nothing is written on error.
func (s *Store) Put(r *pb.PutRequest) (*pb.PutResponse, error) {
	if err := s.checkLease(r.Lease); err != nil {
		return nil, err
	}
	tw := s.write()
	defer tw.end()
	return s.put(tw, r)
}

// DeleteRange applies a DeleteRangeRequest.
func (s *Store) DeleteRange(r *pb.DeleteRangeRequest) (*pb.DeleteRangeResponse, error) {
	tw := s.write()
	defer tw.end()
	return s.deleteRange(context.Background(), tw, r)
}

func (s *Store) checkLease(id int64) error {
	if id != 0 && (s.le == nil || !s.le.Exists(id)) {
		return rpctypes.ErrGRPCLeaseNotFound
	}
	return nil
}

// previous returns the live value of key in v, or nil.
func (s *Store) previous(v readView, key []byte) (*mvccpb.KeyValue, error) {
	mod, _, _, err := s.idx.Get(key, v.rev())
	if err != nil {
		return nil, nil
	}
	kvs, err := s.fetch(context.Background(), v, [][]byte{key}, []keyindex.Revision{mod}, v.rev())
	if err != nil {
		return nil, err
	}
	return kvs[0], nil
}

func (s *Store) put(tw *writeTxn, r *pb.PutRequest) (*pb.PutResponse, error) {
	resp := &pb.PutResponse{Header: &pb.ResponseHeader{}}
	val, leaseID := r.Value, r.Lease
	if r.IgnoreValue || r.IgnoreLease || r.PrevKv {
		prev, err := s.previous(tw, r.Key)
		if err != nil {
			return nil, err
		}
		if prev == nil && (r.IgnoreValue || r.IgnoreLease) {
			return nil, rpctypes.ErrGRPCKeyNotFound
		}
		if r.IgnoreValue {
			val = prev.Value
		}
		if r.IgnoreLease {
			leaseID = prev.Lease
		}
		if r.PrevKv {
			resp.PrevKv = prev
		}
	}
	if err := tw.put(r.Key, val, leaseID); err != nil {
		return nil, err
	}
	resp.Header.Revision = tw.rev()
	return resp, nil
}

func (s *Store) deleteRange(ctx context.Context, tw *writeTxn, r *pb.DeleteRangeRequest) (*pb.DeleteRangeResponse, error) {
	resp := &pb.DeleteRangeResponse{Header: &pb.ResponseHeader{}}
	end := rangeEnd(r.RangeEnd)
	if r.PrevKv {
		keys, revs, _ := s.idx.Range(r.Key, end, tw.rev(), 0)
		kvs, err := s.fetch(ctx, tw, keys, revs, tw.rev())
		if err != nil {
			return nil, err
		}
		resp.PrevKvs = kvs
	}
	n, err := tw.deleteRange(r.Key, end)
	if err != nil {
		return nil, err
	}
	resp.Deleted = n
	resp.Header.Revision = tw.rev()
	return resp, nil
}

// Txn applies a TxnRequest as etcd does: the compares choose a branch (in
// nested transactions too), every put of the branch is checked first (a
// missing lease, or ignore_value/ignore_lease on a missing key, fails the
// whole transaction with nothing written), and then the operations run in
// order, each seeing the earlier ones, under one main revision. A Txn
// without writes is a read and may be called from any goroutine.
func (s *Store) Txn(ctx context.Context, r *pb.TxnRequest) (*pb.TxnResponse, error) {
	if isReadOnly(r) {
		rv, err := s.read()
		if err != nil {
			return nil, err
		}
		defer rv.End()
		s.m.txns.Inc()
		return s.txn(ctx, rv, nil, r)
	}
	tw := s.write()
	defer tw.end()
	s.m.txns.Inc()
	return s.txn(ctx, tw, tw, r)
}

func (s *Store) txn(ctx context.Context, v readView, tw *writeTxn, r *pb.TxnRequest) (*pb.TxnResponse, error) {
	path, err := s.comparePath(v, r)
	if err != nil {
		return nil, err
	}
	if _, err := s.checkTxn(v, r, path); err != nil {
		return nil, err
	}
	resp := &pb.TxnResponse{Header: &pb.ResponseHeader{}}
	if _, err := s.executeTxn(ctx, v, tw, r, path, resp); err != nil {
		return nil, err
	}
	resp.Header.Revision = v.rev()
	return resp, nil
}

// isReadOnly reports whether r (nested transactions included) only reads.
func isReadOnly(r *pb.TxnRequest) bool {
	for _, ops := range [][]*pb.RequestOp{r.Success, r.Failure} {
		for _, op := range ops {
			switch o := op.Request.(type) {
			case *pb.RequestOp_RequestPut, *pb.RequestOp_RequestDeleteRange:
				return false
			case *pb.RequestOp_RequestTxn:
				if o.RequestTxn != nil && !isReadOnly(o.RequestTxn) {
					return false
				}
			}
		}
	}
	return true
}

// comparePath evaluates the compares of r and of the nested transactions of
// the chosen branch, depth first: path[0] is r's outcome.
func (s *Store) comparePath(v readView, r *pb.TxnRequest) ([]bool, error) {
	ok, err := s.applyCompares(v, r.Compare)
	if err != nil {
		return nil, err
	}
	path := []bool{ok}
	for _, op := range branch(r, ok) {
		if t, isTxn := op.Request.(*pb.RequestOp_RequestTxn); isTxn && t.RequestTxn != nil {
			sub, err := s.comparePath(v, t.RequestTxn)
			if err != nil {
				return nil, err
			}
			path = append(path, sub...)
		}
	}
	return path, nil
}

func branch(r *pb.TxnRequest, ok bool) []*pb.RequestOp {
	if ok {
		return r.Success
	}
	return r.Failure
}

func (s *Store) applyCompares(v readView, cs []*pb.Compare) (bool, error) {
	for _, c := range cs {
		ok, err := s.applyCompare(v, c)
		if err != nil || !ok {
			return false, err
		}
	}
	return true, nil
}

// applyCompare holds for every key of the compare's range; a VALUE compare
// on no key fails, other targets compare against zero values.
func (s *Store) applyCompare(v readView, c *pb.Compare) (bool, error) {
	keys, revs, _ := s.idx.Range(c.Key, rangeEnd(c.RangeEnd), v.rev(), 0)
	kvs, err := s.fetch(context.Background(), v, keys, revs, v.rev())
	if err != nil {
		return false, err
	}
	if len(kvs) == 0 {
		if c.Target == pb.Compare_VALUE {
			return false, nil
		}
		return compareKV(c, &mvccpb.KeyValue{}), nil
	}
	for _, kv := range kvs {
		if !compareKV(c, kv) {
			return false, nil
		}
	}
	return true, nil
}

func compareKV(c *pb.Compare, kv *mvccpb.KeyValue) bool {
	var result int
	switch c.Target {
	case pb.Compare_VALUE:
		result = bytes.Compare(kv.Value, c.GetValue())
	case pb.Compare_CREATE:
		result = cmp.Compare(kv.CreateRevision, c.GetCreateRevision())
	case pb.Compare_MOD:
		result = cmp.Compare(kv.ModRevision, c.GetModRevision())
	case pb.Compare_VERSION:
		result = cmp.Compare(kv.Version, c.GetVersion())
	case pb.Compare_LEASE:
		result = cmp.Compare(kv.Lease, c.GetLease())
	}
	switch c.Result {
	case pb.Compare_EQUAL:
		return result == 0
	case pb.Compare_NOT_EQUAL:
		return result != 0
	case pb.Compare_GREATER:
		return result > 0
	case pb.Compare_LESS:
		return result < 0
	}
	return true
}

// checkTxn checks the operations of the chosen branches before anything is
// written, against the state before the transaction. It returns the number
// of nested transactions of r's branch.
func (s *Store) checkTxn(v readView, r *pb.TxnRequest, path []bool) (int, error) {
	nested := 0
	for _, op := range branch(r, path[0]) {
		switch o := op.Request.(type) {
		case *pb.RequestOp_RequestRange:
			if o.RequestRange == nil {
				continue
			}
			if _, err := s.checkRev(v, o.RequestRange.Revision); err != nil {
				return 0, err
			}
		case *pb.RequestOp_RequestPut:
			if o.RequestPut == nil {
				continue
			}
			if err := s.checkPut(v, o.RequestPut); err != nil {
				return 0, err
			}
		case *pb.RequestOp_RequestTxn:
			if o.RequestTxn == nil {
				continue
			}
			n, err := s.checkTxn(v, o.RequestTxn, path[1+nested:])
			if err != nil {
				return 0, err
			}
			nested += n + 1
		}
	}
	return nested, nil
}

func (s *Store) checkPut(v readView, r *pb.PutRequest) error {
	if r.IgnoreValue || r.IgnoreLease {
		if _, _, _, err := s.idx.Get(r.Key, v.rev()); err != nil {
			return rpctypes.ErrGRPCKeyNotFound
		}
	}
	return s.checkLease(r.Lease)
}

// executeTxn runs the operations of r's branch into resp and returns the
// number of nested transactions it ran. tw is nil for a read-only txn.
func (s *Store) executeTxn(ctx context.Context, v readView, tw *writeTxn, r *pb.TxnRequest, path []bool, resp *pb.TxnResponse) (int, error) {
	ops := branch(r, path[0])
	resp.Succeeded = path[0]
	resp.Responses = make([]*pb.ResponseOp, len(ops))
	nested := 0
	for i, op := range ops {
		out := &pb.ResponseOp{}
		resp.Responses[i] = out
		switch o := op.Request.(type) {
		case *pb.RequestOp_RequestRange:
			if o.RequestRange == nil {
				continue
			}
			rr, err := s.rangeReq(ctx, v, o.RequestRange)
			if err != nil {
				return 0, fmt.Errorf("mvcc: txn range: %w", err)
			}
			out.Response = &pb.ResponseOp_ResponseRange{ResponseRange: rr}
		case *pb.RequestOp_RequestPut:
			if o.RequestPut == nil {
				continue
			}
			pr, err := s.put(tw, o.RequestPut)
			if err != nil {
				return 0, fmt.Errorf("mvcc: txn put: %w", err)
			}
			out.Response = &pb.ResponseOp_ResponsePut{ResponsePut: pr}
		case *pb.RequestOp_RequestDeleteRange:
			if o.RequestDeleteRange == nil {
				continue
			}
			dr, err := s.deleteRange(ctx, tw, o.RequestDeleteRange)
			if err != nil {
				return 0, fmt.Errorf("mvcc: txn delete: %w", err)
			}
			out.Response = &pb.ResponseOp_ResponseDeleteRange{ResponseDeleteRange: dr}
		case *pb.RequestOp_RequestTxn:
			if o.RequestTxn == nil {
				continue
			}
			sub := &pb.TxnResponse{Header: &pb.ResponseHeader{}}
			n, err := s.executeTxn(ctx, v, tw, o.RequestTxn, path[1+nested:], sub)
			if err != nil {
				return 0, err
			}
			nested += n + 1
			out.Response = &pb.ResponseOp_ResponseTxn{ResponseTxn: sub}
		}
	}
	return nested, nil
}

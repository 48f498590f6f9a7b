package server

import (
	"bytes"
	"context"
	"errors"
	"sort"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/lifeboat-dev/lifeboat/server/mvcc"
)

// header fills a response header with the member's identity, the raft term
// and, if unset, the store's current revision.
func (s *Server) header(h *pb.ResponseHeader) *pb.ResponseHeader {
	if h == nil {
		h = &pb.ResponseHeader{}
	}
	h.ClusterId = s.cluster.ID()
	h.MemberId = s.id
	h.RaftTerm = s.term.Load()
	if h.Revision == 0 {
		if st := s.st.Load(); st != nil {
			h.Revision = st.kv.Rev()
		}
	}
	return h
}

// clusterHeader is the header of Cluster responses: etcd's carry no
// revision.
func (s *Server) clusterHeader() *pb.ResponseHeader {
	return &pb.ResponseHeader{ClusterId: s.cluster.ID(), MemberId: s.id, RaftTerm: s.term.Load()}
}

// toGRPCError maps store errors to etcd's gRPC errors; errors that are
// gRPC statuses already pass through.
func toGRPCError(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	switch {
	case errors.Is(err, mvcc.ErrCompacted):
		return rpctypes.ErrGRPCCompacted
	case errors.Is(err, mvcc.ErrFutureRev):
		return rpctypes.ErrGRPCFutureRev
	case errors.Is(err, context.Canceled):
		return rpctypes.ErrGRPCCanceled
	case errors.Is(err, context.DeadlineExceeded):
		return rpctypes.ErrGRPCDeadlineExceeded
	case errors.Is(err, ErrStopped), errors.Is(err, mvcc.ErrClosed):
		return rpctypes.ErrGRPCStopped
	}
	return status.Error(codes.Unknown, err.Error())
}

type kvServer struct {
	pb.UnimplementedKVServer
	s *Server
}

func (k *kvServer) Range(ctx context.Context, r *pb.RangeRequest) (*pb.RangeResponse, error) {
	if err := checkRange(r); err != nil {
		return nil, err
	}
	if !r.Serializable {
		if err := k.s.linearizableReadNotify(ctx); err != nil {
			return nil, toGRPCError(err)
		}
	}
	resp, err := k.s.st.Load().kv.Range(ctx, r)
	if err != nil {
		return nil, toGRPCError(err)
	}
	resp.Header = k.s.header(resp.Header)
	return resp, nil
}

func (k *kvServer) Put(ctx context.Context, r *pb.PutRequest) (*pb.PutResponse, error) {
	if err := checkPut(r); err != nil {
		return nil, err
	}
	resp, err := k.s.proposeWrite(ctx, &pb.InternalRaftRequest{Put: r})
	if err != nil {
		return nil, err
	}
	out := resp.(*pb.PutResponse)
	out.Header = k.s.header(out.Header)
	return out, nil
}

func (k *kvServer) DeleteRange(ctx context.Context, r *pb.DeleteRangeRequest) (*pb.DeleteRangeResponse, error) {
	if len(r.Key) == 0 {
		return nil, rpctypes.ErrGRPCEmptyKey
	}
	resp, err := k.s.propose(ctx, &pb.InternalRaftRequest{DeleteRange: r})
	if err != nil {
		return nil, toGRPCError(err)
	}
	out := resp.(*pb.DeleteRangeResponse)
	out.Header = k.s.header(out.Header)
	return out, nil
}

func (k *kvServer) Txn(ctx context.Context, r *pb.TxnRequest) (*pb.TxnResponse, error) {
	if err := checkTxn(r, int(k.s.cfg.MaxTxnOps)); err != nil {
		return nil, err
	}
	if !txnWrites(r) {
		if !txnSerializable(r) {
			if err := k.s.linearizableReadNotify(ctx); err != nil {
				return nil, toGRPCError(err)
			}
		}
		resp, err := k.s.st.Load().kv.Txn(ctx, r)
		if err != nil {
			return nil, toGRPCError(err)
		}
		resp.Header = k.s.header(resp.Header)
		return resp, nil
	}
	resp, err := k.s.proposeWrite(ctx, &pb.InternalRaftRequest{Txn: r})
	if err != nil {
		return nil, err
	}
	out := resp.(*pb.TxnResponse)
	out.Header = k.s.header(out.Header)
	return out, nil
}

func (k *kvServer) Compact(ctx context.Context, r *pb.CompactionRequest) (*pb.CompactionResponse, error) {
	resp, err := k.s.propose(ctx, &pb.InternalRaftRequest{Compaction: r})
	if err != nil {
		return nil, toGRPCError(err)
	}
	cr := resp.(compactResult)
	if r.Physical && cr.done != nil {
		select {
		case err := <-cr.done:
			if errors.Is(err, mvcc.ErrCompactionStopped) {
				// A shutdown or a snapshot install: the compaction
				// resumes where the db is opened again.
				return nil, rpctypes.ErrGRPCStopped
			}
			if err != nil {
				return nil, toGRPCError(err)
			}
		case <-ctx.Done():
			return nil, ctxErr(ctx)
		case <-k.s.stopping:
			return nil, rpctypes.ErrGRPCStopped
		}
	}
	return &pb.CompactionResponse{Header: k.s.header(&pb.ResponseHeader{Revision: cr.rev})}, nil
}

// proposeWrite proposes a request that grows the db: it is refused with
// NOSPACE while the alarm is raised or the backend is over quota.
func (s *Server) proposeWrite(ctx context.Context, r *pb.InternalRaftRequest) (any, error) {
	if s.alarms.active(pb.AlarmType_CORRUPT) {
		return nil, rpctypes.ErrGRPCCorrupt
	}
	if s.alarms.active(pb.AlarmType_NOSPACE) {
		return nil, rpctypes.ErrGRPCNoSpace
	}
	// As etcd's quota: the db as of its last commit plus what the request
	// may add must fit.
	if st := s.st.Load(); st != nil && st.be.Size()+int64(r.Size()) > s.cfg.QuotaBackendBytes {
		s.raiseNoSpace()
		return nil, rpctypes.ErrGRPCNoSpace
	}
	resp, err := s.propose(ctx, r)
	if err != nil {
		return nil, toGRPCError(err)
	}
	return resp, nil
}

func checkRange(r *pb.RangeRequest) error {
	if len(r.Key) == 0 {
		return rpctypes.ErrGRPCEmptyKey
	}
	if _, ok := pb.RangeRequest_SortOrder_name[int32(r.SortOrder)]; !ok {
		return rpctypes.ErrGRPCInvalidSortOption
	}
	if _, ok := pb.RangeRequest_SortTarget_name[int32(r.SortTarget)]; !ok {
		return rpctypes.ErrGRPCInvalidSortOption
	}
	return nil
}

func checkPut(r *pb.PutRequest) error {
	if len(r.Key) == 0 {
		return rpctypes.ErrGRPCEmptyKey
	}
	if r.IgnoreValue && len(r.Value) != 0 {
		return rpctypes.ErrGRPCValueProvided
	}
	if r.IgnoreLease && r.Lease != 0 {
		return rpctypes.ErrGRPCLeaseProvided
	}
	return nil
}

// checkTxn validates the ops of a Txn as etcd does, including that no key
// is written twice in one branch.
func checkTxn(r *pb.TxnRequest, maxOps int) error {
	if len(r.Compare) > maxOps || len(r.Success) > maxOps || len(r.Failure) > maxOps {
		return rpctypes.ErrGRPCTooManyOps
	}
	for _, c := range r.Compare {
		if len(c.Key) == 0 {
			return rpctypes.ErrGRPCEmptyKey
		}
	}
	for _, ops := range [][]*pb.RequestOp{r.Success, r.Failure} {
		for _, op := range ops {
			if err := checkOp(op, maxOps); err != nil {
				return err
			}
		}
		if err := checkDuplicateWrites(ops); err != nil {
			return err
		}
	}
	return nil
}

func checkOp(op *pb.RequestOp, maxOps int) error {
	switch {
	case op.GetRequestRange() != nil:
		return checkRange(op.GetRequestRange())
	case op.GetRequestPut() != nil:
		return checkPut(op.GetRequestPut())
	case op.GetRequestDeleteRange() != nil:
		if len(op.GetRequestDeleteRange().Key) == 0 {
			return rpctypes.ErrGRPCEmptyKey
		}
	case op.GetRequestTxn() != nil:
		return checkTxn(op.GetRequestTxn(), maxOps)
	default:
		// An op with no request, as etcd answers it.
		return rpctypes.ErrGRPCKeyNotFound
	}
	return nil
}

// checkDuplicateWrites refuses a branch that puts a key twice, or puts a
// key that one of its deletes covers.
func checkDuplicateWrites(ops []*pb.RequestOp) error {
	puts := make(map[string]bool)
	type span struct{ key, end []byte }
	var dels []span
	for _, op := range ops {
		if p := op.GetRequestPut(); p != nil {
			if puts[string(p.Key)] {
				return rpctypes.ErrGRPCDuplicateKey
			}
			puts[string(p.Key)] = true
		}
		if d := op.GetRequestDeleteRange(); d != nil {
			dels = append(dels, span{d.Key, d.RangeEnd})
		}
	}
	keys := make([]string, 0, len(puts))
	for k := range puts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, d := range dels {
		for _, k := range keys {
			kb := []byte(k)
			if len(d.end) == 0 {
				if bytes.Equal(kb, d.key) {
					return rpctypes.ErrGRPCDuplicateKey
				}
				continue
			}
			if bytes.Compare(kb, d.key) >= 0 && (bytes.Equal(d.end, []byte{0}) || bytes.Compare(kb, d.end) < 0) {
				return rpctypes.ErrGRPCDuplicateKey
			}
		}
	}
	return nil
}

// txnSerializable reports whether a read-only Txn may be served without a
// ReadIndex round: as etcd, only if every op is a serializable range.
func txnSerializable(r *pb.TxnRequest) bool {
	for _, ops := range [][]*pb.RequestOp{r.Success, r.Failure} {
		for _, op := range ops {
			if rr := op.GetRequestRange(); rr == nil || !rr.Serializable {
				return false
			}
		}
	}
	return true
}

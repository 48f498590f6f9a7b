package server

import (
	"context"
	"errors"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/lifeboat-dev/lifeboat/snapkit/schema"
)

// propose sends r through raft and waits for the apply loop's result.
func (s *Server) propose(ctx context.Context, r *pb.InternalRaftRequest) (any, error) {
	id := s.reqIDs.next()
	r.Header = &pb.RequestHeader{ID: id}
	if err := s.setAuthHeader(ctx, r); err != nil {
		return nil, err
	}
	data, err := r.Marshal()
	if err != nil {
		return nil, err
	}
	if uint(len(data)) > s.cfg.MaxRequestBytes {
		return nil, rpctypes.ErrGRPCRequestTooLarge
	}
	ctx, cancel := context.WithTimeout(ctx, s.requestTimeout())
	defer cancel()
	ch := s.waits.register(id)
	s.m.proposalsPending.Inc()
	defer s.m.proposalsPending.Dec()
	if err := s.node.Propose(ctx, data); err != nil {
		s.waits.cancel(id)
		s.m.proposalsFailed.Inc()
		return nil, s.proposeError(err)
	}
	select {
	case res := <-ch:
		return res.resp, res.err
	case <-ctx.Done():
		s.waits.cancel(id)
		s.m.proposalsFailed.Inc()
		return nil, s.proposeError(ctx.Err())
	case <-s.stopping:
		return nil, rpctypes.ErrGRPCStopped
	}
}

// proposeConfChange proposes cc and waits until it applies and raft knows
// it (see applyConfChange); it returns the members after the change.
func (s *Server) proposeConfChange(ctx context.Context, cc raftpb.ConfChange) ([]schema.Member, error) {
	cc.ID = s.reqIDs.next()
	ctx, cancel := context.WithTimeout(ctx, s.requestTimeout())
	defer cancel()
	ch := s.waits.register(cc.ID)
	if err := s.node.ProposeConfChange(ctx, cc); err != nil {
		s.waits.cancel(cc.ID)
		return nil, s.proposeError(err)
	}
	var res result
	select {
	case res = <-ch:
	case <-ctx.Done():
		s.waits.cancel(cc.ID)
		return nil, s.proposeError(ctx.Err())
	case <-s.stopping:
		return nil, rpctypes.ErrGRPCStopped
	}
	cr := res.resp.(confChangeResult)
	select {
	case <-cr.advanced:
	case <-s.stopping:
		return nil, rpctypes.ErrGRPCStopped
	}
	if res.err != nil {
		return nil, membershipRPCError(res.err)
	}
	return cr.members, nil
}

// proposeError maps a failed proposal to etcd's error.
func (s *Server) proposeError(err error) error {
	switch {
	case errors.Is(err, raft.ErrStopped):
		return rpctypes.ErrGRPCStopped
	case errors.Is(err, raft.ErrProposalDropped):
		if s.lead.Load() == 0 {
			return rpctypes.ErrGRPCNoLeader
		}
		return rpctypes.ErrGRPCLeaderChanged
	case errors.Is(err, context.Canceled):
		return rpctypes.ErrGRPCCanceled
	case errors.Is(err, context.DeadlineExceeded):
		if s.lead.Load() == 0 {
			return rpctypes.ErrGRPCTimeoutDueToLeaderFail
		}
		return rpctypes.ErrGRPCTimeout
	}
	return err
}

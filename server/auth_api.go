package server

import (
	"context"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"golang.org/x/crypto/bcrypt"
	"google.golang.org/grpc"
)

func (s *Server) bcryptCost() int {
	if c := int(s.cfg.BcryptCost); c >= bcrypt.MinCost && c <= bcrypt.MaxCost {
		return c
	}
	return bcrypt.DefaultCost
}

// setAuthHeader puts the proposer's user and auth revision in the request
// header, for the checks at apply; an invalid token fails the proposal.
// Authenticate carries none (its password was checked already).
func (s *Server) setAuthHeader(ctx context.Context, r *pb.InternalRaftRequest) error {
	if r.Authenticate != nil {
		return nil
	}
	ai, err := s.authInfoFromCtx(ctx)
	if err != nil {
		return err
	}
	if ai != nil {
		r.Header.Username, r.Header.AuthRevision = ai.user, ai.revision
	}
	return nil
}

// apiAuth is the auth state and the caller of a request served without
// raft; ai is never nil (an empty one when no user was given).
func (s *Server) apiAuth(ctx context.Context) (*authState, *authInfo, error) {
	a, err := s.auth()
	if err != nil {
		return nil, nil, err
	}
	ai, err := s.authInfoFromCtx(ctx)
	if err != nil {
		return nil, nil, err
	}
	if ai == nil {
		ai = &authInfo{}
	}
	return a, ai, nil
}

// adminMethods may be called by root only when auth is enabled, as etcd's
// maintenance and cluster servers.
var adminMethods = map[string]bool{
	"/etcdserverpb.Maintenance/Defragment": true,
	"/etcdserverpb.Maintenance/Snapshot":   true,
	"/etcdserverpb.Maintenance/Hash":       true,
	"/etcdserverpb.Maintenance/HashKV":     true,
	"/etcdserverpb.Maintenance/Status":     true,
	"/etcdserverpb.Maintenance/MoveLeader": true,
	"/etcdserverpb.Maintenance/Downgrade":  true,
	"/etcdserverpb.Cluster/MemberAdd":      true,
	"/etcdserverpb.Cluster/MemberRemove":   true,
	"/etcdserverpb.Cluster/MemberUpdate":   true,
	"/etcdserverpb.Cluster/MemberPromote":  true,
}

// authUnaryInterceptor checks what is served without raft: ranges and
// read-only transactions, a lease's keys for TimeToLive, and the admin
// calls. Writes are checked when applied.
func (s *Server) authUnaryInterceptor(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	a, err := s.auth()
	if err != nil || !a.enabled {
		return handler(ctx, req)
	}
	if err := s.checkAPI(ctx, info.FullMethod, req); err != nil {
		return nil, err
	}
	return handler(ctx, req)
}

func (s *Server) checkAPI(ctx context.Context, method string, req any) error {
	needsCheck := adminMethods[method]
	switch r := req.(type) {
	case *pb.RangeRequest, *pb.TxnRequest:
		needsCheck = true
	case *pb.LeaseTimeToLiveRequest:
		// As etcd: only a request for the lease's keys is checked.
		needsCheck = r.Keys
	}
	if !needsCheck {
		return nil
	}
	a, ai, err := s.apiAuth(ctx)
	if err != nil {
		return err
	}
	if adminMethods[method] {
		return a.adminPermitted(ai)
	}
	switch r := req.(type) {
	case *pb.RangeRequest:
		return a.rangePermitted(ai, r.Key, r.RangeEnd)
	case *pb.TxnRequest:
		if txnWrites(r) {
			return nil
		}
		return s.checkTxnAuth(s.st.Load(), a, ai, r)
	case *pb.LeaseTimeToLiveRequest:
		if ai.user == "" {
			return rpctypes.ErrGRPCUserEmpty
		}
		keys, _ := s.st.Load().lessor.Keys(r.ID)
		for _, k := range keys {
			if err := a.rangePermitted(ai, k, nil); err != nil {
				return err
			}
		}
	}
	return nil
}

// authStreamInterceptor checks the admin streams (Snapshot).
func (s *Server) authStreamInterceptor(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if adminMethods[info.FullMethod] {
		if a, err := s.auth(); err == nil && a.enabled {
			if err := s.checkAPI(ss.Context(), info.FullMethod, nil); err != nil {
				return err
			}
		}
	}
	return handler(srv, ss)
}

// watchDenied is why a watch of [key, end) is refused ("" if it is not),
// as etcd's cancel reasons.
func (s *Server) watchDenied(ctx context.Context, key, end []byte) string {
	a, ai, err := s.apiAuth(ctx)
	if err == nil {
		if !a.enabled {
			return ""
		}
		err = a.rangePermitted(ai, key, end)
	}
	switch err {
	case nil:
		return ""
	case rpctypes.ErrGRPCInvalidAuthToken, rpctypes.ErrGRPCAuthOldRevision, rpctypes.ErrGRPCUserEmpty:
		return err.Error()
	}
	return rpctypes.ErrGRPCPermissionDenied.Error()
}

package server

import (
	"context"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc"
)

// isLearner reports whether this member is a learner.
func (s *Server) isLearner() bool {
	m, ok := s.cluster.Member(s.id)
	return ok && m.IsLearner
}

// learnerUnaryInterceptor refuses, on a learner, every unary call but
// Status and serializable Range, as etcd does.
func (s *Server) learnerUnaryInterceptor(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if s.isLearner() {
		switch r := req.(type) {
		case *pb.StatusRequest:
		case *pb.RangeRequest:
			if !r.Serializable {
				return nil, rpctypes.ErrGRPCNotSupportedForLearner
			}
		default:
			return nil, rpctypes.ErrGRPCNotSupportedForLearner
		}
	}
	return handler(ctx, req)
}

// learnerStreamInterceptor refuses every stream on a learner, as etcd does.
func (s *Server) learnerStreamInterceptor(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if s.isLearner() {
		return rpctypes.ErrGRPCNotSupportedForLearner
	}
	return handler(srv, ss)
}

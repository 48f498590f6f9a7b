package server

import (
	"context"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// authServer answers AuthStatus: authentication is not supported, so it is
// never enabled; every other Auth call is unimplemented.
type authServer struct {
	pb.UnimplementedAuthServer
	s *Server
}

func (a *authServer) AuthStatus(context.Context, *pb.AuthStatusRequest) (*pb.AuthStatusResponse, error) {
	return &pb.AuthStatusResponse{Header: a.s.header(nil), Enabled: false}, nil
}

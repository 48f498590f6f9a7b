package server

import (
	"context"
	"errors"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"go.etcd.io/etcd/server/v3/etcdserver/api/v3election/v3electionpb"
	"go.etcd.io/etcd/server/v3/etcdserver/api/v3lock/v3lockpb"
	"google.golang.org/grpc/metadata"
)

// The lock and election services run clientv3's concurrency recipes
// against this member's own gRPC server (s.gw.self), with the caller's
// credentials, so that every key they touch is checked as the caller's.

// errMissingLeaderKey is etcd's error for an election request without
// its leader key.
var errMissingLeaderKey = errors.New(`"leader" field must be provided`)

// asCaller carries the caller's auth token (gRPC metadata "token", or
// "authorization" from the HTTP gateway) to the calls made for it.
func asCaller(ctx context.Context) context.Context {
	md, _ := metadata.FromIncomingContext(ctx)
	out := metadata.MD{}
	for _, k := range []string{tokenMetadataKey, "authorization"} {
		if v := md.Get(k); len(v) > 0 {
			out.Set(k, v...)
		}
	}
	return metadata.NewOutgoingContext(ctx, out)
}

// session is a concurrency session on lease, which the caller owns: it is
// neither kept alive past the request nor revoked. Lease -1 makes a
// session that needs no lease (Leader, Observe).
func (s *Server) session(ctx context.Context, lease int64) (*concurrency.Session, error) {
	sess, err := concurrency.NewSession(s.gw.self, concurrency.WithLease(clientv3.LeaseID(lease)), concurrency.WithContext(ctx))
	if err != nil {
		return nil, err
	}
	sess.Orphan()
	return sess, nil
}

type lockServer struct {
	v3lockpb.UnimplementedLockServer
	s *Server
}

func (l *lockServer) Lock(ctx context.Context, r *v3lockpb.LockRequest) (*v3lockpb.LockResponse, error) {
	ctx = asCaller(ctx)
	sess, err := l.s.session(ctx, r.Lease)
	if err != nil {
		return nil, err
	}
	m := concurrency.NewMutex(sess, string(r.Name))
	if err := m.Lock(ctx); err != nil {
		return nil, err
	}
	return &v3lockpb.LockResponse{Header: m.Header(), Key: []byte(m.Key())}, nil
}

func (l *lockServer) Unlock(ctx context.Context, r *v3lockpb.UnlockRequest) (*v3lockpb.UnlockResponse, error) {
	resp, err := l.s.gw.self.Delete(asCaller(ctx), string(r.Key))
	if err != nil {
		return nil, err
	}
	return &v3lockpb.UnlockResponse{Header: resp.Header}, nil
}

type electionServer struct {
	v3electionpb.UnimplementedElectionServer
	s *Server
}

func (e *electionServer) Campaign(ctx context.Context, r *v3electionpb.CampaignRequest) (*v3electionpb.CampaignResponse, error) {
	ctx = asCaller(ctx)
	sess, err := e.s.session(ctx, r.Lease)
	if err != nil {
		return nil, err
	}
	el := concurrency.NewElection(sess, string(r.Name))
	if err := el.Campaign(ctx, string(r.Value)); err != nil {
		return nil, err
	}
	return &v3electionpb.CampaignResponse{Header: el.Header(), Leader: &v3electionpb.LeaderKey{
		Name: r.Name, Key: []byte(el.Key()), Rev: el.Rev(), Lease: int64(sess.Lease()),
	}}, nil
}

// resume is the election a leader key names.
func (e *electionServer) resume(ctx context.Context, lk *v3electionpb.LeaderKey) (*concurrency.Election, error) {
	if lk == nil {
		return nil, errMissingLeaderKey
	}
	sess, err := e.s.session(ctx, lk.Lease)
	if err != nil {
		return nil, err
	}
	return concurrency.ResumeElection(sess, string(lk.Name), string(lk.Key), lk.Rev), nil
}

func (e *electionServer) Proclaim(ctx context.Context, r *v3electionpb.ProclaimRequest) (*v3electionpb.ProclaimResponse, error) {
	ctx = asCaller(ctx)
	el, err := e.resume(ctx, r.Leader)
	if err != nil {
		return nil, err
	}
	if err := el.Proclaim(ctx, string(r.Value)); err != nil {
		return nil, err
	}
	return &v3electionpb.ProclaimResponse{Header: el.Header()}, nil
}

func (e *electionServer) Resign(ctx context.Context, r *v3electionpb.ResignRequest) (*v3electionpb.ResignResponse, error) {
	ctx = asCaller(ctx)
	el, err := e.resume(ctx, r.Leader)
	if err != nil {
		return nil, err
	}
	if err := el.Resign(ctx); err != nil {
		return nil, err
	}
	return &v3electionpb.ResignResponse{Header: el.Header()}, nil
}

func (e *electionServer) Leader(ctx context.Context, r *v3electionpb.LeaderRequest) (*v3electionpb.LeaderResponse, error) {
	ctx = asCaller(ctx)
	sess, err := e.s.session(ctx, -1)
	if err != nil {
		return nil, err
	}
	resp, err := concurrency.NewElection(sess, string(r.Name)).Leader(ctx)
	if err != nil {
		return nil, err
	}
	return &v3electionpb.LeaderResponse{Header: resp.Header, Kv: resp.Kvs[0]}, nil
}

func (e *electionServer) Observe(r *v3electionpb.LeaderRequest, stream v3electionpb.Election_ObserveServer) error {
	ctx := asCaller(stream.Context())
	sess, err := e.s.session(ctx, -1)
	if err != nil {
		return err
	}
	for resp := range concurrency.NewElection(sess, string(r.Name)).Observe(ctx) {
		if err := stream.Send(&v3electionpb.LeaderResponse{Header: resp.Header, Kv: resp.Kvs[0]}); err != nil {
			return err
		}
	}
	return ctx.Err()
}

package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/lifeboat-dev/lifeboat/server/lease"
)

// Peer endpoints that followers forward lease requests to: only the
// leader's lessor knows when leases expire.
const (
	leaseRenewPath = "/lifeboat/lease/renew"
	leaseTTLPath   = "/lifeboat/lease/ttl"
)

type leaseServer struct {
	pb.UnimplementedLeaseServer
	s *Server
}

func (l *leaseServer) LeaseGrant(ctx context.Context, r *pb.LeaseGrantRequest) (*pb.LeaseGrantResponse, error) {
	req := &pb.LeaseGrantRequest{ID: r.ID, TTL: r.TTL}
	if req.ID == 0 {
		// As etcd: a fresh positive ID from the request ID generator.
		req.ID = int64(l.s.reqIDs.next() & math.MaxInt64)
	}
	resp, err := l.s.proposeWrite(ctx, &pb.InternalRaftRequest{LeaseGrant: req})
	if err != nil {
		return nil, err
	}
	out := resp.(*pb.LeaseGrantResponse)
	out.Header = l.s.header(out.Header)
	return out, nil
}

func (l *leaseServer) LeaseRevoke(ctx context.Context, r *pb.LeaseRevokeRequest) (*pb.LeaseRevokeResponse, error) {
	resp, err := l.s.propose(ctx, &pb.InternalRaftRequest{LeaseRevoke: r})
	if err != nil {
		return nil, toGRPCError(err)
	}
	out := resp.(*pb.LeaseRevokeResponse)
	out.Header = l.s.header(out.Header)
	return out, nil
}

func (l *leaseServer) LeaseTimeToLive(ctx context.Context, r *pb.LeaseTimeToLiveRequest) (*pb.LeaseTimeToLiveResponse, error) {
	resp, err := l.s.leaseTimeToLive(ctx, r)
	if err != nil {
		if errors.Is(err, rpctypes.ErrGRPCLeaseNotFound) {
			// etcd answers a missing lease with TTL -1, not an error.
			return &pb.LeaseTimeToLiveResponse{Header: l.s.header(nil), ID: r.ID, TTL: -1}, nil
		}
		return nil, toGRPCError(err)
	}
	resp.Header = l.s.header(resp.Header)
	return resp, nil
}

func (l *leaseServer) LeaseLeases(ctx context.Context, _ *pb.LeaseLeasesRequest) (*pb.LeaseLeasesResponse, error) {
	if err := l.s.linearizableReadNotify(ctx); err != nil {
		return nil, toGRPCError(err)
	}
	resp := &pb.LeaseLeasesResponse{Header: l.s.header(nil)}
	for _, in := range l.s.st.Load().lessor.Leases() {
		resp.Leases = append(resp.Leases, &pb.LeaseStatus{ID: in.ID})
	}
	return resp, nil
}

func (l *leaseServer) LeaseKeepAlive(stream pb.Lease_LeaseKeepAliveServer) error {
	ctx := stream.Context()
	for {
		req, err := stream.Recv()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		resp := &pb.LeaseKeepAliveResponse{ID: req.ID}
		ttl, err := l.s.leaseRenew(ctx, req.ID)
		switch {
		case err == nil:
			resp.TTL = ttl
		case errors.Is(err, rpctypes.ErrGRPCLeaseNotFound):
			resp.TTL = 0
		default:
			return toGRPCError(err)
		}
		resp.Header = l.s.header(nil)
		if err := stream.Send(resp); err != nil {
			return err
		}
	}
}

// leaseRenew renews on the leader, forwarding from a follower.
func (s *Server) leaseRenew(ctx context.Context, id int64) (int64, error) {
	for attempt := 0; ; attempt++ {
		ttl, err := s.st.Load().lessor.Renew(ctx, id)
		if !errors.Is(err, lease.ErrNotPrimary) {
			return ttl, err
		}
		var resp pb.LeaseKeepAliveResponse
		err = s.forwardToLeader(ctx, leaseRenewPath, &pb.LeaseKeepAliveRequest{ID: id}, &resp)
		if err == nil {
			return resp.TTL, nil
		}
		if errors.Is(err, rpctypes.ErrGRPCLeaseNotFound) || attempt >= 3 {
			return -1, err
		}
		if werr := s.waitLeader(ctx); werr != nil {
			return -1, werr
		}
	}
}

// leaseTimeToLive answers on the leader, forwarding from a follower.
func (s *Server) leaseTimeToLive(ctx context.Context, r *pb.LeaseTimeToLiveRequest) (*pb.LeaseTimeToLiveResponse, error) {
	for attempt := 0; ; attempt++ {
		in, err := s.st.Load().lessor.TimeToLive(r.ID, r.Keys)
		if err == nil {
			resp := &pb.LeaseTimeToLiveResponse{ID: in.ID, TTL: int64(math.Ceil(in.Remaining.Seconds())), GrantedTTL: in.TTL, Keys: in.Keys}
			return resp, nil
		}
		if !errors.Is(err, lease.ErrNotPrimary) {
			return nil, err
		}
		var resp pb.LeaseTimeToLiveResponse
		err = s.forwardToLeader(ctx, leaseTTLPath, r, &resp)
		if err == nil {
			return &resp, nil
		}
		if errors.Is(err, rpctypes.ErrGRPCLeaseNotFound) || attempt >= 3 {
			return nil, err
		}
		if werr := s.waitLeader(ctx); werr != nil {
			return nil, werr
		}
	}
}

// waitLeader waits a little for a leader to be known.
func (s *Server) waitLeader(ctx context.Context) error {
	t := time.NewTimer(time.Duration(s.cfg.HeartbeatMs) * time.Millisecond * 5)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctxErr(ctx)
	case <-s.stopping:
		return rpctypes.ErrGRPCStopped
	}
}

type protoMessage interface {
	Marshal() ([]byte, error)
	Unmarshal([]byte) error
}

// forwardToLeader posts req to path on the leader's peer URL and decodes
// the answer into resp.
func (s *Server) forwardToLeader(ctx context.Context, path string, req, resp protoMessage) error {
	lead := s.lead.Load()
	if lead == 0 {
		return rpctypes.ErrGRPCNoLeader
	}
	if lead == s.id {
		return lease.ErrNotPrimary
	}
	m, ok := s.cluster.Member(lead)
	if !ok || len(m.PeerURLs) == 0 {
		return rpctypes.ErrGRPCNoLeader
	}
	body, err := req.Marshal()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, s.requestTimeout())
	defer cancel()
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(m.PeerURLs[0], "/")+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	hresp, err := s.sec.peerClient.Do(hreq)
	if err != nil {
		return fmt.Errorf("server: forward to leader %x: %w", lead, err)
	}
	defer hresp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(hresp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("server: forward to leader %x: %w", lead, err)
	}
	switch hresp.StatusCode {
	case http.StatusOK:
		return resp.Unmarshal(b)
	case http.StatusNotFound:
		return rpctypes.ErrGRPCLeaseNotFound
	case http.StatusConflict: // the leader's gRPC error (writeStatusError)
		code, err := strconv.Atoi(hresp.Header.Get(grpcCodeHeader))
		if err != nil {
			return fmt.Errorf("server: forward to leader %x: %s: %w", lead, grpcCodeHeader, err)
		}
		return status.Error(codes.Code(code), string(b))
	}
	return fmt.Errorf("server: forward to leader %x: %s: %s", lead, hresp.Status, strings.TrimSpace(string(b)))
}

// grpcCodeHeader carries the code of a gRPC error answered to a forwarded
// request; the body is its message.
const grpcCodeHeader = "Lifeboat-Grpc-Code"

// writeStatusError answers a forwarded request with a gRPC error, which
// forwardToLeader returns as is.
func writeStatusError(w http.ResponseWriter, err error) {
	st := status.Convert(err)
	w.Header().Set(grpcCodeHeader, strconv.Itoa(int(st.Code())))
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusConflict)
	_, _ = io.WriteString(w, st.Message())
}

// serveLeaseRenew and serveLeaseTTL answer forwarded lease requests.
func (s *Server) serveLeaseRenew(w http.ResponseWriter, r *http.Request) {
	var req pb.LeaseKeepAliveRequest
	if !readProto(w, r, &req) {
		return
	}
	ttl, err := s.st.Load().lessor.Renew(r.Context(), req.ID)
	if writeLeaseError(w, err) {
		return
	}
	writeProto(w, &pb.LeaseKeepAliveResponse{ID: req.ID, TTL: ttl})
}

func (s *Server) serveLeaseTTL(w http.ResponseWriter, r *http.Request) {
	var req pb.LeaseTimeToLiveRequest
	if !readProto(w, r, &req) {
		return
	}
	in, err := s.st.Load().lessor.TimeToLive(req.ID, req.Keys)
	if writeLeaseError(w, err) {
		return
	}
	writeProto(w, &pb.LeaseTimeToLiveResponse{ID: in.ID, TTL: int64(math.Ceil(in.Remaining.Seconds())), GrantedTTL: in.TTL, Keys: in.Keys})
}

func readProto(w http.ResponseWriter, r *http.Request, m protoMessage) bool {
	b, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err == nil {
		err = m.Unmarshal(b)
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return false
	}
	return true
}

func writeProto(w http.ResponseWriter, m protoMessage) {
	b, err := m.Marshal()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/protobuf")
	_, _ = w.Write(b)
}

func writeLeaseError(w http.ResponseWriter, err error) bool {
	switch {
	case err == nil:
		return false
	case errors.Is(err, rpctypes.ErrGRPCLeaseNotFound):
		http.Error(w, status.Convert(err).Message(), http.StatusNotFound)
	case errors.Is(err, lease.ErrNotPrimary):
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
	default:
		http.Error(w, err.Error(), http.StatusInternalServerError)
	}
	return true
}

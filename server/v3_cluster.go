package server

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/lifeboat-dev/lifeboat/snapkit/schema"
)

// promotePath is the peer API a follower forwards a MemberPromote to, as
// etcd's followers forward it to the leader's peer URL: only the leader can
// tell whether the learner has caught up. The follower has checked the
// caller's permission (auth tokens are not valid on other members).
const promotePath = "/lifeboat/member/promote"

// servePromote answers a forwarded MemberPromote on the leader.
func (s *Server) servePromote(w http.ResponseWriter, r *http.Request) {
	var req pb.MemberPromoteRequest
	if !readProto(w, r, &req) {
		return
	}
	if s.lead.Load() != s.id {
		writeStatusError(w, rpctypes.ErrGRPCNotLeader)
		return
	}
	resp, err := (&clusterServer{s: s}).promote(r.Context(), &req)
	if err != nil {
		writeStatusError(w, err)
		return
	}
	writeProto(w, resp)
}

// learnerReadyPercent is etcd's: a learner may be promoted once its match
// index is at least 90% of the leader's.
const learnerReadyPercent = 0.9

type clusterServer struct {
	pb.UnimplementedClusterServer
	s *Server
}

func (c *clusterServer) members() []*pb.Member { return pbMembers(c.s.cluster.Members()) }

func pbMembers(ms []schema.Member) []*pb.Member {
	out := make([]*pb.Member, len(ms))
	for i, m := range ms {
		out[i] = pbMember(m)
	}
	return out
}

func (c *clusterServer) MemberList(ctx context.Context, r *pb.MemberListRequest) (*pb.MemberListResponse, error) {
	if r.Linearizable {
		if err := c.s.linearizableReadNotify(ctx); err != nil {
			return nil, toGRPCError(err)
		}
	}
	return &pb.MemberListResponse{Header: c.s.clusterHeader(), Members: c.members()}, nil
}

func (c *clusterServer) MemberAdd(ctx context.Context, r *pb.MemberAddRequest) (*pb.MemberAddResponse, error) {
	for _, u := range r.PeerURLs {
		if _, err := parsePeerURL(u); err != nil {
			return nil, rpctypes.ErrGRPCMemberBadURLs
		}
	}
	if len(r.PeerURLs) == 0 {
		return nil, rpctypes.ErrGRPCMemberBadURLs
	}
	now := time.Now()
	id, err := schema.MemberID(r.PeerURLs, "", &now)
	if err != nil {
		return nil, rpctypes.ErrGRPCMemberBadURLs
	}
	m := schema.Member{ID: id, PeerURLs: r.PeerURLs, IsLearner: r.IsLearner}
	if c.s.cfg.StrictReconfigCheck {
		if err := c.s.reconfigCheck().mayAdd(r.IsLearner); err != nil {
			return nil, err
		}
	}
	// The apply loop checks again (applyConfChange); this answers early.
	if err := c.s.cluster.validateAdd(m); err != nil {
		return nil, membershipRPCError(err)
	}
	ctxJSON, err := json.Marshal(confChangeContext{Member: m})
	if err != nil {
		return nil, toGRPCError(err)
	}
	cc := raftpb.ConfChange{Type: raftpb.ConfChangeAddNode, NodeID: id, Context: ctxJSON}
	if r.IsLearner {
		cc.Type = raftpb.ConfChangeAddLearnerNode
	}
	ms, err := c.s.proposeConfChange(ctx, cc)
	if err != nil {
		return nil, toGRPCError(err)
	}
	return &pb.MemberAddResponse{Header: c.s.clusterHeader(), Member: pbMember(m), Members: pbMembers(ms)}, nil
}

func (c *clusterServer) MemberRemove(ctx context.Context, r *pb.MemberRemoveRequest) (*pb.MemberRemoveResponse, error) {
	if c.s.cfg.StrictReconfigCheck {
		if err := c.s.reconfigCheck().mayRemove(r.ID); err != nil {
			return nil, err
		}
	}
	if err := c.s.cluster.validateRemove(r.ID); err != nil {
		return nil, membershipRPCError(err)
	}
	cc := raftpb.ConfChange{Type: raftpb.ConfChangeRemoveNode, NodeID: r.ID}
	ms, err := c.s.proposeConfChange(ctx, cc)
	if err != nil {
		return nil, toGRPCError(err)
	}
	return &pb.MemberRemoveResponse{Header: c.s.clusterHeader(), Members: pbMembers(ms)}, nil
}

func (c *clusterServer) MemberUpdate(ctx context.Context, r *pb.MemberUpdateRequest) (*pb.MemberUpdateResponse, error) {
	for _, u := range r.PeerURLs {
		if _, err := parsePeerURL(u); err != nil {
			return nil, rpctypes.ErrGRPCMemberBadURLs
		}
	}
	if err := c.s.cluster.validateUpdate(r.ID, r.PeerURLs); err != nil {
		return nil, membershipRPCError(err)
	}
	m, _ := c.s.cluster.Member(r.ID)
	m.PeerURLs = r.PeerURLs
	ctxJSON, err := json.Marshal(confChangeContext{Member: m})
	if err != nil {
		return nil, toGRPCError(err)
	}
	cc := raftpb.ConfChange{Type: raftpb.ConfChangeUpdateNode, NodeID: r.ID, Context: ctxJSON}
	ms, err := c.s.proposeConfChange(ctx, cc)
	if err != nil {
		return nil, toGRPCError(err)
	}
	return &pb.MemberUpdateResponse{Header: c.s.clusterHeader(), Members: pbMembers(ms)}, nil
}

func (c *clusterServer) MemberPromote(ctx context.Context, r *pb.MemberPromoteRequest) (*pb.MemberPromoteResponse, error) {
	if c.s.lead.Load() != c.s.id {
		// Only the leader knows how far the learner has caught up.
		var resp pb.MemberPromoteResponse
		if err := c.s.forwardToLeader(ctx, promotePath, r, &resp); err != nil {
			return nil, err
		}
		return &resp, nil
	}
	return c.promote(ctx, r)
}

// promote is MemberPromote on the leader.
func (c *clusterServer) promote(ctx context.Context, r *pb.MemberPromoteRequest) (*pb.MemberPromoteResponse, error) {
	if err := c.s.learnerReady(r.ID); err != nil {
		return nil, membershipRPCError(err)
	}
	if c.s.cfg.StrictReconfigCheck {
		if err := c.s.reconfigCheck().mayPromote(); err != nil {
			return nil, err
		}
	}
	if err := c.s.cluster.validatePromote(r.ID); err != nil {
		return nil, membershipRPCError(err)
	}
	m, _ := c.s.cluster.Member(r.ID)
	m.IsLearner = false
	ctxJSON, err := json.Marshal(confChangeContext{Member: m, IsPromote: true})
	if err != nil {
		return nil, toGRPCError(err)
	}
	cc := raftpb.ConfChange{Type: raftpb.ConfChangeAddNode, NodeID: r.ID, Context: ctxJSON}
	ms, err := c.s.proposeConfChange(ctx, cc)
	if err != nil {
		return nil, toGRPCError(err)
	}
	return &pb.MemberPromoteResponse{Header: c.s.clusterHeader(), Members: pbMembers(ms)}, nil
}

// reconfigCheck is what the strict reconfiguration checks look at now.
func (s *Server) reconfigCheck() reconfigCheck {
	return reconfigCheck{members: s.cluster.Members(), self: s.id, activeSince: s.tr.ActiveSince, now: time.Now()}
}

// learnerReady is etcd's isLearnerReady, on the leader: learner id is in
// raft's progress, and its match index is at least learnerReadyPercent of
// the leader's.
func (s *Server) learnerReady(id uint64) error {
	st := s.node.Status()
	pr, ok := st.Progress[id]
	if !ok {
		return errIDNotFound
	}
	if float64(pr.Match) < learnerReadyPercent*float64(st.Progress[s.id].Match) {
		return rpctypes.ErrGRPCLearnerNotReady
	}
	return nil
}

package server

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/lifeboat-dev/lifeboat/snapkit/schema"
)

// hashKVPath serves a member's hashkv to its peers (etcd's peer API has
// /members/hashkv).
const hashKVPath = "/lifeboat/hashkv"

// peerHashKV is a member's answer on hashKVPath.
type peerHashKV struct {
	MemberID        uint64 `json:"memberId"`
	Revision        int64  `json:"revision"` // the member's current revision
	Hash            uint32 `json:"hash"`
	HashRevision    int64  `json:"hashRevision"`
	CompactRevision int64  `json:"compactRevision"`
	Error           string `json:"error,omitempty"`
}

// serveHashKV answers GET hashKVPath?rev=N with the hash of the keys up to
// revision N (0: the current one).
func (s *Server) serveHashKV(w http.ResponseWriter, r *http.Request) {
	rev, err := strconv.ParseInt(r.URL.Query().Get("rev"), 10, 64)
	if err != nil && r.URL.Query().Get("rev") != "" {
		http.Error(w, "bad rev", http.StatusBadRequest)
		return
	}
	st := s.st.Load()
	if st == nil {
		http.Error(w, ErrStopped.Error(), http.StatusServiceUnavailable)
		return
	}
	out := peerHashKV{MemberID: s.id, Revision: st.kv.Rev()}
	res, err := st.kv.HashKV(rev)
	if err != nil {
		out.Error = toGRPCError(err).Error()
	} else {
		out.Hash, out.HashRevision, out.CompactRevision = res.Hash, res.HashRevision, res.CompactRevision
	}
	writeJSON(w, http.StatusOK, out)
}

// fetchPeerHashKV asks member m for its hashkv at rev over its peer URLs.
func (s *Server) fetchPeerHashKV(ctx context.Context, m schema.Member, rev int64) (peerHashKV, error) {
	client := s.peerHTTPClient(5 * time.Second)
	defer client.CloseIdleConnections()
	h, err := getJSON[peerHashKV](ctx, client, m.PeerURLs, hashKVPath+"?rev="+url.QueryEscape(strconv.FormatInt(rev, 10)), 1<<20)
	if err != nil {
		return peerHashKV{}, fmt.Errorf("server: hashkv of member %s: %w", schema.FormatID(m.ID), err)
	}
	return h, nil
}

// initialCorruptCheck compares this member's hashkv at its revision with
// every reachable peer's, as etcd's --experimental-initial-corrupt-check:
// the same revision and compaction with another hash means this member's
// data differ, and it must not serve.
func (s *Server) initialCorruptCheck() error {
	st := s.st.Load()
	local, err := st.kv.HashKV(0)
	if err != nil {
		return fmt.Errorf("server: initial corruption check: %w", err)
	}
	s.lg.Info("starting initial corruption check", "revision", local.HashRevision, "hash", local.Hash)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, m := range s.cluster.Members() {
		if m.ID == s.id {
			continue
		}
		p, err := s.fetchPeerHashKV(ctx, m, local.HashRevision)
		if err != nil {
			s.lg.Warn("cannot fetch hash from peer", "remote-peer-id", schema.FormatID(m.ID), "error", err)
			continue
		}
		if p.Error != "" {
			s.lg.Warn("peer cannot hash at this revision", "remote-peer-id", schema.FormatID(m.ID), "revision", local.HashRevision, "error", p.Error)
			continue
		}
		if p.CompactRevision == local.CompactRevision && p.Hash != local.Hash {
			return fmt.Errorf("server: found data inconsistency with peers: member %s has hash %d at revision %d, peer %s has %d",
				schema.FormatID(s.id), local.Hash, local.HashRevision, schema.FormatID(m.ID), p.Hash)
		}
	}
	s.lg.Info("initial corruption checking passed; no corruption", "revision", local.HashRevision)
	return nil
}

// periodicCorruptCheck is the leader's check: every voting member's hash at
// the leader's revision against the leader's. A follower that differs at
// the same revision and compaction gets the CORRUPT alarm.
func (s *Server) periodicCorruptCheck() {
	if s.lead.Load() != s.id {
		return
	}
	st := s.st.Load()
	if st == nil {
		return
	}
	local, err := st.kv.HashKV(0)
	if err != nil {
		s.lg.Warn("corruption check: local hash", "error", err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.requestTimeout())
	defer cancel()
	for _, m := range s.cluster.Members() {
		if m.ID == s.id || m.IsLearner {
			continue
		}
		p, err := s.fetchPeerHashKV(ctx, m, local.HashRevision)
		if err != nil || p.Error != "" {
			s.lg.Warn("corruption check: peer hash", "remote-peer-id", schema.FormatID(m.ID), "error", err, "peer-error", p.Error)
			continue
		}
		if p.CompactRevision == local.CompactRevision && p.HashRevision == local.HashRevision && p.Hash != local.Hash {
			// One alarm a check, as etcd's.
			s.raiseCorrupt(m.ID, local.HashRevision)
			return
		}
	}
}

// raiseCorrupt proposes the CORRUPT alarm for member id.
func (s *Server) raiseCorrupt(id uint64, rev int64) {
	s.lg.Error("found data inconsistency, raising CORRUPT", "member-id", schema.FormatID(id), "revision", rev)
	ctx, cancel := context.WithTimeout(context.Background(), s.requestTimeout())
	defer cancel()
	if _, err := s.propose(ctx, &pb.InternalRaftRequest{Alarm: &pb.AlarmRequest{
		Action: pb.AlarmRequest_ACTIVATE, MemberID: id, Alarm: pb.AlarmType_CORRUPT,
	}}); err != nil {
		s.lg.Warn("raise CORRUPT alarm", "error", err)
	}
}

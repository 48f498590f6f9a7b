package server

import (
	"context"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/membershippb"
	"golang.org/x/sync/errgroup"

	"github.com/lifeboat-dev/lifeboat/snapkit/schema"
)

// startBackground starts the member's periodic work: publishing its
// attributes, setting the cluster version, revoking expired leases, the
// backend quota check and the purge of old files.
func (s *Server) startBackground() {
	if err := s.registerIndexGauges(); err != nil {
		s.lg.Warn("metrics", "error", err)
	}
	s.goBackground(s.publishAttributes)
	s.goBackground(s.revokeExpiredLeases)
	s.goBackground(func() {
		s.every(time.Second, func() {
			s.maybeSetClusterVersion()
			s.checkQuota()
		})
	})
	s.goBackground(func() { s.every(purgeInterval, s.purgeFiles) })
	s.startOperations()
}

func (s *Server) goBackground(fn func()) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		fn()
	}()
}

// every runs fn every d until the member stops.
func (s *Server) every(d time.Duration, fn func()) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-s.stopping:
			return
		case <-t.C:
			fn()
		}
	}
}

// publishAttributes proposes this member's name and client URLs until one
// proposal applies, as etcd does after it starts.
func (s *Server) publishAttributes() {
	req := &pb.InternalRaftRequest{ClusterMemberAttrSet: &membershippb.ClusterMemberAttrSetRequest{
		Member_ID: s.id,
		MemberAttributes: &membershippb.Attributes{
			Name:       s.cfg.Name,
			ClientUrls: s.cfg.AdvertiseClientURLs,
		},
	}}
	for {
		if m, ok := s.cluster.Member(s.id); ok && m.Name == s.cfg.Name && sameURLs(m.ClientURLs, s.cfg.AdvertiseClientURLs) {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), s.requestTimeout())
		_, err := s.propose(ctx, req)
		cancel()
		if err == nil {
			s.lg.Info("published member attributes", "name", s.cfg.Name, "client-urls", s.cfg.AdvertiseClientURLs)
			return
		}
		s.lg.Debug("publish member attributes", "error", err)
		select {
		case <-s.stopping:
			return
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// maybeSetClusterVersion makes the leader record the cluster version once.
func (s *Server) maybeSetClusterVersion() {
	if s.lead.Load() != s.id || s.cluster.Version() == ClusterVersion {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.requestTimeout())
	defer cancel()
	if _, err := s.propose(ctx, &pb.InternalRaftRequest{ClusterVersionSet: &membershippb.ClusterVersionSetRequest{Ver: ClusterVersion}}); err != nil {
		s.lg.Debug("set cluster version", "error", err)
	}
}

// checkQuota raises the NOSPACE alarm when the backend is over quota.
func (s *Server) checkQuota() {
	st := s.st.Load()
	if st == nil || st.be.Size() <= s.cfg.QuotaBackendBytes || s.alarms.active(pb.AlarmType_NOSPACE) {
		return
	}
	s.raiseNoSpace()
}

// raiseNoSpace proposes the NOSPACE alarm for this member.
func (s *Server) raiseNoSpace() {
	s.lg.Warn("backend over quota, raising NOSPACE", "size", s.st.Load().be.Size(), "quota", s.cfg.QuotaBackendBytes)
	ctx, cancel := context.WithTimeout(context.Background(), s.requestTimeout())
	defer cancel()
	if _, err := s.propose(ctx, &pb.InternalRaftRequest{Alarm: &pb.AlarmRequest{
		Action: pb.AlarmRequest_ACTIVATE, MemberID: s.id, Alarm: pb.AlarmType_NOSPACE,
	}}); err != nil {
		s.lg.Warn("raise NOSPACE alarm", "error", err)
	}
}

// maxParallelRevokes bounds the revocations in flight.
const maxParallelRevokes = 16

// revokeExpiredLeases proposes a revoke for every lease the leader's lessor
// reports expired.
func (s *Server) revokeExpiredLeases() {
	for {
		st := s.st.Load()
		if st == nil {
			return
		}
		select {
		case <-s.stopping:
			return
		case ids := <-st.lessor.ExpiredLeases():
			// Revoke in parallel, a bounded number at a time: one slow
			// proposal must not hold the others back.
			var g errgroup.Group
			g.SetLimit(maxParallelRevokes)
			for _, id := range ids {
				g.Go(func() error {
					ctx, cancel := context.WithTimeout(context.Background(), s.requestTimeout())
					defer cancel()
					_, err := s.propose(ctx, &pb.InternalRaftRequest{LeaseRevoke: &pb.LeaseRevokeRequest{ID: id}})
					if err != nil {
						s.lg.Warn("revoke expired lease", "lease-id", schema.FormatID(uint64(id)), "error", err)
					}
					return nil
				})
			}
			_ = g.Wait()
		case <-time.After(time.Second):
			// The stores may have been replaced by a snapshot.
		}
	}
}

// checkpointLeases proposes lease checkpoints (lease.Checkpointer).
func (s *Server) checkpointLeases(ctx context.Context, req *pb.LeaseCheckpointRequest) error {
	_, err := s.propose(ctx, &pb.InternalRaftRequest{LeaseCheckpoint: req})
	return err
}

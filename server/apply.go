package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/lifeboat-dev/lifeboat/snapkit/schema"
	"github.com/lifeboat-dev/lifeboat/snapkit/snap"
)

// applyState belongs to the apply loop.
type applyState struct {
	applied, appliedTerm uint64
	snapIndex            uint64
	confState            raftpb.ConfState
	// replay validates the ConfChanges a restart replays (see
	// applyConfChange); nil when there are none to replay.
	replay *cluster
}

// replayCluster is the membership that validates the ConfChanges replayed
// above snapshot sn (see applyConfChange): that of sn, or none when sn is
// empty and the log starts at the bootstrap changes. It is nil when the
// backend holds no entry above sn. Replays happen after a restart, and
// after a snapshot from the leader whose db is newer than the snapshot.
func (s *Server) replayCluster(sn raftpb.Snapshot) (*cluster, error) {
	ci, _ := s.st.Load().kv.ConsistentIndex()
	if ci <= sn.Metadata.Index {
		return nil, nil
	}
	c := newCluster(s.cluster.ID(), nil)
	if raft.IsEmptySnap(sn) {
		return c, nil
	}
	ms, err := snap.DecodeMembership(sn.Data)
	if err != nil {
		return nil, fmt.Errorf("server: membership of snapshot %d, to replay the log up to index %d: %w", sn.Metadata.Index, ci, err)
	}
	if err := c.restore(nil, ms); err != nil {
		return nil, err
	}
	return c, nil
}

// runApply applies what raft committed, in order, and takes snapshots.
func (s *Server) runApply(boot raftpb.Snapshot, replay *cluster) {
	defer s.wg.Done()
	as := &applyState{
		applied:     boot.Metadata.Index,
		appliedTerm: boot.Metadata.Term,
		snapIndex:   boot.Metadata.Index,
		confState:   boot.Metadata.ConfState,
		replay:      replay,
	}
	for {
		select {
		case ap := <-s.applyc:
			if err := s.applyAll(as, ap); err != nil {
				close(ap.applied)
				s.fail(err)
				return
			}
			close(ap.applied)
		case m := <-s.msgSnapc:
			s.sendSnapshot(as, m)
		case <-s.stopping:
			return
		}
	}
}

func (s *Server) applyAll(as *applyState, ap *toApply) error {
	if !raft.IsEmptySnap(ap.snapshot) {
		select {
		case <-ap.persisted:
		case <-s.stopping:
			return nil
		}
		if err := s.applySnapshot(as, ap.snapshot); err != nil {
			return err
		}
	}
	for i := range ap.entries {
		e := &ap.entries[i]
		if e.Index <= as.applied {
			continue
		}
		switch e.Type {
		case raftpb.EntryNormal:
			s.applyNormal(e)
		case raftpb.EntryConfChange:
			if err := s.applyConfChange(as, e, ap.advanced); err != nil {
				return err
			}
		default:
			s.lg.Warn("skipped entry of unsupported type", "index", e.Index, "type", e.Type.String())
		}
		as.applied, as.appliedTerm = e.Index, e.Term
	}
	s.applied.Store(as.applied)
	s.applyWait.setApplied(as.applied)
	if err := s.st.Load().be.Err(); err != nil {
		return err
	}
	if as.applied-as.snapIndex > s.cfg.SnapshotCount {
		select {
		case <-ap.persisted:
		case <-s.stopping:
			return nil
		}
		return s.snapshot(as)
	}
	return nil
}

// applyNormal applies one normal entry through the mvcc store, which
// records its index as the consistent index in the same backend batch.
func (s *Server) applyNormal(e *raftpb.Entry) {
	st := s.st.Load()
	if ci, _ := st.kv.ConsistentIndex(); e.Index <= ci {
		return // already in the backend (a restart replays the WAL)
	}
	if len(e.Data) == 0 {
		// The no-op of a new leader.
		_ = st.kv.Apply(e.Index, e.Term, func() error { return nil })
		return
	}
	var r pb.InternalRaftRequest
	if err := r.Unmarshal(e.Data); err != nil {
		// etcd 3.5 also wrote v2 requests (member attributes, version);
		// their effect is in the members bucket already.
		s.lg.Debug("skipped entry that is not an InternalRaftRequest", "index", e.Index, "error", err)
		_ = st.kv.Apply(e.Index, e.Term, func() error { return nil })
		return
	}
	id := r.ID
	if r.Header != nil && r.Header.ID != 0 {
		id = r.Header.ID
	}
	var res result
	_ = st.kv.Apply(e.Index, e.Term, func() error {
		res = s.applyRequest(st, &r)
		return nil
	})
	if res.err != nil {
		s.m.proposalsFailed.Inc()
	}
	s.waits.trigger(id, res)
}

// applyRequest applies one request and returns what its proposer waits for.
func (s *Server) applyRequest(st *stores, r *pb.InternalRaftRequest) result {
	if res, handled := s.applyAuth(st, r); handled {
		return res
	}
	noSpace := s.alarms.active(pb.AlarmType_NOSPACE)
	switch {
	case r.Range != nil:
		resp, err := st.kv.Range(context.Background(), r.Range)
		return result{resp, err}
	case r.Put != nil:
		if noSpace {
			return result{err: rpctypes.ErrGRPCNoSpace}
		}
		resp, err := st.kv.Put(r.Put)
		return result{resp, err}
	case r.DeleteRange != nil:
		resp, err := st.kv.DeleteRange(r.DeleteRange)
		return result{resp, err}
	case r.Txn != nil:
		if noSpace && txnWrites(r.Txn) {
			return result{err: rpctypes.ErrGRPCNoSpace}
		}
		resp, err := st.kv.Txn(context.Background(), r.Txn)
		return result{resp, err}
	case r.Compaction != nil:
		done, err := st.kv.Compact(r.Compaction.Revision)
		if err != nil {
			return result{err: err}
		}
		return result{resp: compactResult{done: done, rev: st.kv.Rev()}}
	case r.LeaseGrant != nil:
		if noSpace {
			return result{err: rpctypes.ErrGRPCNoSpace}
		}
		info, err := st.lessor.Grant(r.LeaseGrant.ID, r.LeaseGrant.TTL)
		if err != nil {
			return result{err: err}
		}
		return result{resp: &pb.LeaseGrantResponse{Header: &pb.ResponseHeader{Revision: st.kv.Rev()}, ID: info.ID, TTL: info.TTL}}
	case r.LeaseRevoke != nil:
		if err := st.lessor.Revoke(r.LeaseRevoke.ID); err != nil {
			return result{err: err}
		}
		return result{resp: &pb.LeaseRevokeResponse{Header: &pb.ResponseHeader{Revision: st.kv.Rev()}}}
	case r.LeaseCheckpoint != nil:
		for _, cp := range r.LeaseCheckpoint.Checkpoints {
			if err := st.lessor.Checkpoint(cp.ID, cp.Remaining_TTL); err != nil && !errors.Is(err, rpctypes.ErrGRPCLeaseNotFound) {
				return result{err: err}
			}
		}
		return result{resp: &pb.LeaseCheckpointResponse{Header: &pb.ResponseHeader{Revision: st.kv.Rev()}}}
	case r.Alarm != nil:
		resp, err := s.applyAlarm(st, r.Alarm)
		return result{resp, err}
	case r.ClusterMemberAttrSet != nil:
		a := r.ClusterMemberAttrSet
		if a.MemberAttributes == nil {
			return result{err: rpctypes.ErrGRPCMemberBadURLs}
		}
		err := s.withTx(st, func(tx *bolt.Tx) error {
			return s.cluster.update(tx, a.Member_ID, func(m *schema.Member) {
				m.Name = a.MemberAttributes.Name
				m.ClientURLs = a.MemberAttributes.ClientUrls
			})
		})
		return result{err: err}
	case r.ClusterVersionSet != nil:
		err := s.withTx(st, func(tx *bolt.Tx) error { return s.cluster.setVersion(tx, r.ClusterVersionSet.Ver) })
		return result{err: err}
	case r.DowngradeInfoSet != nil:
		return result{}
	}
	return result{err: rpctypes.ErrGRPCNotCapable}
}

// compactResult is what a Compaction proposal waits for: done receives
// the outcome of the physical compaction.
type compactResult struct {
	done <-chan error
	rev  int64
}

func txnWrites(t *pb.TxnRequest) bool {
	for _, ops := range [][]*pb.RequestOp{t.Success, t.Failure} {
		for _, op := range ops {
			switch {
			case op.GetRequestPut() != nil, op.GetRequestDeleteRange() != nil:
				return true
			case op.GetRequestTxn() != nil && txnWrites(op.GetRequestTxn()):
				return true
			}
		}
	}
	return false
}

// withTx runs fn in the backend's batch transaction.
func (s *Server) withTx(st *stores, fn func(tx *bolt.Tx) error) error {
	bt := st.be.BatchTx()
	bt.Lock()
	defer bt.Unlock()
	tx, err := bt.Tx()
	if err != nil {
		return err
	}
	return fn(tx)
}

// applyAlarm raises, clears or lists alarms.
func (s *Server) applyAlarm(st *stores, a *pb.AlarmRequest) (*pb.AlarmResponse, error) {
	resp := &pb.AlarmResponse{Header: &pb.ResponseHeader{Revision: st.kv.Rev()}}
	switch a.Action {
	case pb.AlarmRequest_GET:
		resp.Alarms = s.alarms.get(a.Alarm)
	case pb.AlarmRequest_ACTIVATE:
		if a.Alarm == pb.AlarmType_NONE {
			return resp, nil
		}
		err := s.withTx(st, func(tx *bolt.Tx) error {
			added, err := s.alarms.activate(tx, a.Alarm, a.MemberID)
			if added {
				resp.Alarms = append(resp.Alarms, &pb.AlarmMember{MemberID: a.MemberID, Alarm: a.Alarm})
				s.lg.Warn("alarm raised", "alarm", a.Alarm.String(), "member-id", schema.FormatID(a.MemberID))
			}
			return err
		})
		return resp, err
	case pb.AlarmRequest_DEACTIVATE:
		err := s.withTx(st, func(tx *bolt.Tx) error {
			removed, err := s.alarms.deactivate(tx, a.Alarm, a.MemberID)
			if removed {
				resp.Alarms = append(resp.Alarms, &pb.AlarmMember{MemberID: a.MemberID, Alarm: a.Alarm})
				s.lg.Info("alarm cleared", "alarm", a.Alarm.String(), "member-id", schema.FormatID(a.MemberID))
			}
			return err
		})
		return resp, err
	}
	return resp, nil
}

// confChangeContext is the JSON etcd puts in a ConfChange: the member, and
// isPromote for a learner promotion.
type confChangeContext struct {
	schema.Member
	IsPromote bool `json:"isPromote,omitempty"`
}

// applyConfChange applies a membership change to raft, the transport, the
// member view and the members bucket.
//
// A change the membership refuses becomes a no-op for raft (NodeID None),
// as in etcd. The refusal is not stored anywhere: a restart that replays
// the WAL (entries up to the backend's consistent index) must reach it
// again. It cannot ask s.cluster, which is the backend's membership and so
// already holds every replayed change and the ones after it: a change
// refused then may be valid now (a duplicate peer URL since removed), and a
// valid one may look refused (a member since added). Replayed changes are
// validated instead against as.replay, the membership of the snapshot the
// replay starts from, carried forward by each replayed change: exactly the
// membership each change was first validated against. This is etcd's
// approach (its v2 store, recovered from the .snap and replayed forward),
// and it works on the data dirs etcd writes, which store no outcome either;
// persisting each outcome would be a format of our own.
//
// Its proposer hears of the outcome once raft has advanced past the batch
// (confChangeResult), so that its next change is not dropped as proposed
// while this one is pending (etcd's issue 15528).
func (s *Server) applyConfChange(as *applyState, e *raftpb.Entry, advanced <-chan struct{}) error {
	var cc raftpb.ConfChange
	if err := cc.Unmarshal(e.Data); err != nil {
		return fmt.Errorf("server: decode ConfChange at index %d: %w", e.Index, err)
	}
	st := s.st.Load()
	ci, _ := st.kv.ConsistentIndex()
	replay := e.Index <= ci
	cl := s.cluster
	if replay {
		if as.replay == nil {
			return fmt.Errorf("server: ConfChange at index %d is below the consistent index %d, with no membership to replay it against", e.Index, ci)
		}
		cl = as.replay
	}
	if verr := cl.validateConfChange(cc); verr != nil {
		// Raft must still see the entry; it changes nothing.
		cc.NodeID = raft.None
		as.confState = *s.node.ApplyConfChange(cc)
		if !replay {
			_ = st.kv.Apply(e.Index, e.Term, func() error { return nil })
		}
		s.lg.Info("rejected membership change", "type", cc.Type.String(), "index", e.Index, "replay", replay, "error", verr)
		s.waits.trigger(cc.ID, result{resp: confChangeResult{advanced: advanced}, err: verr})
		return nil
	}
	var ctx confChangeContext
	if len(cc.Context) > 0 && cc.Type != raftpb.ConfChangeRemoveNode {
		if err := json.Unmarshal(cc.Context, &ctx); err != nil {
			return fmt.Errorf("server: decode member of ConfChange at index %d: %w", e.Index, err)
		}
	}
	as.confState = *s.node.ApplyConfChange(cc)
	if replay {
		// The backend has it already; applying it there again would undo
		// later attribute and URL updates.
		if err := cl.applyConfChange(nil, cc, ctx); err != nil {
			return fmt.Errorf("server: replay ConfChange at index %d: %w", e.Index, err)
		}
	} else {
		var aerr error
		_ = st.kv.Apply(e.Index, e.Term, func() error {
			aerr = s.withTx(st, func(tx *bolt.Tx) error {
				if err := cl.applyConfChange(tx, cc, ctx); err != nil {
					return err
				}
				return schema.SetConfState(tx, as.confState)
			})
			return nil
		})
		if aerr != nil {
			return fmt.Errorf("server: apply ConfChange at index %d: %w", e.Index, aerr)
		}
	}
	switch cc.Type {
	case raftpb.ConfChangeAddNode, raftpb.ConfChangeAddLearnerNode, raftpb.ConfChangeUpdateNode:
		if m, ok := s.cluster.Member(cc.NodeID); ok {
			s.tr.AddPeer(m.ID, m.PeerURLs)
		}
	case raftpb.ConfChangeRemoveNode:
		s.tr.RemovePeer(cc.NodeID)
		if cc.NodeID == s.id {
			s.lg.Warn("this member was removed from the cluster; stopping", "delay", removedStopDelay.String())
			go s.failAfter(removedStopDelay, errRemoved)
		}
	}
	s.lg.Info("applied membership change", "type", cc.Type.String(), "member-id", schema.FormatID(cc.NodeID), "index", e.Index, "replay", replay)
	s.waits.trigger(cc.ID, result{resp: confChangeResult{members: s.cluster.Members(), advanced: advanced}})
	return nil
}

// confChangeResult is what the proposer of a ConfChange waits for.
type confChangeResult struct {
	members []schema.Member
	// advanced is closed once raft knows the change applied.
	advanced <-chan struct{}
}

// validateConfChange checks a change against membership c.
func (c *cluster) validateConfChange(cc raftpb.ConfChange) error {
	switch cc.Type {
	case raftpb.ConfChangeAddNode, raftpb.ConfChangeAddLearnerNode:
		var ctx confChangeContext
		if err := json.Unmarshal(cc.Context, &ctx); err != nil {
			return fmt.Errorf("server: decode member of ConfChange: %w", err)
		}
		if ctx.IsPromote {
			return c.validatePromote(cc.NodeID)
		}
		ctx.Member.ID = cc.NodeID
		ctx.Member.IsLearner = cc.Type == raftpb.ConfChangeAddLearnerNode
		return c.validateAdd(ctx.Member)
	case raftpb.ConfChangeRemoveNode:
		return c.validateRemove(cc.NodeID)
	case raftpb.ConfChangeUpdateNode:
		var ctx confChangeContext
		if err := json.Unmarshal(cc.Context, &ctx); err != nil {
			return fmt.Errorf("server: decode member of ConfChange: %w", err)
		}
		return c.validateUpdate(cc.NodeID, ctx.PeerURLs)
	}
	return nil
}

// applyConfChange records a validated change in c and, if tx is non-nil,
// in the backend.
func (c *cluster) applyConfChange(tx *bolt.Tx, cc raftpb.ConfChange, ctx confChangeContext) error {
	switch cc.Type {
	case raftpb.ConfChangeAddNode, raftpb.ConfChangeAddLearnerNode:
		if ctx.IsPromote {
			return c.update(tx, cc.NodeID, func(m *schema.Member) { m.IsLearner = false })
		}
		m := ctx.Member
		m.ID = cc.NodeID
		m.IsLearner = cc.Type == raftpb.ConfChangeAddLearnerNode
		return c.add(tx, m)
	case raftpb.ConfChangeRemoveNode:
		return c.remove(tx, cc.NodeID)
	case raftpb.ConfChangeUpdateNode:
		return c.update(tx, cc.NodeID, func(m *schema.Member) { m.PeerURLs = ctx.PeerURLs })
	}
	return nil
}

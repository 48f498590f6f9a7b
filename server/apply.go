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
)

// applyState belongs to the apply loop.
type applyState struct {
	applied, appliedTerm uint64
	snapIndex            uint64
	confState            raftpb.ConfState
}

// runApply applies what raft committed, in order, and takes snapshots.
func (s *Server) runApply(boot raftpb.Snapshot) {
	defer s.wg.Done()
	as := &applyState{
		applied:     boot.Metadata.Index,
		appliedTerm: boot.Metadata.Term,
		snapIndex:   boot.Metadata.Index,
		confState:   boot.Metadata.ConfState,
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
			if err := s.applyConfChange(as, e); err != nil {
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
func (s *Server) applyConfChange(as *applyState, e *raftpb.Entry) error {
	var cc raftpb.ConfChange
	if err := cc.Unmarshal(e.Data); err != nil {
		return fmt.Errorf("server: decode ConfChange at index %d: %w", e.Index, err)
	}
	st := s.st.Load()
	ci, _ := st.kv.ConsistentIndex()
	replay := e.Index <= ci
	var verr error
	if !replay {
		verr = s.validateConfChange(cc)
	}
	if verr != nil {
		// Raft must still see the entry; it changes nothing.
		cc.NodeID = raft.None
		as.confState = *s.node.ApplyConfChange(cc)
		_ = st.kv.Apply(e.Index, e.Term, func() error { return nil })
		s.waits.trigger(cc.ID, result{err: verr})
		return nil
	}
	as.confState = *s.node.ApplyConfChange(cc)
	var ctx confChangeContext
	if len(cc.Context) > 0 && cc.Type != raftpb.ConfChangeRemoveNode {
		if err := json.Unmarshal(cc.Context, &ctx); err != nil {
			return fmt.Errorf("server: decode member of ConfChange at index %d: %w", e.Index, err)
		}
	}
	apply := func(tx *bolt.Tx) error {
		switch cc.Type {
		case raftpb.ConfChangeAddNode, raftpb.ConfChangeAddLearnerNode:
			if ctx.IsPromote {
				return s.cluster.update(tx, cc.NodeID, func(m *schema.Member) { m.IsLearner = false })
			}
			m := ctx.Member
			m.ID = cc.NodeID
			m.IsLearner = cc.Type == raftpb.ConfChangeAddLearnerNode
			return s.cluster.add(tx, m)
		case raftpb.ConfChangeRemoveNode:
			return s.cluster.remove(tx, cc.NodeID)
		case raftpb.ConfChangeUpdateNode:
			return s.cluster.update(tx, cc.NodeID, func(m *schema.Member) { m.PeerURLs = ctx.PeerURLs })
		}
		return nil
	}
	if !replay {
		// Replayed changes are in the backend, and so in the membership
		// loaded from it at boot; applying them again would undo later
		// attribute and URL updates.
		var aerr error
		_ = st.kv.Apply(e.Index, e.Term, func() error {
			aerr = s.withTx(st, func(tx *bolt.Tx) error {
				if err := apply(tx); err != nil {
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
			s.lg.Warn("this member was removed from the cluster; stopping")
			go s.fail(errors.New("server: the member has been removed from the cluster"))
		}
	}
	s.lg.Info("applied membership change", "type", cc.Type.String(), "member-id", schema.FormatID(cc.NodeID), "index", e.Index)
	s.waits.trigger(cc.ID, result{resp: s.cluster.Members()})
	return nil
}

// validateConfChange checks a change against the current membership.
func (s *Server) validateConfChange(cc raftpb.ConfChange) error {
	switch cc.Type {
	case raftpb.ConfChangeAddNode, raftpb.ConfChangeAddLearnerNode:
		var ctx confChangeContext
		if err := json.Unmarshal(cc.Context, &ctx); err != nil {
			return fmt.Errorf("server: decode member of ConfChange: %w", err)
		}
		if ctx.IsPromote {
			return s.cluster.validatePromote(cc.NodeID)
		}
		ctx.Member.ID = cc.NodeID
		ctx.Member.IsLearner = cc.Type == raftpb.ConfChangeAddLearnerNode
		return s.cluster.validateAdd(ctx.Member)
	case raftpb.ConfChangeRemoveNode:
		return s.cluster.validateRemove(cc.NodeID)
	case raftpb.ConfChangeUpdateNode:
		var ctx confChangeContext
		if err := json.Unmarshal(cc.Context, &ctx); err != nil {
			return fmt.Errorf("server: decode member of ConfChange: %w", err)
		}
		return s.cluster.validateUpdate(cc.NodeID, ctx.PeerURLs)
	}
	return nil
}

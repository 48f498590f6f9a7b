package backupd

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// Roles of the member a backup streams from.
const (
	RoleFollower = "follower"
	RoleLeader   = "leader"
)

// DefaultMaxLag is how many raft entries a follower's applied index may
// trail the leader's raft index and still count as up to date.
const DefaultMaxLag = 1000

// Member is one endpoint's answer to Maintenance.Status.
type Member struct {
	Endpoint       string `json:"endpoint"`
	ID             uint64 `json:"-"`
	ClusterID      uint64 `json:"-"`
	Name           string `json:"name,omitempty"`
	Leader         bool   `json:"leader"`
	Learner        bool   `json:"learner,omitempty"`
	RaftIndex      uint64 `json:"raftIndex"`
	AppliedIndex   uint64 `json:"appliedIndex"`
	RaftTerm       uint64 `json:"raftTerm"`
	Version        string `json:"version"`
	StorageVersion string `json:"storageVersion,omitempty"`
	DBSize         int64  `json:"dbSize"`
	Error          string `json:"error,omitempty"`
}

// Choice is the member chosen for a backup, and why.
type Choice struct {
	Member
	Role   string   `json:"role"`
	Reason string   `json:"reason"`
	All    []Member `json:"candidates"`
}

// newClient makes a clientv3 client that logs nothing through zap.
func newClient(cfg clientv3.Config) (*clientv3.Client, error) {
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	return clientv3.New(cfg)
}

// ChooseMember asks every endpoint for its status and picks an up-to-date
// follower (the one that has applied most, within maxLag of the leader),
// else the leader. A learner, a member reporting errors (an alarm) or one
// that does not answer is never chosen.
func ChooseMember(ctx context.Context, cfg clientv3.Config, maxLag uint64, lg *slog.Logger) (Choice, error) {
	if len(cfg.Endpoints) == 0 {
		return Choice{}, fmt.Errorf("backupd: no endpoints")
	}
	cli, err := newClient(cfg)
	if err != nil {
		return Choice{}, fmt.Errorf("backupd: connect %v: %w", cfg.Endpoints, err)
	}
	defer cli.Close()
	timeout := cfg.DialTimeout
	if timeout == 0 {
		timeout = 5 * time.Second
	}
	names := map[uint64]string{}
	mctx, cancel := context.WithTimeout(ctx, timeout)
	if ml, err := cli.MemberList(mctx); err == nil {
		for _, m := range ml.Members {
			names[m.ID] = m.Name
		}
	}
	cancel()
	var all []Member
	for _, ep := range cfg.Endpoints {
		m := Member{Endpoint: ep}
		sctx, cancel := context.WithTimeout(ctx, timeout)
		st, err := cli.Status(sctx, ep)
		cancel()
		switch {
		case err != nil:
			m.Error = err.Error()
		default:
			m.ID, m.ClusterID = st.Header.MemberId, st.Header.ClusterId
			m.Name = names[m.ID]
			m.Leader = st.Leader == st.Header.MemberId
			m.Learner = st.IsLearner
			m.RaftIndex, m.AppliedIndex, m.RaftTerm = st.RaftIndex, st.RaftAppliedIndex, st.RaftTerm
			m.Version, m.StorageVersion, m.DBSize = st.Version, st.StorageVersion, st.DbSize
			if len(st.Errors) > 0 {
				m.Error = fmt.Sprintf("%v", st.Errors)
			}
		}
		all = append(all, m)
	}
	c, err := choose(all, maxLag)
	if err != nil {
		return Choice{}, err
	}
	lg.Info("chose member", "endpoint", c.Endpoint, "member", strconv.FormatUint(c.ID, 16), "role", c.Role, "reason", c.Reason)
	return c, nil
}

// choose applies ChooseMember's rule to the answers.
func choose(all []Member, maxLag uint64) (Choice, error) {
	var leader *Member
	for i := range all {
		if all[i].Error == "" && all[i].Leader {
			leader = &all[i]
		}
	}
	var best *Member
	if leader != nil {
		for i := range all {
			m := &all[i]
			if m.Error != "" || m.Leader || m.Learner || m.ClusterID != leader.ClusterID || m.AppliedIndex+maxLag < leader.RaftIndex {
				continue
			}
			if best == nil || m.AppliedIndex > best.AppliedIndex {
				best = m
			}
		}
	}
	switch {
	case best != nil:
		return Choice{Member: *best, Role: RoleFollower, All: all,
			Reason: fmt.Sprintf("up-to-date follower: applied %d, leader at %d", best.AppliedIndex, leader.RaftIndex)}, nil
	case leader != nil:
		return Choice{Member: *leader, Role: RoleLeader, All: all, Reason: "no up-to-date follower answered"}, nil
	}
	var errs []string
	for _, m := range all {
		if m.Error != "" {
			errs = append(errs, m.Endpoint+": "+m.Error)
		} else {
			errs = append(errs, m.Endpoint+": no leader known")
		}
	}
	return Choice{All: all}, fmt.Errorf("backupd: no healthy member with a leader: %v", errs)
}

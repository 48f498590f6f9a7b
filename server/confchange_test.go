package server

import (
	"encoding/json"
	"fmt"
	"slices"
	"testing"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/lifeboat-dev/lifeboat/snapkit/schema"
)

// raftVoters returns member i's raft voters and learners, sorted.
func (c *testCluster) raftVoters(i int) (voters, learners []uint64) {
	cfg := c.srvs[i].node.Status().Config
	for id := range cfg.Voters.IDs() {
		voters = append(voters, id)
	}
	for id := range cfg.Learners {
		learners = append(learners, id)
	}
	slices.Sort(voters)
	slices.Sort(learners)
	return voters, learners
}

// snapshotIndex is the index of member i's newest snapshot.
func (c *testCluster) snapshotIndex(i int) uint64 {
	sn, err := c.srvs[i].raftStorage.Snapshot()
	if err != nil {
		c.t.Fatal(err)
	}
	return sn.Metadata.Index
}

// putUntilSnapshot writes through member lead until every member has just
// taken a snapshot: the next one is more than snapshotCount entries away.
func (c *testCluster) putUntilSnapshot(t *testing.T, lead int, snapshotCount int) {
	t.Helper()
	first := make([]uint64, len(c.srvs))
	for i := range c.srvs {
		first[i] = c.snapshotIndex(i)
	}
	snapshotted := func() bool {
		for i := range c.srvs {
			if c.snapshotIndex(i) == first[i] {
				return false
			}
		}
		return true
	}
	for i := 0; !snapshotted(); i++ {
		if i == 3*snapshotCount {
			t.Fatalf("no snapshot on every member after %d writes", i)
		}
		putKeys(t, c.client(lead), fmt.Sprintf("snap%d-", i), 1)
		for j := range c.srvs {
			c.waitApplied(j, c.srvs[lead].applied.Load())
		}
	}
}

// memberVoters returns the voters and learners of member i's membership.
func (c *testCluster) memberVoters(i int) (voters, learners []uint64) {
	for _, m := range c.srvs[i].cluster.Members() {
		if m.IsLearner {
			learners = append(learners, m.ID)
		} else {
			voters = append(voters, m.ID)
		}
	}
	return voters, learners
}

// A ConfChange that the apply loop rejected changes nothing, and must still
// change nothing when the WAL is replayed after a restart. Proposing it
// directly stands for two MemberAdd calls that raced past the checks made
// before proposing.
func TestRejectedConfChangeStaysRejectedAfterRestart(t *testing.T) {
	const unknown = 0x1234
	addDuplicateURL := func(c *testCluster) raftpb.ConfChange {
		ctx, err := json.Marshal(confChangeContext{Member: schema.Member{ID: unknown, PeerURLs: c.cfgs[0].AdvertisePeerURLs}})
		if err != nil {
			t.Fatal(err)
		}
		return raftpb.ConfChange{Type: raftpb.ConfChangeAddNode, NodeID: unknown, Context: ctx}
	}
	removeUnknown := func(*testCluster) raftpb.ConfChange {
		return raftpb.ConfChange{Type: raftpb.ConfChangeRemoveNode, NodeID: unknown}
	}
	// addLearner adds the member that the refused removal named. A replay
	// that validated against the membership as it is after the restart
	// would accept that removal (the member exists by then) and refuse
	// this add instead.
	addLearner := func(*testCluster) raftpb.ConfChange {
		ctx, err := json.Marshal(confChangeContext{Member: schema.Member{ID: unknown, PeerURLs: []string{"http://127.0.0.1:1"}, IsLearner: true}})
		if err != nil {
			t.Fatal(err)
		}
		return raftpb.ConfChange{Type: raftpb.ConfChangeAddLearnerNode, NodeID: unknown, Context: ctx}
	}
	tests := []struct {
		name    string
		members int
		// afterSnapshot: the replay starts from a .snap taken just before
		// the change, rather than from the bootstrap entries.
		afterSnapshot bool
		cc            func(*testCluster) raftpb.ConfChange
		want          error
		// then, if set, is a change accepted after the refused one.
		then func(*testCluster) raftpb.ConfChange
	}{
		{"add with a duplicate peer URL, 1 member", 1, false, addDuplicateURL, rpctypes.ErrGRPCPeerURLExist, nil},
		{"add with a duplicate peer URL, 3 members", 3, false, addDuplicateURL, rpctypes.ErrGRPCPeerURLExist, nil},
		{"add with a duplicate peer URL after a snapshot, 1 member", 1, true, addDuplicateURL, rpctypes.ErrGRPCPeerURLExist, nil},
		{"add with a duplicate peer URL after a snapshot, 3 members", 3, true, addDuplicateURL, rpctypes.ErrGRPCPeerURLExist, nil},
		{"remove of an unknown member, 1 member", 1, false, removeUnknown, rpctypes.ErrGRPCMemberNotFound, addLearner},
		{"remove of an unknown member, 3 members", 3, false, removeUnknown, rpctypes.ErrGRPCMemberNotFound, addLearner},
	}
	const snapshotCount = 10
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newTestCluster(t, tc.members, func(cfg *Config) {
				if tc.afterSnapshot {
					cfg.SnapshotCount = snapshotCount
				}
			})
			lead := c.waitLeader()
			ls := c.srvs[lead]
			if tc.afterSnapshot {
				c.putUntilSnapshot(t, lead, snapshotCount)
			}
			before := ls.applied.Load()
			if _, err := ls.proposeConfChange(ctxT(t), tc.cc(c)); !sameRPCError(err, tc.want) {
				t.Fatalf("proposed change: %v, want %v", err, tc.want)
			}
			if tc.then != nil {
				if _, err := ls.proposeConfChange(ctxT(t), tc.then(c)); err != nil {
					t.Fatalf("change after the refused one: %v", err)
				}
			}
			putKeys(t, c.client(), "r", 3)
			applied := c.srvs[lead].applied.Load()
			for i := range c.srvs {
				c.waitApplied(i, applied)
				// The replay must start below the change.
				if sn := c.snapshotIndex(i); sn > before {
					t.Fatalf("member %d has a snapshot at %d, past the change (above %d)", i, sn, before)
				}
			}
			for i := range c.srvs {
				c.stop(i)
			}
			for i := range c.srvs {
				c.start(i)
			}
			c.waitLeader()
			if _, err := c.client().Put(ctxT(t), "after", "restart"); err != nil {
				t.Fatalf("put after the restart: %v", err)
			}
			for i := range c.srvs {
				rv, rl := c.raftVoters(i)
				mv, ml := c.memberVoters(i)
				if fmt.Sprint(rv, rl) != fmt.Sprint(mv, ml) {
					t.Errorf("member %d: raft has voters %x learners %x, membership %x %x", i, rv, rl, mv, ml)
				}
			}
		})
	}
}

// A ConfChange's proposer hears of its outcome only once raft has been
// told the change applied: raft drops a ConfChange proposed while another
// is pending, so back-to-back changes would otherwise time out at random
// (etcd's issue 15528).
func TestBackToBackConfChanges(t *testing.T) {
	c := newTestCluster(t, 1, nil)
	s := c.srvs[c.waitLeader()]
	for i := range 200 {
		cc := raftpb.ConfChange{Type: raftpb.ConfChangeRemoveNode, NodeID: 0x1234}
		if _, err := s.proposeConfChange(ctxT(t), cc); !sameRPCError(err, rpctypes.ErrGRPCMemberNotFound) {
			t.Fatalf("change %d: %v, want member not found", i, err)
		}
	}
}

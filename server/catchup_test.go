package server

import (
	"context"
	"fmt"
	"testing"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// checkKeys checks that member i serves n keys under prefix.
func (c *testCluster) checkKeys(t *testing.T, i int, prefix string, n int64) {
	t.Helper()
	g, err := c.client(i).Get(ctxT(t), prefix, clientv3.WithPrefix(), clientv3.WithCountOnly(), clientv3.WithSerializable())
	if err != nil || g.Count != n {
		t.Fatalf("member %d has %v keys under %q, want %d: %v", i, g, prefix, n, err)
	}
}

// A member added after the leader's newest snapshot, whose log the leader
// has compacted, catches up from a snapshot made for it: the stored one
// does not have the new member in its ConfState, and raft would ignore it.
func TestMembersAddedAfterSnapshotsCatchUp(t *testing.T) {
	const snapshotCount = 10
	for _, n := range []int{1, 3} {
		t.Run(fmt.Sprintf("%d members", n), func(t *testing.T) {
			c := newTestCluster(t, n, func(cfg *Config) {
				cfg.SnapshotCount = snapshotCount
				cfg.SnapshotCatchUpEntries = 5
			})
			lead := c.waitLeader()
			cli := c.client()
			putKeys(t, cli, "a", 50)
			// The new members come right after a snapshot: no later one
			// has them in its ConfState before they catch up.
			c.putUntilSnapshot(t, lead, snapshotCount)
			if first, _ := c.srvs[lead].raftStorage.FirstIndex(); first < 10 {
				t.Fatalf("the leader's log starts at %d: not compacted", first)
			}

			learner := c.addMember(t, cli, "learner", true)
			c.waitApplied(learner, c.srvs[lead].applied.Load())
			c.checkKeys(t, learner, "a", 50)
			if c.snapshotIndex(learner) == 0 {
				t.Fatal("the learner caught up without a snapshot")
			}
			id := c.srvs[learner].ID()
			if _, err := retryWhile(t, func(ctx context.Context) (*clientv3.MemberPromoteResponse, error) {
				return cli.MemberPromote(ctx, id)
			}, rpctypes.ErrGRPCLearnerNotReady, rpctypes.ErrGRPCUnhealthy); err != nil {
				t.Fatalf("promote the learner: %v", err)
			}

			putKeys(t, cli, "b", 50)
			lead = c.waitLeader()
			c.putUntilSnapshot(t, lead, snapshotCount)
			voter := c.addMember(t, cli, "voter", false)
			lead = c.waitLeader()
			c.waitApplied(voter, c.srvs[lead].applied.Load())
			c.checkKeys(t, voter, "a", 50)
			c.checkKeys(t, voter, "b", 50)
			if _, err := c.client(voter).Put(ctxT(t), "from", "the new voter"); err != nil {
				t.Fatal(err)
			}
			for i := range c.srvs {
				rv, rl := c.raftVoters(i)
				if len(rv) != n+2 || len(rl) != 0 {
					t.Errorf("member %d: voters %x learners %x, want %d voters", i, rv, rl, n+2)
				}
			}
			st, err := c.client(voter).Status(ctxT(t), c.endpoint(voter))
			if err != nil || st.IsLearner {
				t.Fatalf("status of the new voter: %+v %v", st, err)
			}
		})
	}
}

package server

import (
	"context"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/lifeboat-dev/lifeboat/snapkit/schema"
)

// The strict reconfiguration checks, case by case, with etcd v3.6's rules
// and errors (mayAddMember, mayRemoveMember, mayPromoteMember).
func TestReconfigChecks(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	long := now.Add(-2 * healthInterval)   // connected long enough
	fresh := now.Add(-healthInterval / 5)  // connected in the last seconds
	const self, b, c, learner = 1, 2, 3, 4 // member IDs
	started := func(id uint64) schema.Member { return schema.Member{ID: id, Name: "m"} }
	unstarted := func(id uint64) schema.Member { return schema.Member{ID: id} }
	asLearner := func(m schema.Member) schema.Member { m.IsLearner = true; return m }
	three := []schema.Member{started(self), started(b), started(c)}
	allLong := map[uint64]time.Time{b: long, c: long}
	justStarted := map[uint64]time.Time{b: fresh, c: fresh}
	cDown := map[uint64]time.Time{b: long}

	tests := []struct {
		name    string
		members []schema.Member
		active  map[uint64]time.Time
		op      func(reconfigCheck) error
		want    error
	}{
		// Adds.
		{"add a voter to one member (the restore recipe)", []schema.Member{started(self)}, nil,
			func(r reconfigCheck) error { return r.mayAdd(false) }, nil},
		{"add a voter to one member not started", []schema.Member{unstarted(self)}, nil,
			func(r reconfigCheck) error { return r.mayAdd(false) }, rpctypes.ErrGRPCMemberNotEnoughStarted},
		{"add a voter while the last one added has not started", []schema.Member{started(self), unstarted(b)}, map[uint64]time.Time{b: long},
			func(r reconfigCheck) error { return r.mayAdd(false) }, rpctypes.ErrGRPCMemberNotEnoughStarted},
		{"add a voter to two started voters and a learner", []schema.Member{started(self), started(b), asLearner(unstarted(learner))}, map[uint64]time.Time{b: long},
			func(r reconfigCheck) error { return r.mayAdd(false) }, nil},
		{"add a voter to three connected voters", three, allLong,
			func(r reconfigCheck) error { return r.mayAdd(false) }, nil},
		{"add a voter in the first seconds", three, justStarted,
			func(r reconfigCheck) error { return r.mayAdd(false) }, rpctypes.ErrGRPCUnhealthy},
		{"add a voter with a voter down", three, cDown,
			func(r reconfigCheck) error { return r.mayAdd(false) }, rpctypes.ErrGRPCUnhealthy},
		{"add a learner with a voter down", three, cDown,
			func(r reconfigCheck) error { return r.mayAdd(true) }, rpctypes.ErrGRPCUnhealthy},
		{"add a learner in the first seconds", three, justStarted,
			func(r reconfigCheck) error { return r.mayAdd(true) }, rpctypes.ErrGRPCUnhealthy},
		{"add a learner to one member not started", []schema.Member{unstarted(self)}, nil,
			func(r reconfigCheck) error { return r.mayAdd(true) }, nil},

		// Removes.
		{"remove the only member", []schema.Member{started(self)}, nil,
			func(r reconfigCheck) error { return r.mayRemove(self) }, rpctypes.ErrGRPCMemberNotEnoughStarted},
		{"remove the started voter of two, the other not started", []schema.Member{started(self), unstarted(b)}, nil,
			func(r reconfigCheck) error { return r.mayRemove(self) }, rpctypes.ErrGRPCMemberNotEnoughStarted},
		{"remove the voter that never started", []schema.Member{started(self), unstarted(b)}, nil,
			func(r reconfigCheck) error { return r.mayRemove(b) }, nil},
		{"remove a connected voter of three", three, allLong,
			func(r reconfigCheck) error { return r.mayRemove(b) }, nil},
		{"remove itself from three connected voters", three, allLong,
			func(r reconfigCheck) error { return r.mayRemove(self) }, nil},
		{"remove a voter in the first seconds", three, justStarted,
			func(r reconfigCheck) error { return r.mayRemove(b) }, rpctypes.ErrGRPCUnhealthy},
		{"remove itself in the first seconds", three, justStarted,
			func(r reconfigCheck) error { return r.mayRemove(self) }, rpctypes.ErrGRPCUnhealthy},
		{"remove the voter that is down", three, cDown,
			func(r reconfigCheck) error { return r.mayRemove(c) }, nil},
		{"remove a voter that is up while another is down", three, cDown,
			func(r reconfigCheck) error { return r.mayRemove(b) }, rpctypes.ErrGRPCUnhealthy},
		{"remove a learner with a voter down", append(three, asLearner(started(learner))), cDown,
			func(r reconfigCheck) error { return r.mayRemove(learner) }, nil},
		{"remove an unknown member", three, allLong,
			func(r reconfigCheck) error { return r.mayRemove(0x1234) }, nil},

		// Promotions.
		{"promote the learner of one member", []schema.Member{started(self), asLearner(started(learner))}, nil,
			func(r reconfigCheck) error { return r.mayPromote() }, nil},
		{"promote the learner of one member not started", []schema.Member{unstarted(self), asLearner(started(learner))}, nil,
			func(r reconfigCheck) error { return r.mayPromote() }, rpctypes.ErrGRPCMemberNotEnoughStarted},
		{"promote with two of three voters not started", []schema.Member{started(self), unstarted(b), unstarted(c), asLearner(started(learner))}, nil,
			func(r reconfigCheck) error { return r.mayPromote() }, rpctypes.ErrGRPCMemberNotEnoughStarted},
		{"promote with a voter down", append(three, asLearner(started(learner))), cDown,
			func(r reconfigCheck) error { return r.mayPromote() }, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := reconfigCheck{members: tc.members, self: self, now: now,
				activeSince: func(id uint64) time.Time { return tc.active[id] }}
			if err := tc.op(r); err != tc.want {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

// The checks on running members: etcd's recipe of adding a voter to a
// member of one (its TestIssue6361), and the changes it refuses.
func TestStrictReconfigCheckOnMembers(t *testing.T) {
	t.Run("a voter added to one member, then started", func(t *testing.T) {
		c := newTestCluster(t, 1, nil)
		c.waitLeader()
		cli := c.client(0)
		putKeys(t, cli, "k", 10)
		added := c.addMember(t, cli, "m1", false)
		lead := c.waitLeader()
		if _, err := c.client(added).Put(ctxT(t), "after", "add"); err != nil {
			t.Fatal(err)
		}
		c.waitApplied(added, c.srvs[lead].applied.Load())
		c.checkKeys(t, added, "k", 10)
	})
	t.Run("a second voter while the first added has not started", func(t *testing.T) {
		c := newTestCluster(t, 1, nil)
		c.waitLeader()
		cli := c.client(0)
		if _, err := cli.MemberAdd(ctxT(t), []string{"http://127.0.0.1:1"}); err != nil {
			t.Fatal(err)
		}
		if _, err := cli.MemberAdd(ctxT(t), []string{"http://127.0.0.1:2"}); !sameRPCError(err, rpctypes.ErrGRPCMemberNotEnoughStarted) {
			t.Fatalf("second add: %v, want %v", err, rpctypes.ErrGRPCMemberNotEnoughStarted)
		}
	})
	t.Run("the only member removes itself", func(t *testing.T) {
		c := newTestCluster(t, 1, nil)
		c.waitLeader()
		cli := c.client(0)
		if _, err := cli.MemberRemove(ctxT(t), c.srvs[0].ID()); !sameRPCError(err, rpctypes.ErrGRPCMemberNotEnoughStarted) {
			t.Fatalf("remove: %v, want %v", err, rpctypes.ErrGRPCMemberNotEnoughStarted)
		}
		if _, err := cli.Put(ctxT(t), "still", "here"); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("a voter down", func(t *testing.T) {
		c := newTestCluster(t, 3, nil)
		lead := c.waitLeader()
		down := (lead + 1) % 3
		downID := c.srvs[down].ID()
		c.stop(down)
		cli := c.client(lead)
		if _, err := cli.MemberAddAsLearner(ctxT(t), []string{"http://127.0.0.1:1"}); !sameRPCError(err, rpctypes.ErrGRPCUnhealthy) {
			t.Fatalf("add with a voter down: %v, want %v", err, rpctypes.ErrGRPCUnhealthy)
		}
		// A member that is down is not part of the active quorum.
		if _, err := retryWhile(t, func(ctx context.Context) (*clientv3.MemberRemoveResponse, error) {
			return cli.MemberRemove(ctx, downID)
		}, rpctypes.ErrGRPCUnhealthy); err != nil {
			t.Fatalf("remove the member that is down: %v", err)
		}
	})
	t.Run("off", func(t *testing.T) {
		c := newTestCluster(t, 3, func(cfg *Config) { cfg.StrictReconfigCheck = false })
		lead := c.waitLeader()
		c.stop((lead + 1) % 3)
		if _, err := c.client(lead).MemberAddAsLearner(ctxT(t), []string{"http://127.0.0.1:1"}); err != nil {
			t.Fatalf("add with a voter down and no strict check: %v", err)
		}
	})
}

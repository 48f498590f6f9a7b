package server

import (
	"fmt"
	"strings"
	"testing"

	"github.com/lifeboat-dev/lifeboat/internal/interoptest"
	"github.com/lifeboat-dev/lifeboat/internal/netproxy"
)

// authChangesWhileDown change the auth state AuthSession leaves: a user
// and a role are added, and r1 (bob's role) loses its read of pub/.
var authChangesWhileDown = []interoptest.EtcdctlStep{
	{User: "root:rootpw2", Args: []string{"user", "add", "dave", "--new-user-password=davepw"}},
	{User: "root:rootpw2", Args: []string{"role", "add", "r3"}},
	{User: "root:rootpw2", Args: []string{"role", "grant-permission", "r3", "read", "--prefix", "d/"}},
	{User: "root:rootpw2", Args: []string{"user", "grant-role", "dave", "r3"}},
	{User: "root:rootpw2", Args: []string{"role", "revoke-permission", "r1", "pub/", "--prefix"}},
}

// authChecks read the auth state after authChangesWhileDown with
// serializable reads, each step marked if it must be denied.
var authChecks = []struct {
	step   interoptest.EtcdctlStep
	denied bool
}{
	{step: interoptest.EtcdctlStep{User: "root:rootpw2", Args: []string{"user", "get", "dave"}}},
	{step: interoptest.EtcdctlStep{User: "root:rootpw2", Args: []string{"role", "get", "r3"}}},
	{step: interoptest.EtcdctlStep{User: "root:rootpw2", Args: []string{"role", "get", "r1"}}},
	{step: interoptest.EtcdctlStep{User: "root:rootpw2", Args: []string{"get", "foo", "--consistency=s"}}},
	{step: interoptest.EtcdctlStep{User: "dave:davepw", Args: []string{"get", "d/", "--prefix", "--consistency=s"}}},
	{step: interoptest.EtcdctlStep{User: "dave:davepw", Args: []string{"get", "foo", "--consistency=s"}}, denied: true},
	{step: interoptest.EtcdctlStep{User: "dave:davepw", Args: []string{"put", "d/x", "1"}}, denied: true},
	{step: interoptest.EtcdctlStep{User: "bob:bobpw", Args: []string{"get", "pub/", "--prefix", "--consistency=s"}}, denied: true},
	{step: interoptest.EtcdctlStep{User: "carol:c", Args: []string{"get", "foo", "--consistency=s"}}, denied: true},
}

// A follower that missed auth changes, whose missing entries the leader
// compacted, catches up from a snapshot: queried on its own endpoint it
// reads the users, roles, permissions and auth status that the leader
// reads, and denies what they deny. The follower is either stopped and
// restarted, or kept running (its auth state loaded) but cut off from its
// peers, so that the snapshot replaces the state it holds in memory.
func TestAuthStateInstalledBySnapshot(t *testing.T) {
	etcdctl := interoptest.Binary(t, "etcdctl")
	for _, restart := range []bool{true, false} {
		name := "cut off"
		if restart {
			name = "restarted"
		}
		t.Run(name, func(t *testing.T) { testAuthStateInstalledBySnapshot(t, etcdctl, restart) })
	}
}

func testAuthStateInstalledBySnapshot(t *testing.T, etcdctl string, restart bool) {
	const snapshotCount = 20
	// The others reach each member through a proxy at its advertised peer
	// URL: refusing the links into one cuts it off (see
	// TestWatchSurvivesSnapshotInstall).
	c, peers := newProxiedCluster(t, 3, func(cfg *Config) {
		cfg.BcryptCost = 4
		cfg.SnapshotCount = snapshotCount
		cfg.SnapshotCatchUpEntries = 5
	})
	lead := c.waitLeader()
	interoptest.RunEtcdctl(t, etcdctl, c.endpoint(lead), interoptest.AuthSession)
	lead = c.waitLeader()
	follower := (lead + 1) % 3
	c.waitApplied(follower, c.srvs[lead].applied.Load())
	var stoppedAt uint64
	if restart {
		stoppedAt = c.srvs[follower].applied.Load()
		c.stop(follower)
	} else {
		peers.Set(netproxy.Anyone, c.cfgs[follower].Name, netproxy.Fault{Refuse: true})
	}
	// behind is the last index the follower applied.
	behind := func() uint64 {
		if restart {
			return stoppedAt
		}
		return c.srvs[follower].applied.Load()
	}

	for _, st := range interoptest.RunEtcdctl(t, etcdctl, c.endpoint(lead), authChangesWhileDown) {
		if !strings.Contains(st, ": exit 0\n") {
			t.Fatalf("auth change while the follower is away: %s", st)
		}
	}
	// Enough writes that the leader compacts its log past what the
	// follower has.
	root := userClient(t, c, "root", "rootpw2", lead)
	compacted := uint64(0)
	for i := 0; compacted <= behind()+1; i++ {
		if i == 10*snapshotCount {
			t.Fatalf("the leader's log still starts at %d after %d writes; the follower is at %d", compacted+1, i, behind())
		}
		putKeys(t, root, fmt.Sprintf("fill%03d-", i), 1)
		first, err := c.srvs[lead].raftStorage.FirstIndex()
		if err != nil {
			t.Fatal(err)
		}
		compacted = first - 1
	}

	if restart {
		c.start(follower)
	} else {
		peers.Heal()
	}
	lead = c.waitLeader()
	c.waitApplied(follower, c.srvs[lead].applied.Load())
	if si := c.snapshotIndex(follower); si < compacted {
		t.Fatalf("the follower's snapshot is at %d, below the leader's compacted index %d: it received none", si, compacted)
	}

	steps := append([]interoptest.EtcdctlStep(nil), interoptest.AuthStateSteps...)
	for _, ch := range authChecks {
		steps = append(steps, ch.step)
	}
	want := interoptest.RunEtcdctl(t, etcdctl, c.endpoint(lead), steps)
	got := interoptest.RunEtcdctl(t, etcdctl, c.endpoint(follower), steps)
	interoptest.CompareTranscripts(t, "the follower's auth state, against the leader's", want, got)
	checks := got[len(interoptest.AuthStateSteps):]
	for i, ch := range authChecks {
		if denied := strings.Contains(checks[i], "permission denied"); denied != ch.denied {
			t.Errorf("on the follower, denied %v, want %v: %s", denied, ch.denied, checks[i])
		}
	}
}

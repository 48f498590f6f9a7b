package robustness

import (
	"context"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/lifeboat-dev/lifeboat/internal/etcdproc"
)

// TestHarnessPartition checks the harness on both systems: the proxies
// carry the peer links, so isolating the leader makes the others elect a
// new one, and healing lets the old leader rejoin.
func TestHarnessPartition(t *testing.T) {
	for _, sys := range []system{etcdSystem, lifeboatSystem} {
		t.Run(sys.name, func(t *testing.T) {
			c := startCluster(t, sys)
			cli := c.client()
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			old, oldID := c.leader(ctx, cli)
			c.isolate(old)
			others := c.waitNewLeader(ctx, old, oldID)
			if _, err := others.Put(ctx, "k", "v"); err != nil {
				t.Fatalf("put on the majority: %v", err)
			}
			c.net.Heal()
			c.leader(ctx, cli)
			if _, err := c.client(hostOf(t, old.ClientURL)).Get(ctx, "k"); err != nil {
				t.Fatalf("linearizable get on the healed member: %v", err)
			}
		})
	}
}

// waitNewLeader waits until the members other than old follow a leader
// other than oldID, and returns a client of theirs.
func (c *cluster) waitNewLeader(ctx context.Context, old *etcdproc.Member, oldID uint64) *clientv3.Client {
	c.t.Helper()
	var rest []string
	for _, m := range c.members() {
		if m != old {
			rest = append(rest, hostOf(c.t, m.ClientURL))
		}
	}
	others := c.client(rest...)
	for ctx.Err() == nil {
		sts, err := c.statuses(ctx, others)
		n := 0
		for _, s := range sts {
			if err == nil && s.m != old && s.leader != 0 && s.leader != oldID {
				n++
			}
		}
		if n == len(rest) {
			return others
		}
		sleep(ctx, 100*time.Millisecond)
	}
	c.t.Fatalf("no new leader while %s was cut off", old.Name)
	return nil
}

package robustness

import (
	"context"
	"testing"
	"time"
)

// TestForwardedProposalsAfterPartition is a regression test for a bug the
// partition-leader scenario found in lifeboat: a leader cut off from its
// peers steps down; the proposals its followers forwarded to it while it
// was cut off reach it when the partition heals, and raft makes a step of
// a proposal wait until the member knows a leader. The stream that carries
// the proposal then stops being read, and if the new leader's own stream
// is among those stuck, the old leader never learns of it: it stays
// without a leader (and its /health unanswered) for good. etcd delivers
// proposals apart from the other messages, so the old leader rejoins. The
// partition must end before the connections it held time out, or they are
// closed and the forwarded proposals lost with them.
func TestForwardedProposalsAfterPartition(t *testing.T) {
	for _, sys := range []system{etcdSystem, lifeboatSystem} {
		t.Run(sys.name, func(t *testing.T) {
			c := startCluster(t, sys)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			old, oldID := c.leader(ctx, c.client())
			c.isolate(old)
			// Each follower forwards a put to the leader it still believes
			// in; the proxies hold them.
			for _, m := range c.members() {
				if m == old {
					continue
				}
				cli := c.client(hostOf(t, m.ClientURL))
				go func() {
					pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
					defer cancel()
					cli.Put(pctx, "k", "forwarded")
				}()
			}
			// The others elect a new leader; the old one steps down (check
			// quorum) once its election timeout has passed. The partition
			// heals at once, before HTTP/2 pings could give up on the held
			// connections.
			cli := c.waitNewLeader(ctx, old, oldID)
			for ctx.Err() == nil {
				st, err := cli.Status(ctx, hostOf(t, old.ClientURL))
				if err == nil && st.Leader != oldID {
					break
				}
				sleep(ctx, 20*time.Millisecond)
			}
			c.net.Heal()
			hctx, hcancel := context.WithTimeout(ctx, 20*time.Second)
			defer hcancel()
			if err := old.WaitHealthy(hctx); err != nil {
				t.Fatalf("the old leader did not rejoin after the partition healed: %v", err)
			}
		})
	}
}

package robustness

import (
	"context"
	"fmt"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
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

// TestMemberJoinsAfterSnapshot is a regression test for a bug the
// member-replace scenario found in lifeboat: a member added after the
// leader's last snapshot is sent that snapshot, whose ConfState does not
// hold it ("attempted to restore snapshot but it is not in the ConfState;
// should never happen"), so it rejects it and cannot catch up until the
// leader happens to take a newer snapshot. etcd rewrites the snapshot's
// metadata to its applied index and membership when it sends it.
func TestMemberJoinsAfterSnapshot(t *testing.T) {
	for _, sys := range []system{etcdSystem, lifeboatSystem} {
		t.Run(sys.name, func(t *testing.T) {
			opts := clusterOptions
			opts.SnapshotCount = 100
			c := startClusterWith(t, sys, opts)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			cli := c.client()
			for i := range 120 { // a snapshot at about 100 entries
				if _, err := cli.Put(ctx, fmt.Sprintf("k%d", i), "v"); err != nil {
					t.Fatal(err)
				}
			}
			// Added with few entries after it, no newer snapshot holds it.
			m, err := c.add(ctx, "m4")
			if err != nil {
				t.Fatal(err)
			}
			want, err := cli.Get(ctx, "k119")
			if err != nil {
				t.Fatal(err)
			}
			mc := c.client(hostOf(t, m.ClientURL))
			cctx, ccancel := context.WithTimeout(ctx, 20*time.Second)
			defer ccancel()
			for {
				got, err := mc.Get(cctx, "k119", clientv3.WithSerializable())
				if err == nil && got.Header.Revision >= want.Header.Revision {
					return
				}
				if cctx.Err() != nil {
					t.Fatalf("the new member did not catch up to revision %d: %v %v", want.Header.Revision, got, err)
				}
				sleep(cctx, 100*time.Millisecond)
			}
		})
	}
}

// TestReplaceEveryOriginalMember is a regression test for a fault of the
// harness the member-replace scenario hit: the scenario's clients were
// made with the endpoints of the first three members and kept them, so
// once all three had been replaced the next MemberAdd had no member to go
// to and hung until its deadline, on etcd as on lifeboat. The harness's
// clients follow the membership, as an operator's would.
func TestReplaceEveryOriginalMember(t *testing.T) {
	for _, sys := range []system{etcdSystem, lifeboatSystem} {
		t.Run(sys.name, func(t *testing.T) {
			c := startCluster(t, sys)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			cli := c.client()
			for i, m := range c.members() {
				if err := c.remove(ctx, cli, m); err != nil {
					t.Fatal(err)
				}
				if _, err := c.add(ctx, fmt.Sprintf("m%d", i+4)); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := cli.Put(ctx, "k", "after the last original member left"); err != nil {
				t.Fatalf("put through the first client: %v", err)
			}
		})
	}
}

package server

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

func TestSingleMemberKV(t *testing.T) {
	c := newTestCluster(t, 1, nil)
	c.waitLeader()
	cli := c.client()
	ctx := ctxT(t)

	put, err := cli.Put(ctx, "a", "1")
	if err != nil {
		t.Fatal(err)
	}
	if put.Header.MemberId != c.srvs[0].ID() || put.Header.ClusterId != c.srvs[0].ClusterID() || put.Header.RaftTerm == 0 {
		t.Fatalf("bad header %+v", put.Header)
	}
	if _, err := cli.Put(ctx, "a", "2"); err != nil {
		t.Fatal(err)
	}
	get, err := cli.Get(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	if len(get.Kvs) != 1 || string(get.Kvs[0].Value) != "2" || get.Kvs[0].Version != 2 {
		t.Fatalf("get a: %+v", get.Kvs)
	}
	ser, err := cli.Get(ctx, "a", clientv3.WithSerializable())
	if err != nil || len(ser.Kvs) != 1 {
		t.Fatalf("serializable get: %v %+v", err, ser)
	}
	txn, err := cli.Txn(ctx).If(clientv3.Compare(clientv3.Value("a"), "=", "2")).
		Then(clientv3.OpPut("b", "x")).Else(clientv3.OpPut("b", "y")).Commit()
	if err != nil || !txn.Succeeded {
		t.Fatalf("txn: %v %+v", err, txn)
	}
	if _, err := cli.Compact(ctx, put.Header.Revision+1); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		op   func() error
		want error
	}{
		{"empty key", func() error { _, err := cli.Put(ctx, "", "v"); return err }, rpctypes.ErrEmptyKey},
		{"compacted", func() error { _, err := cli.Get(ctx, "a", clientv3.WithRev(put.Header.Revision)); return err }, rpctypes.ErrCompacted},
		{"future", func() error { _, err := cli.Get(ctx, "a", clientv3.WithRev(1000)); return err }, rpctypes.ErrFutureRev},
		{"missing lease", func() error { _, err := cli.Put(ctx, "k", "v", clientv3.WithLease(12345)); return err }, rpctypes.ErrLeaseNotFound},
		{"duplicate key", func() error {
			_, err := cli.Txn(ctx).Then(clientv3.OpPut("d", "1"), clientv3.OpPut("d", "2")).Commit()
			return err
		}, rpctypes.ErrDuplicateKey},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.op()
			if !errors.Is(rpctypes.Error(err), tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func TestSingleMemberWatchAndLease(t *testing.T) {
	c := newTestCluster(t, 1, nil)
	c.waitLeader()
	cli := c.client()
	ctx := ctxT(t)

	first, err := cli.Put(ctx, "w/0", "old")
	if err != nil {
		t.Fatal(err)
	}
	wch := cli.Watch(ctx, "w/", clientv3.WithPrefix(), clientv3.WithRev(first.Header.Revision), clientv3.WithPrevKV())
	if _, err := cli.Put(ctx, "w/1", "a"); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Delete(ctx, "w/0"); err != nil {
		t.Fatal(err)
	}
	var got []string
	for len(got) < 3 {
		select {
		case wr := <-wch:
			if err := wr.Err(); err != nil {
				t.Fatal(err)
			}
			for _, ev := range wr.Events {
				got = append(got, fmt.Sprintf("%s %s", ev.Type, ev.Kv.Key))
				if ev.Type == clientv3.EventTypeDelete && (ev.PrevKv == nil || string(ev.PrevKv.Value) != "old") {
					t.Fatalf("delete without prev kv: %+v", ev)
				}
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("watch got %v", got)
		}
	}
	want := []string{"PUT w/0", "PUT w/1", "DELETE w/0"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("watch events %v, want %v", got, want)
	}

	// A watch from a compacted revision is told the compaction revision.
	last, err := cli.Put(ctx, "w/2", "b")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Compact(ctx, last.Header.Revision); err != nil {
		t.Fatal(err)
	}
	select {
	case wr := <-cli.Watch(ctx, "w/", clientv3.WithPrefix(), clientv3.WithRev(first.Header.Revision)):
		if wr.CompactRevision != last.Header.Revision || !wr.Canceled {
			t.Fatalf("watch of compacted revision: %+v", wr)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no response to a watch of a compacted revision")
	}

	lease, err := cli.Grant(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Put(ctx, "leased", "v", clientv3.WithLease(lease.ID)); err != nil {
		t.Fatal(err)
	}
	ttl, err := cli.TimeToLive(ctx, lease.ID, clientv3.WithAttachedKeys())
	if err != nil || ttl.TTL <= 0 || len(ttl.Keys) != 1 || string(ttl.Keys[0]) != "leased" {
		t.Fatalf("time to live: %v %+v", err, ttl)
	}
	ka, err := cli.KeepAliveOnce(ctx, lease.ID)
	if err != nil || ka.TTL != 2 {
		t.Fatalf("keepalive: %v %+v", err, ka)
	}
	// Without keepalives the leader revokes the lease and its key.
	deadline := time.Now().Add(15 * time.Second)
	for {
		g, err := cli.Get(ctx, "leased")
		if err != nil {
			t.Fatal(err)
		}
		if len(g.Kvs) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("leased key still present after expiry")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestThreeMembersLeaderLossLosesNoWrite(t *testing.T) {
	c := newTestCluster(t, 3, nil)
	lead := c.waitLeader()
	ctx := ctxT(t)
	// Writers keep going through the crash; each remembers what was acked.
	var (
		mu    sync.Mutex
		acked []string
		stop  atomic.Bool
		wg    sync.WaitGroup
	)
	for w := range 8 {
		cli := c.client((lead + 1 + w%2) % 3) // followers stay up
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 2000 && !stop.Load(); i++ {
				k := fmt.Sprintf("k/%d/%04d", w, i)
				pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
				_, err := cli.Put(pctx, k, "v")
				cancel()
				if err == nil {
					mu.Lock()
					acked = append(acked, k)
					mu.Unlock()
				}
			}
		}()
	}
	// waitAcked waits until more than n writes are acknowledged.
	waitAcked := func(n int) int {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			mu.Lock()
			got := len(acked)
			mu.Unlock()
			if got > n {
				return got
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d writes acknowledged, waiting for more than %d", got, n)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	// The crash comes in the middle of the writes, and the writes go on
	// under the new leader.
	waitAcked(100)
	c.crash(lead)
	newLead := c.waitLeader()
	if newLead == lead {
		t.Fatalf("crashed member %d still leads", lead)
	}
	mu.Lock()
	beforeNewLeader := len(acked)
	mu.Unlock()
	waitAcked(beforeNewLeader + 100)
	stop.Store(true)
	wg.Wait()

	cli := c.client(newLead)
	check := func(member int, opts ...clientv3.OpOption) {
		t.Helper()
		g, err := c.client(member).Get(ctx, "k/", append(opts, clientv3.WithPrefix(), clientv3.WithKeysOnly())...)
		if err != nil {
			t.Fatal(err)
		}
		have := make(map[string]bool, len(g.Kvs))
		for _, kv := range g.Kvs {
			have[string(kv.Key)] = true
		}
		for _, k := range acked {
			if !have[k] {
				t.Fatalf("member %d lost acknowledged write %s (%d acked, %d present)", member, k, len(acked), len(have))
			}
		}
	}
	if len(acked) == 0 {
		t.Fatal("no write was acknowledged")
	}
	check(newLead)
	// The crashed leader rejoins and catches up from the log.
	c.start(lead)
	c.waitLeader()
	if _, err := cli.Put(ctx, "after", "restart"); err != nil {
		t.Fatal(err)
	}
	c.waitApplied(lead, c.srvs[newLead].applied.Load())
	check(lead, clientv3.WithSerializable())
	// The restarted member still knows every member's name and client URL.
	for _, m := range c.srvs[lead].cluster.Members() {
		if m.Name == "" || len(m.ClientURLs) != 1 {
			t.Fatalf("restarted member sees %+v", m)
		}
	}
}

func TestFollowerCatchesUpBySnapshot(t *testing.T) {
	c := newTestCluster(t, 3, func(cfg *Config) {
		cfg.SnapshotCount = 20
		cfg.SnapshotCatchUpEntries = 5
	})
	lead := c.waitLeader()
	follower := (lead + 1) % 3
	c.stop(follower)
	cli := c.client(lead)
	ctx := ctxT(t)
	value := strings.Repeat("v", 4096)
	for i := range 300 {
		if _, err := cli.Put(ctx, fmt.Sprintf("s%03d", i), value); err != nil {
			t.Fatal(err)
		}
	}
	c.start(follower)
	c.waitLeader()
	c.waitApplied(follower, c.srvs[lead].applied.Load())
	g, err := c.client(follower).Get(ctx, "s", clientv3.WithPrefix(), clientv3.WithSerializable())
	if err != nil {
		t.Fatal(err)
	}
	if g.Count != 300 {
		t.Fatalf("follower has %d keys after snapshot, want 300", g.Count)
	}
	// It serves writes and stays in step afterwards.
	if _, err := c.client(follower).Put(ctx, "after", "snapshot"); err != nil {
		t.Fatal(err)
	}
	// And it restarts from the snapshot it received.
	c.stop(follower)
	c.start(follower)
	c.waitLeader()
	g, err = c.client(follower).Get(ctx, "s", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil || g.Count != 300 {
		t.Fatalf("after restart: %v %v", g, err)
	}
}

func TestConcurrencyRecipes(t *testing.T) {
	c := newTestCluster(t, 3, nil)
	c.waitLeader()
	ctx := ctxT(t)
	s1, err := concurrency.NewSession(c.client(0), concurrency.WithTTL(5))
	if err != nil {
		t.Fatal(err)
	}
	defer s1.Close()
	s2, err := concurrency.NewSession(c.client(1), concurrency.WithTTL(5))
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()

	m1, m2 := concurrency.NewMutex(s1, "/lock"), concurrency.NewMutex(s2, "/lock")
	if err := m1.Lock(ctx); err != nil {
		t.Fatal(err)
	}
	if err := m2.TryLock(ctx); !errors.Is(err, concurrency.ErrLocked) {
		t.Fatalf("second TryLock: %v, want ErrLocked", err)
	}
	if err := m1.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
	if err := m2.Lock(ctx); err != nil {
		t.Fatal(err)
	}
	if err := m2.Unlock(ctx); err != nil {
		t.Fatal(err)
	}

	e1, e2 := concurrency.NewElection(s1, "/elect"), concurrency.NewElection(s2, "/elect")
	if err := e1.Campaign(ctx, "one"); err != nil {
		t.Fatal(err)
	}
	won := make(chan error, 1)
	go func() { won <- e2.Campaign(ctx, "two") }()
	l, err := e1.Leader(ctx)
	if err != nil || string(l.Kvs[0].Value) != "one" {
		t.Fatalf("leader: %v %+v", err, l)
	}
	if err := e1.Resign(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-won:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("second candidate never won")
	}
}

// A lease's remaining TTL is checkpointed through raft, so that a new
// leader does not give it its whole TTL again.
func TestLeaseCheckpointSurvivesLeaderChange(t *testing.T) {
	c := newTestCluster(t, 3, func(cfg *Config) { cfg.LeaseCheckpointInterval = 200 * time.Millisecond })
	lead := c.waitLeader()
	ctx := ctxT(t)
	const ttl = 30
	g, err := c.client(lead).Grant(ctx, ttl)
	if err != nil {
		t.Fatal(err)
	}
	// Wait until every follower has applied a checkpoint well below the
	// TTL: then the remainder, not the TTL, is what survives the leader.
	for i, srv := range c.srvs {
		if i == lead {
			continue
		}
		deadline := time.Now().Add(20 * time.Second)
		for {
			in, ok := srv.st.Load().lessor.Lookup(int64(g.ID))
			if ok && in.RemainingTTL > 0 && in.RemainingTTL <= ttl-3 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("member %d: no checkpoint below %d s applied: %+v", i, ttl-3, in)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	c.crash(lead)
	newLead := c.waitLeader()
	r, err := c.client(newLead).TimeToLive(ctx, g.ID)
	if err != nil {
		t.Fatal(err)
	}
	// Without a checkpoint the new leader would restart the clock at the
	// full TTL plus an election timeout; with one it goes on from the
	// checkpointed remainder (at most 27 s), plus the same extension.
	if r.GrantedTTL != ttl || r.TTL <= 0 || r.TTL >= ttl-1 {
		t.Fatalf("after the leader change: TTL %d of %d, want the checkpointed remainder (< %d)", r.TTL, r.GrantedTTL, ttl-1)
	}
}

// A leader that stops hands leadership over first: when Stop returns,
// another member already leads, without waiting for an election timeout,
// and no acknowledged write is lost.
func TestStopTransfersLeadership(t *testing.T) {
	c := newTestCluster(t, 3, nil)
	lead := c.waitLeader()
	ctx := ctxT(t)
	rev := putKeys(t, c.client(lead), "s", 20)
	c.stop(lead)
	newLead := -1
	for i, s := range c.srvs {
		if s != nil && s.Leader() == s.ID() {
			newLead = i
		}
	}
	if newLead < 0 {
		t.Fatal("no member leads right after the leader stopped: leadership was not transferred")
	}
	g, err := c.client(newLead).Get(ctx, "s", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	if g.Count != 20 || g.Header.Revision < rev {
		t.Fatalf("after the transfer: %d keys at revision %d, want 20 at %d or later", g.Count, g.Header.Revision, rev)
	}
}

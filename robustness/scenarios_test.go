package robustness

import (
	"context"
	"fmt"
	"math/rand/v2"
	"syscall"
	"time"

	"github.com/lifeboat-dev/lifeboat/internal/etcdproc"
	"github.com/lifeboat-dev/lifeboat/internal/netproxy"
)

// scenarios are the named faults, each run under the same traffic.
var scenarios = []scenario{
	{"baseline", func(ctx context.Context, e *env) { <-ctx.Done() }},
	{"kill-random", func(ctx context.Context, e *env) { e.cycle(ctx, e.random, e.crash, time.Second) }},
	{"kill-leader", func(ctx context.Context, e *env) { e.cycle(ctx, e.leader, e.crash, time.Second) }},
	{"pause-random", func(ctx context.Context, e *env) { e.cycle(ctx, e.random, e.pause, 2*time.Second) }},
	{"pause-leader", func(ctx context.Context, e *env) { e.cycle(ctx, e.leader, e.pause, 2*time.Second) }},
	{"partition-leader", func(ctx context.Context, e *env) { e.cycle(ctx, e.leader, e.partition, 3*time.Second) }},
	{"partition-minority", func(ctx context.Context, e *env) { e.cycle(ctx, e.follower, e.partition, 3*time.Second) }},
	{"one-way-loss", func(ctx context.Context, e *env) { e.cycle(ctx, e.follower, e.deaf, 3*time.Second) }},
	{"latency", func(ctx context.Context, e *env) { e.cycle(ctx, e.random, e.slowNetwork, 4*time.Second) }},
	{"member-replace", func(ctx context.Context, e *env) { e.cycle(ctx, e.random, e.replace, 0) }},
	{"leader-transfer", func(ctx context.Context, e *env) { e.cycle(ctx, e.follower, e.transfer, 0) }},
}

// cycle injects a fault on a member picked by pick, holds it, undoes it
// and lets the cluster recover, at least once and until ctx ends; the last
// fault is undone even if ctx ends while it holds.
func (e *env) cycle(ctx context.Context, pick func() *etcdproc.Member, fault func(*etcdproc.Member) func(), hold time.Duration) {
	for first := true; first || ctx.Err() == nil; first = false {
		m := pick()
		undo := fault(m)
		e.faults.Add(1)
		sleep(ctx, hold)
		undo()
		e.settle(ctx)
	}
}

// settle waits until every member is healthy, then a moment more.
func (e *env) settle(ctx context.Context) {
	wctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	e.c.waitHealthy(wctx)
	sleep(ctx, time.Second)
}

// random picks a running member.
func (e *env) random() *etcdproc.Member {
	ms := e.c.members()
	return ms[rand.IntN(len(ms))]
}

// leader picks the member the others follow.
func (e *env) leader() *etcdproc.Member {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	m, _ := e.c.leader(ctx, e.cli)
	return m
}

// follower picks a member that is not the leader.
func (e *env) follower() *etcdproc.Member {
	lead := e.leader()
	var fs []*etcdproc.Member
	for _, m := range e.c.members() {
		if m != lead {
			fs = append(fs, m)
		}
	}
	return fs[rand.IntN(len(fs))]
}

// partition cuts every peer link to and from m; undone, the network heals.
func (e *env) partition(m *etcdproc.Member) func() {
	e.t.Logf("partition %s from the others", m.Name)
	e.c.isolate(m)
	return e.c.net.Heal
}

// deaf makes the leader's messages to the follower m vanish (held until
// the fault ends) while m's messages to the leader still arrive.
func (e *env) deaf(m *etcdproc.Member) func() {
	lead := e.leader()
	e.t.Logf("one-way loss %s -> %s", lead.Name, m.Name)
	e.c.net.Set(lead.Name, m.Name, netproxy.Fault{Blackhole: true})
	return e.c.net.Heal
}

// slowNetwork adds 150ms to every peer link, both ways (m is ignored).
func (e *env) slowNetwork(*etcdproc.Member) func() {
	e.t.Logf("150ms added to every peer link")
	for _, a := range e.c.members() {
		for _, b := range e.c.members() {
			if a != b {
				e.c.net.Set(a.Name, b.Name, netproxy.Fault{Delay: 150 * time.Millisecond})
			}
		}
	}
	return e.c.net.Heal
}

// replace removes m from the cluster and adds a new member, on a new data
// dir, in its place; there is nothing to undo.
func (e *env) replace(m *etcdproc.Member) func() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	e.t.Logf("remove %s", m.Name)
	if err := e.c.remove(ctx, e.cli, m); err != nil {
		e.t.Fatal(err)
	}
	name := fmt.Sprintf("m%d", e.faults.Load()+4)
	e.t.Logf("add %s", name)
	if _, err := e.c.add(ctx, name); err != nil {
		e.t.Fatal(err)
	}
	return func() {}
}

// transfer moves the leadership to m; there is nothing to undo.
func (e *env) transfer(m *etcdproc.Member) func() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	lead, _ := e.c.leader(ctx, e.cli)
	id, err := e.c.memberID(ctx, e.cli, m)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Logf("move leader %s -> %s", lead.Name, m.Name)
	cli := e.c.client(hostOf(e.t, lead.ClientURL))
	if _, err := cli.MoveLeader(ctx, id); err != nil {
		// The leader may have changed meanwhile; the next cycle tries again.
		e.t.Logf("move leader: %v", err)
	}
	return func() {}
}

// crash kills m with SIGKILL; undone, m restarts on its data dir.
func (e *env) crash(m *etcdproc.Member) func() {
	e.t.Logf("kill -9 %s", m.Name)
	e.c.kill(m)
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		e.c.restart(ctx, m)
	}
}

// pause stops m with SIGSTOP; undone, SIGCONT.
func (e *env) pause(m *etcdproc.Member) func() {
	e.t.Logf("SIGSTOP %s", m.Name)
	if err := m.Signal(syscall.SIGSTOP); err != nil {
		e.t.Fatal(err)
	}
	return func() {
		if err := m.Signal(syscall.SIGCONT); err != nil {
			e.t.Fatal(err)
		}
	}
}

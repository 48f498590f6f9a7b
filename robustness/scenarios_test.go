package robustness

import (
	"context"
	"math/rand/v2"
	"syscall"
	"time"

	"github.com/lifeboat-dev/lifeboat/internal/etcdproc"
)

// scenarios are the named faults, each run under the same traffic.
var scenarios = []scenario{
	{"baseline", func(ctx context.Context, e *env) { <-ctx.Done() }},
	{"kill-random", func(ctx context.Context, e *env) { e.cycle(ctx, e.random, e.crash, time.Second) }},
	{"kill-leader", func(ctx context.Context, e *env) { e.cycle(ctx, e.leader, e.crash, time.Second) }},
	{"pause-random", func(ctx context.Context, e *env) { e.cycle(ctx, e.random, e.pause, 2*time.Second) }},
	{"pause-leader", func(ctx context.Context, e *env) { e.cycle(ctx, e.leader, e.pause, 2*time.Second) }},
}

// cycle injects a fault on a member picked by pick, holds it, undoes it
// and lets the cluster recover, until ctx ends; the last fault is undone
// even if ctx ends while it holds.
func (e *env) cycle(ctx context.Context, pick func() *etcdproc.Member, fault func(*etcdproc.Member) func(), hold time.Duration) {
	for ctx.Err() == nil {
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

package robustness

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lifeboat-dev/lifeboat/internal/etcdproc"
	"github.com/lifeboat-dev/lifeboat/internal/freeport"
	"github.com/lifeboat-dev/lifeboat/internal/interoptest"
)

// failpointSystem is lifeboat built with its failpoints
// (internal/failpoint, -tags failpoints); etcd's release binary has none.
var failpointSystem = system{name: "lifeboat-failpoints", failpoints: true, binary: func(t testing.TB) string {
	return interoptest.Tool(t, "lifeboat", "failpoints")
}}

// failpointSnapshotCount is the --snapshot-count of a failpoint cluster:
// the leader compacts its raft log early, so an added member is sent a
// snapshot.
const failpointSnapshotCount = 100

// failpointScenarios each make one member die at one failpoint (gofail's
// panic) and restart it without, at least once and until the scenario's
// time (-robustness.failpoint-duration) is up.
// The points of a running member are armed through its gofail endpoint;
// those of a member receiving a snapshot are armed at its first start, as
// a new member that the leader must send a snapshot to.
var failpointScenarios = []scenario{
	{"crash-before-wal-save", func(ctx context.Context, e *env) { e.cycle(ctx, e.random, e.crashAt("raftBeforeSave", nil), 0) }},
	{"crash-after-wal-save", func(ctx context.Context, e *env) { e.cycle(ctx, e.random, e.crashAt("raftAfterSave", nil), 0) }},
	{"crash-before-commit", func(ctx context.Context, e *env) { e.cycle(ctx, e.random, e.crashAt("beforeCommit", nil), 0) }},
	{"crash-compaction-batch", func(ctx context.Context, e *env) { e.cycle(ctx, e.random, e.crashAt("compactAfterBatch", nil), 0) }},
	{"crash-defrag-before-copy", func(ctx context.Context, e *env) {
		e.cycle(ctx, e.random, e.crashAt("defragBeforeCopy", e.defragment), 0)
	}},
	{"crash-defrag-before-rename", func(ctx context.Context, e *env) {
		e.cycle(ctx, e.random, e.crashAt("defragBeforeRename", e.defragment), 0)
	}},
	{"crash-snapshot-send", func(ctx context.Context, e *env) {
		e.waitSnapshots()
		e.cycle(ctx, e.leader, e.crashAt("snapshotMidSend", e.replaceFollower), 0)
	}},
	{"crash-snapshot-receive", func(ctx context.Context, e *env) {
		e.waitSnapshots()
		e.cycle(ctx, e.follower, e.joinCrashAt("snapshotMidReceive"), 0)
	}},
	{"crash-before-snapshot-save", func(ctx context.Context, e *env) {
		e.waitSnapshots()
		e.cycle(ctx, e.follower, e.joinCrashAt("raftBeforeSaveSnap"), 0)
	}},
	{"crash-after-snapshot-save", func(ctx context.Context, e *env) {
		e.waitSnapshots()
		e.cycle(ctx, e.follower, e.joinCrashAt("raftAfterSaveSnap"), 0)
	}},
	{"crash-snapshot-apply", func(ctx context.Context, e *env) {
		e.waitSnapshots()
		e.cycle(ctx, e.follower, e.joinCrashAt("applyBeforeOpenSnapshot"), 0)
	}},
}

// failpointWait bounds the wait for an armed failpoint to fire.
const failpointWait = 30 * time.Second

// crashAt arms point on m, runs trigger (if any) on it, waits until m dies
// there, and returns the restart of m (without the failpoint).
func (e *env) crashAt(point string, trigger func(ctx context.Context, m *etcdproc.Member)) func(*etcdproc.Member) func() {
	return func(m *etcdproc.Member) func() {
		e.t.Logf("failpoint %s=panic on %s", point, m.Name)
		if err := e.c.arm(m, point, "panic"); err != nil {
			e.t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), failpointWait)
		defer cancel()
		if trigger != nil {
			trigger(ctx, m)
		}
		e.waitCrash(ctx, m, point)
		return func() { e.restartAfterCrash(m) }
	}
}

// joinCrashAt replaces m by a new member that starts with point armed: the
// leader sends it a snapshot, and it dies at point. It returns the restart
// of the new member (without the failpoint).
func (e *env) joinCrashAt(point string) func(*etcdproc.Member) func() {
	return func(m *etcdproc.Member) func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		e.t.Logf("remove %s", m.Name)
		if err := e.c.remove(ctx, e.cli, m); err != nil {
			e.t.Fatal(err)
		}
		name := fmt.Sprintf("m%d", e.faults.Load()+4)
		e.t.Logf("add %s with failpoint %s=panic", name, point)
		e.c.mu.Lock()
		e.c.armAtStart[name] = point + "=panic"
		e.c.mu.Unlock()
		nm, err := e.c.join(ctx, name)
		if err != nil {
			e.t.Fatal(err)
		}
		wctx, wcancel := context.WithTimeout(ctx, failpointWait)
		defer wcancel()
		e.waitCrash(wctx, nm, point)
		return func() { e.restartAfterCrash(nm) }
	}
}

// replaceFollower removes a follower and adds a new member, which the
// leader m must send a snapshot; it does not wait for the new member.
func (e *env) replaceFollower(ctx context.Context, m *etcdproc.Member) {
	var f *etcdproc.Member
	for _, o := range e.c.members() {
		if o != m {
			f = o
			break
		}
	}
	e.t.Logf("remove %s", f.Name)
	if err := e.c.remove(ctx, e.cli, f); err != nil {
		e.t.Fatal(err)
	}
	name := fmt.Sprintf("m%d", e.faults.Load()+4)
	e.t.Logf("add %s", name)
	if _, err := e.c.join(ctx, name); err != nil {
		e.t.Fatal(err)
	}
}

// defragment asks m to defragment its backend; m dies in it.
func (e *env) defragment(ctx context.Context, m *etcdproc.Member) {
	e.t.Logf("defragment %s", m.Name)
	if _, err := e.cli.Defragment(ctx, hostOf(e.t, m.ClientURL)); err == nil {
		e.t.Errorf("defragment of %s succeeded with its failpoint armed", m.Name)
	}
}

// waitCrash waits until m has died at point: its process has exited and
// its log shows the failpoint's panic. If it does not in time, the
// failpoint is disarmed and the test fails.
func (e *env) waitCrash(ctx context.Context, m *etcdproc.Member, point string) {
	for m.Running() && ctx.Err() == nil {
		sleep(ctx, 20*time.Millisecond)
	}
	if m.Running() {
		e.t.Errorf("failpoint %s did not fire on %s within %v", point, m.Name, failpointWait)
		if err := e.c.disarm(m, point); err != nil {
			e.t.Fatal(err)
		}
		return
	}
	e.c.forget(m)
	if log := m.LogTail(64 << 10); !strings.Contains(log, "failpoint "+point+": failpoint panic") {
		e.t.Errorf("%s exited, but not at failpoint %s:\n%s", m.Name, point, etcdproc.Tail(log, 3000))
	}
}

// restartAfterCrash restarts m, if it died, and waits until it is healthy.
func (e *env) restartAfterCrash(m *etcdproc.Member) {
	if m.Running() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	e.t.Logf("restart %s", m.Name)
	e.c.restart(ctx, m)
}

// waitSnapshots waits until every member has saved a snapshot, so that
// whichever leads has compacted its raft log and sends an added member a
// snapshot. It does not end with the scenario's ctx, whose time may be
// shorter.
func (e *env) waitSnapshots() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for ctx.Err() == nil {
		n := 0
		for _, m := range e.c.members() {
			if snaps, _ := filepath.Glob(filepath.Join(m.DataDir, "member", "snap", "*.snap")); len(snaps) > 0 {
				n++
			}
		}
		if n == len(e.c.members()) {
			return
		}
		sleep(ctx, 100*time.Millisecond)
	}
	e.t.Fatalf("the members saved no snapshot (--snapshot-count %d) within a minute", failpointSnapshotCount)
}

// gofailEnv gives m, for its next start, a gofail endpoint on a free port
// and the failpoints armed for that start alone.
func (c *cluster) gofailEnv(m *etcdproc.Member) {
	addr := "127.0.0.1:" + strconv.Itoa(freeport.One(c.t))
	m.Env = []string{"GOFAIL_HTTP=" + addr}
	c.mu.Lock()
	defer c.mu.Unlock()
	if fps := c.armAtStart[m.Name]; fps != "" {
		m.Env = append(m.Env, "GOFAIL_FAILPOINTS="+fps)
		delete(c.armAtStart, m.Name)
	}
	c.gofail[m.Name] = addr
}

// arm sets the failpoint point of the running member m to terms (gofail's
// syntax, e.g. "panic" or "sleep(100)").
func (c *cluster) arm(m *etcdproc.Member, point, terms string) error {
	return c.gofailDo(m, http.MethodPut, point, terms)
}

// disarm clears the failpoint point of the running member m.
func (c *cluster) disarm(m *etcdproc.Member, point string) error {
	return c.gofailDo(m, http.MethodDelete, point, "")
}

func (c *cluster) gofailDo(m *etcdproc.Member, method, point, body string) error {
	c.mu.Lock()
	addr := c.gofail[m.Name]
	c.mu.Unlock()
	if addr == "" {
		return fmt.Errorf("failpoint %s: %s has no gofail endpoint", point, m.Name)
	}
	req, err := http.NewRequest(method, "http://"+addr+"/"+point, strings.NewReader(body))
	if err != nil {
		return fmt.Errorf("failpoint %s on %s: %w", point, m.Name, err)
	}
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		return fmt.Errorf("failpoint %s on %s: %w", point, m.Name, err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusNoContent {
		return fmt.Errorf("failpoint %s on %s: %s %s: %s", point, m.Name, method, resp.Status, strings.TrimSpace(string(msg)))
	}
	return nil
}

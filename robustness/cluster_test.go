package robustness

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/lifeboat-dev/lifeboat/internal/etcdproc"
	"github.com/lifeboat-dev/lifeboat/internal/interoptest"
	"github.com/lifeboat-dev/lifeboat/internal/netproxy"
)

func TestMain(m *testing.M) {
	code := m.Run()
	interoptest.RemoveTools()
	if err := reportResults(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		code = max(code, 1)
	}
	os.Exit(code)
}

// system is a server implementation under test.
type system struct {
	name   string
	binary func(t testing.TB) string
	// failpoints: the binary has lifeboat's failpoints (internal/failpoint),
	// each member serves gofail's HTTP endpoint, and the cluster snapshots
	// often, so that an added member is sent one.
	failpoints bool
}

var (
	etcdSystem     = system{name: "etcd", binary: func(t testing.TB) string { return interoptest.Binary(t, "etcd") }}
	lifeboatSystem = system{name: "lifeboat", binary: func(t testing.TB) string { return interoptest.Tool(t, "lifeboat") }}
	// buggySystem is lifeboat built with a deliberate bug: linearizable
	// reads served from the local state without ReadIndex.
	buggySystem = system{name: "lifeboat-bug-localread", binary: func(t testing.TB) string {
		return interoptest.Tool(t, "lifeboat", "lifeboat_bug_localread")
	}}
)

// cluster is a set of member processes whose peer links run through
// netproxy proxies, one in front of each member's peer listener.
type cluster struct {
	t   testing.TB
	sys system
	pc  *etcdproc.Cluster
	net *netproxy.Network

	mu      sync.Mutex
	pids    map[string]int // running members, for the proxies' dialer lookup
	proxies map[string]*netproxy.Proxy
	dirs    []string           // the data dir of every member there ever was
	follow  []*clientv3.Client // clients to every member, kept up to date by remove and add
	// gofail is the address of each running member's gofail endpoint
	// (sys.failpoints); armAtStart the GOFAIL_FAILPOINTS of a member's
	// next start only.
	gofail     map[string]string
	armAtStart map[string]string
	// keepData makes a failed test copy the members' data dirs next to
	// their logs (set on a hash anomaly, for `snapkit diff`).
	keepData bool
}

// dataDirs returns the data dir of every member there ever was.
func (c *cluster) dataDirs() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.dirs...)
}

// clusterOptions are the flags every member gets: both etcd and lifeboat
// take them.
var clusterOptions = etcdproc.Options{Members: 3, SnapshotCount: 500, ProxiedPeers: true}

// startCluster starts a three-member cluster of sys and waits until every
// member is healthy; the members are stopped when the test ends.
func startCluster(t testing.TB, sys system) *cluster {
	t.Helper()
	opts := clusterOptions
	if sys.failpoints {
		opts.SnapshotCount = failpointSnapshotCount
	}
	return startClusterWith(t, sys, opts)
}

// startClusterWith is startCluster with other options.
func startClusterWith(t testing.TB, sys system, opts etcdproc.Options) *cluster {
	t.Helper()
	opts.Binary = sys.binary(t)
	pc, err := etcdproc.New(t.TempDir(), opts)
	if err != nil {
		t.Fatal(err)
	}
	c := &cluster{t: t, sys: sys, pc: pc, pids: map[string]int{}, proxies: map[string]*netproxy.Proxy{},
		gofail: map[string]string{}, armAtStart: map[string]string{}}
	c.net = netproxy.New(netproxy.ProcIdentifier(c.pidMap))
	t.Cleanup(func() {
		for _, m := range c.pc.Members {
			m.Signal(syscall.SIGCONT)
		}
		if err := c.pc.Stop(); err != nil {
			t.Errorf("stopping the %s cluster: %v", sys.name, err)
		}
		c.net.Close()
		if t.Failed() {
			for _, m := range c.pc.Members {
				t.Logf("log of %s %s:\n%s", sys.name, m.Name, m.LogTail(2000))
			}
			saveLogs(t, c)
		}
	})
	for _, m := range pc.Members {
		c.proxy(m)
	}
	for _, m := range pc.Members {
		c.start(m)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, m := range pc.Members {
		if err := m.WaitHealthy(ctx); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

func (c *cluster) pidMap() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pids
}

// proxy puts a proxy at m's advertised peer URL in front of its listener.
func (c *cluster) proxy(m *etcdproc.Member) {
	c.t.Helper()
	p, err := c.net.Proxy(m.Name, hostOf(c.t, m.PeerURL), hostOf(c.t, m.ListenPeerURL))
	if err != nil {
		c.t.Fatal(err)
	}
	c.mu.Lock()
	c.proxies[m.Name] = p
	c.dirs = append(c.dirs, m.DataDir)
	c.mu.Unlock()
}

func hostOf(t testing.TB, u string) string {
	t.Helper()
	p, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	return p.Host
}

// start starts m's process (its data dir kept).
func (c *cluster) start(m *etcdproc.Member) {
	c.t.Helper()
	if c.sys.failpoints {
		c.gofailEnv(m)
	}
	if err := m.Start(); err != nil {
		c.t.Fatal(err)
	}
	c.mu.Lock()
	pids := make(map[string]int, len(c.pids)+1)
	for k, v := range c.pids {
		pids[k] = v
	}
	pids[m.Name] = m.Pid()
	c.pids = pids
	c.mu.Unlock()
}

func (c *cluster) forget(m *etcdproc.Member) {
	c.mu.Lock()
	pids := make(map[string]int, len(c.pids))
	for k, v := range c.pids {
		if k != m.Name {
			pids[k] = v
		}
	}
	c.pids = pids
	c.mu.Unlock()
}

// kill kills m with SIGKILL.
func (c *cluster) kill(m *etcdproc.Member) {
	c.t.Helper()
	if err := m.Kill(); err != nil {
		c.t.Fatal(err)
	}
	c.forget(m)
}

// restart starts a stopped member and waits until it is healthy.
func (c *cluster) restart(ctx context.Context, m *etcdproc.Member) {
	c.t.Helper()
	c.start(m)
	if err := m.WaitHealthy(ctx); err != nil {
		c.t.Fatal(err)
	}
}

// endpoints returns the client addresses of the members.
func (c *cluster) endpoints() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pc.Endpoints()
}

// member returns the member named name.
func (c *cluster) member(name string) *etcdproc.Member {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, m := range c.pc.Members {
		if m.Name == name {
			return m
		}
	}
	c.t.Fatalf("no member %s", name)
	return nil
}

// members returns the current members.
func (c *cluster) members() []*etcdproc.Member {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*etcdproc.Member(nil), c.pc.Members...)
}

// client connects to the given endpoints, or to every member if none:
// such a client follows the membership, as an operator's would (remove
// and add set its endpoints to the members there are).
func (c *cluster) client(endpoints ...string) *clientv3.Client {
	c.t.Helper()
	all := len(endpoints) == 0
	if all {
		endpoints = c.endpoints()
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		c.t.Fatalf("connecting to %s: %v", strings.Join(endpoints, ","), err)
	}
	c.t.Cleanup(func() { cli.Close() })
	if all {
		c.mu.Lock()
		c.follow = append(c.follow, cli)
		c.mu.Unlock()
	}
	return cli
}

// clientExcept connects to every member but m.
func (c *cluster) clientExcept(m *etcdproc.Member) *clientv3.Client {
	c.t.Helper()
	var rest []string
	for _, o := range c.members() {
		if o != m {
			rest = append(rest, hostOf(c.t, o.ClientURL))
		}
	}
	return c.client(rest...)
}

// followMembership points every client to all members at the members
// there are now.
func (c *cluster) followMembership() {
	c.mu.Lock()
	defer c.mu.Unlock()
	eps := c.pc.Endpoints()
	for _, cli := range c.follow {
		cli.SetEndpoints(eps...)
	}
}

// status is what one member says of itself.
type status struct {
	m            *etcdproc.Member
	id, leader   uint64
	rev, applied uint64
}

// statuses asks every running member for its status.
func (c *cluster) statuses(ctx context.Context, cli *clientv3.Client) ([]status, error) {
	var out []status
	for _, m := range c.members() {
		if !m.Running() {
			continue
		}
		sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		st, err := cli.Status(sctx, strings.TrimPrefix(m.ClientURL, "http://"))
		cancel()
		if err != nil {
			return nil, fmt.Errorf("status of %s: %w", m.Name, err)
		}
		out = append(out, status{m: m, id: st.Header.MemberId, leader: st.Leader, rev: uint64(st.Header.Revision), applied: st.RaftAppliedIndex})
	}
	return out, nil
}

// leader waits until the running members agree on a leader and returns it.
func (c *cluster) leader(ctx context.Context, cli *clientv3.Client) (*etcdproc.Member, uint64) {
	c.t.Helper()
	var last string
	for ctx.Err() == nil {
		sts, err := c.statuses(ctx, cli)
		if err == nil && len(sts) > 0 {
			agreed := true
			for _, s := range sts {
				agreed = agreed && s.leader == sts[0].leader && s.leader != 0
			}
			for _, s := range sts {
				if agreed && s.id == s.leader {
					return s.m, s.id
				}
			}
			last = fmt.Sprintf("%+v", sts)
		} else if err != nil {
			last = err.Error()
		}
		sleep(ctx, 100*time.Millisecond)
	}
	c.t.Fatalf("the %s members never agreed on a leader: %s", c.sys.name, last)
	return nil, 0
}

// sleep waits for d or the end of ctx.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// isolate cuts every peer link to and from m (a blackhole both ways).
func (c *cluster) isolate(m *etcdproc.Member) {
	for _, o := range c.members() {
		if o != m {
			c.net.Set(m.Name, o.Name, netproxy.Fault{Blackhole: true})
			c.net.Set(o.Name, m.Name, netproxy.Fault{Blackhole: true})
		}
	}
	c.net.Set(netproxy.Anyone, m.Name, netproxy.Fault{Blackhole: true})
	c.net.Set(m.Name, netproxy.Anyone, netproxy.Fault{Blackhole: true})
}

// saveLogs copies the members' logs where the test's artifacts go.
func saveLogs(t testing.TB, c *cluster) {
	dir := filepath.Join(artifactDir(), fmt.Sprintf("robustness-logs-%s-%d", strings.ReplaceAll(t.Name(), "/", "_"), time.Now().Unix()))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Logf("saving the logs: %v", err)
		return
	}
	for _, m := range c.pc.Members {
		if b, err := os.ReadFile(m.LogPath); err == nil {
			os.WriteFile(filepath.Join(dir, m.Name+".log"), b, 0o644)
		}
	}
	t.Logf("member logs: %s", dir)
	if !c.keepData {
		return
	}
	// Each member's member/ (snap/db, snap/*.snap, wal/) goes to
	// dir/<member>/member/, so that `snapkit diff dir/m1/member/snap/db
	// dir/m2/member/snap/db` compares them.
	for _, d := range c.dataDirs() {
		src := filepath.Join(d, "member")
		if err := os.CopyFS(filepath.Join(dir, filepath.Base(d), "member"), os.DirFS(src)); err != nil {
			t.Logf("saving the data dir %s: %v", src, err)
		}
	}
	t.Logf("member data dirs: %s/<member>/member", dir)
}

// artifactDir is where failed runs leave histories and logs:
// ROBUSTNESS_ARTIFACTS, or the temp dir.
func artifactDir() string {
	if dir := os.Getenv("ROBUSTNESS_ARTIFACTS"); dir != "" {
		return dir
	}
	return os.TempDir()
}

// memberID asks m for its ID.
func (c *cluster) memberID(ctx context.Context, cli *clientv3.Client, m *etcdproc.Member) (uint64, error) {
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	st, err := cli.Status(sctx, hostOf(c.t, m.ClientURL))
	if err != nil {
		return 0, fmt.Errorf("status of %s: %w", m.Name, err)
	}
	return st.Header.MemberId, nil
}

// remove removes m from the cluster (through the other members) and stops
// its process.
func (c *cluster) remove(ctx context.Context, cli *clientv3.Client, m *etcdproc.Member) error {
	id, err := c.memberID(ctx, cli, m)
	if err != nil {
		return err
	}
	others := c.clientExcept(m)
	for ctx.Err() == nil {
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err = others.MemberRemove(rctx, id)
		cancel()
		if err == nil || strings.Contains(err.Error(), "member not found") {
			break
		}
		sleep(ctx, 200*time.Millisecond) // e.g. "unhealthy cluster" right after a change
	}
	if err != nil && !strings.Contains(err.Error(), "member not found") {
		return fmt.Errorf("removing %s: %w", m.Name, err)
	}
	c.mu.Lock()
	err = c.pc.Drop(m)
	c.mu.Unlock()
	c.forget(m)
	c.followMembership()
	if err != nil && !strings.Contains(err.Error(), "did not exit") {
		return err
	}
	return nil
}

// add adds a new member named name (through the members there are), starts
// it behind its proxy, waits until it is healthy, and points the clients
// that follow the membership at it.
func (c *cluster) add(ctx context.Context, name string) (*etcdproc.Member, error) {
	m, err := c.join(ctx, name)
	if err != nil {
		return nil, err
	}
	if err := m.WaitHealthy(ctx); err != nil {
		return nil, err
	}
	c.followMembership()
	return m, nil
}

// join adds a new member named name through the members there are and
// starts it behind its proxy (a failpoint scenario's member may crash
// before it is healthy).
func (c *cluster) join(ctx context.Context, name string) (*etcdproc.Member, error) {
	c.mu.Lock()
	m, err := c.pc.Grow(name)
	c.mu.Unlock()
	if err != nil {
		return nil, err
	}
	c.proxy(m)
	others := c.clientExcept(m)
	for ctx.Err() == nil {
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err = others.MemberAdd(actx, []string{m.PeerURL})
		cancel()
		if errors.Is(err, rpctypes.ErrPeerURLExist) {
			err = nil // an earlier try, whose answer was lost, added it: its peer URL is new
		}
		if err == nil {
			break
		}
		sleep(ctx, 200*time.Millisecond) // e.g. "unhealthy cluster", or a timeout while the leader changes
	}
	if err != nil {
		return nil, fmt.Errorf("adding %s: %w", name, err)
	}
	c.start(m)
	return m, nil
}

// Package testcluster starts the clusters that lbtop's tests look at:
// lifeboat members in the test's process (server.New), or real etcd v3.6
// or lifeboat members as processes (internal/interoptest), on 127.0.0.1
// free ports, behind one API so that a test runs the same steps against
// each. It also makes the faults the tests show: a full db, a corrupted
// value, a hung endpoint.
package testcluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/lifeboat-dev/lifeboat/internal/freeport"
	"github.com/lifeboat-dev/lifeboat/internal/interoptest"
	"github.com/lifeboat-dev/lifeboat/server"
	"github.com/lifeboat-dev/lifeboat/snapkit/datadir"
)

// Options configures a cluster.
type Options struct {
	// Members is the cluster size; 0 means 3. They are named m1, m2, ...
	Members int
	// Quota is every member's --quota-backend-bytes; 0 keeps the default.
	Quota int64
	// Proxy, for lifeboat only, is the number (1-based) of a member whose
	// advertised client URL is a Proxy in front of its real one; 0: none.
	Proxy int
}

// Backend starts a cluster of one implementation.
type Backend struct {
	Name  string // "lifeboat" or "etcd"
	Start func(t testing.TB, o Options) *Cluster
}

// Backends are lifeboat in process and real etcd. The etcd one skips the
// test when the binary cannot be had (LIFEBOAT_INTEROP=require fails it).
var Backends = []Backend{{"lifeboat", StartLifeboat}, {"etcd", StartEtcd}}

// Cluster is a running test cluster.
type Cluster struct {
	t     testing.TB
	names []string
	urls  []string // advertised client URLs
	dirs  []string // data dirs
	proxy *Proxy

	// lifeboat
	cfgs []server.Config
	srvs []*server.Server
	// etcd
	etcd *interoptest.EtcdCluster
}

// Size is the number of members.
func (c *Cluster) Size() int { return len(c.names) }

// Name is member i's name (0-based).
func (c *Cluster) Name(i int) string { return c.names[i] }

// URL is member i's advertised client URL.
func (c *Cluster) URL(i int) string { return c.urls[i] }

// DBPath is member i's bbolt db (member/snap/db).
func (c *Cluster) DBPath(i int) string { return datadir.New(c.dirs[i], "").DBPath() }

// Proxy is the proxy of Options.Proxy, or nil.
func (c *Cluster) Proxy() *Proxy { return c.proxy }

func logger() *slog.Logger {
	if os.Getenv("LIFEBOAT_TEST_LOG") != "" {
		return slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

func freePort(t testing.TB) int {
	t.Helper()
	return freeport.One(t)
}

// StartLifeboat starts o.Members lifeboat members in this process and waits
// until they agree on a leader. A port taken between choosing and binding
// it makes it try again with new ports.
func StartLifeboat(t testing.TB, o Options) *Cluster {
	t.Helper()
	for attempt := 1; ; attempt++ {
		c, err := tryLifeboat(t, o)
		if err == nil {
			t.Cleanup(func() {
				for i := range c.srvs {
					if c.srvs[i] != nil {
						c.Stop(i)
					}
				}
			})
			c.WaitReady()
			return c
		}
		if attempt == 5 || !errors.Is(err, syscall.EADDRINUSE) {
			t.Fatal(err)
		}
	}
}

func tryLifeboat(t testing.TB, o Options) (*Cluster, error) {
	n := cmpOr(o.Members, 3)
	dir := t.TempDir()
	c := &Cluster{t: t, srvs: make([]*server.Server, n)}
	ic := make(map[string][]string)
	for i := range n {
		ic["m"+strconv.Itoa(i+1)] = []string{"http://127.0.0.1:" + strconv.Itoa(freePort(t))}
	}
	for i := range n {
		name := "m" + strconv.Itoa(i+1)
		cfg := server.NewConfig()
		cfg.Name = name
		cfg.DataDir = filepath.Join(dir, name)
		listen := "http://127.0.0.1:" + strconv.Itoa(freePort(t))
		cfg.ListenClientURLs, cfg.AdvertiseClientURLs = []string{listen}, []string{listen}
		if o.Proxy == i+1 {
			p, err := NewProxy(listen[len("http://"):])
			if err != nil {
				return nil, err
			}
			t.Cleanup(p.Close)
			c.proxy = p
			cfg.AdvertiseClientURLs = []string{"http://" + p.Addr()}
		}
		cfg.ListenPeerURLs, cfg.AdvertisePeerURLs = ic[name], ic[name]
		cfg.InitialCluster = ic
		cfg.InitialClusterToken = "lbtop-test"
		cfg.HeartbeatMs, cfg.ElectionMs = 50, 500
		if o.Quota != 0 {
			cfg.QuotaBackendBytes = o.Quota
		}
		cfg.Logger = logger().With("member", name)
		c.cfgs = append(c.cfgs, *cfg)
		c.names = append(c.names, name)
		c.urls = append(c.urls, cfg.AdvertiseClientURLs[0])
		c.dirs = append(c.dirs, cfg.DataDir)
	}
	for i := range n {
		if err := c.startLifeboat(i); err != nil {
			for j := range i {
				c.Stop(j)
			}
			return nil, err
		}
	}
	return c, nil
}

func (c *Cluster) startLifeboat(i int) error {
	cfg := c.cfgs[i]
	s, err := server.New(&cfg)
	if err != nil {
		return fmt.Errorf("testcluster: start %s: %w", c.names[i], err)
	}
	c.srvs[i] = s
	return nil
}

// StartEtcd starts o.Members real etcd v3.6 members (see
// interoptest.Binary) and waits until they agree on a leader.
func StartEtcd(t testing.TB, o Options) *Cluster {
	t.Helper()
	return StartProcesses(t, interoptest.Binary(t, "etcd"), o)
}

// StartProcesses starts o.Members members of binary (etcd, or lifeboat,
// which takes etcd's flags) as child processes, through internal/etcdproc,
// and waits until they agree on a leader. Unlike StartLifeboat, a member can
// be killed, and the members' CPU time is not the test's.
func StartProcesses(t testing.TB, binary string, o Options) *Cluster {
	t.Helper()
	if o.Proxy != 0 {
		t.Fatal("testcluster: Proxy is for lifeboat clusters in process only")
	}
	var args []string
	if o.Quota != 0 {
		args = append(args, "--quota-backend-bytes", strconv.FormatInt(o.Quota, 10))
	}
	ec := interoptest.StartEtcd(t, interoptest.Options{Members: cmpOr(o.Members, 3), Token: "lbtop-test", Args: args, Binary: binary})
	c := &Cluster{t: t, etcd: ec}
	for _, m := range ec.Members {
		c.names = append(c.names, m.Name)
		c.urls = append(c.urls, m.ClientURL)
		c.dirs = append(c.dirs, m.DataDir)
	}
	c.WaitReady()
	return c
}

// Build builds the main package pkg (an import path) into a temporary
// directory and returns the binary.
func Build(t testing.TB, pkg string) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("testcluster: go not found to build %s: %v", pkg, err)
	}
	bin := filepath.Join(t.TempDir(), filepath.Base(pkg))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, goBin, "build", "-o", bin, pkg).CombinedOutput(); err != nil {
		t.Fatalf("testcluster: go build %s: %v\n%s", pkg, err, out)
	}
	return bin
}

// Kill kills member i's process with SIGKILL, as a crash would; only for
// clusters of processes.
func (c *Cluster) Kill(i int) {
	c.t.Helper()
	if c.etcd == nil {
		c.t.Fatal("testcluster: Kill needs a cluster of processes")
	}
	if err := c.etcd.Members[i].Kill(); err != nil {
		c.t.Fatal(err)
	}
}

// Stop stops member i gracefully (it hands leadership over first).
func (c *Cluster) Stop(i int) {
	c.t.Helper()
	if c.etcd != nil {
		if err := c.etcd.Members[i].Stop(); err != nil {
			c.t.Fatal(err)
		}
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.srvs[i].Stop(ctx); err != nil {
		c.t.Errorf("testcluster: stop %s: %v", c.names[i], err)
	}
	c.srvs[i] = nil
}

// Start restarts member i on its ports and data dir, without waiting.
func (c *Cluster) Start(i int) {
	c.t.Helper()
	if c.etcd != nil {
		if err := c.etcd.Members[i].Start(); err != nil {
			c.t.Fatal(err)
		}
		return
	}
	if err := c.startLifeboat(i); err != nil {
		c.t.Fatal(err)
	}
}

// Running reports whether member i runs.
func (c *Cluster) Running(i int) bool {
	if c.etcd != nil {
		return c.etcd.Members[i].Running()
	}
	return c.srvs[i] != nil
}

// Client is a client of member i alone, closed when the test ends.
func (c *Cluster) Client(i int) *clientv3.Client {
	c.t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{c.urls[i]}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { cli.Close() })
	return cli
}

// status asks member i for its Status.
func (c *Cluster) status(i int) (*clientv3.StatusResponse, error) {
	return ask(c.urls[i], func(ctx context.Context, cli *clientv3.Client) (*clientv3.StatusResponse, error) {
		return cli.Status(ctx, c.urls[i])
	})
}

func (c *Cluster) memberList(i int) (*clientv3.MemberListResponse, error) {
	return ask(c.urls[i], func(ctx context.Context, cli *clientv3.Client) (*clientv3.MemberListResponse, error) {
		return cli.MemberList(ctx)
	})
}

// ask makes one call to the member at url, through a client of its own,
// within a second.
func ask[T any](url string, call func(context.Context, *clientv3.Client) (T, error)) (T, error) {
	var zero T
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{url}, DialTimeout: time.Second, Logger: zap.NewNop()})
	if err != nil {
		return zero, err
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	return call(ctx, cli)
}

// ID is member i's ID (it must be running).
func (c *Cluster) ID(i int) uint64 {
	c.t.Helper()
	var id uint64
	c.waitFor(fmt.Sprintf("the ID of %s", c.names[i]), func() error {
		st, err := c.status(i)
		if err != nil {
			return err
		}
		id = st.Header.MemberId
		return nil
	})
	return id
}

// WaitReady waits until every running member names the same leader and
// lists every running member with its client URLs (etcd is ready to serve
// once it has published its own), and returns the leader's index.
func (c *Cluster) WaitReady() int {
	c.t.Helper()
	lead := -1
	c.waitFor("a leader every running member agrees on", func() error {
		var leader uint64
		ids := make(map[uint64]int)
		if err := c.eachRunning(func(i int) error {
			st, err := c.status(i)
			if err != nil {
				return err
			}
			ids[st.Header.MemberId] = i
			if st.Leader == 0 || (leader != 0 && st.Leader != leader) {
				return fmt.Errorf("%s reports leader %x", c.names[i], st.Leader)
			}
			leader = st.Leader
			return nil
		}); err != nil {
			return err
		}
		i, ok := ids[leader]
		if !ok {
			return fmt.Errorf("leader %x is not a running member", leader)
		}
		lead = i
		return nil
	})
	// As etcd's "ready to serve": each member has published its client
	// URLs, and every running member's list shows them.
	c.waitFor("every running member's client URLs in every member list", func() error {
		return c.eachRunning(func(i int) error {
			ms, err := c.memberList(i)
			if err != nil {
				return err
			}
			published := make(map[string]bool)
			for _, m := range ms.Members {
				published[m.Name] = len(m.ClientURLs) > 0
			}
			for j, name := range c.names {
				if c.Running(j) && !published[name] {
					return fmt.Errorf("%s does not list the client URLs of %s yet", c.names[i], name)
				}
			}
			return nil
		})
	})
	// etcd v3.6 raises a member's storage version from 3.5.0 to its own
	// some seconds after the cluster version is decided (its version
	// monitor), where lifeboat writes it at once: what lbtop shows is the
	// same once every member has.
	c.waitFor("every running member's storage version at its server version", func() error {
		return c.eachRunning(func(i int) error {
			st, err := c.status(i)
			if err != nil {
				return err
			}
			if !sameMinor(st.StorageVersion, st.Version) {
				return fmt.Errorf("%s: storage version %q, server version %q", c.names[i], st.StorageVersion, st.Version)
			}
			return nil
		})
	})
	return lead
}

// eachRunning calls fn for each running member, in order, up to its first
// error.
func (c *Cluster) eachRunning(fn func(i int) error) error {
	for i := range c.names {
		if !c.Running(i) {
			continue
		}
		if err := fn(i); err != nil {
			return err
		}
	}
	return nil
}

// sameMinor reports whether versions a and b ("3.6.0", "3.6.6") have the
// same major and minor version.
func sameMinor(a, b string) bool {
	minor := func(v string) string {
		parts := strings.SplitN(v, ".", 3)
		if len(parts) < 2 {
			return v
		}
		return parts[0] + "." + parts[1]
	}
	return a != "" && minor(a) == minor(b)
}

// MoveLeader makes member i the leader and waits until every running
// member agrees.
func (c *Cluster) MoveLeader(i int) {
	c.t.Helper()
	target := c.ID(i)
	c.waitFor(fmt.Sprintf("%s to lead", c.names[i]), func() error {
		lead := c.WaitReady()
		if lead == i {
			return nil
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err := c.Client(lead).MoveLeader(ctx, target)
		if err == nil {
			err = errors.New("moved; checking")
		}
		return err
	})
}

// waitFor retries fn until it succeeds, for up to 30s.
func (c *Cluster) waitFor(what string, fn func() error) {
	c.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := fn()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("testcluster: waiting for %s: %v", what, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func cmpOr(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

// Proxy forwards TCP connections to a member's client port until frozen;
// frozen, it accepts connections and reads requests but answers nothing,
// as a member that hangs.
type Proxy struct {
	ln     net.Listener
	target string
	frozen atomic.Bool
	done   chan struct{}
}

// NewProxy listens on a free 127.0.0.1 port and forwards to target.
func NewProxy(target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("testcluster: proxy: %w", err)
	}
	p := &Proxy{ln: ln, target: target, done: make(chan struct{})}
	go p.serve()
	return p, nil
}

// Addr is the proxy's host:port.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Freeze makes every connection, open or new, hang for good.
func (p *Proxy) Freeze() { p.frozen.Store(true) }

// Close stops the proxy.
func (p *Proxy) Close() {
	select {
	case <-p.done:
	default:
		close(p.done)
		p.ln.Close()
	}
}

func (p *Proxy) serve() {
	for {
		in, err := p.ln.Accept()
		if err != nil {
			return
		}
		go p.forward(in)
	}
}

func (p *Proxy) forward(in net.Conn) {
	defer in.Close()
	out, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	defer out.Close()
	go func() {
		<-p.done
		in.Close()
		out.Close()
	}()
	go p.copy(out, in)
	p.copy(in, out)
}

// copy copies until either side closes; while the proxy is frozen it
// swallows what it reads.
func (p *Proxy) copy(dst io.Writer, src io.Reader) {
	buf := make([]byte, 32*1024)
	for {
		n, err := src.Read(buf)
		if n > 0 && !p.frozen.Load() {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

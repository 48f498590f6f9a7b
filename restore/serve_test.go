package restore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/lifeboat-dev/lifeboat/internal/etcdproc"
	"github.com/lifeboat-dev/lifeboat/internal/interoptest"
	"github.com/lifeboat-dev/lifeboat/server"
)

// testCluster is a set of members laid out on free 127.0.0.1 ports, whose
// data dirs a test fills before starting them as real etcd or lifeboat.
type testCluster struct {
	t       testing.TB
	layout  *etcdproc.Cluster
	servers []*server.Server
}

// newTestCluster lays out n members (m1..mn); etcdBin is the etcd binary
// when the members will run as real etcd, with the extra flags args.
func newTestCluster(t testing.TB, n int, etcdBin string, args ...string) *testCluster {
	t.Helper()
	bin := etcdBin
	if bin == "" {
		bin = "unused"
	}
	c, err := etcdproc.New(t.TempDir(), etcdproc.Options{Members: n, Binary: bin, Args: args})
	if err != nil {
		t.Fatal(err)
	}
	return &testCluster{t: t, layout: c}
}

// specs are the members as --initial-cluster names them; learners by name.
func (c *testCluster) specs(learners ...string) []MemberSpec {
	var out []MemberSpec
	for _, m := range c.layout.Members {
		out = append(out, MemberSpec{Name: m.Name, PeerURLs: []string{m.PeerURL}, Learner: slices.Contains(learners, m.Name)})
	}
	return out
}

func (c *testCluster) initialCluster() string { return FormatInitialCluster(c.specs()) }

// startEtcd starts every member as a real etcd process and waits for health.
func (c *testCluster) startEtcd() {
	c.t.Helper()
	c.t.Cleanup(func() {
		if err := c.layout.Stop(); err != nil {
			c.t.Errorf("stop etcd: %v", err)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := c.layout.Start(ctx); err != nil {
		c.t.Fatal(err)
	}
}

// lifeboatConfig is member i's configuration, for a cluster of all the
// laid out members.
func (c *testCluster) lifeboatConfig(i int) *server.Config {
	ic := map[string][]string{}
	for _, m := range c.layout.Members {
		ic[m.Name] = []string{m.PeerURL}
	}
	m := c.layout.Members[i]
	cfg := server.NewConfig()
	cfg.Name, cfg.DataDir = m.Name, m.DataDir
	cfg.ListenClientURLs, cfg.AdvertiseClientURLs = []string{m.ClientURL}, []string{m.ClientURL}
	cfg.ListenPeerURLs, cfg.AdvertisePeerURLs = []string{m.PeerURL}, []string{m.PeerURL}
	cfg.InitialCluster = ic
	cfg.HeartbeatMs, cfg.ElectionMs = 50, 500
	cfg.Logger = testLogger().With("member", m.Name)
	return cfg
}

// startLifeboat starts every member as a lifeboat server in this process,
// all at once as an operator starts restored members (server.New returns
// once the member's store is rebuilt, which is most of a restored member's
// start).
func (c *testCluster) startLifeboat(mod func(*server.Config)) {
	c.t.Helper()
	cfgs := make([]*server.Config, len(c.layout.Members))
	for i := range cfgs {
		cfgs[i] = c.lifeboatConfig(i)
		if mod != nil {
			mod(cfgs[i])
		}
	}
	c.startServers(cfgs...)
}

// startServers starts lifeboat members concurrently; the test stops them
// at the end unless stopServers did. Members that started are kept (and
// stopped at the end) even if another failed.
func (c *testCluster) startServers(cfgs ...*server.Config) {
	c.t.Helper()
	servers := make([]*server.Server, len(cfgs))
	errs := make([]error, len(cfgs))
	var wg sync.WaitGroup
	for i, cfg := range cfgs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if servers[i], errs[i] = server.New(cfg); errs[i] != nil {
				errs[i] = fmt.Errorf("start lifeboat %s: %w", cfg.Name, errs[i])
			}
		}()
	}
	wg.Wait()
	for _, s := range servers {
		if s != nil {
			c.servers = append(c.servers, s)
			c.t.Cleanup(func() { c.stopServer(s) })
		}
	}
	if err := errors.Join(errs...); err != nil {
		c.t.Fatal(err)
	}
}

func (c *testCluster) stopServer(s *server.Server) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Stop(ctx); err != nil {
		c.t.Errorf("stop lifeboat: %v", err)
	}
}

// stopServers stops every lifeboat member started so far.
func (c *testCluster) stopServers() {
	for _, s := range c.servers {
		c.stopServer(s)
	}
}

func testLogger() *slog.Logger {
	if os.Getenv("LIFEBOAT_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// voters are the client URLs of the members not named in learners.
func (c *testCluster) voters(learners ...string) []string {
	var urls []string
	for _, m := range c.layout.Members {
		if !slices.Contains(learners, m.Name) {
			urls = append(urls, m.ClientURL)
		}
	}
	return urls
}

// client is a client of the members that are not learners.
func (c *testCluster) client(learners ...string) *clientv3.Client {
	c.t.Helper()
	return c.clientOf(c.voters(learners...))
}

// clientOf is a client of the given client URLs.
func (c *testCluster) clientOf(urls []string) *clientv3.Client {
	c.t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: urls, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { cli.Close() })
	return cli
}

// served is what a running cluster serves: every key at the current
// revision, and HashKV there.
type served struct {
	ClusterID       uint64
	Revision        int64
	KVs             []string
	Hash            uint32
	CompactRevision int64
	HashRevision    int64
	Members         []string // name=peerURLs, learner marked
}

// serve reads what the cluster serves once the compaction it starts with
// (wantCompact, or none if 0) is done on every member but the learners.
func (c *testCluster) serve(wantCompact int64, learners ...string) served {
	c.t.Helper()
	return c.serveAt(c.voters(learners...), wantCompact)
}

// serveAt is serve on the members at the given client URLs.
func (c *testCluster) serveAt(urls []string, wantCompact int64) served {
	c.t.Helper()
	cli := c.clientOf(urls)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var s served
	resp, err := cli.Get(ctx, "\x00", clientv3.WithFromKey())
	if err != nil {
		c.t.Fatalf("get all keys: %v", err)
	}
	s.Revision, s.ClusterID = resp.Header.Revision, resp.Header.ClusterId
	for _, kv := range resp.Kvs {
		s.KVs = append(s.KVs, formatKV(kv))
	}
	for _, ep := range urls {
	wait:
		for {
			h, err := cli.HashKV(ctx, ep, s.Revision)
			var seen int64
			switch {
			case errors.Is(err, rpctypes.ErrFutureRev):
				// A follower that has not applied the revision yet.
			case err != nil:
				c.t.Fatalf("hashkv %s: %v", ep, err)
			case wantCompact == 0 || h.CompactRevision == wantCompact:
				if s.HashRevision != 0 && (h.Hash != s.Hash || h.HashRevision != s.HashRevision) {
					c.t.Fatalf("members disagree: %s says hash %d at %d, another %d at %d", ep, h.Hash, h.HashRevision, s.Hash, s.HashRevision)
				}
				s.Hash, s.CompactRevision, s.HashRevision = h.Hash, h.CompactRevision, h.HashRevision
				break wait
			default:
				seen = h.CompactRevision
			}
			select {
			case <-ctx.Done():
				c.t.Fatalf("%s: compaction at %d not done at revision %d (hashkv says %d, %v)", ep, wantCompact, s.Revision, seen, err)
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	ml, err := cli.MemberList(ctx)
	if err != nil {
		c.t.Fatal(err)
	}
	for _, m := range ml.Members {
		s.Members = append(s.Members, fmt.Sprintf("%x %s=%s learner=%v", m.ID, m.Name, strings.Join(m.PeerURLs, ","), m.IsLearner))
	}
	slices.Sort(s.Members)
	return s
}

func formatKV(kv *mvccpb.KeyValue) string {
	return fmt.Sprintf("%q=%q c%d m%d v%d l%x", kv.Key, kv.Value, kv.CreateRevision, kv.ModRevision, kv.Version, kv.Lease)
}

func etcdBinary(t *testing.T) string { return interoptest.Binary(t, "etcd") }

// diff says briefly how s differs from want ("" if not at all).
func (s served) diff(want served) string {
	var out []string
	if s.ClusterID != want.ClusterID {
		out = append(out, fmt.Sprintf("cluster %x, want %x", s.ClusterID, want.ClusterID))
	}
	if s.Revision != want.Revision || s.Hash != want.Hash || s.CompactRevision != want.CompactRevision || s.HashRevision != want.HashRevision {
		out = append(out, fmt.Sprintf("revision %d, HashKV %d at %d compacted at %d; want %d, %d at %d compacted at %d",
			s.Revision, s.Hash, s.HashRevision, s.CompactRevision, want.Revision, want.Hash, want.HashRevision, want.CompactRevision))
	}
	if !slices.Equal(s.Members, want.Members) {
		out = append(out, fmt.Sprintf("members %q, want %q", s.Members, want.Members))
	}
	if !slices.Equal(s.KVs, want.KVs) {
		out = append(out, fmt.Sprintf("%d keys, want %d", len(s.KVs), len(want.KVs)))
		for i := range min(len(s.KVs), len(want.KVs)) {
			if s.KVs[i] != want.KVs[i] {
				out = append(out, fmt.Sprintf("first difference: %s, want %s", s.KVs[i], want.KVs[i]))
				break
			}
		}
	}
	return strings.Join(out, "; ")
}

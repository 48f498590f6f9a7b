package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/lifeboat-dev/lifeboat/internal/freeport"
)

// testCluster runs n members in this process on 127.0.0.1.
type testCluster struct {
	t    testing.TB
	cfgs []Config
	srvs []*Server
}

func freePort(t testing.TB) int {
	t.Helper()
	return freeport.One(t)
}

func testLogger() *slog.Logger {
	if os.Getenv("LIFEBOAT_TEST_LOG") != "" {
		return slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewJSONHandler(io.Discard, nil))
}

// newTestCluster configures n members (mod may change each config) and
// starts them. A port taken between choosing and binding it (by any
// outgoing connection on the machine) makes it try again with new ports.
func newTestCluster(t *testing.T, n int, mod func(*Config)) *testCluster {
	t.Helper()
	for attempt := 1; ; attempt++ {
		c, err := tryTestCluster(t, n, mod)
		if err == nil {
			t.Cleanup(func() {
				for i := range c.srvs {
					if c.srvs[i] != nil {
						c.stop(i)
					}
				}
			})
			return c
		}
		if attempt == 5 || !errors.Is(err, syscall.EADDRINUSE) {
			t.Fatal(err)
		}
	}
}

func tryTestCluster(t testing.TB, n int, mod func(*Config)) (*testCluster, error) {
	dir := t.TempDir()
	ic := make(map[string][]string)
	for i := range n {
		ic[fmt.Sprintf("m%d", i)] = []string{"http://127.0.0.1:" + strconv.Itoa(freePort(t))}
	}
	c := &testCluster{t: t, srvs: make([]*Server, n)}
	for i := range n {
		name := fmt.Sprintf("m%d", i)
		cfg := NewConfig()
		cfg.Name = name
		cfg.DataDir = filepath.Join(dir, name)
		client := "http://127.0.0.1:" + strconv.Itoa(freePort(t))
		cfg.ListenClientURLs, cfg.AdvertiseClientURLs = []string{client}, []string{client}
		cfg.ListenPeerURLs, cfg.AdvertisePeerURLs = ic[name], ic[name]
		cfg.InitialCluster = ic
		cfg.InitialClusterToken = "test-" + t.Name()
		cfg.HeartbeatMs, cfg.ElectionMs = 50, 500
		cfg.Logger = testLogger().With("member", name)
		if mod != nil {
			mod(cfg)
		}
		c.cfgs = append(c.cfgs, *cfg)
	}
	for i := range n {
		if err := c.tryStart(i); err != nil {
			for j := range i {
				c.stop(j)
			}
			return nil, err
		}
	}
	return c, nil
}

func (c *testCluster) tryStart(i int) error {
	cfg := c.cfgs[i]
	s, err := New(&cfg)
	if err != nil {
		return fmt.Errorf("start member %d: %w", i, err)
	}
	c.srvs[i] = s
	return nil
}

// start restarts member i on its ports.
func (c *testCluster) start(i int) {
	c.t.Helper()
	if err := c.tryStart(i); err != nil {
		c.t.Fatal(err)
	}
}

func (c *testCluster) stop(i int) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.srvs[i].Stop(ctx); err != nil {
		c.t.Errorf("stop member %d: %v", i, err)
	}
	c.srvs[i] = nil
}

// crash stops member i without handing over leadership, so the others
// must notice it is gone and elect a leader.
func (c *testCluster) crash(i int) {
	c.t.Helper()
	s := c.srvs[i]
	_ = s.stop(context.Background(), nil, nil)
	c.srvs[i] = nil
}

func (c *testCluster) endpoint(i int) string { return c.cfgs[i].AdvertiseClientURLs[0] }

// client connects to the given members (all running ones if none).
func (c *testCluster) client(members ...int) *clientv3.Client {
	c.t.Helper()
	if len(members) == 0 {
		for i, s := range c.srvs {
			if s != nil {
				members = append(members, i)
			}
		}
	}
	var eps []string
	for _, i := range members {
		eps = append(eps, c.endpoint(i))
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: eps, DialTimeout: 5 * time.Second, Logger: nil})
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { cli.Close() })
	return cli
}

// waitLeader waits until every running member agrees on a running leader
// and returns its index.
func (c *testCluster) waitLeader() int {
	c.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		lead := uint64(0)
		agree := true
		for _, s := range c.srvs {
			if s == nil {
				continue
			}
			l := s.Leader()
			if l == 0 || (lead != 0 && l != lead) {
				agree = false
				break
			}
			lead = l
		}
		if agree && lead != 0 {
			for i, s := range c.srvs {
				if s != nil && s.ID() == lead {
					return i
				}
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.t.Fatalf("no leader within 20s")
	return -1
}

// waitApplied waits until member i has applied index.
func (c *testCluster) waitApplied(i int, index uint64) {
	c.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for c.srvs[i].applied.Load() < index {
		if time.Now().After(deadline) {
			c.t.Fatalf("member %d applied %d, want %d", i, c.srvs[i].applied.Load(), index)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

package backupd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/lifeboat-dev/lifeboat/backupd/internal/objstoretest"
	"github.com/lifeboat-dev/lifeboat/server"
)

func TestMain(m *testing.M) {
	code := m.Run()
	objstoretest.Cleanup()
	os.Exit(code)
}

func testLogger() *slog.Logger {
	if os.Getenv("LIFEBOAT_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// lifeboatCluster is n lifeboat members in this process on 127.0.0.1.
type lifeboatCluster struct {
	srvs      []*server.Server
	endpoints []string
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startLifeboat starts an n-member lifeboat cluster, stopped when the test
// ends. A port taken between choosing and binding it retries.
func startLifeboat(t *testing.T, n int) *lifeboatCluster {
	t.Helper()
	for attempt := 1; ; attempt++ {
		c, err := tryLifeboat(t, n)
		if err == nil {
			t.Cleanup(c.stop)
			return c
		}
		if attempt == 5 || !errors.Is(err, syscall.EADDRINUSE) {
			t.Fatal(err)
		}
	}
}

func tryLifeboat(t *testing.T, n int) (*lifeboatCluster, error) {
	dir := t.TempDir()
	ic := map[string][]string{}
	for i := range n {
		ic[fmt.Sprintf("m%d", i)] = []string{"http://127.0.0.1:" + strconv.Itoa(freePort(t))}
	}
	c := &lifeboatCluster{}
	for i := range n {
		name := fmt.Sprintf("m%d", i)
		cfg := server.NewConfig()
		cfg.Name = name
		cfg.DataDir = filepath.Join(dir, name)
		client := "http://127.0.0.1:" + strconv.Itoa(freePort(t))
		cfg.ListenClientURLs, cfg.AdvertiseClientURLs = []string{client}, []string{client}
		cfg.ListenPeerURLs, cfg.AdvertisePeerURLs = ic[name], ic[name]
		cfg.InitialCluster = ic
		cfg.InitialClusterToken = "backupd-" + t.Name()
		cfg.HeartbeatMs, cfg.ElectionMs = 50, 500
		cfg.Logger = testLogger().With("member", name)
		s, err := server.New(cfg)
		if err != nil {
			c.stop()
			return nil, err
		}
		c.srvs = append(c.srvs, s)
		c.endpoints = append(c.endpoints, client)
	}
	return c, nil
}

func (c *lifeboatCluster) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, s := range c.srvs {
		_ = s.Stop(ctx)
	}
}

// put writes n keys under prefix through a client of the endpoints, and
// waits for a leader first.
func put(t *testing.T, endpoints []string, cfg clientv3.Config, prefix string, n int) {
	t.Helper()
	cfg.Endpoints = endpoints
	cfg.Logger = zap.NewNop()
	if cfg.DialTimeout == 0 {
		cfg.DialTimeout = 5 * time.Second
	}
	cli, err := clientv3.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for i := range n {
		if _, err := cli.Put(ctx, fmt.Sprintf("%s/%05d", prefix, i), fmt.Sprintf("value %d of %s", i, prefix)); err != nil {
			t.Fatalf("put %d: %v", i, err)
		}
	}
}

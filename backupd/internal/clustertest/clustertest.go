// Package clustertest runs lifeboat clusters in the test process for
// backupd's tests, on 127.0.0.1 ports, and writes keys into clusters.
package clustertest

import (
	"context"
	"crypto/rand"
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
	"go.uber.org/zap"

	"github.com/lifeboat-dev/lifeboat/internal/freeport"
	"github.com/lifeboat-dev/lifeboat/server"
)

// Logger discards, unless LIFEBOAT_TEST_LOG is set.
func Logger() *slog.Logger {
	if os.Getenv("LIFEBOAT_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// Lifeboat is n lifeboat members in this process.
type Lifeboat struct {
	Servers   []*server.Server
	Endpoints []string
}

// StartLifeboat starts an n-member cluster with data dirs under dir. A
// port taken between choosing and binding it retries with new ports.
func StartLifeboat(dir string, n int) (*Lifeboat, error) {
	for attempt := 1; ; attempt++ {
		c, err := tryLifeboat(filepath.Join(dir, strconv.Itoa(attempt)), n)
		if err == nil || attempt == 5 || !errors.Is(err, syscall.EADDRINUSE) {
			return c, err
		}
	}
}

// NewLifeboat starts a cluster stopped when the test ends.
func NewLifeboat(t testing.TB, n int) *Lifeboat {
	t.Helper()
	c, err := StartLifeboat(t.TempDir(), n)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	return c
}

func freePorts(n int) ([]int, error) { return freeport.Pick(n) }

func tryLifeboat(dir string, n int) (*Lifeboat, error) {
	ports, err := freePorts(2 * n)
	if err != nil {
		return nil, err
	}
	ic := map[string][]string{}
	for i := range n {
		ic[fmt.Sprintf("m%d", i)] = []string{"http://127.0.0.1:" + strconv.Itoa(ports[2*i])}
	}
	c := &Lifeboat{}
	for i := range n {
		name := fmt.Sprintf("m%d", i)
		cfg := server.NewConfig()
		cfg.Name = name
		cfg.DataDir = filepath.Join(dir, name)
		client := "http://127.0.0.1:" + strconv.Itoa(ports[2*i+1])
		cfg.ListenClientURLs, cfg.AdvertiseClientURLs = []string{client}, []string{client}
		cfg.ListenPeerURLs, cfg.AdvertisePeerURLs = ic[name], ic[name]
		cfg.InitialCluster = ic
		cfg.InitialClusterToken = "backupd-test"
		cfg.HeartbeatMs, cfg.ElectionMs = 50, 500
		cfg.Logger = Logger().With("member", name)
		s, err := server.New(cfg)
		if err != nil {
			c.Stop()
			return nil, err
		}
		c.Servers = append(c.Servers, s)
		c.Endpoints = append(c.Endpoints, client)
	}
	return c, nil
}

// Stop stops every member.
func (c *Lifeboat) Stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, s := range c.Servers {
		_ = s.Stop(ctx)
	}
}

// Put writes n keys "<prefix>/%05d" through a client of cfg (its
// Endpoints and TLS), retrying while the cluster elects a leader.
func Put(cfg clientv3.Config, prefix string, n int) error {
	cfg.Logger = zap.NewNop()
	if cfg.DialTimeout == 0 {
		cfg.DialTimeout = 5 * time.Second
	}
	cli, err := clientv3.New(cfg)
	if err != nil {
		return err
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for i := range n {
		if _, err := cli.Put(ctx, fmt.Sprintf("%s/%05d", prefix, i), fmt.Sprintf("value %d of %s", i, prefix)); err != nil {
			return fmt.Errorf("put %d: %w", i, err)
		}
	}
	return nil
}

// PutRandom writes n keys "<prefix>/%05d" with size random bytes each, so
// that the db does not compress away.
func PutRandom(cfg clientv3.Config, prefix string, n, size int) error {
	cfg.Logger = zap.NewNop()
	if cfg.DialTimeout == 0 {
		cfg.DialTimeout = 5 * time.Second
	}
	cli, err := clientv3.New(cfg)
	if err != nil {
		return err
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	v := make([]byte, size)
	for i := range n {
		_, _ = rand.Read(v)
		if _, err := cli.Put(ctx, fmt.Sprintf("%s/%05d", prefix, i), string(v)); err != nil {
			return fmt.Errorf("put %d: %w", i, err)
		}
	}
	return nil
}

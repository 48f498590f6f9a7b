package server

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/metadata"
)

// benchmarkPut measures puts/s of one member with `clients` concurrent
// callers spread over a few connections, as etcd's benchmark tool does.
func benchmarkPut(b *testing.B, clients int) {
	runPuts(b, newBenchCluster(b).endpoint(0), clients)
}

// runPuts puts b.N keys to endpoint from `clients` goroutines over 8
// connections and reports puts/s.
func runPuts(b *testing.B, endpoint string, clients int) {
	const conns = 8
	clis := make([]*clientv3.Client, conns)
	for i := range clis {
		cli, err := clientv3.New(clientv3.Config{Endpoints: []string{endpoint}})
		if err != nil {
			b.Fatal(err)
		}
		defer cli.Close()
		clis[i] = cli
	}
	value := make([]byte, 256)
	var next atomic.Int64
	b.SetBytes(int64(len(value)))
	b.ResetTimer()
	var wg sync.WaitGroup
	for w := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cli := clis[w%conns]
			for {
				i := next.Add(1)
				if i > int64(b.N) {
					return
				}
				if _, err := cli.Put(context.Background(), fmt.Sprintf("key%08d", i%100000), string(value)); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "puts/s")
}

// newBenchCluster starts one member for a benchmark.
func newBenchCluster(b *testing.B) *testCluster {
	b.Helper()
	dir := b.TempDir()
	cfg := NewConfig()
	cfg.Name = "bench"
	cfg.DataDir = dir
	peer := "http://127.0.0.1:" + fmt.Sprint(freePort(b))
	client := "http://127.0.0.1:" + fmt.Sprint(freePort(b))
	cfg.ListenPeerURLs, cfg.AdvertisePeerURLs = []string{peer}, []string{peer}
	cfg.ListenClientURLs, cfg.AdvertiseClientURLs = []string{client}, []string{client}
	cfg.Logger = testLogger()
	s, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Stop(context.Background()) })
	c := &testCluster{t: b, cfgs: []Config{*cfg}, srvs: []*Server{s}}
	c.waitLeader()
	return c
}

func BenchmarkPut64Clients(b *testing.B)  { benchmarkPut(b, 64) }
func BenchmarkPut256Clients(b *testing.B) { benchmarkPut(b, 256) }

// BenchmarkPut3Members256Clients measures puts/s through the leader of a
// 3-member cluster (raft replication over the peer transport included).
func BenchmarkPut3Members256Clients(b *testing.B) {
	c := &testCluster{t: b}
	for attempt := 0; ; attempt++ {
		tc, err := tryTestCluster(b, 3, func(cfg *Config) { cfg.HeartbeatMs, cfg.ElectionMs = 100, 1000 })
		if err == nil {
			c = tc
			break
		}
		if attempt == 4 {
			b.Fatal(err)
		}
	}
	b.Cleanup(func() {
		for i := range c.srvs {
			c.stop(i)
		}
	})
	lead := c.waitLeader()
	runPuts(b, c.endpoint(lead), 256)
}

// BenchmarkAuthInfoFromCtx measures what auth adds to every request before
// raft: finding the caller of a simple token in the request's metadata (the
// headers clientv3 sends), from parallel callers as under load.
func BenchmarkAuthInfoFromCtx(b *testing.B) {
	c := newBenchCluster(b)
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{c.endpoint(0)}})
	if err != nil {
		b.Fatal(err)
	}
	defer cli.Close()
	ctx := context.Background()
	for i, step := range []func() error{
		func() error { _, err := cli.UserAdd(ctx, "root", "pw"); return err },
		func() error { _, err := cli.RoleAdd(ctx, "root"); return err },
		func() error { _, err := cli.UserGrantRole(ctx, "root", "root"); return err },
		func() error { _, err := cli.AuthEnable(ctx); return err },
	} {
		if err := step(); err != nil {
			b.Fatalf("auth setup step %d: %v", i, err)
		}
	}
	resp, err := cli.Authenticate(ctx, "root", "pw")
	if err != nil {
		b.Fatal(err)
	}
	md := metadata.Pairs(":authority", "127.0.0.1:2379", "content-type", "application/grpc",
		"user-agent", "etcdv3-client/v3.6.6 grpc-go/1.84.0", "token", resp.Token)
	rctx := metadata.NewIncomingContext(ctx, md)
	s := c.srvs[0]
	if ai, err := s.authInfoFromCtx(rctx); err != nil || ai == nil || ai.user != "root" {
		b.Fatalf("authInfoFromCtx = %+v, %v; want root", ai, err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.authInfoFromCtx(rctx); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

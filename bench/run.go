package bench

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// op issues one request for key.
type op func(ctx context.Context, cli *clientv3.Client, key string) error

func (c Config) op() op {
	val := strings.Repeat("v", c.ValSize)
	switch c.Workload {
	case Range:
		return func(ctx context.Context, cli *clientv3.Client, key string) error {
			_, err := cli.Get(ctx, key)
			return err
		}
	case RangeSerializable:
		return func(ctx context.Context, cli *clientv3.Client, key string) error {
			_, err := cli.Get(ctx, key, clientv3.WithSerializable())
			return err
		}
	case Txn:
		return func(ctx context.Context, cli *clientv3.Client, key string) error {
			_, err := cli.Txn(ctx).
				If(clientv3.Compare(clientv3.Version(key), ">", -1)).
				Then(clientv3.OpPut(key, val)).
				Commit()
			return err
		}
	default:
		return func(ctx context.Context, cli *clientv3.Client, key string) error {
			_, err := cli.Put(ctx, key, val)
			return err
		}
	}
}

// Run drives cfg.Endpoints with cfg's workload and returns the measurements.
// For the range workloads every key of the key space is written first; that
// preload is not measured. Failed requests are counted, not measured; Run
// fails only when the config is bad, the endpoints cannot be reached, or no
// request succeeded.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.RequestTimeout == 0 {
		cfg.RequestTimeout = 10 * time.Second
	}
	clients, err := dial(ctx, cfg, cfg.Conns)
	if err != nil {
		return nil, err
	}
	defer func() {
		for _, c := range clients {
			c.Close()
		}
	}()
	if cfg.Workload.reads() {
		if err := preload(ctx, cfg, clients); err != nil {
			return nil, err
		}
	}
	cpu, err := serverCPU(cfg)
	if err != nil {
		return nil, err
	}
	res := drive(ctx, cfg, clients, cfg.op())
	if res.ok() == 0 {
		return nil, fmt.Errorf("bench: %s on %s: no request succeeded (%d failed; first: %v)", cfg.Workload, strings.Join(cfg.Endpoints, ","), res.errors, res.firstErr)
	}
	rep := newReport(cfg, res)
	if cfg.ServerCPU != nil {
		after, err := serverCPU(cfg)
		if err != nil {
			return nil, err
		}
		rep.ServerCPUPerRequest = float64(after-cpu) / float64(time.Microsecond) / float64(rep.Requests)
	}
	return rep, nil
}

// serverCPU reads cfg.ServerCPU, 0 without it.
func serverCPU(cfg Config) (time.Duration, error) {
	if cfg.ServerCPU == nil {
		return 0, nil
	}
	d, err := cfg.ServerCPU()
	if err != nil {
		return 0, fmt.Errorf("bench: reading the servers' CPU time: %w", err)
	}
	return d, nil
}

// dial opens n clients on the run's endpoints (with its TLS and
// credentials) and checks that they answer.
func dial(ctx context.Context, cfg Config, n int) ([]*clientv3.Client, error) {
	endpoints := cfg.Endpoints
	var clients []*clientv3.Client
	for range n {
		c, err := clientv3.New(clientv3.Config{
			Endpoints:   endpoints,
			DialTimeout: 5 * time.Second,
			Logger:      zap.NewNop(),
			Context:     ctx,
			TLS:         cfg.TLS,
			Username:    cfg.Username,
			Password:    cfg.Password,
		})
		if err != nil {
			for _, c := range clients {
				c.Close()
			}
			return nil, fmt.Errorf("bench: connecting to %s: %w", strings.Join(endpoints, ","), err)
		}
		clients = append(clients, c)
	}
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := clients[0].Get(sctx, "lifeboat-bench-probe", clientv3.WithSerializable()); err != nil {
		for _, c := range clients {
			c.Close()
		}
		return nil, fmt.Errorf("bench: %s does not answer: %w", strings.Join(endpoints, ","), err)
	}
	return clients, nil
}

// preload writes every key of the key space once, with the run's clients.
func preload(ctx context.Context, cfg Config, clients []*clientv3.Client) error {
	val := strings.Repeat("v", cfg.ValSize)
	var next atomic.Int64
	g := make(chan error, cfg.Clients)
	for i := range cfg.Clients {
		go func() {
			cli := clients[i%len(clients)]
			for {
				n := int(next.Add(1) - 1)
				if n >= cfg.KeySpace {
					g <- nil
					return
				}
				rctx, cancel := context.WithTimeout(ctx, cfg.RequestTimeout)
				_, err := cli.Put(rctx, cfg.key(n), val)
				cancel()
				if err != nil {
					g <- fmt.Errorf("bench: preloading key %q: %w", cfg.key(n), err)
					return
				}
			}
		}()
	}
	var errs []error
	for range cfg.Clients {
		errs = append(errs, <-g)
	}
	return errors.Join(errs...)
}

// result is what the clients of one run measured.
type result struct {
	latencies []time.Duration // of the requests that succeeded
	errors    int
	firstErr  error
	elapsed   time.Duration
	stopped   string // "total" or "duration" (or "canceled")
}

func (r *result) ok() int { return len(r.latencies) }

// drive runs cfg.Clients requesters until Total requests were issued or
// Duration passed. A request cut short by the end of the run is neither
// counted nor measured.
func drive(ctx context.Context, cfg Config, clients []*clientv3.Client, do op) *result {
	runCtx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	end, _ := runCtx.Deadline()
	var (
		issued atomic.Int64
		mu     sync.Mutex
		res    = &result{stopped: "total"}
		wg     sync.WaitGroup
	)
	start := time.Now()
	for i := range cfg.Clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cli := clients[i%len(clients)]
			rng := rand.New(rand.NewPCG(uint64(start.UnixNano()), uint64(i)))
			lats := make([]time.Duration, 0, cfg.Total/cfg.Clients+1)
			var errs int
			var first error
			for issued.Add(1) <= int64(cfg.Total) && runCtx.Err() == nil {
				key := cfg.key(rng.IntN(cfg.KeySpace))
				rctx, rcancel := context.WithTimeout(runCtx, cfg.RequestTimeout)
				t0 := time.Now()
				err := do(rctx, cli, key)
				lat := time.Since(t0)
				rcancel()
				switch {
				case err == nil:
					lats = append(lats, lat)
				case runCtx.Err() != nil || !time.Now().Before(end):
					// The run ended while the request was in flight. The
					// server may see the deadline (and answer "request
					// timed out") before runCtx's timer fires here.
				default:
					errs++
					if first == nil {
						first = fmt.Errorf("%s %q: %w", cfg.Workload, key, err)
					}
				}
			}
			mu.Lock()
			res.latencies = append(res.latencies, lats...)
			res.errors += errs
			if res.firstErr == nil {
				res.firstErr = first
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	switch {
	case ctx.Err() != nil:
		res.stopped = "canceled"
	case runCtx.Err() != nil:
		res.stopped = "duration"
	}
	return res
}

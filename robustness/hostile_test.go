package robustness

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	grpcstatus "google.golang.org/grpc/status"

	"github.com/lifeboat-dev/lifeboat/internal/etcdproc"
)

// hostile is one kind of hostile client, run against one member.
type hostile struct {
	name string
	run  func(t *testing.T, h *hostileEnv)
}

type hostileEnv struct {
	c   *cluster
	m   *etcdproc.Member // the member under attack
	cli *clientv3.Client // to m alone, with no client-side size limit
}

// heapBound is how much the watchers that never read may grow a member's
// Go heap by: well under the 2.5 GiB of events they leave unread, which a
// member that buffered them would hold (etcd grows by about 110 MiB,
// lifeboat by about 320 MiB; both keep raft's log of the puts in memory).
const heapBound = 1 << 30

var hostiles = []hostile{
	{"request over max-request-bytes", func(t *testing.T, h *hostileEnv) {
		ctx := timeout(t, 30*time.Second)
		big := strings.Repeat("x", 1536*1024+1)
		_, err := h.cli.Put(ctx, "hostile/big", big)
		wantErr(t, err, rpctypes.ErrGRPCRequestTooLarge)
		// Past what gRPC takes at all (max-request-bytes and 512 KiB).
		_, err = h.cli.Put(ctx, "hostile/big", strings.Repeat("x", 3<<20))
		if grpcstatus.Code(err) != codes.ResourceExhausted {
			t.Errorf("a 3 MiB put: %v, want gRPC ResourceExhausted", err)
		}
	}},
	{"txn over max-txn-ops", func(t *testing.T, h *hostileEnv) {
		ctx := timeout(t, 30*time.Second)
		ops := func(n int) []clientv3.Op {
			var out []clientv3.Op
			for i := range n {
				out = append(out, clientv3.OpPut(fmt.Sprintf("hostile/txn/%03d", i), "v"))
			}
			return out
		}
		_, err := h.cli.Txn(ctx).Then(ops(129)...).Commit()
		wantErr(t, err, rpctypes.ErrGRPCTooManyOps)
		if _, err := h.cli.Txn(ctx).Then(ops(128)...).Commit(); err != nil {
			t.Errorf("a txn of 128 ops: %v", err)
		}
		_, err = h.cli.Txn(ctx).Then(clientv3.OpPut("hostile/dup", "1"), clientv3.OpPut("hostile/dup", "2")).Commit()
		wantErr(t, err, rpctypes.ErrGRPCDuplicateKey)
	}},
	{"unknown leases", func(t *testing.T, h *hostileEnv) {
		ctx := timeout(t, 30*time.Second)
		const id = clientv3.LeaseID(0x0bad1ea5e)
		_, err := h.cli.Put(ctx, "hostile/lease", "v", clientv3.WithLease(id))
		wantErr(t, err, rpctypes.ErrGRPCLeaseNotFound)
		_, err = h.cli.Revoke(ctx, id)
		wantErr(t, err, rpctypes.ErrGRPCLeaseNotFound)
		_, err = h.cli.KeepAliveOnce(ctx, id)
		if !errors.Is(err, rpctypes.ErrLeaseNotFound) {
			t.Errorf("keep-alive of an unknown lease: %v, want %v", err, rpctypes.ErrLeaseNotFound)
		}
		ttl, err := h.cli.TimeToLive(ctx, id)
		if err != nil || ttl.TTL != -1 {
			t.Errorf("time-to-live of an unknown lease: %+v, %v; want TTL -1", ttl, err)
		}
	}},
	{"10,000 watchers on one member", func(t *testing.T, h *hostileEnv) {
		ctx := timeout(t, 2*time.Minute)
		wctx, closeStreams := context.WithCancel(ctx)
		defer closeStreams()
		before := h.watchers(t, ctx)
		const streams, each = 10, 1000
		var ws []pb.Watch_WatchClient
		for range streams {
			ws = append(ws, h.watchStream(t, wctx))
		}
		for _, w := range ws {
			for range each {
				if err := w.Send(createWatch("hostile/many", 0)); err != nil {
					t.Fatal(err)
				}
			}
		}
		for _, w := range ws {
			recvUntil(t, w, each, func(r *pb.WatchResponse) int { return b2i(r.Created) })
		}
		h.waitWatchers(t, ctx, func(n int) bool { return n >= before+streams*each })
		if _, err := h.cli.Put(ctx, "hostile/many", "v"); err != nil {
			t.Fatal(err)
		}
		for _, w := range ws {
			recvUntil(t, w, each, func(r *pb.WatchResponse) int { return len(r.Events) })
		}
		h.checkServes(t, ctx)
		closeStreams()
		h.waitWatchers(t, ctx, func(n int) bool { return n <= before })
	}},
	{"watchers that never read", func(t *testing.T, h *hostileEnv) {
		ctx := timeout(t, 2*time.Minute)
		// Each on its own connection, so that gRPC flow control stops the
		// member's sends to it alone.
		const watchers = 50
		before := h.watchers(t, ctx)
		var conns []*grpc.ClientConn
		for range watchers {
			conn, err := grpc.NewClient(hostOf(t, h.m.ClientURL), grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				t.Fatal(err)
			}
			conns = append(conns, conn)
			w, err := pb.NewWatchClient(conn).Watch(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if err := w.Send(createWatch("hostile/slow/", 1)); err != nil {
				t.Fatal(err)
			}
		}
		h.waitWatchers(t, ctx, func(n int) bool { return n >= before+watchers })
		heap := func() int64 { return int64(h.metric(t, ctx, "go_memstats_heap_inuse_bytes")) }
		baseRSS, baseHeap := rss(t, h.m), heap()
		value := strings.Repeat("v", 64<<10)
		const puts = 800 // 50 MiB of events for every watcher
		for i := range puts {
			if _, err := h.cli.Put(ctx, fmt.Sprintf("hostile/slow/%d", i%20), value); err != nil {
				t.Fatalf("put %d while watchers do not read: %v", i, err)
			}
		}
		h.checkServes(t, ctx)
		grownRSS, grownHeap := rss(t, h.m)-baseRSS, heap()-baseHeap
		t.Logf("%d watchers that never read %d MiB of events each: heap in use grew by %d MiB, resident memory by %d MiB (the db too)",
			watchers, puts*len(value)>>20, grownHeap>>20, grownRSS>>20)
		if grownHeap > heapBound {
			t.Errorf("heap in use grew by %d MiB, more than %d MiB", grownHeap>>20, heapBound>>20)
		}
		// Gone, their watchers are cancelled.
		for _, c := range conns {
			c.Close()
		}
		h.waitWatchers(t, ctx, func(n int) bool { return n <= before })
	}},
	{"thousands of connections opened and dropped", func(t *testing.T, h *hostileEnv) {
		ctx := timeout(t, 2*time.Minute)
		base := fds(t, h.m)
		addr := hostOf(t, h.m.ClientURL)
		var wg sync.WaitGroup
		sem := make(chan struct{}, 200)
		for i := range 3000 {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				c, err := net.DialTimeout("tcp", addr, 5*time.Second)
				if err != nil {
					return
				}
				defer c.Close()
				switch i % 3 {
				case 1: // an HTTP/2 preface, then garbage
					io.WriteString(c, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\xff\xff\xff\xff")
				case 2: // half an HTTP/1 request
					io.WriteString(c, "GET /health HTTP/1.1\r\nHost: x\r\n")
				}
			}()
		}
		wg.Wait()
		// And gRPC clients that do one request and go.
		for range 200 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				cli, err := clientv3.New(clientv3.Config{Endpoints: []string{addr}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
				if err != nil {
					return
				}
				defer cli.Close()
				cli.Get(ctx, "hostile/conn")
			}()
		}
		wg.Wait()
		h.checkServes(t, ctx)
		var n int
		for ctx.Err() == nil {
			if n = fds(t, h.m); n <= base+20 {
				break
			}
			sleep(ctx, 200*time.Millisecond)
		}
		if ctx.Err() != nil {
			t.Errorf("the member holds %d file descriptors, %d before the connections", n, base)
		}
	}},
}

// TestHostileClients attacks one member of each system with each hostile
// client: it must answer with etcd's errors, keep its memory bounded,
// release what the clients held, and keep serving.
func TestHostileClients(t *testing.T) {
	for _, sys := range []system{etcdSystem, lifeboatSystem} {
		t.Run(sys.name, func(t *testing.T) {
			c := startCluster(t, sys)
			m := c.members()[0]
			cli, err := clientv3.New(clientv3.Config{Endpoints: []string{hostOf(t, m.ClientURL)}, DialTimeout: 5 * time.Second,
				Logger: zap.NewNop(), MaxCallSendMsgSize: 16 << 20})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { cli.Close() })
			h := &hostileEnv{c: c, m: m, cli: cli}
			for _, hc := range hostiles {
				t.Run(hc.name, func(t *testing.T) {
					hc.run(t, h)
					if !m.Running() {
						t.Fatalf("the member died: %s", m.LogTail(2000))
					}
				})
			}
		})
	}
}

func timeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func wantErr(t *testing.T, err, want error) {
	t.Helper()
	if rpctypes.ErrorDesc(err) != rpctypes.ErrorDesc(want) {
		t.Errorf("got %v, want etcd's %v", err, want)
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func createWatch(key string, start int64) *pb.WatchRequest {
	return &pb.WatchRequest{RequestUnion: &pb.WatchRequest_CreateRequest{CreateRequest: &pb.WatchCreateRequest{
		Key: []byte(key), RangeEnd: []byte(clientv3.GetPrefixRangeEnd(key)), StartRevision: start}}}
}

// watchStream opens a gRPC watch stream on the member.
func (h *hostileEnv) watchStream(t *testing.T, ctx context.Context) pb.Watch_WatchClient {
	t.Helper()
	w, err := pb.NewWatchClient(h.cli.ActiveConnection()).Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// recvUntil reads w until count has added up to n.
func recvUntil(t *testing.T, w pb.Watch_WatchClient, n int, count func(*pb.WatchResponse) int) {
	t.Helper()
	for got := 0; got < n; {
		r, err := w.Recv()
		if err != nil {
			t.Fatalf("after %d of %d: %v", got, n, err)
		}
		if r.Canceled {
			t.Fatalf("watch canceled: %s", r.CancelReason)
		}
		got += count(r)
	}
}

// checkServes checks that the member still answers a put and a
// linearizable get.
func (h *hostileEnv) checkServes(t *testing.T, ctx context.Context) {
	t.Helper()
	if _, err := h.cli.Put(ctx, "hostile/alive", "yes"); err != nil {
		t.Fatalf("the member no longer serves puts: %v", err)
	}
	if r, err := h.cli.Get(ctx, "hostile/alive"); err != nil || len(r.Kvs) != 1 {
		t.Fatalf("the member no longer serves gets: %v %v", r, err)
	}
}

// watchers reads the member's etcd_debugging_mvcc_watcher_total.
func (h *hostileEnv) watchers(t *testing.T, ctx context.Context) int {
	t.Helper()
	return int(h.metric(t, ctx, "etcd_debugging_mvcc_watcher_total"))
}

// metric reads one metric of the member's /metrics.
func (h *hostileEnv) metric(t *testing.T, ctx context.Context, name string) float64 {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.m.ClientURL+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("metrics: %v", err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("metrics: %q: %v", sc.Text(), err)
			}
			return f
		}
	}
	t.Fatalf("metrics: no %s (%v)", name, sc.Err())
	return 0
}

// waitWatchers waits until the member's watcher count satisfies ok.
func (h *hostileEnv) waitWatchers(t *testing.T, ctx context.Context, ok func(int) bool) {
	t.Helper()
	n := 0
	for ctx.Err() == nil {
		if n = h.watchers(t, ctx); ok(n) {
			return
		}
		sleep(ctx, 100*time.Millisecond)
	}
	t.Fatalf("the member reports %d watchers", n)
}

// rss is the member's resident memory in bytes.
func rss(t *testing.T, m *etcdproc.Member) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", m.Pid()))
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatalf("VmRSS %q: %v", v, err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

// fds counts the member's open file descriptors.
func fds(t *testing.T, m *etcdproc.Member) int {
	t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", m.Pid()))
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	return len(ents)
}

package server

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/lifeboat-dev/lifeboat/internal/netproxy"
)

// TestWatchSurvivesSnapshotInstall cuts a follower off from its peers
// while a gRPC Watch stream is open on it, lets the leader compact its log
// far past it, and reconnects it: the follower installs the leader's
// snapshot, and the same stream goes on, delivering every put once and in
// order.
func TestWatchSurvivesSnapshotInstall(t *testing.T) {
	// The others reach each member through a proxy at its advertised peer
	// URL; refusing the links into a member cuts it off from receiving raft
	// messages and snapshots while it keeps serving clients and sending.
	c, peers := newProxiedCluster(t, 3, func(cfg *Config) {
		cfg.SnapshotCount = 20
		cfg.SnapshotCatchUpEntries = 5
	})
	lead := c.waitLeader()
	f := (lead + 1) % 3
	ctx := ctxT(t)

	conn, err := grpc.NewClient(strings.TrimPrefix(c.endpoint(f), "http://"),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := pb.NewWatchClient(conn).Watch(wctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&pb.WatchRequest{RequestUnion: &pb.WatchRequest_CreateRequest{
		CreateRequest: &pb.WatchCreateRequest{Key: []byte("w/"), RangeEnd: []byte("w0")},
	}}); err != nil {
		t.Fatal(err)
	}
	created, err := stream.Recv()
	if err != nil || !created.Created || created.Canceled {
		t.Fatalf("create: %v %v", created, err)
	}
	// Recv errors end the stream: a snapshot install must not cause one.
	resps := make(chan *pb.WatchResponse, 1024)
	recvErr := make(chan error, 1)
	go func() {
		for {
			r, err := stream.Recv()
			if err != nil {
				recvErr <- err
				return
			}
			resps <- r
		}
	}()
	var keys []string
	lastRev := int64(0)
	bound := time.After(30 * time.Second)
	// await reads the stream until it has delivered n events in all.
	await := func(n int) {
		t.Helper()
		for len(keys) < n {
			select {
			case r := <-resps:
				if r.WatchId != created.WatchId || r.Canceled || r.CompactRevision != 0 {
					t.Fatalf("unexpected response %v", r)
				}
				for _, ev := range r.Events {
					if ev.Kv.ModRevision <= lastRev {
						t.Fatalf("event %s at revision %d after revision %d", ev.Kv.Key, ev.Kv.ModRevision, lastRev)
					}
					lastRev = ev.Kv.ModRevision
					keys = append(keys, string(ev.Kv.Key))
				}
			case err := <-recvErr:
				t.Fatalf("watch stream ended after %d events: %v", len(keys), err)
			case <-bound:
				t.Fatalf("%d events of %d", len(keys), n)
			}
		}
	}

	cli := c.client(lead)
	put := func(from, to int) {
		t.Helper()
		for i := from; i < to; i++ {
			if _, err := cli.Put(ctx, fmt.Sprintf("w/%03d", i), "v"); err != nil {
				t.Fatal(err)
			}
		}
	}
	put(0, 10)
	await(10)

	before := c.srvs[f].st.Load()
	peers.Set(netproxy.Anyone, c.cfgs[f].Name, netproxy.Fault{Refuse: true})
	put(10, 300)
	peers.Heal()
	c.waitApplied(f, c.srvs[lead].applied.Load())
	if c.srvs[f].st.Load() == before {
		t.Fatal("the follower caught up without installing a snapshot")
	}
	// The stream is ordered and revisions must rise: a late duplicate of
	// an earlier event would arrive before these and fail await.
	put(300, 311)
	await(311)
	for i, k := range keys {
		if want := fmt.Sprintf("w/%03d", i); k != want {
			t.Fatalf("event %d is for %s, want %s (each put once, in order)", i, k, want)
		}
	}
	select {
	case r := <-resps:
		t.Errorf("unexpected response after the last put: %v", r)
	case err := <-recvErr:
		t.Errorf("watch stream ended: %v", err)
	default:
	}
}

// newProxiedCluster starts an n-member cluster (configured by configure)
// whose members reach each other through proxies at their advertised peer
// URLs: refusing the links into a member cuts it off from raft messages
// and snapshots while it keeps serving clients and sending.
func newProxiedCluster(t *testing.T, n int, configure func(*Config)) (*testCluster, *netproxy.Network) {
	t.Helper()
	peers := netproxy.New(nil)
	t.Cleanup(peers.Close)
	c := newTestCluster(t, n, func(cfg *Config) {
		configure(cfg)
		u, err := url.Parse(cfg.AdvertisePeerURLs[0])
		if err != nil {
			t.Fatal(err)
		}
		listen := "127.0.0.1:" + strconv.Itoa(freePort(t))
		cfg.ListenPeerURLs = []string{"http://" + listen}
		if _, err := peers.Proxy(cfg.Name, u.Host, listen); err != nil {
			t.Fatal(err)
		}
	})
	return c, peers
}

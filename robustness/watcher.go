package robustness

import (
	"context"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// WatcherConfig shapes a watcher.
type WatcherConfig struct {
	// Progress is how often the watcher asks for a progress notification.
	Progress time.Duration
	// Silence ends a watch that answered nothing for this long (a paused
	// or cut-off member); the watcher reopens it on the next member.
	Silence time.Duration
	// Reopen is how often, on average, the watcher cancels its watch and
	// opens a new one from an older revision.
	Reopen time.Duration
}

// DefaultWatcher is the watchers' configuration in a scenario.
var DefaultWatcher = WatcherConfig{Progress: 300 * time.Millisecond, Silence: 4 * time.Second, Reopen: 3 * time.Second}

// Watcher keeps one watch with prev_kv on KeyPrefix open, first from
// revision 1. When a watch fails it reopens it on the next member from the
// revision after the last event it saw (from the compact revision if it
// was compacted); now and then it reopens one from an older revision.
// Every watch and response is recorded.
type Watcher struct {
	ID        int
	Rec       *Recorder
	Endpoints func() []string
	Config    WatcherConfig
	Seed      uint64

	synced atomic.Int64 // the newest revision a progress notification covered
}

// Run watches until ctx ends.
func (wr *Watcher) Run(ctx context.Context) {
	rnd := rand.New(rand.NewPCG(wr.Seed, uint64(wr.ID)))
	next := int64(1)
	for i := wr.ID; ctx.Err() == nil; i++ {
		eps := wr.Endpoints()
		if len(eps) == 0 {
			return
		}
		w := &Watch{Client: wr.ID, Key: KeyPrefix, End: keyPrefixEnd, Start: next, PrevKV: true, Opened: wr.Rec.Now(), Endpoint: eps[i%len(eps)]}
		wr.Rec.AddWatch(w)
		next = wr.watchOnce(ctx, w, rnd)
		if ctx.Err() == nil && len(w.Responses) > 0 && w.Responses[len(w.Responses)-1].Err != "" {
			// Failed: let a restarting member come back before the next try.
			sleepCtx(ctx, 100*time.Millisecond)
		}
	}
}

// WaitSynced waits until a progress notification has covered rev, or ctx
// ends.
func (wr *Watcher) WaitSynced(ctx context.Context, rev int64) {
	for ctx.Err() == nil && wr.synced.Load() < rev {
		sleepCtx(ctx, 50*time.Millisecond)
	}
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// watchOnce runs the watch w and returns where the next one starts.
func (wr *Watcher) watchOnce(ctx context.Context, w *Watch, rnd *rand.Rand) int64 {
	rec, cfg := wr.Rec, wr.Config
	next := w.Start
	fail := func(err error) int64 {
		w.Responses = append(w.Responses, WatchResponse{Time: rec.Now(), Err: errString(err)})
		return next
	}
	conn, err := grpc.NewClient(w.Endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return fail(err)
	}
	defer conn.Close()
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := pb.NewWatchClient(conn).Watch(sctx)
	if err != nil {
		return fail(err)
	}
	if err := stream.Send(&pb.WatchRequest{RequestUnion: &pb.WatchRequest_CreateRequest{CreateRequest: &pb.WatchCreateRequest{
		Key: []byte(w.Key), RangeEnd: rangeEnd(w.End), StartRevision: w.Start, PrevKv: w.PrevKV,
	}}}); err != nil {
		return fail(err)
	}
	type recv struct {
		r   *pb.WatchResponse
		err error
	}
	rc := make(chan recv, 16)
	go func() {
		for {
			r, err := stream.Recv()
			select {
			case rc <- recv{r, err}:
			case <-sctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	progress := time.NewTicker(cfg.Progress)
	defer progress.Stop()
	reopen := time.NewTimer(time.Duration(rnd.Int64N(int64(2 * cfg.Reopen))))
	defer reopen.Stop()
	heard := time.Now()
	for {
		select {
		case <-ctx.Done():
			return next
		case <-reopen.C:
			// Reopen from up to 50 revisions before the next one.
			return max(1, next-1-rnd.Int64N(50))
		case <-progress.C:
			if time.Since(heard) > cfg.Silence {
				return fail(context.DeadlineExceeded)
			}
			if err := stream.Send(&pb.WatchRequest{RequestUnion: &pb.WatchRequest_ProgressRequest{ProgressRequest: &pb.WatchProgressRequest{}}}); err != nil {
				return fail(err)
			}
		case m := <-rc:
			if m.err != nil {
				return fail(m.err)
			}
			heard = time.Now()
			r := m.r
			if r.Created && !r.Canceled {
				continue
			}
			resp := WatchResponse{Time: rec.Now(), Rev: r.Header.GetRevision(), Compacted: r.CompactRevision, Canceled: r.Canceled}
			if r.Canceled && r.CompactRevision == 0 {
				resp.Err = "canceled: " + r.CancelReason
			}
			for _, e := range r.Events {
				ev := Event{Delete: e.Type == mvccpb.DELETE, KV: fromPB(e.Kv)}
				if e.PrevKv != nil {
					p := fromPB(e.PrevKv)
					ev.Prev = &p
				}
				resp.Events = append(resp.Events, ev)
				next = e.Kv.ModRevision + 1
			}
			w.Responses = append(w.Responses, resp)
			if resp.Progress() && resp.Rev > wr.synced.Load() {
				wr.synced.Store(resp.Rev)
			}
			if r.Canceled {
				if r.CompactRevision != 0 {
					return r.CompactRevision
				}
				return next
			}
		}
	}
}

func errString(err error) string {
	if s := rpctypes.ErrorDesc(err); s != "" {
		return s
	}
	return err.Error()
}

// RunCompactor compacts the cluster every interval to keep revisions
// below the newest one a client saw, until ctx ends, recording each
// compaction.
func RunCompactor(ctx context.Context, rec *Recorder, cli *clientv3.Client, every time.Duration, keep int64) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	last := int64(0)
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		rev := rec.MaxRev() - keep
		if rev <= last {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		c := Compaction{Rev: rev, Call: rec.Now()}
		_, err := cli.Compact(cctx, rev)
		cancel()
		c.Return = rec.Now()
		if err != nil {
			c.Err = errString(err)
			if !strings.Contains(c.Err, "compacted") {
				c.Return = Infinity
			}
		}
		rec.AddCompaction(c)
		if err == nil {
			last = rev
		}
	}
}

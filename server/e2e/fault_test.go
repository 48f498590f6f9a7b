package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/lifeboat-dev/lifeboat/internal/interoptest"
	"github.com/lifeboat-dev/lifeboat/walkit"
)

// leaderIndex returns the index in c.Members of the member that leads.
func leaderIndex(t testing.TB, c *interoptest.EtcdCluster) int {
	t.Helper()
	cli := newClient(t, c.Endpoints()...)
	ctx := timeout(t, 30*time.Second)
	for ctx.Err() == nil {
		for i, ep := range c.Endpoints() {
			if !c.Members[i].Running() {
				continue
			}
			st, err := cli.Status(ctx, ep)
			if err == nil && st.Leader != 0 && st.Leader == st.Header.MemberId {
				return i
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("e2e: no member of %v leads", c.Endpoints())
	return -1
}

// writer puts distinct keys from several goroutines and remembers the
// acknowledged ones. Every loop is bounded by a count and by its context.
type writer struct {
	prefix string
	mu     sync.Mutex
	acked  map[string]string
	next   atomic.Int64
	failed atomic.Int64
}

func newWriter(prefix string) *writer { return &writer{prefix: prefix, acked: map[string]string{}} }

// write issues up to n puts with the given concurrency through cli; failed
// puts (e.g. during an election) are counted, not retried.
func (w *writer) write(ctx context.Context, cli *clientv3.Client, n, concurrency int) {
	limit := w.next.Load() + int64(n)
	var wg sync.WaitGroup
	for range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := w.next.Add(1)
				if i > limit {
					return
				}
				k, v := fmt.Sprintf("%s/%06d", w.prefix, i), fmt.Sprintf("value-%d", i)
				rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				_, err := cli.Put(rctx, k, v)
				cancel()
				if err != nil {
					w.failed.Add(1)
					continue
				}
				w.mu.Lock()
				w.acked[k] = v
				w.mu.Unlock()
			}
		}()
	}
	wg.Wait()
}

// count returns the number of acknowledged puts.
func (w *writer) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.acked)
}

// checkAll reads the prefix from each endpoint with a serializable read (the
// member's own store) and fails on any acknowledged key missing or wrong.
func (w *writer) checkAll(t *testing.T, endpoints []string) {
	t.Helper()
	waitSameRevision(t, endpoints)
	ctx := timeout(t, 30*time.Second)
	for _, ep := range endpoints {
		resp, err := newClient(t, ep).Get(ctx, w.prefix+"/", clientv3.WithPrefix(), clientv3.WithSerializable())
		if err != nil {
			t.Fatalf("reading %s/ from %s: %v", w.prefix, ep, err)
		}
		got := map[string]string{}
		for _, kv := range resp.Kvs {
			got[string(kv.Key)] = string(kv.Value)
		}
		w.mu.Lock()
		var missing int
		var example string
		for k, v := range w.acked {
			if got[k] != v {
				missing++
				example = fmt.Sprintf("%s = %q, want %q", k, got[k], v)
			}
		}
		w.mu.Unlock()
		if missing > 0 {
			t.Errorf("member %s lost %d of %d acknowledged writes (%d failed puts not counted); e.g. %s", ep, missing, w.count(), w.failed.Load(), example)
		}
	}
}

// TestKillLeaderDuringWrites kills -9 the leader while clients write, then
// restarts it: every acknowledged put must be on every member.
func TestKillLeaderDuringWrites(t *testing.T) {
	forEachSystem(t, func(t *testing.T, bin string) {
		c := startCluster(t, bin, interoptest.Options{})
		ctx := timeout(t, 2*time.Minute)
		cli := newClient(t, c.Endpoints()...)
		w := newWriter("acked")
		done := make(chan struct{})
		go func() {
			defer close(done)
			w.write(ctx, cli, 3000, 16)
		}()
		for w.count() < 300 && ctx.Err() == nil {
			time.Sleep(10 * time.Millisecond)
		}
		l := c.Members[leaderIndex(t, c)]
		if err := l.Kill(); err != nil {
			t.Fatal(err)
		}
		<-done
		if w.count() == 0 {
			t.Fatalf("no put was acknowledged (%d failed)", w.failed.Load())
		}
		if err := l.Start(); err != nil {
			t.Fatal(err)
		}
		if err := l.WaitHealthy(ctx); err != nil {
			t.Fatal(err)
		}
		t.Logf("%d puts acknowledged, %d failed around the kill", w.count(), w.failed.Load())
		w.checkAll(t, c.Endpoints())
	})
}

// TestLaggingMemberCatchesUp stops a follower, writes, and restarts it. With
// the default snapshot count it catches up from the leader's log; with
// --snapshot-count 100 and more writes than the 5000 entries etcd keeps
// after a snapshot, the leader must send it a snapshot.
func TestLaggingMemberCatchesUp(t *testing.T) {
	tests := []struct {
		name          string
		snapshotCount int
		writes        int
	}{
		{"by log", 0, 500},
		{"by snapshot", 100, 6000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			forEachSystem(t, func(t *testing.T, bin string) {
				c := startCluster(t, bin, interoptest.Options{SnapshotCount: tt.snapshotCount})
				ctx := timeout(t, 3*time.Minute)
				lead := leaderIndex(t, c)
				f := c.Members[(lead+1)%len(c.Members)]
				if err := f.Kill(); err != nil {
					t.Fatal(err)
				}
				var live []string
				for i, m := range c.Members {
					if m != f {
						live = append(live, c.Endpoints()[i])
					}
				}
				w := newWriter("lag")
				w.write(ctx, newClient(t, live...), tt.writes, 32)
				if w.count() != tt.writes {
					t.Fatalf("%d of %d puts acknowledged with a quorum up (%d failed)", w.count(), tt.writes, w.failed.Load())
				}
				if err := f.Start(); err != nil {
					t.Fatal(err)
				}
				if err := f.WaitHealthy(ctx); err != nil {
					t.Fatal(err)
				}
				w.checkAll(t, c.Endpoints())
			})
		})
	}
}

// TestTornWALTail kills -9 a follower after writes, appends a HardState to
// its WAL with walkit's writer and cuts that record in half, as a crash in
// the middle of writing it would, and restarts the member: it must repair
// the tail, start, and catch up. (The torn record is one the member never
// acknowledged; tearing an acknowledged entry instead would lose what raft
// counts as durable, and real etcd panics on that by design.)
func TestTornWALTail(t *testing.T) {
	forEachSystem(t, func(t *testing.T, bin string) {
		c := startCluster(t, bin, interoptest.Options{})
		ctx := timeout(t, 2*time.Minute)
		w := newWriter("torn")
		w.write(ctx, newClient(t, c.Endpoints()...), 200, 8)
		waitRaftSettled(t, c.Endpoints())
		f := c.Members[(leaderIndex(t, c)+1)%len(c.Members)]
		if err := f.Kill(); err != nil {
			t.Fatal(err)
		}
		walDir := filepath.Join(f.DataDir, "member", "wal")
		appendHardState(t, walDir)
		tearLastRecord(t, walDir)
		if err := f.Start(); err != nil {
			t.Fatal(err)
		}
		if err := f.WaitHealthy(ctx); err != nil {
			t.Fatal(err)
		}
		w.write(ctx, newClient(t, c.Endpoints()...), 50, 4)
		w.checkAll(t, c.Endpoints())
	})
}

// appendHardState opens the WAL of a stopped member for append and writes
// its current HardState again, as the member would on its next commit.
func appendHardState(t *testing.T, walDir string) {
	t.Helper()
	snaps, err := walkit.ValidSnapshotEntries(nil, walDir)
	if err != nil || len(snaps) == 0 {
		t.Fatalf("snapshots in %s: %v (%d found)", walDir, err, len(snaps))
	}
	wal, err := walkit.Open(nil, walDir, snaps[len(snaps)-1])
	if err != nil {
		t.Fatal(err)
	}
	_, st, _, err := wal.ReadAll()
	if err == nil {
		err = wal.Save(st, nil)
	}
	if cerr := wal.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatalf("appending a HardState to %s: %v", walDir, err)
	}
	if _, rec := lastRecord(t, walDir); rec.Type != walkit.StateType {
		t.Fatalf("after appending a HardState, the last record of %s is %v", walDir, rec.Type)
	}
}

// waitRaftSettled waits until every member has applied the last raft entry
// any of them holds (Status raftAppliedIndex equal everywhere to the highest
// raftIndex).
func waitRaftSettled(t *testing.T, endpoints []string) {
	t.Helper()
	cli := newClient(t, endpoints...)
	ctx := timeout(t, 30*time.Second)
	var last string
	for ctx.Err() == nil {
		var top uint64
		var applied []uint64
		for _, ep := range endpoints {
			st, err := cli.Status(ctx, ep)
			if err != nil {
				last = err.Error()
				break
			}
			top = max(top, st.RaftIndex)
			applied = append(applied, st.RaftAppliedIndex)
		}
		if len(applied) == len(endpoints) && allEqual(applied) && applied[0] == top {
			return
		}
		last = fmt.Sprintf("applied %v, highest index %d", applied, top)
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("e2e: members of %v never settled: %s", endpoints, last)
}

// lastRecord returns the position and content of the last intact record of
// walDir.
func lastRecord(t *testing.T, walDir string) (walkit.Position, walkit.Record) {
	t.Helper()
	r, err := walkit.NewReader(walDir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var last walkit.Position
	var lastRec walkit.Record
	for {
		rec, pos, err := r.Next()
		if err != nil {
			break // io.EOF, or damage after the last good record
		}
		last, lastRec = pos, rec
	}
	if last.Segment == "" {
		t.Fatalf("no record in %s", walDir)
	}
	return last, lastRec
}

// tearLastRecord truncates the last segment of walDir in the middle of its
// last record: its length field stays, its body is cut.
func tearLastRecord(t *testing.T, walDir string) {
	t.Helper()
	last, lastRec := lastRecord(t, walDir)
	cut := last.Offset + 8 + int64(len(lastRec.Data))/2 + 1
	if err := os.Truncate(filepath.Join(walDir, last.Segment), cut); err != nil {
		t.Fatal(err)
	}
	t.Logf("tore %s at %d: record %d (%v, %d data bytes) at offset %d", last.Segment, cut, last.Record, lastRec.Type, len(lastRec.Data), last.Offset)
}

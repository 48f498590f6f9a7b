package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.etcd.io/bbolt"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/lifeboat-dev/lifeboat/snapkit/schema"
)

func TestRequestLimits(t *testing.T) {
	c := newTestCluster(t, 1, func(cfg *Config) { cfg.MaxRequestBytes, cfg.MaxTxnOps = 4096, 2 })
	c.waitLeader()
	cli := c.client()
	ctx := ctxT(t)
	_, err := cli.Put(ctx, "big", strings.Repeat("x", 8192))
	if !errors.Is(err, rpctypes.ErrRequestTooLarge) || err.Error() != "etcdserver: request is too large" {
		t.Fatalf("large put: %v", err)
	}
	ops := []clientv3.Op{clientv3.OpPut("a", "1"), clientv3.OpPut("b", "1"), clientv3.OpPut("c", "1")}
	_, err = cli.Txn(ctx).Then(ops...).Commit()
	if !errors.Is(err, rpctypes.ErrTooManyOps) || err.Error() != "etcdserver: too many operations in txn request" {
		t.Fatalf("txn of 3 ops with --max-txn-ops 2: %v", err)
	}
	if _, err := cli.Txn(ctx).Then(ops[:2]...).Commit(); err != nil {
		t.Fatalf("txn of 2 ops: %v", err)
	}
}

// waitCompacted waits until revision rev reads as compacted.
func waitCompacted(t *testing.T, cli *clientv3.Client, rev int64) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, err := cli.Get(ctxT(t), "k", clientv3.WithRev(rev))
		if errors.Is(err, rpctypes.ErrCompacted) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("revision %d never compacted (last: %v)", rev, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestAutoCompaction(t *testing.T) {
	old := revisionCompactInterval
	revisionCompactInterval = 100 * time.Millisecond
	t.Cleanup(func() { revisionCompactInterval = old })
	tests := []struct {
		mode, retention string
	}{
		{"periodic", "1s"},
		{"revision", "5"},
	}
	for _, tc := range tests {
		t.Run(tc.mode, func(t *testing.T) {
			c := newTestCluster(t, 1, func(cfg *Config) { cfg.AutoCompactionMode, cfg.AutoCompactionRetention = tc.mode, tc.retention })
			c.waitLeader()
			cli := c.client()
			rev := putKeys(t, cli, "k", 10)
			if tc.mode == "revision" {
				// Compacts to the revision less 5.
				waitCompacted(t, cli, rev-6)
				if _, err := cli.Get(ctxT(t), "k", clientv3.WithRev(rev-5)); err != nil {
					t.Fatalf("revision %d within the retention: %v", rev-5, err)
				}
				return
			}
			waitCompacted(t, cli, rev-1)
		})
	}
}

func TestCompactionFlagErrors(t *testing.T) {
	for _, tc := range []struct{ mode, ret, want string }{
		{"daily", "1", "--auto-compaction-mode"},
		{"periodic", "soon", "--auto-compaction-retention"},
		{"revision", "1h", "--auto-compaction-retention"},
		{"periodic", "-1", "negative"},
	} {
		cfg := Config{AutoCompactionMode: tc.mode, AutoCompactionRetention: tc.ret}
		if _, err := cfg.compaction(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("%s %s: %v, want %q", tc.mode, tc.ret, err, tc.want)
		}
	}
}

// corruptValue rewrites the value of the newest revision of key in a
// stopped member's db.
func corruptValue(t *testing.T, cfg Config, key string) {
	t.Helper()
	db, err := schema.Open(cfg.Layout().DBPath(), schema.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bbolt.Tx) error {
		b := schema.Key(tx)
		var lastK []byte
		var last mvccpb.KeyValue
		if err := b.ForEach(func(k, v []byte) error {
			var kv mvccpb.KeyValue
			if err := kv.Unmarshal(v); err != nil {
				return err
			}
			if string(kv.Key) == key {
				lastK, last = append([]byte(nil), k...), kv
			}
			return nil
		}); err != nil {
			return err
		}
		if lastK == nil {
			return errors.New("key not found")
		}
		last.Value = []byte("corrupted")
		v, err := last.Marshal()
		if err != nil {
			return err
		}
		return b.Put(lastK, v)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestCorruptionChecks corrupts a follower's db: the leader's periodic
// check raises CORRUPT for it, writes are then refused with etcd's error,
// and the initial check refuses to start the corrupted member.
func TestCorruptionChecks(t *testing.T) {
	c := newTestCluster(t, 3, nil)
	lead := c.waitLeader()
	putKeys(t, c.client(lead), "k", 5)
	f := (lead + 1) % 3
	c.waitApplied(f, c.srvs[lead].applied.Load())
	c.stop(f)
	corruptValue(t, c.cfgs[f], "k004")

	c.cfgs[f].InitialCorruptCheck = true
	if err := c.tryStart(f); err == nil || !strings.Contains(err.Error(), "found data inconsistency with peers") {
		t.Fatalf("start of the corrupted member with the initial check: %v", err)
	}
	c.cfgs[f].InitialCorruptCheck = false
	c.start(f)
	for i := range c.cfgs {
		c.stop(i)
	}
	for i := range c.cfgs {
		c.cfgs[i].CorruptCheckTime = 100 * time.Millisecond
	}
	// The healthy two first, so that the leader is one of them (a corrupt
	// leader would find its followers different, and etcd's check then
	// raises the alarm for a follower).
	var healthy []int
	for i := range c.cfgs {
		if i != f {
			healthy = append(healthy, i)
			c.start(i)
		}
	}
	waitLeaderAmong(t, c, healthy...)
	c.start(f)
	lead = c.waitLeader()
	cli := c.client(lead)
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := cli.AlarmList(ctxT(t))
		if err == nil && len(resp.Alarms) == 1 && resp.Alarms[0].Alarm.String() == "CORRUPT" {
			if id := resp.Alarms[0].MemberID; id != c.srvs[f].ID() {
				t.Fatalf("CORRUPT raised for %x, want the corrupted member %x", id, c.srvs[f].ID())
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no CORRUPT alarm: %v %v", resp, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := cli.Put(ctxT(t), "after", "v"); !errors.Is(err, rpctypes.ErrCorrupt) {
		t.Fatalf("put under CORRUPT: %v", err)
	}
}

func TestDebugEndpointsAndLogs(t *testing.T) {
	var logs logBuffer
	c := newTestCluster(t, 1, func(cfg *Config) {
		cfg.EnablePprof, cfg.Metrics = true, "extensive"
		cfg.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
	})
	c.waitLeader()
	if _, err := c.client().Put(ctxT(t), "k", "v"); err != nil {
		t.Fatal(err)
	}
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get(c.endpoint(0) + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, string(b)
	}
	code, body := get("/debug/vars")
	var vars map[string]json.RawMessage
	if code != http.StatusOK || json.Unmarshal([]byte(body), &vars) != nil || vars["cmdline"] == nil || vars["memstats"] == nil {
		t.Fatalf("/debug/vars: %d %.200s", code, body)
	}
	if code, body := get("/debug/pprof/"); code != http.StatusOK || !strings.Contains(body, "goroutine") {
		t.Fatalf("/debug/pprof/: %d %.200s", code, body)
	}
	if _, body := get("/metrics"); !strings.Contains(body, `grpc_server_handling_seconds_bucket{grpc_method="Put"`) {
		t.Fatal("--metrics extensive: no grpc_server_handling_seconds for Put")
	}
	for _, msg := range []string{"started as single-node; fast-forwarding election ticks", "ready to serve client requests"} {
		if !logs.contains(`"msg":"` + msg + `"`) {
			t.Fatalf("no %q in the log:\n%s", msg, logs.String())
		}
	}
}

// Members started together are fast-forwarded, once they reach both their
// peers, to two ticks short of their election timeout, as etcd's
// --initial-election-tick-advance; with it off they are not.
func TestInitialElectionTickAdvance(t *testing.T) {
	const msg, ticks = `"msg":"initialized peer connections; fast-forwarding election ticks"`, `"forward-ticks":8,"election-ticks":10,"active-remote-members":2}`
	advanced := func(logs string) (n int) {
		for _, l := range strings.Split(logs, "\n") {
			if strings.Contains(l, msg) && strings.HasSuffix(l, ticks) {
				n++
			}
		}
		return n
	}
	for _, advance := range []bool{true, false} {
		t.Run(fmt.Sprint(advance), func(t *testing.T) {
			var logs logBuffer
			c := newTestCluster(t, 3, func(cfg *Config) {
				cfg.HeartbeatMs, cfg.ElectionMs = 50, 500
				cfg.InitialElectionTickAdvance = advance
				cfg.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
			})
			c.waitLeader()
			if _, err := c.client().Put(ctxT(t), "k", "v"); err != nil {
				t.Fatal(err)
			}
			// The advance comes within peerWaitForTickAdvance of the start.
			deadline := time.Now().Add(2 * peerWaitForTickAdvance)
			for advance && advanced(logs.String()) < 3 && time.Now().Before(deadline) {
				time.Sleep(50 * time.Millisecond)
			}
			got := advanced(logs.String())
			if want := map[bool]int{true: 3, false: 0}[advance]; got != want {
				t.Fatalf("%d members logged %s with %s, want %d:\n%s", got, msg, ticks, want, logs.String())
			}
		})
	}
}

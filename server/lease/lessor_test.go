package lease_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"

	"github.com/lifeboat-dev/lifeboat/server/backend"
	"github.com/lifeboat-dev/lifeboat/server/lease"
	"github.com/lifeboat-dev/lifeboat/server/mvcc"
)

// member is a backend, a lessor and a store wired as the server wires them.
type member struct {
	be    *backend.Backend
	le    *lease.Lessor
	store *mvcc.Store
}

func openMember(t *testing.T, path string, cfg lease.Config) *member {
	t.Helper()
	// One registry for the three, as the server has: no name may clash.
	reg := prometheus.NewRegistry()
	be, err := backend.Open(backend.Config{Path: path, NoSync: true, MmapSize: 1 << 22, BatchInterval: time.Hour, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.TickInterval == 0 {
		cfg.TickInterval = 10 * time.Millisecond
	}
	cfg.Registerer = reg
	le, err := lease.New(be, cfg)
	if err != nil {
		t.Fatal(err)
	}
	store, err := mvcc.New(be, mvcc.Config{Lessor: le, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	le.SetRangeDeleter(store.NewRangeDeleter)
	m := &member{be: be, le: le, store: store}
	t.Cleanup(m.close)
	return m
}

func (m *member) close() {
	m.le.Stop()
	m.store.Close()
	m.be.Close()
}

func (m *member) put(t *testing.T, key string, id int64) {
	t.Helper()
	if _, err := m.store.Put(&pb.PutRequest{Key: []byte(key), Value: []byte("v"), Lease: id}); err != nil {
		t.Fatalf("put %s with lease %x: %v", key, id, err)
	}
}

func (m *member) keys(t *testing.T) []string {
	t.Helper()
	resp, err := m.store.Range(context.Background(), &pb.RangeRequest{Key: []byte{0}, RangeEnd: []byte{0}})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, kv := range resp.Kvs {
		out = append(out, string(kv.Key))
	}
	return out
}

func TestGrant(t *testing.T) {
	m := openMember(t, filepath.Join(t.TempDir(), "db"), lease.Config{MinTTL: 5})
	tests := []struct {
		name    string
		id, ttl int64
		wantTTL int64
		wantErr error
	}{
		{"grant", 1, 60, 60, nil},
		{"raised to the minimum", 2, 1, 5, nil},
		{"exists", 1, 60, 0, rpctypes.ErrGRPCLeaseExist},
		{"id 0", 0, 60, 0, rpctypes.ErrGRPCLeaseNotFound},
		{"too large", 3, lease.MaxTTL + 1, 0, rpctypes.ErrGRPCLeaseTTLTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in, err := m.le.Grant(tt.id, tt.ttl)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err %v, want %v", err, tt.wantErr)
			}
			if err == nil && in.TTL != tt.wantTTL {
				t.Errorf("ttl %d, want %d", in.TTL, tt.wantTTL)
			}
		})
	}
	if got := fmt.Sprint(m.le.Leases()); got != fmt.Sprint([]lease.Info{{ID: 1, TTL: 60}, {ID: 2, TTL: 5}}) {
		t.Errorf("leases %v", got)
	}
}

func TestRevokeDeletesKeysInOneTransaction(t *testing.T) {
	m := openMember(t, filepath.Join(t.TempDir(), "db"), lease.Config{})
	if _, err := m.le.Grant(1, 60); err != nil {
		t.Fatal(err)
	}
	if _, err := m.le.Grant(2, 60); err != nil {
		t.Fatal(err)
	}
	m.put(t, "b", 1)
	m.put(t, "a", 1)
	m.put(t, "c", 2)
	m.put(t, "moved", 1)
	m.put(t, "moved", 2) // reattached to lease 2
	m.put(t, "plain", 0)
	if _, err := m.store.DeleteRange(&pb.DeleteRangeRequest{Key: []byte("b")}); err != nil {
		t.Fatal(err)
	}
	m.put(t, "b", 0) // recreated without a lease
	if in, ok := m.le.Lookup(1); !ok || in.TTL != 60 {
		t.Fatalf("lookup lease 1: %+v %v", in, ok)
	}
	rev := m.store.Rev()
	if err := m.le.Revoke(1); err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(m.keys(t)); got != "[b c moved plain]" {
		t.Errorf("keys after revoke: %s", got)
	}
	if m.store.Rev() != rev+1 {
		t.Errorf("revoke took revisions %d..%d, want one", rev, m.store.Rev())
	}
	if m.le.Exists(1) {
		t.Error("lease 1 still exists")
	}
	if err := m.le.Revoke(1); !errors.Is(err, rpctypes.ErrGRPCLeaseNotFound) {
		t.Errorf("revoke twice: %v", err)
	}
	if _, err := m.store.Put(&pb.PutRequest{Key: []byte("x"), Lease: 1}); !errors.Is(err, rpctypes.ErrGRPCLeaseNotFound) {
		t.Errorf("put with a revoked lease: %v", err)
	}
}

// The lessor's clocks are synctest's fake clock: the tests below wait for
// exact (fake) durations, and synctest.Wait for the lessor's goroutines.

func TestExpiryOnTheLeaderOnly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := openMember(t, filepath.Join(t.TempDir(), "db"), lease.Config{ExpiredRetryInterval: 50 * time.Millisecond})
		if _, err := m.le.Grant(1, 1); err != nil {
			t.Fatal(err)
		}
		if _, err := m.le.Renew(t.Context(), 1); !errors.Is(err, lease.ErrNotPrimary) {
			t.Errorf("renew on a follower: %v", err)
		}
		if _, err := m.le.TimeToLive(1, false); !errors.Is(err, lease.ErrNotPrimary) {
			t.Errorf("ttl on a follower: %v", err)
		}
		// Well past the TTL, a follower has reported nothing.
		time.Sleep(3 * time.Second)
		select {
		case ids := <-m.le.ExpiredLeases():
			t.Fatalf("a follower reported %v", ids)
		default:
		}
		m.le.Promote(0)
		m.put(t, "k", 1)
		in, err := m.le.TimeToLive(1, true)
		if err != nil || in.TTL != 1 || in.Remaining != time.Second || fmt.Sprint(in.Keys) != "[[107]]" {
			t.Errorf("time to live %+v, %v", in, err)
		}
		start := time.Now()
		ids := <-m.le.ExpiredLeases()
		// Reported at the first tick (10 ms) at or after the expiry.
		if waited := time.Since(start); fmt.Sprint(ids) != "[1]" || waited < time.Second || waited > time.Second+10*time.Millisecond {
			t.Errorf("expired %v after %v", ids, waited)
		}
		// Not revoked yet: it is reported again after the retry interval.
		start = time.Now()
		ids = <-m.le.ExpiredLeases()
		if waited := time.Since(start); fmt.Sprint(ids) != "[1]" || waited < 50*time.Millisecond {
			t.Errorf("reported again %v after %v", ids, waited)
		}
		// A renewal of an expired lease waits for its revocation.
		renewErr := make(chan error, 1)
		go func() {
			_, err := m.le.Renew(t.Context(), 1)
			renewErr <- err
		}()
		synctest.Wait()
		select {
		case err := <-renewErr:
			t.Fatalf("renew of an expired lease returned before its revocation: %v", err)
		default:
		}
		if err := m.le.Revoke(1); err != nil {
			t.Fatal(err)
		}
		if err := <-renewErr; !errors.Is(err, rpctypes.ErrGRPCLeaseNotFound) {
			t.Errorf("renew of a revoked lease: %v", err)
		}
		if got := m.keys(t); len(got) != 0 {
			t.Errorf("keys left: %v", got)
		}
	})
}

func TestRenew(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := openMember(t, filepath.Join(t.TempDir(), "db"), lease.Config{})
		m.le.Promote(0)
		if _, err := m.le.Grant(1, 2); err != nil {
			t.Fatal(err)
		}
		time.Sleep(1100 * time.Millisecond)
		if in, err := m.le.TimeToLive(1, false); err != nil || in.Remaining != 900*time.Millisecond {
			t.Fatalf("before renew %+v, %v", in, err)
		}
		ttl, err := m.le.Renew(t.Context(), 1)
		if err != nil || ttl != 2 {
			t.Fatalf("renew: %d, %v", ttl, err)
		}
		in, err := m.le.TimeToLive(1, false)
		if err != nil || in.Remaining != 2*time.Second {
			t.Errorf("after renew %+v, %v", in, err)
		}
		if _, err := m.le.Renew(t.Context(), 9); !errors.Is(err, rpctypes.ErrGRPCLeaseNotFound) {
			t.Errorf("renew of a missing lease: %v", err)
		}
		m.le.Demote()
		if _, err := m.le.Renew(t.Context(), 1); !errors.Is(err, lease.ErrNotPrimary) {
			t.Errorf("renew after demote: %v", err)
		}
	})
}

// TestCheckpointSurvivesRestart: a checkpointed remaining TTL is stored, so
// a member that restarts and becomes leader resumes it.
func TestCheckpointSurvivesRestart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "db")
		m := openMember(t, path, lease.Config{})
		if _, err := m.le.Grant(1, 3600); err != nil {
			t.Fatal(err)
		}
		if _, err := m.le.Grant(2, 3600); err != nil {
			t.Fatal(err)
		}
		m.put(t, "k", 1)
		if err := m.le.Checkpoint(1, 2); err != nil {
			t.Fatal(err)
		}
		if err := m.le.Checkpoint(99, 2); err != nil {
			t.Errorf("checkpoint of a missing lease: %v", err)
		}
		m.close()

		again := openMember(t, path, lease.Config{})
		again.le.Promote(0)
		in, err := again.le.TimeToLive(1, true)
		if err != nil {
			t.Fatal(err)
		}
		if in.TTL != 3600 || in.RemainingTTL != 2 || in.Remaining != 2*time.Second || fmt.Sprint(in.Keys) != "[[107]]" {
			t.Errorf("after restart %+v", in)
		}
		if in, _ := again.le.TimeToLive(2, false); in.Remaining != time.Hour {
			t.Errorf("lease 2 without checkpoint: %+v", in)
		}
		start := time.Now()
		ids := <-again.le.ExpiredLeases()
		if waited := time.Since(start); fmt.Sprint(ids) != "[1]" || waited < 2*time.Second || waited > 2*time.Second+10*time.Millisecond {
			t.Errorf("expired %v after %v, want lease 1 after its checkpointed 2 s", ids, waited)
		}
	})
}

func TestLeaderProposesCheckpoints(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := openMember(t, filepath.Join(t.TempDir(), "db"), lease.Config{CheckpointInterval: 50 * time.Millisecond})
		got := make(chan *pb.LeaseCheckpointRequest, 10)
		m.le.SetCheckpointer(func(_ context.Context, req *pb.LeaseCheckpointRequest) error {
			got <- req
			return nil
		})
		if _, err := m.le.Grant(1, 3600); err != nil {
			t.Fatal(err)
		}
		if _, err := m.le.Grant(2, 0); err != nil { // shorter than the interval: not checkpointed
			t.Fatal(err)
		}
		m.le.Promote(0)
		start := time.Now()
		req := <-got
		// The first tick (10 ms) at or after the interval (50 ms).
		if waited := time.Since(start); waited != 50*time.Millisecond {
			t.Errorf("first checkpoint after %v, want 50ms", waited)
		}
		if len(req.Checkpoints) != 1 || req.Checkpoints[0].ID != 1 || req.Checkpoints[0].Remaining_TTL != 3600 {
			t.Errorf("checkpoint %v", req)
		}
	})
}

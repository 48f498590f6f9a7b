package e2e

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/lifeboat-dev/lifeboat/internal/interoptest"
)

// TestMutex has two sessions on different members contend for one
// concurrency.Mutex; each increments a counter key read-modify-write inside
// the lock. Overlapping holders or a lost increment fail the test.
func TestMutex(t *testing.T) {
	forEachSystem(t, func(t *testing.T, bin string) {
		c := startCluster(t, bin, interoptest.Options{})
		ctx := timeout(t, 2*time.Minute)
		const rounds = 20
		var holders atomic.Int32
		var wg sync.WaitGroup
		errs := make(chan error, 2)
		for i := range 2 {
			cli := newClient(t, c.Endpoints()[i])
			sess, err := concurrency.NewSession(cli, concurrency.WithTTL(10))
			if err != nil {
				t.Fatalf("session %d: %v", i, err)
			}
			t.Cleanup(func() { sess.Close() })
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs <- contend(ctx, cli, concurrency.NewMutex(sess, "/lock/counter"), rounds, &holders)
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		resp, err := newClient(t, c.Endpoints()...).Get(ctx, "counter")
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != strconv.Itoa(2*rounds) {
			t.Fatalf("counter = %v after 2x%d locked increments, want %d", resp.Kvs, rounds, 2*rounds)
		}
	})
}

// contend locks m rounds times and increments "counter" under the lock.
func contend(ctx context.Context, cli *clientv3.Client, m *concurrency.Mutex, rounds int, holders *atomic.Int32) error {
	for range rounds {
		if err := m.Lock(ctx); err != nil {
			return err
		}
		if n := holders.Add(1); n != 1 {
			return errors.New("two sessions hold the mutex at once")
		}
		resp, err := cli.Get(ctx, "counter")
		if err != nil {
			return err
		}
		n := 0
		if len(resp.Kvs) == 1 {
			n, _ = strconv.Atoi(string(resp.Kvs[0].Value))
		}
		if _, err := cli.Put(ctx, "counter", strconv.Itoa(n+1)); err != nil {
			return err
		}
		holders.Add(-1)
		if err := m.Unlock(ctx); err != nil {
			return err
		}
	}
	return nil
}

// TestMutexHandover checks TryLock while another session holds the lock,
// and that closing the holder's session (its lease is revoked) hands the
// lock over.
func TestMutexHandover(t *testing.T) {
	forEachSystem(t, func(t *testing.T, bin string) {
		c := startCluster(t, bin, interoptest.Options{})
		ctx := timeout(t, time.Minute)
		s1 := newConcurrencySession(t, newClient(t, c.Endpoints()[0]))
		s2 := newConcurrencySession(t, newClient(t, c.Endpoints()[1]))
		m1, m2 := concurrency.NewMutex(s1, "/lock/h"), concurrency.NewMutex(s2, "/lock/h")
		if err := m1.Lock(ctx); err != nil {
			t.Fatal(err)
		}
		if err := m2.TryLock(ctx); !errors.Is(err, concurrency.ErrLocked) {
			t.Fatalf("TryLock while held = %v, want %v", err, concurrency.ErrLocked)
		}
		if err := s1.Close(); err != nil {
			t.Fatalf("closing the holder's session: %v", err)
		}
		if err := m2.Lock(ctx); err != nil {
			t.Fatalf("Lock after the holder's session closed: %v", err)
		}
		if err := m2.Unlock(ctx); err != nil {
			t.Fatal(err)
		}
	})
}

// TestElection campaigns with two candidates: the first leads and an
// observer sees it, the second waits until the first resigns, then leads.
func TestElection(t *testing.T) {
	forEachSystem(t, func(t *testing.T, bin string) {
		c := startCluster(t, bin, interoptest.Options{})
		ctx := timeout(t, 30*time.Second)
		e1 := concurrency.NewElection(newConcurrencySession(t, newClient(t, c.Endpoints()[0])), "/election/e")
		e2 := concurrency.NewElection(newConcurrencySession(t, newClient(t, c.Endpoints()[1])), "/election/e")
		observer := concurrency.NewElection(newConcurrencySession(t, newClient(t, c.Endpoints()[2])), "/election/e")
		observed := observer.Observe(ctx)

		if err := e1.Campaign(ctx, "alpha"); err != nil {
			t.Fatalf("first campaign: %v", err)
		}
		wantObserved(t, observed, "alpha")
		second := make(chan error, 1)
		go func() { second <- e2.Campaign(ctx, "beta") }()
		leader, err := e2.Leader(ctx)
		if err != nil || string(leader.Kvs[0].Value) != "alpha" {
			t.Fatalf("Leader() while alpha leads = %v, %v", leader, err)
		}
		select {
		case err := <-second:
			t.Fatalf("second campaign returned (%v) while alpha leads", err)
		default:
		}
		if err := e1.Resign(ctx); err != nil {
			t.Fatalf("resign: %v", err)
		}
		if err := <-second; err != nil {
			t.Fatalf("second campaign after the resign: %v", err)
		}
		wantObserved(t, observed, "beta")
		if err := e2.Proclaim(ctx, "beta-2"); err != nil {
			t.Fatalf("proclaim: %v", err)
		}
		wantObserved(t, observed, "beta-2")
	})
}

func wantObserved(t *testing.T, ch <-chan clientv3.GetResponse, want string) {
	t.Helper()
	resp, ok := <-ch
	if !ok {
		t.Fatalf("observe ended; want leader %q", want)
	}
	if got := string(resp.Kvs[0].Value); got != want {
		t.Fatalf("observed leader %q, want %q", got, want)
	}
}

func newConcurrencySession(t *testing.T, cli *clientv3.Client) *concurrency.Session {
	t.Helper()
	s, err := concurrency.NewSession(cli, concurrency.WithTTL(10))
	if err != nil {
		t.Fatalf("new session: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lifeboat-dev/lifeboat/internal/freeport"
	"github.com/lifeboat-dev/lifeboat/internal/syncbuf"
	"github.com/lifeboat-dev/lifeboat/server"
	"github.com/lifeboat-dev/lifeboat/snapkit/schema"
)

// freePorts returns n distinct ports that were free on 127.0.0.1 a moment ago.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	ports, err := freeport.Pick(n)
	if err != nil {
		t.Fatal(err)
	}
	return ports
}

// newDemo is a demo on free ports with its data under a fresh directory.
func newDemo(t *testing.T) *demoOptions {
	ports := freePorts(t, 6)
	return &demoOptions{
		dataDir: filepath.Join(t.TempDir(), "lifeboat-demo"), host: "127.0.0.1",
		clientPorts: ports[:3], peerPorts: ports[3:], logLevel: "info",
	}
}

// runDemo runs o until it prints that it runs, and returns a function that
// stops it and returns run's error.
func runDemo(t *testing.T, o *demoOptions) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var stdout, stderr syncbuf.Buffer
	done := make(chan error, 1)
	go func() { done <- o.run(ctx, &stdout, &stderr) }()
	stop = func() error {
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(30 * time.Second):
			t.Fatalf("demo did not stop\nstdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
			return nil
		}
	}
	deadline := time.After(30 * time.Second)
	for !strings.Contains(stdout.String(), "3 members running") {
		select {
		case err := <-done:
			t.Fatalf("demo ended before it ran: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
		case <-deadline:
			stop()
			t.Fatalf("demo not running after 30s\nstdout:\n%s", stdout.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	return stop
}

// A demo run again on a data dir made with other peer ports would start
// members that cannot reach each other at the stored URLs; it is refused,
// with the ports that would work. Other client ports are fine.
func TestDemoChecksStoredPeerURLs(t *testing.T) {
	first := newDemo(t)
	stop := runDemo(t, first)
	other := *first
	other.peerPorts = freePorts(t, 3)
	lg := slog.New(slog.DiscardHandler)
	if err := other.checkStoredCluster(other.configs(lg)); err == nil || !strings.Contains(err.Error(), "is a demo running on it?") {
		t.Errorf("check while the first demo runs: %v; want the data dir reported in use", err)
	}
	if err := stop(); err != nil {
		t.Fatalf("first demo: %v", err)
	}

	ports := joinInts(first.peerPorts)
	for _, tc := range []struct {
		name    string
		change  func(o *demoOptions)
		wantErr []string // all in the error; none means no error
	}{
		{"same ports", func(*demoOptions) {}, nil},
		{"other client ports", func(o *demoOptions) { o.clientPorts = freePorts(t, 3) }, nil},
		{"fresh data dir", func(o *demoOptions) { o.dataDir = t.TempDir(); o.peerPorts = freePorts(t, 3) }, nil},
		{"other peer ports", func(o *demoOptions) { o.peerPorts = other.peerPorts }, []string{
			"holds a cluster on peer ports " + ports,
			"asks for peer URLs http://127.0.0.1:" + strconv.Itoa(other.peerPorts[0]),
			"rerun with --peer-ports " + ports,
			"or remove " + first.dataDir + "/ to start a new cluster"}},
		{"other host", func(o *demoOptions) { o.host = "127.0.0.2" }, []string{
			"holds a cluster with peer URLs http://127.0.0.1:",
			"rerun with --host and --peer-ports matching those URLs"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := *first
			tc.change(&o)
			err := o.checkStoredCluster(o.configs(lg))
			if (err != nil) != (tc.wantErr != nil) {
				t.Fatalf("check: %v; want error %v", err, tc.wantErr != nil)
			}
			var ue usageError
			if err != nil && !errors.As(err, &ue) {
				t.Errorf("check: %v is not a usage error", err)
			}
			for _, want := range tc.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("check: %v\nwant it to say %q", err, want)
				}
			}
		})
	}

	// And run refuses before starting anything. (Its context is done: were
	// it to start the members, it would stop them at once.)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var stdout, stderr bytes.Buffer
	if err := other.run(ctx, &stdout, &stderr); err == nil || !strings.Contains(err.Error(), "rerun with --peer-ports "+ports) {
		t.Fatalf("run with other peer ports: %v; want the refusal", err)
	}
	if stdout.Len() != 0 {
		t.Fatalf("run with other peer ports printed %q; want nothing started", stdout.String())
	}
}

// The refusal names the stored ports when the membership is the demo's own
// (m1, m2, m3 on --host), the client ports when the members published them,
// and only the URLs otherwise.
func TestDemoDescribesStoredCluster(t *testing.T) {
	member := func(name, peer, client string) schema.Member {
		m := schema.Member{Name: name, PeerURLs: []string{peer}}
		if client != "" {
			m.ClientURLs = []string{client}
		}
		return m
	}
	o := &demoOptions{host: "127.0.0.1"}
	for _, tc := range []struct {
		name         string
		ms           []schema.Member
		where, rerun string
	}{
		{"published", []schema.Member{
			member("m2", "http://127.0.0.1:2", "http://127.0.0.1:12"),
			member("m1", "http://127.0.0.1:1", "http://127.0.0.1:11"),
			member("m3", "http://127.0.0.1:3", "http://127.0.0.1:13"),
		}, "on peer ports 1,2,3 (client ports 11,12,13)", "--peer-ports 1,2,3 --client-ports 11,12,13"},
		{"not published", []schema.Member{
			member("m3", "http://127.0.0.1:3", ""),
			member("m1", "http://127.0.0.1:1", ""),
			member("m2", "http://127.0.0.1:2", ""),
		}, "on peer ports 1,2,3", "--peer-ports 1,2,3"},
		{"other host", []schema.Member{
			member("m1", "http://10.0.0.1:1", ""),
			member("m2", "http://10.0.0.1:2", ""),
			member("m3", "http://10.0.0.1:3", ""),
		}, "with peer URLs http://10.0.0.1:1,http://10.0.0.1:2,http://10.0.0.1:3", "--host and --peer-ports matching those URLs"},
		{"a fourth member", []schema.Member{
			member("m1", "http://127.0.0.1:1", ""),
			member("m2", "http://127.0.0.1:2", ""),
			member("m3", "http://127.0.0.1:3", ""),
			member("m4", "http://127.0.0.1:4", ""),
		}, "with peer URLs http://127.0.0.1:1,http://127.0.0.1:2,http://127.0.0.1:3,http://127.0.0.1:4", "--host and --peer-ports matching those URLs"},
		{"two named alike", []schema.Member{
			member("m1", "http://127.0.0.1:1", ""),
			member("m1", "http://127.0.0.1:2", ""),
			member("m3", "http://127.0.0.1:3", ""),
		}, "with peer URLs http://127.0.0.1:1,http://127.0.0.1:2,http://127.0.0.1:3", "--host and --peer-ports matching those URLs"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := o.describe(tc.ms); got != tc.where {
				t.Errorf("describe = %q, want %q", got, tc.where)
			}
			if got := o.rerunFlags(tc.ms); got != tc.rerun {
				t.Errorf("rerunFlags = %q, want %q", got, tc.rerun)
			}
		})
	}
}

// Stopping the whole demo cluster hands leadership to no one, wherever the
// leader is in the order the members started: a hand-over would aim at a
// member that is itself stopping.
func TestDemoStopTransfersNoLeadership(t *testing.T) {
	for _, pos := range []string{"first", "middle", "last"} {
		t.Run("leader "+pos, func(t *testing.T) {
			var log syncbuf.Buffer
			cfgs := newDemo(t).configs(slog.New(slog.NewJSONHandler(&log, nil)))
			for _, c := range cfgs {
				c.HeartbeatMs, c.ElectionMs = 50, 500
			}
			members, err := startMembers(cfgs)
			if err != nil {
				stopMembers(context.Background(), members, 0)
				t.Fatal(err)
			}
			leader := waitLeader(t, members)
			i := slices.IndexFunc(members, func(s *server.Server) bool { return s.ID() == leader })
			l := members[i]
			members = slices.Delete(members, i, i+1)
			members = slices.Insert(members, map[string]int{"first": 0, "middle": 1, "last": 2}[pos], l)

			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if errs := stopMembers(ctx, members, stepDownWait(cfgs[0])); len(errs) != 0 {
				t.Fatalf("stop: %v", errs)
			}
			for _, line := range strings.Split(log.String(), "\n") {
				var rec struct{ Level, Msg string }
				if json.Unmarshal([]byte(line), &rec) == nil && strings.Contains(rec.Msg, "transfer") {
					t.Errorf("stopping the cluster logged %s %q; want no leadership transfer", rec.Level, rec.Msg)
				}
			}
		})
	}
}

// waitLeader waits until every member names the same leader, and returns it.
func waitLeader(t *testing.T, members []*server.Server) uint64 {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		lead := members[0].Leader()
		if lead != 0 && !slices.ContainsFunc(members, func(s *server.Server) bool { return s.Leader() != lead }) {
			return lead
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("no leader that every member agrees on after 30s")
	return 0
}

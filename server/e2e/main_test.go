package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/lifeboat-dev/lifeboat/internal/freeport"
	"github.com/lifeboat-dev/lifeboat/internal/interoptest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	interoptest.RemoveTools()
	os.Exit(code)
}

// tool builds ./cmd/<name> of this module once per process and returns its
// path (see interoptest.Tool).
func tool(t testing.TB, name string) string {
	t.Helper()
	return interoptest.Tool(t, name)
}

// recorder is a testing.TB whose Skipf and Fatalf record instead of
// stopping the test, so that a helper's verdict can be checked.
type recorder struct {
	testing.TB
	skipped, failed string
}

func (r *recorder) Skipf(format string, args ...any)  { r.skipped = fmt.Sprintf(format, args...) }
func (r *recorder) Fatalf(format string, args ...any) { r.failed = fmt.Sprintf(format, args...) }

// A command of cmd/ that is missing or has no sources fails the test that
// needs it; a skip would hide the failure.
func TestToolWithoutSourcesFails(t *testing.T) {
	for _, tc := range []struct {
		name  string
		mkdir bool // an empty cmd/<name>; else none at all
	}{
		{"e2e-missing", false},
		{"e2e-no-sources", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.mkdir {
				dir := filepath.Join(filepath.Dir(interoptest.InteropDir()), "cmd", tc.name)
				if err := os.Mkdir(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { os.Remove(dir) })
			}
			r := &recorder{TB: t}
			got := tool(r, tc.name)
			if got != "" || r.skipped != "" || !strings.Contains(r.failed, "cmd/"+tc.name) {
				t.Fatalf("tool(%s) = %q, skipped %q, failed %q; want a failure naming the command", tc.name, got, r.skipped, r.failed)
			}
		})
	}
}

// system is a server implementation under test.
type system struct {
	name string
	// binary returns the server binary, skipping the test if it cannot be had.
	binary func(t testing.TB) string
}

// systems lists real etcd first: its run validates the harness.
var systems = []system{
	{"etcd", func(t testing.TB) string { return interoptest.Binary(t, "etcd") }},
	{"lifeboat", func(t testing.TB) string { return tool(t, "lifeboat") }},
}

// forEachSystem runs f as a subtest per system.
func forEachSystem(t *testing.T, f func(t *testing.T, bin string)) {
	for _, s := range systems {
		t.Run(s.name, func(t *testing.T) { f(t, s.binary(t)) })
	}
}

// startCluster starts members of bin (etcd's flags) on fresh data dirs.
func startCluster(t *testing.T, bin string, opts interoptest.Options) *interoptest.EtcdCluster {
	t.Helper()
	opts.Binary = bin
	if opts.Members == 0 {
		opts.Members = 3
	}
	return interoptest.StartEtcd(t, opts)
}

// newClient connects to endpoints and closes the client when the test ends.
func newClient(t testing.TB, endpoints ...string) *clientv3.Client {
	t.Helper()
	return dial(t, clientv3.Config{Endpoints: endpoints})
}

// dial connects with cfg (a 5s dial timeout, no client log) and closes the
// client when the test ends.
func dial(t testing.TB, cfg clientv3.Config) *clientv3.Client {
	t.Helper()
	cfg.DialTimeout, cfg.Logger = 5*time.Second, zap.NewNop()
	cli, err := clientv3.New(cfg)
	if err != nil {
		t.Fatalf("e2e: connecting to %s: %v", strings.Join(cfg.Endpoints, ","), err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// timeout returns a context that ends after d or with the test.
func timeout(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// result is what a command did.
type result struct {
	stdout, stderr string
	code           int
}

// run runs a command with stdin, bounded by d; a command that cannot start
// or outlives d fails the test.
func run(t testing.TB, d time.Duration, stdin string, bin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("e2e: %s %s: no exit within %v\nstdout:\n%s\nstderr:\n%s", filepath.Base(bin), strings.Join(args, " "), d, stdout.String(), stderr.String())
	}
	r := result{stdout: stdout.String(), stderr: stderr.String()}
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("e2e: %s %s: %v", bin, strings.Join(args, " "), err)
		}
		r.code = ee.ExitCode()
	}
	return r
}

// freePort returns a TCP port that was free on 127.0.0.1 a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	return freeport.One(t)
}

// waitSameRevision waits until every endpoint reports the same revision and
// raft applied index, so that per-member reads agree.
func waitSameRevision(t testing.TB, endpoints []string) {
	t.Helper()
	cli := newClient(t, endpoints...)
	ctx := timeout(t, 30*time.Second)
	var last string
	for ctx.Err() == nil {
		var revs []int64
		for _, ep := range endpoints {
			st, err := cli.Status(ctx, ep)
			if err != nil {
				last = err.Error()
				break
			}
			revs = append(revs, st.Header.Revision)
		}
		if len(revs) == len(endpoints) && allEqual(revs) {
			return
		}
		last = fmt.Sprint("revisions ", revs)
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Fatalf("e2e: members of %s never agreed on a revision: %s", strings.Join(endpoints, ","), last)
}

func allEqual[T comparable](s []T) bool {
	for _, v := range s {
		if v != s[0] {
			return false
		}
	}
	return true
}

// startMember starts one member process of bin outside interoptest's
// cluster (a member added at run time) and kills it when the test ends.
func startMember(t testing.TB, bin, name, dataDir, clientURL, peerURL, initialCluster, state string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	logPath := dataDir + ".log"
	logf, err := os.Create(logPath)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, bin,
		"--name", name, "--data-dir", dataDir,
		"--listen-client-urls", clientURL, "--advertise-client-urls", clientURL,
		"--listen-peer-urls", peerURL, "--initial-advertise-peer-urls", peerURL,
		"--initial-cluster", initialCluster, "--initial-cluster-token", "lifeboat-test",
		"--initial-cluster-state", state)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		cancel()
		logf.Close()
		t.Fatalf("e2e: starting %s member %s: %v", bin, name, err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		cancel()
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("log of member %s (%s):\n%s", name, logPath, tailString(string(b), 3000))
		}
	})
}

func tailString(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}

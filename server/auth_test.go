package server

import (
	"context"
	"fmt"
	"net/http"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/lifeboat-dev/lifeboat/internal/interoptest"
)

// authStep is one etcdctl call: as user ("name:password", or none), with
// stdin.
type authStep struct {
	user  string
	args  []string
	stdin string
}

// authSession exercises etcd's auth model through etcdctl: users, roles,
// key and range permissions granted and revoked, wrong passwords, Txn
// compares, leases, admin calls, auth enable and disable.
var authSession = []authStep{
	{args: []string{"auth", "status"}},
	{args: []string{"auth", "enable"}}, // no root user yet
	{args: []string{"user", "add", "root", "--new-user-password=rootpw"}},
	{args: []string{"auth", "enable"}}, // etcdctl grants the root role
	{args: []string{"get", "foo"}},     // no user
	{user: "root:wrong", args: []string{"get", "foo"}},
	{user: "nobody:pw", args: []string{"get", "foo"}},
	{user: "root:rootpw", args: []string{"put", "foo", "bar"}},
	{user: "root:rootpw", args: []string{"role", "add", "r1"}},
	{user: "root:rootpw", args: []string{"role", "add", "r1"}},
	{user: "root:rootpw", args: []string{"role", "grant-permission", "r1", "readwrite", "foo"}},
	{user: "root:rootpw", args: []string{"role", "grant-permission", "r1", "read", "--prefix", "pub/"}},
	{user: "root:rootpw", args: []string{"role", "grant-permission", "r1", "write", "w1", "w5"}},
	{user: "root:rootpw", args: []string{"user", "add", "alice", "--new-user-password=alicepw"}},
	{user: "root:rootpw", args: []string{"user", "add", "alice", "--new-user-password=x"}},
	{user: "root:rootpw", args: []string{"user", "grant-role", "alice", "r1"}},
	{user: "root:rootpw", args: []string{"user", "grant-role", "alice", "nope"}},
	{user: "alice:alicepw", args: []string{"get", "foo"}},
	{user: "alice:alicepw", args: []string{"put", "foo", "baz"}},
	{user: "alice:alicepw", args: []string{"put", "other", "x"}},
	{user: "alice:alicepw", args: []string{"get", "pub/", "--prefix"}},
	{user: "alice:alicepw", args: []string{"put", "pub/x", "1"}},
	{user: "alice:alicepw", args: []string{"put", "w3", "1"}},
	{user: "alice:alicepw", args: []string{"del", "w1", "w5"}},
	{user: "alice:alicepw", args: []string{"del", "w1", "w9"}},
	{user: "alice:alicepw", args: []string{"get", "foo", "fop"}},
	{user: "alice:alicepw", args: []string{"txn"}, stdin: "value(\"other\") = \"x\"\n\nput foo q\n\n\n"},
	{user: "alice:alicepw", args: []string{"txn"}, stdin: "value(\"foo\") = \"baz\"\n\nput foo q\n\nput other q\n\n"},
	{user: "alice:alicepw", args: []string{"txn"}, stdin: "value(\"foo\") = \"baz\"\n\nput foo q\n\nget foo\n\n"},
	{user: "alice:alicepw", args: []string{"user", "list"}},
	{user: "alice:alicepw", args: []string{"user", "get", "alice"}},
	{user: "alice:alicepw", args: []string{"role", "get", "r1"}},
	{user: "alice:alicepw", args: []string{"role", "get", "root"}},
	{user: "alice:alicepw", args: []string{"auth", "disable"}},
	{user: "alice:alicepw", args: []string{"endpoint", "status"}},
	{user: "alice:alicepw", args: []string{"endpoint", "hashkv"}},
	{user: "alice:alicepw", args: []string{"defrag"}},
	{user: "root:rootpw", args: []string{"user", "get", "alice"}},
	{user: "root:rootpw", args: []string{"role", "get", "r1"}},
	{user: "root:rootpw", args: []string{"role", "get", "root"}},
	{user: "root:rootpw", args: []string{"role", "list"}},
	{user: "root:rootpw", args: []string{"user", "list"}},
	{user: "root:rootpw", args: []string{"role", "revoke-permission", "r1", "foo"}},
	{user: "root:rootpw", args: []string{"role", "revoke-permission", "r1", "foo"}},
	{user: "alice:alicepw", args: []string{"get", "foo"}},
	{user: "root:rootpw", args: []string{"user", "revoke-role", "alice", "r1"}},
	{user: "root:rootpw", args: []string{"user", "revoke-role", "alice", "r1"}},
	{user: "root:rootpw", args: []string{"user", "revoke-role", "root", "root"}},
	{user: "root:rootpw", args: []string{"user", "delete", "root"}},
	{user: "root:rootpw", args: []string{"role", "delete", "root"}},
	{user: "root:rootpw", args: []string{"user", "delete", "alice"}},
	{user: "alice:alicepw", args: []string{"get", "foo"}},
	{user: "root:rootpw", args: []string{"user", "passwd", "root", "--interactive=false"}, stdin: "rootpw2\n"},
	{user: "root:rootpw", args: []string{"get", "foo"}},
	{user: "root:rootpw2", args: []string{"user", "add", "bob", "--new-user-password=bobpw"}},
	{user: "root:rootpw2", args: []string{"user", "grant-role", "bob", "r1"}},
	{user: "root:rootpw2", args: []string{"role", "add", "r2"}},
	{user: "root:rootpw2", args: []string{"role", "grant-permission", "r2", "readwrite", "--from-key", "z"}},
	{user: "root:rootpw2", args: []string{"user", "grant-role", "bob", "r2"}},
	{user: "root:rootpw2", args: []string{"role", "delete", "r2"}},
	{user: "root:rootpw2", args: []string{"user", "get", "bob"}},
	{user: "root:rootpw2", args: []string{"auth", "status"}},
	{user: "root:rootpw2", args: []string{"auth", "disable"}},
	{args: []string{"get", "foo"}},
	{args: []string{"auth", "status"}},
	{args: []string{"user", "add", "carol", "--new-user-password=c"}},
	{args: []string{"auth", "enable"}},
	{user: "carol:c", args: []string{"get", "foo"}},
}

// authStateSteps list what must survive a restart and read the same to etcd.
var authStateSteps = []authStep{
	{user: "root:rootpw2", args: []string{"user", "list"}},
	{user: "root:rootpw2", args: []string{"role", "list"}},
	{user: "root:rootpw2", args: []string{"user", "get", "bob"}},
	{user: "root:rootpw2", args: []string{"role", "get", "r1"}},
	{user: "root:rootpw2", args: []string{"auth", "status"}},
	{user: "bob:bobpw", args: []string{"get", "pub/", "--prefix"}},
	{user: "bob:bobpw", args: []string{"put", "foo", "x"}},
}

var (
	leaseIDs  = regexp.MustCompile(`lease [0-9a-f]+ granted`)
	tookTimes = regexp.MustCompile(`took [0-9.]+[µnm]?s`)
	hostPorts = regexp.MustCompile(`127\.0\.0\.1:\d+`)
)

// runEtcdctl runs the steps against endpoint and returns one transcript
// entry per step: exit status, stdout, and stderr without client logs.
func runEtcdctl(t *testing.T, etcdctl, endpoint string, steps []authStep) []string {
	t.Helper()
	var out []string
	for _, st := range steps {
		args := []string{"--endpoints", endpoint, "--dial-timeout", "5s", "--command-timeout", "10s"}
		if st.user != "" {
			args = append(args, "--user", st.user)
		}
		args = append(args, st.args...)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		cmd := exec.CommandContext(ctx, etcdctl, args...)
		cmd.Stdin = strings.NewReader(st.stdin)
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		cancel()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatalf("etcdctl %v: %v", st.args, err)
		}
		var errLines []string
		for _, l := range strings.Split(stderr.String(), "\n") {
			if l != "" && !strings.HasPrefix(l, "{") {
				errLines = append(errLines, l)
			}
		}
		text := fmt.Sprintf("%s %s: exit %d\n%s%s", st.user, strings.Join(st.args, " "), code, stdout.String(), strings.Join(errLines, "\n"))
		text = leaseIDs.ReplaceAllString(text, "lease <id> granted")
		text = tookTimes.ReplaceAllString(text, "took <took>")
		out = append(out, hostPorts.ReplaceAllString(text, "<endpoint>"))
	}
	return out
}

func tailString(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}

func compareTranscripts(t *testing.T, what string, want, got []string) {
	t.Helper()
	for i := range want {
		if i >= len(got) || got[i] != want[i] {
			t.Errorf("%s, step %d:\netcd:\n%s\nlifeboat:\n%s", what, i, want[i], got[i])
		}
	}
}

// TestAuthSessionMatchesEtcd runs one etcdctl session of users, roles and
// permissions against real etcd and against lifeboat, with the same
// outputs; lifeboat's auth state then survives a restart, and real etcd
// started on lifeboat's data dir sees the same users and roles.
func TestAuthSessionMatchesEtcd(t *testing.T) {
	etcdctl := interoptest.Binary(t, "etcdctl")
	etcdBin := interoptest.Binary(t, "etcd")
	etcd := interoptest.StartEtcd(t, interoptest.Options{Members: 1})
	want := runEtcdctl(t, etcdctl, etcd.ClientURLs[0], authSession)
	wantState := runEtcdctl(t, etcdctl, etcd.ClientURLs[0], authStateSteps)

	c := newTestCluster(t, 1, func(cfg *Config) { cfg.BcryptCost = 4 })
	c.waitLeader()
	got := runEtcdctl(t, etcdctl, c.endpoint(0), authSession)
	compareTranscripts(t, "session", want, got)
	compareTranscripts(t, "auth state", wantState, runEtcdctl(t, etcdctl, c.endpoint(0), authStateSteps))

	c.stop(0)
	c.start(0)
	c.waitLeader()
	compareTranscripts(t, "auth state after a restart", wantState, runEtcdctl(t, etcdctl, c.endpoint(0), authStateSteps))

	c.stop(0)
	cfg := c.cfgs[0]
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, etcdBin,
		"--name", cfg.Name, "--data-dir", cfg.DataDir,
		"--listen-client-urls", cfg.ListenClientURLs[0], "--advertise-client-urls", cfg.AdvertiseClientURLs[0],
		"--listen-peer-urls", cfg.ListenPeerURLs[0], "--initial-advertise-peer-urls", cfg.AdvertisePeerURLs[0],
		"--initial-cluster", formatInitialCluster(cfg.InitialCluster), "--initial-cluster-token", cfg.InitialClusterToken)
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()
	for {
		resp, err := http.Get(cfg.AdvertiseClientURLs[0] + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if ctx.Err() != nil {
			t.Fatalf("etcd did not serve the lifeboat data dir: %v\n%s", err, tailString(logs.String(), 4000))
		}
		time.Sleep(200 * time.Millisecond)
	}
	compareTranscripts(t, "etcd on lifeboat's data dir", wantState, runEtcdctl(t, etcdctl, cfg.AdvertiseClientURLs[0], authStateSteps))
}

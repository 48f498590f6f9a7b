package interoptest

import (
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

// EtcdctlStep is one etcdctl call: as User ("name:password", or none),
// with Stdin.
type EtcdctlStep struct {
	User  string
	Args  []string
	Stdin string
}

// AuthSession exercises etcd's auth model through etcdctl: users, roles,
// key and range permissions granted and revoked, wrong passwords, Txn
// compares, leases, admin calls, auth enable and disable.
var AuthSession = []EtcdctlStep{
	{Args: []string{"auth", "status"}},
	{Args: []string{"auth", "enable"}}, // no root user yet
	{Args: []string{"user", "add", "root", "--new-user-password=rootpw"}},
	{Args: []string{"auth", "enable"}}, // etcdctl grants the root role
	{Args: []string{"get", "foo"}},     // no user
	{User: "root:wrong", Args: []string{"get", "foo"}},
	{User: "nobody:pw", Args: []string{"get", "foo"}},
	{User: "root:rootpw", Args: []string{"put", "foo", "bar"}},
	{User: "root:rootpw", Args: []string{"role", "add", "r1"}},
	{User: "root:rootpw", Args: []string{"role", "add", "r1"}},
	{User: "root:rootpw", Args: []string{"role", "grant-permission", "r1", "readwrite", "foo"}},
	{User: "root:rootpw", Args: []string{"role", "grant-permission", "r1", "read", "--prefix", "pub/"}},
	{User: "root:rootpw", Args: []string{"role", "grant-permission", "r1", "write", "w1", "w5"}},
	{User: "root:rootpw", Args: []string{"user", "add", "alice", "--new-user-password=alicepw"}},
	{User: "root:rootpw", Args: []string{"user", "add", "alice", "--new-user-password=x"}},
	{User: "root:rootpw", Args: []string{"user", "grant-role", "alice", "r1"}},
	{User: "root:rootpw", Args: []string{"user", "grant-role", "alice", "nope"}},
	{User: "alice:alicepw", Args: []string{"get", "foo"}},
	{User: "alice:alicepw", Args: []string{"put", "foo", "baz"}},
	{User: "alice:alicepw", Args: []string{"put", "other", "x"}},
	{User: "alice:alicepw", Args: []string{"get", "pub/", "--prefix"}},
	{User: "alice:alicepw", Args: []string{"put", "pub/x", "1"}},
	{User: "alice:alicepw", Args: []string{"put", "w3", "1"}},
	{User: "alice:alicepw", Args: []string{"del", "w1", "w5"}},
	{User: "alice:alicepw", Args: []string{"del", "w1", "w9"}},
	{User: "alice:alicepw", Args: []string{"get", "foo", "fop"}},
	{User: "alice:alicepw", Args: []string{"txn"}, Stdin: "value(\"other\") = \"x\"\n\nput foo q\n\n\n"},
	{User: "alice:alicepw", Args: []string{"txn"}, Stdin: "value(\"foo\") = \"baz\"\n\nput foo q\n\nput other q\n\n"},
	{User: "alice:alicepw", Args: []string{"txn"}, Stdin: "value(\"foo\") = \"baz\"\n\nput foo q\n\nget foo\n\n"},
	{User: "alice:alicepw", Args: []string{"user", "list"}},
	{User: "alice:alicepw", Args: []string{"user", "get", "alice"}},
	{User: "alice:alicepw", Args: []string{"role", "get", "r1"}},
	{User: "alice:alicepw", Args: []string{"role", "get", "root"}},
	{User: "alice:alicepw", Args: []string{"auth", "disable"}},
	{User: "alice:alicepw", Args: []string{"endpoint", "status"}},
	{User: "alice:alicepw", Args: []string{"endpoint", "hashkv"}},
	{User: "alice:alicepw", Args: []string{"defrag"}},
	{User: "root:rootpw", Args: []string{"user", "get", "alice"}},
	{User: "root:rootpw", Args: []string{"role", "get", "r1"}},
	{User: "root:rootpw", Args: []string{"role", "get", "root"}},
	{User: "root:rootpw", Args: []string{"role", "list"}},
	{User: "root:rootpw", Args: []string{"user", "list"}},
	{User: "root:rootpw", Args: []string{"role", "revoke-permission", "r1", "foo"}},
	{User: "root:rootpw", Args: []string{"role", "revoke-permission", "r1", "foo"}},
	{User: "alice:alicepw", Args: []string{"get", "foo"}},
	{User: "root:rootpw", Args: []string{"user", "revoke-role", "alice", "r1"}},
	{User: "root:rootpw", Args: []string{"user", "revoke-role", "alice", "r1"}},
	{User: "root:rootpw", Args: []string{"user", "revoke-role", "root", "root"}},
	{User: "root:rootpw", Args: []string{"user", "delete", "root"}},
	{User: "root:rootpw", Args: []string{"role", "delete", "root"}},
	{User: "root:rootpw", Args: []string{"user", "delete", "alice"}},
	{User: "alice:alicepw", Args: []string{"get", "foo"}},
	{User: "root:rootpw", Args: []string{"user", "passwd", "root", "--interactive=false"}, Stdin: "rootpw2\n"},
	{User: "root:rootpw", Args: []string{"get", "foo"}},
	{User: "root:rootpw2", Args: []string{"user", "add", "bob", "--new-user-password=bobpw"}},
	{User: "root:rootpw2", Args: []string{"user", "grant-role", "bob", "r1"}},
	{User: "root:rootpw2", Args: []string{"role", "add", "r2"}},
	{User: "root:rootpw2", Args: []string{"role", "grant-permission", "r2", "readwrite", "--from-key", "z"}},
	{User: "root:rootpw2", Args: []string{"user", "grant-role", "bob", "r2"}},
	{User: "root:rootpw2", Args: []string{"role", "delete", "r2"}},
	{User: "root:rootpw2", Args: []string{"user", "get", "bob"}},
	{User: "root:rootpw2", Args: []string{"auth", "status"}},
	{User: "root:rootpw2", Args: []string{"auth", "disable"}},
	{Args: []string{"get", "foo"}},
	{Args: []string{"auth", "status"}},
	{Args: []string{"user", "add", "carol", "--new-user-password=c"}},
	{Args: []string{"auth", "enable"}},
	{User: "carol:c", Args: []string{"get", "foo"}},
}

// AuthStateSteps read the auth state AuthSession leaves: what must survive
// a restart, a snapshot or a restore, and read the same to etcd.
var AuthStateSteps = []EtcdctlStep{
	{User: "root:rootpw2", Args: []string{"user", "list"}},
	{User: "root:rootpw2", Args: []string{"role", "list"}},
	{User: "root:rootpw2", Args: []string{"user", "get", "bob"}},
	{User: "root:rootpw2", Args: []string{"role", "get", "r1"}},
	{User: "root:rootpw2", Args: []string{"auth", "status"}},
	{User: "bob:bobpw", Args: []string{"get", "pub/", "--prefix"}},
	{User: "bob:bobpw", Args: []string{"put", "foo", "x"}},
}

var (
	leaseIDs  = regexp.MustCompile(`lease [0-9a-f]+ granted`)
	tookTimes = regexp.MustCompile(`took [0-9.]+[µnm]?s`)
	hostPorts = regexp.MustCompile(`127\.0\.0\.1:\d+`)
)

// RunEtcdctl runs the steps against endpoint and returns one transcript
// entry per step: exit status, stdout, and stderr without client logs.
func RunEtcdctl(t testing.TB, etcdctl, endpoint string, steps []EtcdctlStep) []string {
	t.Helper()
	var out []string
	for _, st := range steps {
		args := []string{"--endpoints", endpoint, "--dial-timeout", "5s", "--command-timeout", "10s"}
		if st.User != "" {
			args = append(args, "--user", st.User)
		}
		args = append(args, st.Args...)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		cmd := exec.CommandContext(ctx, etcdctl, args...)
		cmd.Stdin = strings.NewReader(st.Stdin)
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		cancel()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatalf("etcdctl %v: %v", st.Args, err)
		}
		var errLines []string
		for _, l := range strings.Split(stderr.String(), "\n") {
			if l != "" && !strings.HasPrefix(l, "{") {
				errLines = append(errLines, l)
			}
		}
		text := fmt.Sprintf("%s %s: exit %d\n%s%s", st.User, strings.Join(st.Args, " "), code, stdout.String(), strings.Join(errLines, "\n"))
		text = leaseIDs.ReplaceAllString(text, "lease <id> granted")
		text = tookTimes.ReplaceAllString(text, "took <took>")
		out = append(out, hostPorts.ReplaceAllString(text, "<endpoint>"))
	}
	return out
}

// CompareTranscripts reports each step of got (from RunEtcdctl) that differs
// from want, the transcript of the same steps elsewhere.
func CompareTranscripts(t testing.TB, what string, want, got []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d steps, want %d", what, len(got), len(want))
	}
	for i := range min(len(want), len(got)) {
		if got[i] != want[i] {
			t.Errorf("%s, step %d:\nwant:\n%s\ngot:\n%s", what, i, want[i], got[i])
		}
	}
}

package e2e

import (
	"os"
	"os/exec"
	"regexp"
	"testing"

	"github.com/lifeboat-dev/lifeboat/internal/interoptest"
)

// curlBinary returns curl's path. Without curl the test skips, or fails
// under LIFEBOAT_INTEROP=require, as a missing etcd does.
func curlBinary(t testing.TB) string {
	t.Helper()
	path, err := exec.LookPath("curl")
	if err != nil {
		if os.Getenv(interoptest.ModeEnv) == "require" {
			t.Fatalf("e2e: curl is required (%s=require): %v", interoptest.ModeEnv, err)
		}
		t.Skipf("e2e: skipping, no curl: %v", err)
	}
	return path
}

// gateway is a request to the grpc-gateway of m1 (simple tokens are known
// to the member that issued them) with curl and the client certificate
// without a CN; token, if set, names a captured token sent as the
// Authorization header.
func gateway(path, body, token string) step {
	st := gatewayCN(path, body)
	st.args = append(st.args, "--cert", "{anon-cert}", "--key", "{anon-key}")
	if token != "" {
		st.args = append(st.args, "-H", "Authorization: {"+token+"}")
	}
	return st
}

// gatewayCN is a request to m1's grpc-gateway with the session's client
// certificate, whose CN is backupd.
func gatewayCN(path, body string) step {
	return step{tool: "curl", args: []string{"-X", "POST", "https://{m1-client}" + path, "-d", body}, json: gatewayJSON}
}

// gatewayJSON blanks what differs between runs in a gateway response: the
// raft term and the random part of a simple token. Cluster and member IDs
// are named by the session; revisions are deterministic.
var gatewayJSON = &jsonNorm{volatile: []string{"raft_term", "token"}}

// authenticate is a gateway login whose token the session names.
func authenticate(user, password, token string) step {
	st := gateway("/v3/auth/authenticate", `{"name":"`+user+`","password":"`+password+`"}`, "")
	st.capture = &capture{name: token, re: regexp.MustCompile(`"token":"([^"]+)"`), text: true}
	return st
}

// authSession is the RBAC runbook on a cluster that serves TLS and requires
// client certificates (--client-cert-auth), as a Kubernetes etcd does. The
// client certificate's CN is "backupd": with auth enabled, a request without
// a user name is that user's, and the gateway takes requests only with the
// certificate without a CN. Keys in gateway bodies are base64: Zm9v is
// foo, ZGlyLw== dir/, ZGlyMA== dir0, eA== x.
var authSession = []step{
	{args: []string{"put", "foo", "bar"}},            // rev 2
	{args: []string{"put", "dir/a", "1"}},            // rev 3
	{args: []string{"put", "b1", "v"}},               // rev 4
	{args: []string{"put", "zz", "v"}},               // rev 5
	{args: []string{"auth", "enable"}, stderr: true}, // no root user yet
	{args: []string{"user", "add", "root", "--new-user-password=rootpw"}},
	{args: []string{"user", "add", "alice", "--new-user-password=alicepw"}},
	{args: []string{"user", "add", "bob", "--new-user-password=bobpw"}},
	{args: []string{"user", "add", "bob", "--new-user-password=again"}, stderr: true},
	{args: []string{"role", "add", "reader"}},
	{args: []string{"role", "add", "writer"}},
	{args: []string{"role", "add", "reader"}, stderr: true},
	{args: []string{"role", "grant-permission", "reader", "read", "foo"}},
	{args: []string{"role", "grant-permission", "reader", "read", "dir/", "--prefix"}},
	{args: []string{"role", "grant-permission", "writer", "readwrite", "b", "c"}},
	{args: []string{"role", "grant-permission", "writer", "write", "dir/", "--prefix"}},
	{args: []string{"role", "grant-permission", "writer", "readwrite", "z", "--from-key"}},
	{args: []string{"role", "grant-permission", "writer", "readwrite", "d", "e"}},
	{args: []string{"role", "revoke-permission", "writer", "d", "e"}},
	{args: []string{"role", "revoke-permission", "writer", "nothing"}, stderr: true},
	{args: []string{"role", "get", "reader"}},
	{args: []string{"role", "get", "writer"}},
	{args: []string{"role", "list"}},
	{args: []string{"user", "grant-role", "root", "root"}},
	{args: []string{"user", "grant-role", "alice", "reader"}},
	{args: []string{"user", "grant-role", "bob", "writer"}},
	{args: []string{"user", "grant-role", "bob", "reader"}},
	{args: []string{"user", "revoke-role", "bob", "reader"}},
	{args: []string{"user", "grant-role", "bob", "nosuchrole"}, stderr: true},
	{args: []string{"user", "get", "bob"}},
	{args: []string{"user", "get", "root", "--detail"}},
	{args: []string{"user", "list"}},
	{args: []string{"auth", "enable"}},
	{args: []string{"auth", "status", "--user=root:rootpw"}},
	// Allowed and denied, by user name and password.
	{args: []string{"get", "foo", "--user=alice:alicepw"}},
	{args: []string{"get", "foo", "--user=alice:wrong"}, stderr: true},
	{args: []string{"get", "foo", "--user=nobody:pw"}, stderr: true},
	{args: []string{"put", "foo", "x", "--user=alice:alicepw"}, stderr: true},
	{args: []string{"get", "dir/", "--prefix", "--user=alice:alicepw"}},
	{args: []string{"get", "dir", "--prefix", "--user=alice:alicepw"}, stderr: true},
	{args: []string{"get", "dir/a", "--user=bob:bobpw"}, stderr: true},
	{args: []string{"put", "dir/b", "2", "--user=bob:bobpw"}}, // rev 6
	{args: []string{"put", "b2", "v", "--user=bob:bobpw"}},    // rev 7
	{args: []string{"get", "b", "c", "--user=bob:bobpw"}},
	{args: []string{"get", "b", "d", "--user=bob:bobpw"}, stderr: true},
	{args: []string{"put", "d1", "v", "--user=bob:bobpw"}, stderr: true},
	{args: []string{"put", "zzz", "v", "--user=bob:bobpw"}}, // rev 8
	{args: []string{"get", "z", "--from-key", "--user=bob:bobpw"}},
	{args: []string{"del", "b1", "--user=bob:bobpw"}}, // rev 9
	{args: []string{"user", "add", "carol", "--new-user-password=c", "--user=alice:alicepw"}, stderr: true},
	{args: []string{"user", "list", "--user=root:rootpw"}},
	{args: []string{"get", "", "--from-key", "--keys-only", "--user=root:rootpw"}},
	// By the client certificate's CN, once a user of that name exists.
	{args: []string{"get", "foo"}, stderr: true},
	{args: []string{"user", "add", "backupd", "--no-password", "--user=root:rootpw"}},
	{args: []string{"user", "grant-role", "backupd", "reader", "--user=root:rootpw"}},
	{args: []string{"get", "foo"}},
	{args: []string{"put", "foo", "x"}, stderr: true},
	// The gateway, with and without a token. With auth enabled it refuses a
	// client certificate with a CN, token or not.
	gatewayCN("/v3/kv/range", `{"key":"Zm9v"}`),
	gatewayCN("/v3/auth/authenticate", `{"name":"alice","password":"alicepw"}`),
	authenticate("alice", "alicepw", "alice-token"),
	authenticate("root", "rootpw", "root-token"),
	gateway("/v3/auth/authenticate", `{"name":"alice","password":"wrong"}`, ""),
	gateway("/v3/kv/range", `{"key":"Zm9v"}`, "alice-token"),
	gateway("/v3/kv/range", `{"key":"ZGlyLw==","range_end":"ZGlyMA=="}`, "alice-token"),
	gateway("/v3/kv/put", `{"key":"Zm9v","value":"eA=="}`, "alice-token"),
	gateway("/v3/kv/range", `{"key":"Zm9v"}`, ""),
	gateway("/v3/kv/range", `{"key":"Zm9v"}`, "bogus"),
	gateway("/v3/auth/user/list", `{}`, "alice-token"),
	gateway("/v3/auth/user/list", `{}`, "root-token"),
	gateway("/v3/auth/role/get", `{"role":"writer"}`, "root-token"),
	gateway("/v3/auth/status", `{}`, "root-token"),
	gateway("/v3/kv/put", `{"key":"Zm9v","value":"eA=="}`, "root-token"), // rev 10
	// Revoked and deleted grants take effect at once.
	{args: []string{"role", "revoke-permission", "reader", "foo", "--user=root:rootpw"}},
	{args: []string{"get", "foo", "--user=alice:alicepw"}, stderr: true},
	gateway("/v3/kv/range", `{"key":"Zm9v"}`, "alice-token"),
	{args: []string{"user", "revoke-role", "alice", "reader", "--user=root:rootpw"}},
	{args: []string{"get", "dir/a", "--user=alice:alicepw"}, stderr: true},
	{args: []string{"user", "passwd", "alice", "--interactive=false", "--user=root:rootpw"}, stdin: "alicepw2\n"},
	{args: []string{"get", "foo", "--user=alice:alicepw2"}, stderr: true}, // no role left
	{args: []string{"get", "foo", "--user=alice:alicepw"}, stderr: true},
	{args: []string{"role", "delete", "writer", "--user=root:rootpw"}},
	{args: []string{"put", "b3", "v", "--user=bob:bobpw"}, stderr: true},
	{args: []string{"user", "delete", "bob", "--user=root:rootpw"}},
	{args: []string{"get", "foo", "--user=bob:bobpw"}, stderr: true},
	{args: []string{"auth", "disable", "--user=alice:alicepw2"}, stderr: true},
	{args: []string{"auth", "disable", "--user=root:rootpw"}},
	{args: []string{"auth", "status"}},
	{args: []string{"get", "foo"}},
	{args: []string{"put", "foo", "y"}}, // rev 11
	gateway("/v3/kv/range", `{"key":"Zm9v"}`, ""),
	gateway("/v3/kv/range", `{"key":"Zm9v"}`, "alice-token"),
	gatewayCN("/v3/kv/range", `{"key":"Zm9v"}`),
	{args: []string{"user", "list"}},
	{args: []string{"role", "list"}},
}

// TestEtcdctlAuthSession runs authSession with real etcdctl and curl
// against a 3-member cluster of each system with client TLS and
// --client-cert-auth.
func TestEtcdctlAuthSession(t *testing.T) {
	runSession(t, "auth", authSession, interoptest.Options{TLS: interoptest.NewTLS(t)})
}

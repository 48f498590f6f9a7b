package server

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/authpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/etcdserver/api/v3lock/v3lockpb"
)

// enableAuth adds root and alice (readwrite on "a" to "m", read on the
// prefix "pub/") and enables auth.
func enableAuth(t *testing.T, cli *clientv3.Client) {
	t.Helper()
	ctx := ctxT(t)
	steps := []func() error{
		func() error { _, err := cli.UserAdd(ctx, "root", "rootpw"); return err },
		func() error { _, err := cli.RoleAdd(ctx, "root"); return err },
		func() error { _, err := cli.UserGrantRole(ctx, "root", "root"); return err },
		func() error { _, err := cli.UserAdd(ctx, "alice", "alicepw"); return err },
		func() error { _, err := cli.RoleAdd(ctx, "r"); return err },
		func() error {
			_, err := cli.RoleGrantPermission(ctx, "r", "a", "m", clientv3.PermissionType(clientv3.PermReadWrite))
			return err
		},
		func() error {
			_, err := cli.RoleGrantPermission(ctx, "r", "pub/", clientv3.GetPrefixRangeEnd("pub/"), clientv3.PermissionType(clientv3.PermRead))
			return err
		},
		func() error { _, err := cli.UserGrantRole(ctx, "alice", "r"); return err },
		func() error { _, err := cli.AuthEnable(ctx); return err },
	}
	for i, f := range steps {
		if err := f(); err != nil {
			t.Fatalf("auth setup step %d: %v", i, err)
		}
	}
}

func userClient(t *testing.T, c *testCluster, user, password string, members ...int) *clientv3.Client {
	t.Helper()
	var eps []string
	for _, m := range members {
		eps = append(eps, c.endpoint(m))
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: eps, DialTimeout: 5 * time.Second, Username: user, Password: password})
	if err != nil {
		t.Fatalf("client as %s: %v", user, err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// TestAuthWatchLeaseAndLock checks what etcdctl's session does not: a
// watch of keys the user may not read is canceled with etcd's reason, a
// lease with a key the user may not write cannot be revoked by it, its TTL
// may be read but not its keys, and the
// lock service acts with the caller's permissions.
func TestAuthWatchLeaseAndLock(t *testing.T) {
	c := newTestCluster(t, 1, func(cfg *Config) { cfg.BcryptCost = 4 })
	c.waitLeader()
	enableAuth(t, c.client(0))
	root := userClient(t, c, "root", "rootpw", 0)
	alice := userClient(t, c, "alice", "alicepw", 0)
	ctx := ctxT(t)

	wc := alice.Watch(ctx, "z")
	select {
	case resp := <-wc:
		if !resp.Canceled || resp.Err() == nil || !strings.Contains(resp.Err().Error(), "permission denied") {
			t.Fatalf("watch of a denied key: %+v (%v)", resp, resp.Err())
		}
	case <-ctx.Done():
		t.Fatal("no answer to a denied watch")
	}
	allowed := alice.Watch(ctx, "b")
	if _, err := alice.Put(ctx, "b", "1"); err != nil {
		t.Fatal(err)
	}
	if resp := <-allowed; resp.Err() != nil || len(resp.Events) != 1 {
		t.Fatalf("watch of a permitted key: %+v (%v)", resp, resp.Err())
	}

	lease, err := root.Grant(ctx, 60)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := root.Put(ctx, "z", "x", clientv3.WithLease(lease.ID)); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Revoke(ctx, lease.ID); !errors.Is(err, rpctypes.ErrPermissionDenied) {
		t.Fatalf("alice revokes a lease holding z: %v", err)
	}
	if _, err := alice.Put(ctx, "b", "2", clientv3.WithLease(lease.ID)); !errors.Is(err, rpctypes.ErrPermissionDenied) {
		t.Fatalf("alice attaches b to a lease holding z: %v", err)
	}
	// As etcd: the lease's keys are checked only when they are asked for.
	if _, err := alice.TimeToLive(ctx, lease.ID, clientv3.WithAttachedKeys()); !errors.Is(err, rpctypes.ErrPermissionDenied) {
		t.Fatalf("alice reads the keys of a lease holding z: %v", err)
	}
	if _, err := alice.TimeToLive(ctx, lease.ID); err != nil {
		t.Fatalf("alice reads the TTL of a lease holding z: %v", err)
	}
	if _, err := root.Revoke(ctx, lease.ID); err != nil {
		t.Fatalf("root revokes: %v", err)
	}

	// The lock service runs the recipe as the caller.
	lock := v3lockpb.NewLockClient(alice.ActiveConnection())
	l, err := alice.Grant(ctx, 60)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lock.Lock(ctx, &v3lockpb.LockRequest{Name: []byte("c-lock"), Lease: int64(l.ID)}); err != nil {
		t.Fatalf("alice locks in her range: %v", err)
	}
	if _, err := lock.Lock(ctx, &v3lockpb.LockRequest{Name: []byte("z-lock"), Lease: int64(l.ID)}); err == nil || !strings.Contains(err.Error(), "permission denied") {
		t.Fatalf("alice locks outside her range: %v", err)
	}
}

// writeECKeys writes a P-256 key pair as PEM for --auth-token jwt.
func writeECKeys(t *testing.T, dir string) (pub, priv string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	priv, pub = filepath.Join(dir, "jwt.key"), filepath.Join(dir, "jwt.pub")
	for path, b := range map[string]*pem.Block{priv: {Type: "EC PRIVATE KEY", Bytes: der}, pub: {Type: "PUBLIC KEY", Bytes: pubDER}} {
		if err := os.WriteFile(path, pem.EncodeToMemory(b), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return pub, priv
}

// TestAuthTokensAcrossMembers authenticates on one member and uses the
// token on another, with simple tokens (every member assigns them) and
// with JWT.
func TestAuthTokensAcrossMembers(t *testing.T) {
	pub, priv := writeECKeys(t, t.TempDir())
	for _, tc := range []struct{ name, token string }{
		{"simple", "simple"},
		{"jwt", "jwt,pub-key=" + pub + ",priv-key=" + priv + ",sign-method=ES256"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newTestCluster(t, 3, func(cfg *Config) { cfg.BcryptCost, cfg.AuthToken = 4, tc.token })
			lead := c.waitLeader()
			enableAuth(t, c.client(lead))
			ctx := ctxT(t)
			resp, err := c.client(lead).Authenticate(ctx, "alice", "alicepw")
			if err != nil {
				t.Fatal(err)
			}
			if tc.name == "jwt" && strings.Count(resp.Token, ".") != 2 {
				t.Fatalf("token %q is no JWT", resp.Token)
			}
			other := (lead + 1) % 3
			// As on etcd, a member that has not applied the auth enable
			// yet takes the request as one without a user, which fails
			// at apply: wait until it has the Authenticate entry.
			c.waitApplied(other, c.srvs[lead].applied.Load())
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.endpoint(other)+"/v3/kv/put",
				strings.NewReader(`{"key":"`+b64("b")+`","value":"`+b64("v")+`"}`))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", resp.Token)
			hr, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(hr.Body)
			hr.Body.Close()
			if hr.StatusCode != http.StatusOK {
				t.Fatalf("gateway put with the token on another member: %s %s", hr.Status, body)
			}
			// Without the header the gateway request has no user.
			hr, err = http.Post(c.endpoint(other)+"/v3/kv/range", "application/json", strings.NewReader(`{"key":"`+b64("b")+`"}`))
			if err != nil {
				t.Fatal(err)
			}
			body, _ = io.ReadAll(hr.Body)
			hr.Body.Close()
			var e struct{ Message string }
			if json.Unmarshal(body, &e); e.Message != rpctypes.ErrUserEmpty.Error() {
				t.Fatalf("gateway range without a token: %s %s", hr.Status, body)
			}
		})
	}
}

// TestClientCertCommonNameIsTheUser serves client TLS with
// --client-cert-auth: a certificate whose CN is alice acts as alice with
// no password.
func TestClientCertCommonNameIsTheUser(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t, dir, "ca")
	srv, aliceCert := ca.issue("server", "server"), ca.issue("alice", "alice")
	c := newTestCluster(t, 1, func(cfg *Config) {
		cfg.BcryptCost = 4
		toHTTPS(cfg, true, false)
		cfg.ClientTLSInfo = TLSInfo{CertFile: srv.CertFile, KeyFile: srv.KeyFile, TrustedCAFile: ca.CAFile, ClientCertAuth: true}
	})
	c.waitLeader()
	pool := x509.NewCertPool()
	caPEM, err := os.ReadFile(ca.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	pool.AppendCertsFromPEM(caPEM)
	kp, err := tls.LoadX509KeyPair(aliceCert.CertFile, aliceCert.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{c.endpoint(0)}, DialTimeout: 5 * time.Second,
		TLS: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{kp}}})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx := ctxT(t)
	// Before auth is enabled the certificate is just a certificate.
	enableAuth(t, cli)
	if _, err := cli.Put(ctx, "b", "v"); err != nil {
		t.Fatalf("put in alice's range by her certificate: %v", err)
	}
	if _, err := cli.Put(ctx, "z", "v"); !errors.Is(err, rpctypes.ErrPermissionDenied) {
		t.Fatalf("put outside alice's range by her certificate: %v", err)
	}
	if _, err := cli.UserList(ctx); !errors.Is(err, rpctypes.ErrPermissionDenied) {
		t.Fatalf("admin call by alice's certificate: %v", err)
	}
}

// TestPermissionRanges checks the range arithmetic of permissions: single
// keys, ranges, prefixes and open ends, merged over roles.
func TestPermissionRanges(t *testing.T) {
	role := func(name string, perms ...*authpb.Permission) *authpb.Role {
		return &authpb.Role{Name: []byte(name), KeyPermission: perms}
	}
	perm := func(typ authpb.Permission_Type, key, end string) *authpb.Permission {
		p := &authpb.Permission{PermType: typ, Key: []byte(key)}
		if end != "" {
			p.RangeEnd = []byte(end)
		}
		return p
	}
	a := &authState{enabled: true, revision: 5,
		users: map[string]*authpb.User{
			"u":    {Name: []byte("u"), Roles: []string{"r1", "r2"}},
			"root": {Name: []byte("root"), Roles: []string{"root"}},
		},
		roles: map[string]*authpb.Role{
			"r1": role("r1", perm(authpb.READWRITE, "a", "c"), perm(authpb.READ, "k", "")),
			"r2": role("r2", perm(authpb.READWRITE, "c", "e"), perm(authpb.WRITE, "x", "\x00")),
		},
	}
	a.mergePerms()
	u := &authInfo{user: "u", revision: 5}
	tests := []struct {
		name     string
		ai       *authInfo
		key, end string
		write    bool
		want     error
	}{
		{"key in a range", u, "b", "", false, nil},
		{"range across two roles' ranges", u, "a", "e", true, nil},
		{"range past the end", u, "a", "f", false, rpctypes.ErrGRPCPermissionDenied},
		{"single key read", u, "k", "", false, nil},
		{"single key write", u, "k", "", true, rpctypes.ErrGRPCPermissionDenied},
		{"range holding only the key", u, "k", "k\x00", false, nil},
		{"range beyond the key", u, "k", "l", false, rpctypes.ErrGRPCPermissionDenied},
		{"open end write", u, "y", "\x00", true, nil},
		{"open end read", u, "y", "\x00", false, rpctypes.ErrGRPCPermissionDenied},
		{"end before an open range", u, "x", "z", true, nil},
		{"root", &authInfo{user: "root", revision: 5}, "zzz", "\x00", true, nil},
		{"no user", &authInfo{}, "b", "", false, rpctypes.ErrGRPCUserEmpty},
		{"old revision", &authInfo{user: "u", revision: 4}, "b", "", false, rpctypes.ErrGRPCAuthOldRevision},
		{"unknown user", &authInfo{user: "v", revision: 5}, "b", "", false, rpctypes.ErrGRPCPermissionDenied},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var end []byte
			if tc.end != "" {
				end = []byte(tc.end)
			}
			if err := a.opPermitted(tc.ai, []byte(tc.key), end, tc.write); err != tc.want {
				t.Fatalf("%q..%q write %v: %v, want %v", tc.key, tc.end, tc.write, err, tc.want)
			}
		})
	}
	for _, tc := range []struct {
		key, end string
		ok       bool
	}{{"a", "", true}, {"a", "\x00", true}, {"a", "b", true}, {"b", "a", false}, {"", "b", false}} {
		if got := validPermRange([]byte(tc.key), []byte(tc.end)); got != tc.ok {
			t.Errorf("validPermRange(%q, %q) = %v", tc.key, tc.end, got)
		}
	}
}

package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/lifeboat-dev/lifeboat/internal/interoptest"
)

// toHTTPS turns a member's client and/or peer URLs (and the initial
// cluster, shared by all members) to https.
func toHTTPS(cfg *Config, client, peer bool) {
	conv := func(us []string) []string {
		out := make([]string, len(us))
		for i, u := range us {
			out[i] = strings.Replace(u, "http://", "https://", 1)
		}
		return out
	}
	if client {
		cfg.ListenClientURLs, cfg.AdvertiseClientURLs = conv(cfg.ListenClientURLs), conv(cfg.AdvertiseClientURLs)
	}
	if peer {
		cfg.ListenPeerURLs, cfg.AdvertisePeerURLs = conv(cfg.ListenPeerURLs), conv(cfg.AdvertisePeerURLs)
		for name, us := range cfg.InitialCluster {
			cfg.InitialCluster[name] = conv(us)
		}
	}
}

// tlsClient is an HTTP client trusting caFile, with an optional client
// certificate.
func tlsClient(t *testing.T, caFile string, cert *issued, h2 bool) *http.Client {
	t.Helper()
	pem, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	cfg := &tls.Config{RootCAs: pool}
	if cert != nil {
		c, err := tls.LoadX509KeyPair(cert.CertFile, cert.KeyFile)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Certificates = []tls.Certificate{c}
	}
	tr := &http.Transport{TLSClientConfig: cfg}
	tr.Protocols = new(http.Protocols)
	if h2 {
		tr.Protocols.SetHTTP2(true)
	} else {
		tr.Protocols.SetHTTP1(true)
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// TestEtcdctlClientTLS runs real etcdctl against a member serving client
// TLS with --client-cert-auth: a trusted client certificate is served, none
// or one from another CA is refused; /health answers over HTTP/1.1 and
// HTTP/2 on the same port.
func TestEtcdctlClientTLS(t *testing.T) {
	etcdctl := interoptest.Binary(t, "etcdctl")
	dir := t.TempDir()
	ca, other := newTestCA(t, dir, "ca"), newTestCA(t, dir, "other")
	srvCert, cliCert, badCert := ca.issue("server", "server"), ca.issue("client", "client"), other.issue("bad", "client")
	c := newTestCluster(t, 1, func(cfg *Config) {
		toHTTPS(cfg, true, false)
		cfg.ClientTLSInfo = TLSInfo{CertFile: srvCert.CertFile, KeyFile: srvCert.KeyFile, TrustedCAFile: ca.CAFile, ClientCertAuth: true}
	})
	c.waitLeader()
	ep := c.endpoint(0)
	if !strings.HasPrefix(ep, "https://") {
		t.Fatalf("endpoint %s", ep)
	}
	run := func(cert *issued, args ...string) (string, error) {
		t.Helper()
		base := []string{"--endpoints", ep, "--cacert", ca.CAFile, "--dial-timeout", "3s", "--command-timeout", "5s"}
		if cert != nil {
			base = append(base, "--cert", cert.CertFile, "--key", cert.KeyFile)
		}
		out, err := exec.CommandContext(ctxT(t), etcdctl, append(base, args...)...).CombinedOutput()
		return string(out), err
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"put", "k", "v"}, "OK\n"},
		{[]string{"get", "k", "--print-value-only"}, "v\n"},
		{[]string{"del", "k"}, "1\n"},
	} {
		if got, err := run(&cliCert, tc.args...); err != nil || got != tc.want {
			t.Fatalf("etcdctl %v: %q, %v; want %q", tc.args, got, err, tc.want)
		}
	}
	if out, err := run(&cliCert, "endpoint", "health"); err != nil || !strings.Contains(out, "is healthy") {
		t.Fatalf("endpoint health: %v\n%s", err, out)
	}
	for name, cert := range map[string]*issued{"no client certificate": nil, "a certificate of another CA": &badCert} {
		if out, err := run(cert, "put", "k", "v"); err == nil {
			t.Fatalf("etcdctl with %s: served: %s", name, out)
		}
	}
	for _, h2 := range []bool{false, true} {
		resp, err := tlsClient(t, ca.CAFile, &cliCert, h2).Get(ep + "/health")
		if err != nil {
			t.Fatalf("GET /health (h2 %v): %v", h2, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.ProtoMajor != map[bool]int{false: 1, true: 2}[h2] {
			t.Fatalf("GET /health (h2 %v): %s %s", h2, resp.Proto, resp.Status)
		}
	}
}

// TestPeerTLSRefusesForeignCA runs three members with peer TLS and
// --peer-client-cert-auth; the third has a certificate from another CA:
// the two others refuse it and form the cluster without it.
func TestPeerTLSRefusesForeignCA(t *testing.T) {
	dir := t.TempDir()
	ca, other := newTestCA(t, dir, "ca"), newTestCA(t, dir, "other")
	bundle := concatFiles(t, filepath.Join(dir, "bundle.pem"), ca.CAFile, other.CAFile)
	logs := make([]*logBuffer, 3)
	i := 0
	c := newTestCluster(t, 3, func(cfg *Config) {
		toHTTPS(cfg, false, true)
		logs[i] = &logBuffer{}
		cfg.Logger = slog.New(slog.NewJSONHandler(logs[i], nil))
		cert := ca.issue(cfg.Name, cfg.Name)
		info := TLSInfo{CertFile: cert.CertFile, KeyFile: cert.KeyFile, TrustedCAFile: ca.CAFile, ClientCertAuth: true}
		if i == 2 {
			// Trusts both CAs: only its own certificate is at fault.
			cert = other.issue(cfg.Name, cfg.Name)
			info = TLSInfo{CertFile: cert.CertFile, KeyFile: cert.KeyFile, TrustedCAFile: bundle, ClientCertAuth: true}
		}
		cfg.PeerTLSInfo = info
		i++
	})
	lead := waitLeaderAmong(t, c, 0, 1)
	if _, err := c.client(0, 1).Put(ctxT(t), "k", "v"); err != nil {
		t.Fatalf("put on the TLS pair (leader %d): %v", lead, err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for !(logs[0].contains("certificate signed by unknown authority") && logs[1].contains("certificate signed by unknown authority")) {
		if time.Now().After(deadline) {
			t.Fatalf("members 0 and 1 never refused member 2's certificate:\n%s\n%s", logs[0], logs[1])
		}
		time.Sleep(20 * time.Millisecond)
	}
	if l := c.srvs[2].Leader(); l != 0 {
		t.Fatalf("member 2 with a foreign certificate follows leader %x", l)
	}
	if c.srvs[0].tr.PeerActive(c.srvs[2].ID()) {
		t.Fatal("member 0 has a connected stream to member 2")
	}
}

// waitLeaderAmong waits until the given members agree on a leader among
// them and returns its index.
func waitLeaderAmong(t *testing.T, c *testCluster, members ...int) int {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		lead := c.srvs[members[0]].Leader()
		agree := lead != 0
		for _, m := range members[1:] {
			agree = agree && c.srvs[m].Leader() == lead
		}
		if agree {
			for _, m := range members {
				if c.srvs[m].ID() == lead {
					return m
				}
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("members %v never agreed on a leader among them", members)
	return -1
}

// TestCertificateRotationWithoutRestart replaces the server certificate
// on disk; the next connection gets the new one, while the member runs on.
func TestCertificateRotationWithoutRestart(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t, dir, "ca")
	first := ca.issue("server", "first")
	c := newTestCluster(t, 1, func(cfg *Config) {
		toHTTPS(cfg, true, false)
		cfg.ClientTLSInfo = TLSInfo{CertFile: first.CertFile, KeyFile: first.KeyFile}
	})
	c.waitLeader()
	served := func() string {
		t.Helper()
		resp, err := tlsClient(t, ca.CAFile, nil, false).Get(c.endpoint(0) + "/health")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.TLS.PeerCertificates[0].Subject.CommonName
	}
	if got := served(); got != "first" {
		t.Fatalf("served certificate %q, want first", got)
	}
	ca.issue("server", "second") // the same files, rewritten
	if got := served(); got != "second" {
		t.Fatalf("after rotation served certificate %q, want second", got)
	}
}

// TestClientCRLRefusesRevokedCertificate checks --client-crl-file, re-read
// when it changes.
func TestClientCRLRefusesRevokedCertificate(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t, dir, "ca")
	srv, cli := ca.issue("server", "server"), ca.issue("client", "client")
	crl := ca.crl("crl.pem")
	c := newTestCluster(t, 1, func(cfg *Config) {
		toHTTPS(cfg, true, false)
		cfg.ClientTLSInfo = TLSInfo{CertFile: srv.CertFile, KeyFile: srv.KeyFile, TrustedCAFile: ca.CAFile, ClientCertAuth: true, CRLFile: crl}
	})
	c.waitLeader()
	get := func() error {
		resp, err := tlsClient(t, ca.CAFile, &cli, false).Get(c.endpoint(0) + "/health")
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	if err := get(); err != nil {
		t.Fatalf("before revocation: %v", err)
	}
	ca.crl("crl.pem", cli.Serial)
	if err := get(); err == nil {
		t.Fatal("a revoked client certificate was served")
	}
}

func TestTLSConfigErrors(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t, dir, "ca")
	cert := ca.issue("server", "server")
	tests := []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"https without a certificate", func(c *Config) { toHTTPS(c, true, false) }, "client URLs use TLS but no certificate"},
		{"peer https without a certificate", func(c *Config) { toHTTPS(c, false, true) }, "peer URLs use TLS but no certificate"},
		{"cert without key", func(c *Config) {
			toHTTPS(c, true, false)
			c.ClientTLSInfo.CertFile = cert.CertFile
		}, "needs both"},
		{"missing file", func(c *Config) {
			toHTTPS(c, true, false)
			c.ClientTLSInfo = TLSInfo{CertFile: cert.CertFile + ".missing", KeyFile: cert.KeyFile}
		}, "no such file"},
		{"max below min", func(c *Config) { c.TLSMinVersion, c.TLSMaxVersion = "TLS1.3", "TLS1.2" }, "greater than --tls-max-version"},
		{"suites with TLS 1.3 only", func(c *Config) {
			c.TLSMinVersion, c.CipherSuites = "TLS1.3", []string{"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"}
		}, "cannot be configured when only TLS1.3"},
		{"unknown suite", func(c *Config) { c.CipherSuites = []string{"TLS_NOPE"} }, "TLS_NOPE"},
		{"ftp URL", func(c *Config) { c.ListenClientURLs = []string{"ftp://127.0.0.1:1"} }, "scheme must be one of"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := NewConfig()
			cfg.Name = "m"
			cfg.DataDir = filepath.Join(t.TempDir(), "m")
			cfg.ListenClientURLs = []string{fmt.Sprintf("http://127.0.0.1:%d", freePort(t))}
			cfg.AdvertiseClientURLs = cfg.ListenClientURLs
			cfg.ListenPeerURLs = []string{fmt.Sprintf("http://127.0.0.1:%d", freePort(t))}
			cfg.AdvertisePeerURLs = cfg.ListenPeerURLs
			cfg.InitialCluster = map[string][]string{"m": cfg.AdvertisePeerURLs}
			tc.mod(cfg)
			s, err := New(cfg)
			if err == nil {
				s.Stop(ctxT(t))
				t.Fatal("started")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q, want it to contain %q", err, tc.want)
			}
		})
	}
}

// TestUnixSocketsAndClientHTTPURLs serves gRPC on unix and unixs sockets
// and HTTP alone on --listen-client-http-urls.
func TestUnixSocketsAndClientHTTPURLs(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t, dir, "ca")
	srv := ca.issue("server", "server")
	httpURL := fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
	// clientv3 (v3.6.16 on grpc 1.84) verifies a unixs socket's
	// certificate against the socket's file name, so the socket is named
	// for the certificate's host.
	if err := os.Mkdir(filepath.Join(dir, "tls"), 0o700); err != nil {
		t.Fatal(err)
	}
	unix, unixs := "unix://"+filepath.Join(dir, "m.sock"), "unixs://"+filepath.Join(dir, "tls", "localhost")
	c := newTestCluster(t, 1, func(cfg *Config) {
		cfg.ListenClientURLs = append(cfg.ListenClientURLs, unix, unixs)
		cfg.ListenClientHTTPURLs = []string{httpURL}
		cfg.ClientTLSInfo = TLSInfo{CertFile: srv.CertFile, KeyFile: srv.KeyFile}
	})
	c.waitLeader()
	for _, ep := range []string{c.endpoint(0), unix} {
		cli, err := clientv3.New(clientv3.Config{Endpoints: []string{ep}, DialTimeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cli.Put(ctxT(t), "k", ep); err != nil {
			t.Fatalf("put over %s: %v", ep, err)
		}
		cli.Close()
	}
	tlsCfg := &tls.Config{ServerName: "localhost"}
	pem, err := os.ReadFile(ca.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	tlsCfg.RootCAs = x509.NewCertPool()
	tlsCfg.RootCAs.AppendCertsFromPEM(pem)
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{unixs}, DialTimeout: 5 * time.Second, TLS: tlsCfg})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	if _, err := cli.Get(ctxT(t), "k"); err != nil {
		t.Fatalf("get over %s: %v", unixs, err)
	}
	resp, err := http.Get(httpURL + "/health")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/health on the client HTTP URL: %s", resp.Status)
	}
	resp, err = http.Get(c.endpoint(0) + "/health")
	if err == nil {
		resp.Body.Close()
		t.Fatalf("/health on the gRPC-only client URL: %s", resp.Status)
	}
}

// TestPeerCertAllowedCN: with --peer-cert-allowed-cn, or
// --peer-cert-allowed-hostname, a peer whose certificate (from the trusted
// CA) has another common name, or is for another host, is refused.
func TestPeerCertAllowedCN(t *testing.T) {
	for _, tc := range []struct {
		name  string
		allow func(*TLSInfo)
	}{
		{"cn", func(i *TLSInfo) { i.AllowedCNs = []string{"member"} }},
		{"hostname", func(i *TLSInfo) { i.AllowedHostnames = []string{"member.test"} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			ca := newTestCA(t, dir, "ca")
			logs := make([]*logBuffer, 3)
			i := 0
			c := newTestCluster(t, 3, func(cfg *Config) {
				toHTTPS(cfg, false, true)
				logs[i] = &logBuffer{}
				cfg.Logger = slog.New(slog.NewJSONHandler(logs[i], nil))
				cn := "member"
				if i == 2 {
					cn = "intruder"
				}
				cert := ca.issue(cfg.Name, cn)
				cfg.PeerTLSInfo = TLSInfo{CertFile: cert.CertFile, KeyFile: cert.KeyFile, TrustedCAFile: ca.CAFile, ClientCertAuth: true}
				tc.allow(&cfg.PeerTLSInfo)
				i++
			})
			waitLeaderAmong(t, c, 0, 1)
			deadline := time.Now().Add(20 * time.Second)
			for !logs[0].contains("client certificate authentication failed") {
				if time.Now().After(deadline) {
					t.Fatalf("member 0 never refused the intruder's certificate:\n%s", logs[0])
				}
				time.Sleep(20 * time.Millisecond)
			}
			if l := c.srvs[2].Leader(); l != 0 {
				t.Fatalf("the intruder follows leader %x", l)
			}
		})
	}
}

// TestAutoTLS serves client and peer TLS with self-signed certificates
// written under the data dir, as etcd's --auto-tls and --peer-auto-tls.
func TestAutoTLS(t *testing.T) {
	c := newTestCluster(t, 3, func(cfg *Config) {
		toHTTPS(cfg, true, true)
		cfg.ClientTLSInfo.AutoTLS, cfg.PeerTLSInfo.AutoTLS = true, true
	})
	lead := c.waitLeader()
	for _, side := range []string{"client", "peer"} {
		for _, f := range []string{"cert.pem", "key.pem"} {
			if _, err := os.Stat(filepath.Join(c.cfgs[lead].DataDir, "fixtures", side, f)); err != nil {
				t.Fatalf("auto TLS %s: %v", side, err)
			}
		}
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{c.endpoint(lead)}, DialTimeout: 5 * time.Second,
		TLS: &tls.Config{InsecureSkipVerify: true}})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	if _, err := cli.Put(ctxT(t), "k", "v"); err != nil {
		t.Fatalf("put over auto TLS: %v", err)
	}
}

// TestJoinOverPeerTLS adds a member to a cluster with peer TLS (auto TLS,
// as etcd's e2e member tests): the new member fetches the membership from
// a peer URL over https, which serves HTTP/1.1 only.
func TestJoinOverPeerTLS(t *testing.T) {
	c := newTestCluster(t, 1, func(cfg *Config) {
		toHTTPS(cfg, false, true)
		cfg.PeerTLSInfo.AutoTLS = true
	})
	c.waitLeader()
	cli := c.client()
	cfg := c.joinConfig(t, "m1")
	toHTTPS(&cfg, false, true)
	if _, err := retryWhile(t, func(ctx context.Context) (*clientv3.MemberAddResponse, error) {
		return cli.MemberAdd(ctx, cfg.AdvertisePeerURLs)
	}, rpctypes.ErrGRPCUnhealthy); err != nil {
		t.Fatalf("add member: %v", err)
	}
	c.cfgs = append(c.cfgs, cfg)
	c.srvs = append(c.srvs, nil)
	if err := c.tryStart(1); err != nil {
		t.Fatalf("joining over peer TLS: %v", err)
	}
	if _, err := cli.Put(ctxT(t), "k", "v"); err != nil {
		t.Fatal(err)
	}
	resp, err := c.client(1).Get(ctxT(t), "k")
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("get from the new member: %v %v", resp, err)
	}
}

// TestPeerURLsSpeakHTTP1: the peer URLs serve HTTP/1.1 only, as etcd's,
// cleartext and over TLS (where "h2" is not offered by ALPN): etcd's e2e
// TestAuthority takes the first HTTP/2 request in a member's debug log for
// a client's.
func TestPeerURLsSpeakHTTP1(t *testing.T) {
	clusters := map[bool]*testCluster{}
	for _, https := range []bool{false, true} {
		clusters[https] = newTestCluster(t, 1, func(cfg *Config) {
			if https {
				toHTTPS(cfg, false, true)
				cfg.PeerTLSInfo.AutoTLS = true
			}
		})
		clusters[https].waitLeader()
	}
	tests := []struct {
		name  string
		https bool
		set   func(*http.Protocols)
		err   bool // the request must fail
	}{
		{"cleartext HTTP/1.1", false, func(p *http.Protocols) { p.SetHTTP1(true) }, false},
		{"h2c", false, func(p *http.Protocols) { p.SetUnencryptedHTTP2(true) }, true},
		{"TLS offering h2 and http/1.1", true, func(p *http.Protocols) { p.SetHTTP1(true); p.SetHTTP2(true) }, false},
		{"TLS offering h2 only", true, func(p *http.Protocols) { p.SetHTTP2(true) }, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, Protocols: new(http.Protocols)}
			tc.set(tr.Protocols)
			defer tr.CloseIdleConnections()
			client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
			resp, err := client.Get(clusters[tc.https].cfgs[0].ListenPeerURLs[0] + membersPath)
			if tc.err {
				if err == nil {
					resp.Body.Close()
					t.Fatalf("served over %s", resp.Proto)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || resp.ProtoMajor != 1 {
				t.Fatalf("%s %s, want 200 over HTTP/1.1", resp.Proto, resp.Status)
			}
		})
	}
}

// TestTLSVersions: --tls-min-version TLS1.3 refuses a TLS 1.2 client.
func TestTLSVersions(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t, dir, "ca")
	srv := ca.issue("server", "server")
	c := newTestCluster(t, 1, func(cfg *Config) {
		toHTTPS(cfg, true, false)
		cfg.ClientTLSInfo = TLSInfo{CertFile: srv.CertFile, KeyFile: srv.KeyFile}
		cfg.TLSMinVersion = "TLS1.3"
	})
	c.waitLeader()
	client := tlsClient(t, ca.CAFile, nil, false)
	if _, err := client.Get(c.endpoint(0) + "/health"); err != nil {
		t.Fatalf("TLS 1.3 client: %v", err)
	}
	client.Transport.(*http.Transport).TLSClientConfig.MaxVersion = tls.VersionTLS12
	client.Transport.(*http.Transport).CloseIdleConnections()
	if _, err := client.Get(c.endpoint(0) + "/health"); err == nil || !strings.Contains(err.Error(), "protocol version") {
		t.Fatalf("TLS 1.2 client against --tls-min-version TLS1.3: %v", err)
	}
}

// TestPeerClientCertFile: peers whose certificates are for serving only
// form a cluster by presenting --peer-client-cert-file when they dial.
func TestPeerClientCertFile(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t, dir, "ca")
	c := newTestCluster(t, 3, func(cfg *Config) {
		toHTTPS(cfg, false, true)
		srv := ca.issueFor(cfg.Name+"-server", cfg.Name, x509.ExtKeyUsageServerAuth)
		cli := ca.issueFor(cfg.Name+"-client", cfg.Name, x509.ExtKeyUsageClientAuth)
		cfg.PeerTLSInfo = TLSInfo{CertFile: srv.CertFile, KeyFile: srv.KeyFile, TrustedCAFile: ca.CAFile, ClientCertAuth: true,
			ClientCertFile: cli.CertFile, ClientKeyFile: cli.KeyFile}
	})
	lead := c.waitLeader()
	if _, err := c.client(lead).Put(ctxT(t), "k", "v"); err != nil {
		t.Fatalf("put: %v", err)
	}
}

// TestHTTPAndHTTPSOnOnePort serves http:// and https:// on the same
// address, as etcd does, gRPC and HTTP on both.
func TestHTTPAndHTTPSOnOnePort(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t, dir, "ca")
	srv := ca.issue("server", "server")
	c := newTestCluster(t, 1, func(cfg *Config) {
		plain := cfg.ListenClientURLs[0]
		secure := strings.Replace(plain, "http://", "https://", 1)
		cfg.ListenClientURLs = []string{plain, secure}
		cfg.ClientTLSInfo = TLSInfo{CertFile: srv.CertFile, KeyFile: srv.KeyFile}
	})
	c.waitLeader()
	plain := c.endpoint(0)
	secure := strings.Replace(plain, "http://", "https://", 1)
	pem, err := os.ReadFile(ca.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	for _, tc := range []struct {
		ep  string
		tls *tls.Config
	}{{plain, nil}, {secure, &tls.Config{RootCAs: pool}}} {
		cli, err := clientv3.New(clientv3.Config{Endpoints: []string{tc.ep}, DialTimeout: 5 * time.Second, TLS: tc.tls})
		if err != nil {
			t.Fatal(err)
		}
		_, err = cli.Put(ctxT(t), "k", tc.ep)
		cli.Close()
		if err != nil {
			t.Fatalf("put over %s: %v", tc.ep, err)
		}
	}
	for _, get := range []func() (*http.Response, error){
		func() (*http.Response, error) { return http.Get(plain + "/health") },
		func() (*http.Response, error) { return tlsClient(t, ca.CAFile, nil, true).Get(secure + "/health") },
	} {
		resp, err := get()
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("/health: %s", resp.Status)
		}
	}
}

// TestGatewayRefusesCertificateCN: as etcd, a member with
// --client-cert-auth and auth enabled answers a gateway request whose
// client certificate has a CN with 400, since that CN would not be the
// request's user; a certificate without a CN is served (and then needs a
// token). etcdctl's gRPC requests with the CN are served, as that user.
func TestGatewayRefusesCertificateCN(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t, dir, "ca")
	srv, root, anon := ca.issue("server", "server"), ca.issue("root", "root"), ca.issue("anon", "")
	c := newTestCluster(t, 1, func(cfg *Config) {
		toHTTPS(cfg, true, false)
		cfg.ClientTLSInfo = TLSInfo{CertFile: srv.CertFile, KeyFile: srv.KeyFile, TrustedCAFile: ca.CAFile, ClientCertAuth: true}
	})
	c.waitLeader()
	ep := c.endpoint(0)
	cfg := tlsClient(t, ca.CAFile, &root, false).Transport.(*http.Transport).TLSClientConfig
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{ep}, DialTimeout: 5 * time.Second, TLS: cfg})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	post := func(cert *issued) (int, string) {
		t.Helper()
		resp, err := tlsClient(t, ca.CAFile, cert, false).Post(ep+"/v3/kv/range", "application/json", strings.NewReader(`{"key":"Zm9v"}`))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, strings.TrimSpace(string(body))
	}
	for _, step := range []struct {
		name       string
		do         func() error
		cert       *issued
		wantStatus int
		wantBody   string // a substring
	}{
		{"auth disabled, a CN", nil, &root, http.StatusOK, `"header"`},
		{"auth enabled, a CN", func() error {
			if _, err := cli.UserAdd(ctxT(t), "root", "pw"); err != nil {
				return err
			}
			if _, err := cli.UserGrantRole(ctxT(t), "root", "root"); err != nil {
				return err
			}
			_, err := cli.AuthEnable(ctxT(t))
			return err
		}, &root, http.StatusBadRequest, errGatewayCN},
		{"auth enabled, no CN", nil, &anon, http.StatusBadRequest, "user name is empty"},
		{"auth disabled again, a CN", func() error {
			_, err := cli.AuthDisable(ctxT(t)) // as root, by the CN
			return err
		}, &root, http.StatusOK, `"header"`},
	} {
		if step.do != nil {
			if err := step.do(); err != nil {
				t.Fatalf("%s: %v", step.name, err)
			}
		}
		if code, body := post(step.cert); code != step.wantStatus || !strings.Contains(body, step.wantBody) {
			t.Errorf("%s: POST /v3/kv/range: %d %s; want %d with %q", step.name, code, body, step.wantStatus, step.wantBody)
		}
	}
}

// Package etcdproc runs real etcd members as child processes on free
// 127.0.0.1 ports: it lays out a static cluster, starts it, waits for
// /health, and stops or kills members. The tests reach it through
// internal/interoptest, which also finds or builds the etcd binary;
// lifeboat-bench uses it directly to run etcd beside lifeboat.
package etcdproc

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/lifeboat-dev/lifeboat/internal/freeport"
)

// Options configures a cluster.
type Options struct {
	// Members is the cluster size; 0 means 1.
	Members int
	// Token is --initial-cluster-token; empty means "lifeboat-test".
	Token string
	// SnapshotCount is --snapshot-count; 0 keeps etcd's default.
	SnapshotCount int
	// Args are extra flags given to every member.
	Args []string
	// Binary is the etcd binary (required).
	Binary string
	// StartTimeout bounds the wait for every member to report healthy;
	// 0 means 60s. (Used by interoptest.StartEtcd.)
	StartTimeout time.Duration
	// ProxiedPeers gives each member a peer listener of its own
	// (ListenPeerURL) apart from the PeerURL it advertises, where the
	// caller puts a proxy that forwards to it.
	ProxiedPeers bool
	// TLS, if set, serves the client URLs over https.
	TLS *TLS
}

// TLS is a member's client-side TLS: its certificate, the CA it trusts for
// client certificates, and the client certificate the health check shows.
type TLS struct {
	// CAFile signs the member's certificate (clients trust it) and, with
	// ClientCertAuth, the clients' (--trusted-ca-file).
	CAFile, CertFile, KeyFile string // CertFile, KeyFile: --cert-file, --key-file
	// ClientCertAuth is --client-cert-auth: clients must show a certificate
	// signed by CAFile.
	ClientCertAuth bool
	// ClientCertFile and ClientKeyFile are what WaitHealthy shows.
	ClientCertFile, ClientKeyFile string
}

// ClientConfig is a *tls.Config that trusts the CA and shows the client
// certificate.
func (t *TLS) ClientConfig() (*tls.Config, error) {
	ca, err := os.ReadFile(t.CAFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return nil, fmt.Errorf("no certificate in %s", t.CAFile)
	}
	cfg := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	if t.ClientCertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.ClientCertFile, t.ClientKeyFile)
		if err != nil {
			return nil, err
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// Cluster is a running set of real etcd members.
type Cluster struct {
	Members []*Member
	// ClientURLs holds each member's client URL ("http://127.0.0.1:port").
	ClientURLs []string

	dir  string
	opts Options
}

// Member is one etcd process.
type Member struct {
	Name      string
	DataDir   string // the --data-dir; member/ lives inside it
	ClientURL string
	PeerURL   string // advertised to the cluster
	// ListenPeerURL is where the member listens for peers: PeerURL unless
	// Options.ProxiedPeers.
	ListenPeerURL string
	LogPath       string // etcd's stdout and stderr
	// Env is added to the environment of the process at each Start.
	Env []string

	bin  string
	args []string
	tls  *TLS
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
}

// New lays out (but does not start) a cluster under dir, with
// free ports picked now.
func New(dir string, opts Options) (*Cluster, error) {
	n := opts.Members
	if n == 0 {
		n = 1
	}
	if opts.Binary == "" {
		return nil, errors.New("no etcd binary given")
	}
	if opts.Token == "" {
		opts.Token = "lifeboat-test"
	}
	c := &Cluster{dir: dir, opts: opts}
	for i := range n {
		m, err := c.layout("m" + strconv.Itoa(i+1))
		if err != nil {
			return nil, err
		}
		c.Members = append(c.Members, m)
		c.ClientURLs = append(c.ClientURLs, m.ClientURL)
	}
	for _, m := range c.Members {
		m.args = c.args(m, c.initialCluster(nil), "new")
	}
	return c, nil
}

// layout names a member's data dir and log and picks its ports.
func (c *Cluster) layout(name string) (*Member, error) {
	nports := 2
	if c.opts.ProxiedPeers {
		nports = 3
	}
	ports, err := freePorts(nports)
	if err != nil {
		return nil, err
	}
	clientScheme := "http://"
	if c.opts.TLS != nil {
		clientScheme = "https://"
	}
	m := &Member{
		Name:      name,
		DataDir:   filepath.Join(c.dir, name),
		ClientURL: clientScheme + "127.0.0.1:" + strconv.Itoa(ports[0]),
		PeerURL:   "http://127.0.0.1:" + strconv.Itoa(ports[1]),
		LogPath:   filepath.Join(c.dir, name+".log"),
		bin:       c.opts.Binary,
		tls:       c.opts.TLS,
	}
	m.ListenPeerURL = m.PeerURL
	if c.opts.ProxiedPeers {
		m.ListenPeerURL = "http://127.0.0.1:" + strconv.Itoa(ports[2])
	}
	return m, nil
}

// initialCluster is --initial-cluster for c.Members and extra.
func (c *Cluster) initialCluster(extra *Member) string {
	var ic []string
	for _, m := range c.Members {
		ic = append(ic, m.Name+"="+m.PeerURL)
	}
	if extra != nil {
		ic = append(ic, extra.Name+"="+extra.PeerURL)
	}
	return strings.Join(ic, ",")
}

func (c *Cluster) args(m *Member, initialCluster, state string) []string {
	args := []string{
		"--name", m.Name,
		"--data-dir", m.DataDir,
		"--listen-client-urls", m.ClientURL,
		"--advertise-client-urls", m.ClientURL,
		"--listen-peer-urls", m.ListenPeerURL,
		"--initial-advertise-peer-urls", m.PeerURL,
		"--initial-cluster", initialCluster,
		"--initial-cluster-token", c.opts.Token,
		"--initial-cluster-state", state,
	}
	if t := c.opts.TLS; t != nil {
		args = append(args, "--cert-file", t.CertFile, "--key-file", t.KeyFile)
		if t.ClientCertAuth {
			// etcd asks for client certificates once it trusts a CA for them.
			args = append(args, "--trusted-ca-file", t.CAFile, "--client-cert-auth")
		}
	}
	if c.opts.SnapshotCount > 0 {
		args = append(args, "--snapshot-count", strconv.Itoa(c.opts.SnapshotCount))
	}
	return append(args, c.opts.Args...)
}

// Grow lays out (but does not start) one more member, named name, to join
// the running cluster (--initial-cluster-state existing, with the members
// of c.Members and itself as --initial-cluster), and appends it to
// c.Members. The caller adds its PeerURL with MemberAdd before starting it.
func (c *Cluster) Grow(name string) (*Member, error) {
	for _, m := range c.Members {
		if m.Name == name {
			return nil, fmt.Errorf("etcd member %s: already in the cluster", name)
		}
	}
	m, err := c.layout(name)
	if err != nil {
		return nil, err
	}
	m.args = c.args(m, c.initialCluster(m), "existing")
	c.Members = append(c.Members, m)
	c.ClientURLs = append(c.ClientURLs, m.ClientURL)
	return m, nil
}

// Rejoin sets the member called name, laid out in c.Members and not
// running, to start next as a new member of the running cluster under its
// old name, URLs and data dir (which must be absent or empty): with
// --initial-cluster-state existing and initialCluster as --initial-cluster
// (the running members and itself, as member add prints it). The caller
// adds its PeerURL with MemberAdd first.
func (c *Cluster) Rejoin(name, initialCluster string) (*Member, error) {
	for _, m := range c.Members {
		if m.Name != name {
			continue
		}
		if m.Running() {
			return nil, fmt.Errorf("etcd member %s: running", name)
		}
		m.args = c.args(m, initialCluster, "existing")
		return m, nil
	}
	return nil, fmt.Errorf("etcd member %s: not in the cluster's layout", name)
}

// Drop takes m out of c.Members (after a MemberRemove), stopping it first.
func (c *Cluster) Drop(m *Member) error {
	err := m.Stop()
	for i, x := range c.Members {
		if x == m {
			c.Members = append(c.Members[:i], c.Members[i+1:]...)
			c.ClientURLs = append(c.ClientURLs[:i], c.ClientURLs[i+1:]...)
			break
		}
	}
	return err
}

// Start starts every member that is not running and waits until all of them
// answer /health.
func (c *Cluster) Start(ctx context.Context) error {
	for _, m := range c.Members {
		if m.Running() {
			continue
		}
		if err := m.Start(); err != nil {
			return err
		}
	}
	for _, m := range c.Members {
		if err := m.WaitHealthy(ctx); err != nil {
			return err
		}
	}
	return nil
}

// Endpoints returns the members' client addresses as "127.0.0.1:port", the
// form clientv3 and etcdctl --endpoints take.
func (c *Cluster) Endpoints() []string {
	eps := make([]string, len(c.ClientURLs))
	for i, u := range c.ClientURLs {
		eps[i] = strings.TrimPrefix(strings.TrimPrefix(u, "http://"), "https://")
	}
	return eps
}

// Stop stops every running member with SIGTERM (see Member.Stop).
func (c *Cluster) Stop() error {
	var errs []error
	for _, m := range c.Members {
		errs = append(errs, m.Stop())
	}
	return errors.Join(errs...)
}

// Start starts the member's process with its data dir and flags; a member
// restarted after Stop or Kill reuses its data dir.
func (m *Member) Start() error {
	if m.Running() {
		return fmt.Errorf("etcd member %s: already running", m.Name)
	}
	logf, err := os.OpenFile(m.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("etcd member %s: %w", m.Name, err)
	}
	cmd := exec.Command(m.bin, m.args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if len(m.Env) > 0 {
		cmd.Env = append(os.Environ(), m.Env...)
	}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("etcd member %s: starting %s: %w", m.Name, m.bin, err)
	}
	m.cmd, m.done = cmd, make(chan struct{})
	go func(done chan struct{}) {
		_ = cmd.Wait() // the exit status is read from cmd.ProcessState
		logf.Close()
		close(done)
	}(m.done)
	return nil
}

// Running reports whether the member's process is alive.
func (m *Member) Running() bool {
	if m.done == nil {
		return false
	}
	select {
	case <-m.done:
		return false
	default:
		return true
	}
}

// WaitHealthy polls the member's /health until it reports healthy, the
// process exits, or ctx ends.
func (m *Member) WaitHealthy(ctx context.Context) error {
	client := &http.Client{Timeout: 2 * time.Second}
	if m.tls != nil {
		tc, err := m.tls.ClientConfig()
		if err != nil {
			return fmt.Errorf("etcd member %s: TLS: %w", m.Name, err)
		}
		client.Transport = &http.Transport{TLSClientConfig: tc}
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		if !m.Running() {
			return fmt.Errorf("etcd member %s exited before it was healthy (%v); log %s:\n%s", m.Name, m.exitState(), m.LogPath, m.LogTail(3000))
		}
		last = m.health(ctx, client)
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("etcd member %s not healthy at %s: %w (last: %v); log %s:\n%s", m.Name, m.ClientURL, ctx.Err(), last, m.LogPath, m.LogTail(3000))
		case <-tick.C:
		}
	}
}

func (m *Member) health(ctx context.Context, client *http.Client) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.ClientURL+"/health", nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"health":"true"`) {
		return fmt.Errorf("/health: %s %s", resp.Status, strings.TrimSpace(string(body)))
	}
	return nil
}

// Pid is the process ID of the running member, or 0.
func (m *Member) Pid() int {
	if !m.Running() {
		return 0
	}
	return m.cmd.Process.Pid
}

// Signal sends sig to the running member without waiting (SIGSTOP and
// SIGCONT pause and resume it).
func (m *Member) Signal(sig syscall.Signal) error {
	if !m.Running() {
		return fmt.Errorf("etcd member %s: not running", m.Name)
	}
	if err := m.cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("etcd member %s: %v: %w", m.Name, sig, err)
	}
	return nil
}

// Stop sends SIGTERM and waits up to 10s for the process to exit, then
// kills it. Stopping a member that is not running does nothing.
func (m *Member) Stop() error {
	return m.signal(syscall.SIGTERM, 10*time.Second)
}

// Kill sends SIGKILL, as a crash would, and waits for the process to exit.
func (m *Member) Kill() error {
	return m.signal(syscall.SIGKILL, 10*time.Second)
}

func (m *Member) signal(sig syscall.Signal, grace time.Duration) error {
	if !m.Running() {
		return nil
	}
	if err := m.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("etcd member %s: %v: %w", m.Name, sig, err)
	}
	select {
	case <-m.done:
		return nil
	case <-time.After(grace):
	}
	if err := m.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("etcd member %s: kill after %v: %w", m.Name, sig, err)
	}
	<-m.done
	return fmt.Errorf("etcd member %s did not exit within %v of %v; killed", m.Name, grace, sig)
}

func (m *Member) exitState() string {
	if m.cmd == nil || m.cmd.ProcessState == nil {
		return "not started"
	}
	return m.cmd.ProcessState.String()
}

// LogTail returns the last n bytes of the member's log, for error messages.
func (m *Member) LogTail(n int) string {
	b, err := os.ReadFile(m.LogPath)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	return Tail(string(b), n)
}

// freePorts returns n distinct free TCP ports on 127.0.0.1. All listeners
// are held until every port is known, so the ports are distinct.
func freePorts(n int) ([]int, error) { return freeport.Pick(n) }

// Tail returns the last n bytes of s, marked with "..." when cut.
func Tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}

package server

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/tlsutil"
)

// TLSInfo is the TLS configuration of one side of a member, client or peer,
// with etcd's flags (the peer's carry the --peer- prefix).
type TLSInfo struct {
	CertFile       string   // --cert-file
	KeyFile        string   // --key-file
	TrustedCAFile  string   // --trusted-ca-file
	ClientCertAuth bool     // --client-cert-auth
	CRLFile        string   // --client-crl-file
	AllowedCNs     []string // --peer-cert-allowed-cn (peer side only)
	// AllowedHostnames is --peer-cert-allowed-hostname (peer side only):
	// a peer's certificate must be valid for one of them.
	AllowedHostnames []string
	AutoTLS          bool // --auto-tls: a self-signed certificate in <data-dir>/fixtures
	// ClientCertFile and ClientKeyFile are the certificate the member
	// presents when it dials as a client (--client-cert-file,
	// --peer-client-cert-file); empty means CertFile and KeyFile.
	ClientCertFile, ClientKeyFile string
}

// Empty reports whether no certificate is configured.
func (i TLSInfo) Empty() bool { return i.CertFile == "" && i.KeyFile == "" }

// TLSSettings are the settings both sides share.
type TLSSettings struct {
	CipherSuites []uint16 // --cipher-suites; empty means Go's defaults
	MinVersion   uint16   // --tls-min-version; 0 means TLS 1.2
	MaxVersion   uint16   // --tls-max-version; 0 means the highest Go supports
}

// ParseTLSSettings checks and converts etcd's spellings of --cipher-suites,
// --tls-min-version and --tls-max-version, with etcd's rules: TLS 1.2 at
// least by default, max not below min, and no cipher suites when only TLS
// 1.3 is allowed (Go does not let TLS 1.3 suites be chosen).
func ParseTLSSettings(suites []string, minV, maxV string) (TLSSettings, error) {
	var s TLSSettings
	var err error
	if len(suites) > 0 {
		if s.CipherSuites, err = tlsutil.GetCipherSuites(suites); err != nil {
			return s, fmt.Errorf("--cipher-suites: %w", err)
		}
	}
	if s.MinVersion, err = tlsutil.GetTLSVersion(minV); err != nil {
		return s, fmt.Errorf("--tls-min-version: %w", err)
	}
	if s.MaxVersion, err = tlsutil.GetTLSVersion(maxV); err != nil {
		return s, fmt.Errorf("--tls-max-version: %w", err)
	}
	if s.MaxVersion != 0 && s.MinVersion > s.MaxVersion {
		return s, fmt.Errorf("--tls-min-version %s is greater than --tls-max-version %s", minV, maxV)
	}
	if s.MinVersion == tls.VersionTLS13 && len(s.CipherSuites) > 0 {
		return s, errors.New("cipher suites cannot be configured when only TLS1.3 is enabled")
	}
	return s, nil
}

// fileStamp identifies one version of a file cheaply: the file (a
// rotation by rename or symlink swap is a new one), its modification time
// and size.
type fileStamp struct{ fi os.FileInfo }

func stampOf(path string) (fileStamp, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}, err
	}
	return fileStamp{fi}, nil
}

func (a fileStamp) same(b fileStamp) bool {
	if a.fi == nil || b.fi == nil {
		return a.fi == b.fi
	}
	return os.SameFile(a.fi, b.fi) && a.fi.ModTime().Equal(b.fi.ModTime()) && a.fi.Size() == b.fi.Size()
}

// tlsFiles holds the certificate, CA pool and CRL of a TLSInfo, re-read when
// a file's modification time or size changes, so that a certificate rotated
// on disk is used by the next handshake without a restart. A file that
// fails to load (caught half-written) keeps the previous version in use.
type tlsFiles struct {
	info TLSInfo
	lg   *slog.Logger

	mu     sync.Mutex
	stamps [6]fileStamp // cert, key, CA, CRL, client cert, client key
	cur    loadedTLS
}

// loadedTLS is one load of the files.
type loadedTLS struct {
	cert       *tls.Certificate // served
	clientCert *tls.Certificate // presented when dialing: --client-cert-file, else cert
	pool       *x509.CertPool
	revoked    map[string]bool // serial numbers, as big.Int.String
}

func newTLSFiles(info TLSInfo, lg *slog.Logger) (*tlsFiles, error) {
	if (info.ClientCertFile == "") != (info.ClientKeyFile == "") {
		return nil, fmt.Errorf("server: a client certificate needs both its cert and key files (%q, %q)", info.ClientCertFile, info.ClientKeyFile)
	}
	f := &tlsFiles{info: info, lg: lg}
	if err := f.refresh(); err != nil {
		return nil, err
	}
	return f, nil
}

// current returns the loaded state, reloading files that changed.
func (f *tlsFiles) current() loadedTLS {
	if err := f.refresh(); err != nil {
		f.lg.Warn("keeping the previous TLS files", "cert-file", f.info.CertFile, "error", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.cur
}

func loadPair(cert, key string) (*tls.Certificate, error) {
	if cert == "" {
		return nil, nil
	}
	c, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		return nil, fmt.Errorf("server: TLS key pair %s, %s: %w", cert, key, err)
	}
	return &c, nil
}

func (f *tlsFiles) refresh() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	i := f.info
	paths := [6]string{i.CertFile, i.KeyFile, i.TrustedCAFile, i.CRLFile, i.ClientCertFile, i.ClientKeyFile}
	var now [6]fileStamp
	for i, p := range paths {
		if p == "" {
			continue
		}
		st, err := stampOf(p)
		if err != nil {
			return fmt.Errorf("server: TLS file: %w", err)
		}
		now[i] = st
	}
	unchanged := true
	for i := range now {
		unchanged = unchanged && now[i].same(f.stamps[i])
	}
	if unchanged && (f.cur.cert != nil || i.Empty()) {
		return nil
	}
	var next loadedTLS
	var err error
	if next.cert, err = loadPair(i.CertFile, i.KeyFile); err != nil {
		return err
	}
	next.clientCert = next.cert
	if i.ClientCertFile != "" {
		if next.clientCert, err = loadPair(i.ClientCertFile, i.ClientKeyFile); err != nil {
			return err
		}
	}
	if i.TrustedCAFile != "" {
		if next.pool, err = tlsutil.NewCertPool([]string{i.TrustedCAFile}); err != nil {
			return fmt.Errorf("server: trusted CA file %s: %w", i.TrustedCAFile, err)
		}
	}
	if i.CRLFile != "" {
		if next.revoked, err = readCRL(i.CRLFile); err != nil {
			return err
		}
	}
	if f.cur.cert != nil {
		f.lg.Info("reloaded TLS files", "cert-file", i.CertFile, "trusted-ca-file", i.TrustedCAFile, "crl-file", i.CRLFile)
	}
	f.stamps, f.cur = now, next
	return nil
}

// readCRL reads a DER or PEM certificate revocation list into its revoked
// serial numbers.
func readCRL(path string) (map[string]bool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("server: CRL file: %w", err)
	}
	if blk, _ := pem.Decode(b); blk != nil {
		b = blk.Bytes
	}
	crl, err := x509.ParseRevocationList(b)
	if err != nil {
		return nil, fmt.Errorf("server: CRL file %s: %w", path, err)
	}
	out := make(map[string]bool, len(crl.RevokedCertificateEntries))
	for _, e := range crl.RevokedCertificateEntries {
		out[e.SerialNumber.String()] = true
	}
	return out, nil
}

func (f *tlsFiles) base(s TLSSettings) *tls.Config {
	minV := s.MinVersion
	if minV == 0 {
		minV = tls.VersionTLS12
	}
	return &tls.Config{MinVersion: minV, MaxVersion: s.MaxVersion, CipherSuites: s.CipherSuites}
}

// serverConfig is the listener's configuration: each handshake takes the
// current certificate, CA pool and CRL. As etcd, a trusted CA file alone
// also requires client certificates.
func (f *tlsFiles) serverConfig(s TLSSettings, nextProtos []string) *tls.Config {
	cfg := f.base(s)
	cfg.NextProtos = nextProtos
	cfg.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
		cur := f.current()
		c := f.base(s)
		c.NextProtos = nextProtos
		c.Certificates = []tls.Certificate{*cur.cert}
		if f.info.TrustedCAFile != "" || f.info.ClientCertAuth {
			c.ClientAuth = tls.RequireAndVerifyClientCert
			c.ClientCAs = cur.pool
		}
		c.VerifyPeerCertificate = f.verifyPeer(cur.revoked, "client")
		return c, nil
	}
	return cfg
}

// clientConfig is the configuration a member dials the peer at host with:
// its own certificate as client certificate and the trusted CA file as
// roots, both as they are on disk at each handshake, and host checked
// against the peer's certificate, offering HTTP/1.1 only (peerProtos). A
// self-signed (auto TLS) member does not verify its peers, as etcd.
func (f *tlsFiles) clientConfig(s TLSSettings, host string) *tls.Config {
	cfg := f.base(s)
	cfg.ServerName = host
	cfg.NextProtos = peerProtos
	cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
		if cert := f.current().clientCert; cert != nil {
			return cert, nil
		}
		return &tls.Certificate{}, nil
	}
	// Verification happens in VerifyConnection, with the CA pool current at
	// the handshake.
	cfg.InsecureSkipVerify = true
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		cur := f.current()
		if err := checkRevoked(cur.revoked, cs.PeerCertificates); err != nil {
			return err
		}
		if f.info.AutoTLS && f.info.TrustedCAFile == "" {
			return nil
		}
		if len(cs.PeerCertificates) == 0 {
			return errors.New("server: peer presented no certificate")
		}
		opts := x509.VerifyOptions{Roots: cur.pool, DNSName: host, Intermediates: x509.NewCertPool()}
		for _, c := range cs.PeerCertificates[1:] {
			opts.Intermediates.AddCert(c)
		}
		if _, err := cs.PeerCertificates[0].Verify(opts); err != nil {
			return err
		}
		// A member sends its messages by dialing out, so the allowed
		// common names hold for the members it dials too: a member that
		// may not connect must not receive the log either.
		if leaf := cs.PeerCertificates[0]; !f.allowed(leaf) {
			return fmt.Errorf("server: peer certificate %q is not allowed (--peer-cert-allowed-cn, --peer-cert-allowed-hostname)", leaf.Subject.CommonName)
		}
		return nil
	}
	return cfg
}

// verifyPeer checks a verified client certificate against the CRL and the
// allowed common names.
func (f *tlsFiles) verifyPeer(revoked map[string]bool, side string) func([][]byte, [][]*x509.Certificate) error {
	return func(raw [][]byte, chains [][]*x509.Certificate) error {
		var certs []*x509.Certificate
		for _, r := range raw {
			c, err := x509.ParseCertificate(r)
			if err != nil {
				return fmt.Errorf("server: %s certificate: %w", side, err)
			}
			certs = append(certs, c)
		}
		if err := checkRevoked(revoked, certs); err != nil {
			return err
		}
		if len(f.info.AllowedCNs) == 0 && len(f.info.AllowedHostnames) == 0 {
			return nil
		}
		for _, chain := range chains {
			if len(chain) > 0 && f.allowed(chain[0]) {
				return nil
			}
		}
		return errors.New("client certificate authentication failed")
	}
}

// allowed checks a peer's certificate against --peer-cert-allowed-cn and
// --peer-cert-allowed-hostname (either passes; none set passes).
func (f *tlsFiles) allowed(c *x509.Certificate) bool {
	if len(f.info.AllowedCNs) == 0 && len(f.info.AllowedHostnames) == 0 {
		return true
	}
	if slices.Contains(f.info.AllowedCNs, c.Subject.CommonName) {
		return true
	}
	for _, h := range f.info.AllowedHostnames {
		if c.VerifyHostname(h) == nil {
			return true
		}
	}
	return false
}

func checkRevoked(revoked map[string]bool, certs []*x509.Certificate) error {
	for _, c := range certs {
		if revoked[c.SerialNumber.String()] {
			return fmt.Errorf("transport: certificate with serial %x revoked", c.SerialNumber)
		}
	}
	return nil
}

// selfCert writes (once) a self-signed certificate for hosts into dir, as
// etcd's --auto-tls does, valid for validityYears.
func selfCert(lg *slog.Logger, dir string, hosts []string, validityYears uint) (certPath, keyPath string, err error) {
	if validityYears == 0 {
		return "", "", errors.New("server: --self-signed-cert-validity must be greater than 0")
	}
	certPath, keyPath = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if _, err := os.Stat(certPath); err == nil {
		if _, err := os.Stat(keyPath); err == nil {
			return certPath, keyPath, nil
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", fmt.Errorf("server: auto TLS: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return "", "", fmt.Errorf("server: auto TLS: %w", err)
	}
	now := time.Now()
	tmpl := x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{Organization: []string{"etcd"}},
		NotBefore:             now,
		NotAfter:              now.Add(time.Duration(validityYears) * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageKeyEncipherment | x509.KeyUsageDigitalSignature | x509.KeyUsageCRLSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	for _, h := range hosts {
		if host, _, err := net.SplitHostPort(h); err == nil {
			h = host
		}
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if h != "" {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	key, err := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	if err != nil {
		return "", "", fmt.Errorf("server: auto TLS: %w", err)
	}
	der, err := x509.CreateCertificate(rand.Reader, &tmpl, &tmpl, &key.PublicKey, key)
	if err != nil {
		return "", "", fmt.Errorf("server: auto TLS: %w", err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return "", "", fmt.Errorf("server: auto TLS: %w", err)
	}
	if err := writePEM(keyPath, "EC PRIVATE KEY", keyDER, 0o600); err != nil {
		return "", "", err
	}
	if err := writePEM(certPath, "CERTIFICATE", der, 0o644); err != nil {
		return "", "", err
	}
	lg.Warn("automatically generated certificates", "certificate-validity-bound-not-after", tmpl.NotAfter, "cert-file", certPath)
	return certPath, keyPath, nil
}

// writePEM writes one PEM block to path through a temporary file and a
// rename.
func writePEM(path, typ string, der []byte, mode os.FileMode) error {
	var buf bytes.Buffer
	if err := pem.Encode(&buf, &pem.Block{Type: typ, Bytes: der}); err != nil {
		return fmt.Errorf("server: %s: %w", path, err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, buf.Bytes(), mode); err != nil {
		return fmt.Errorf("server: %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("server: %s: %w", path, err)
	}
	return nil
}

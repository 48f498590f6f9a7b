package bench

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/lifeboat-dev/lifeboat/internal/etcdproc"
)

// Security is how a comparison's clusters are secured.
type Security string

const (
	// NoSecurity serves plain http without authentication.
	NoSecurity Security = "none"
	// ClientTLS serves the client URLs over TLS (a CA and a server
	// certificate made for the run).
	ClientTLS Security = "tls"
	// Auth enables authentication (simple tokens); the runs are root's.
	Auth Security = "auth"
)

// ParseSecurity accepts a security mode name.
func ParseSecurity(s string) (Security, error) {
	for _, m := range []Security{NoSecurity, ClientTLS, Auth} {
		if string(m) == s {
			return m, nil
		}
	}
	return "", fmt.Errorf("bench: unknown security %q (want none, tls or auth)", s)
}

// benchRoot is the user and password of the auth runs.
const benchRoot, benchRootPassword = "root", "lifeboat-bench"

// secured is what a security mode adds to a cluster and to its runs.
type secured struct {
	files              *etcdproc.TLS // the members' certificates; nil for plain http
	tls                *tls.Config   // clients' TLS; nil for plain http
	username, password string
}

// prepare makes the mode's certificates under dir.
func (s Security) prepare(dir string) (secured, error) {
	switch s {
	case ClientTLS:
		files, pool, err := writeBenchCerts(dir)
		if err != nil {
			return secured{}, fmt.Errorf("bench: TLS certificates: %w", err)
		}
		return secured{files: files, tls: &tls.Config{RootCAs: pool}}, nil
	case Auth:
		return secured{username: benchRoot, password: benchRootPassword}, nil
	}
	return secured{}, nil
}

// enable turns auth on in a started cluster (root with the root role).
func (sec secured) enable(ctx context.Context, endpoints []string) error {
	if sec.username == "" {
		return nil
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop(), Context: ctx, TLS: sec.tls})
	if err != nil {
		return fmt.Errorf("bench: enabling auth: %w", err)
	}
	defer cli.Close()
	for _, step := range []func() error{
		func() error { _, err := cli.UserAdd(ctx, benchRoot, benchRootPassword); return err },
		func() error { _, err := cli.RoleAdd(ctx, "root"); return err },
		func() error { _, err := cli.UserGrantRole(ctx, benchRoot, "root"); return err },
		func() error { _, err := cli.AuthEnable(ctx); return err },
	} {
		if err := step(); err != nil {
			return fmt.Errorf("bench: enabling auth: %w", err)
		}
	}
	return nil
}

// writeBenchCerts makes a CA and a server certificate for 127.0.0.1 in dir.
func writeBenchCerts(dir string) (files *etcdproc.TLS, pool *x509.CertPool, err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, err
	}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "lifeboat-bench CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, nil, err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "lifeboat-bench"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, nil, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	files = &etcdproc.TLS{CAFile: filepath.Join(dir, "ca.pem"), CertFile: filepath.Join(dir, "server.pem"), KeyFile: filepath.Join(dir, "server-key.pem")}
	for path, blk := range map[string]*pem.Block{files.CAFile: {Type: "CERTIFICATE", Bytes: caDER},
		files.CertFile: {Type: "CERTIFICATE", Bytes: der}, files.KeyFile: {Type: "EC PRIVATE KEY", Bytes: keyDER}} {
		var buf bytes.Buffer
		if err := pem.Encode(&buf, blk); err != nil {
			return nil, nil, err
		}
		if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
			return nil, nil, err
		}
	}
	pool = x509.NewCertPool()
	pool.AddCert(ca)
	return files, pool, nil
}

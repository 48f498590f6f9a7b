package interoptest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lifeboat-dev/lifeboat/internal/etcdproc"
)

// TLS is etcdproc's.
type TLS = etcdproc.TLS

// NewTLS writes a CA, a server certificate for 127.0.0.1 and localhost and
// a client certificate (CN backupd) signed by it into t.TempDir(), for a
// cluster that requires client certificates (ClientCertAuth), as a
// Kubernetes etcd does; and a client certificate without a CN (see
// AnonymousClientCert).
func NewTLS(t testing.TB) *TLS {
	t.Helper()
	dir := t.TempDir()
	caKey, ca := newCert(t, nil, nil, &x509.Certificate{
		Subject: pkix.Name{CommonName: "lifeboat test CA"}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	})
	writePEM(t, filepath.Join(dir, "ca.pem"), "CERTIFICATE", ca.Raw)
	issue := func(name string, tmpl *x509.Certificate) {
		key, cert := newCert(t, ca, caKey, tmpl)
		writePEM(t, filepath.Join(dir, name+".pem"), "CERTIFICATE", cert.Raw)
		der, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		writePEM(t, filepath.Join(dir, name+"-key.pem"), "EC PRIVATE KEY", der)
	}
	issue("server", &x509.Certificate{
		Subject: pkix.Name{CommonName: "etcd"}, DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	})
	issue("client", &x509.Certificate{
		Subject: pkix.Name{CommonName: "backupd"}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	issue(anonymous, &x509.Certificate{KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	return &TLS{
		CAFile: filepath.Join(dir, "ca.pem"), CertFile: filepath.Join(dir, "server.pem"), KeyFile: filepath.Join(dir, "server-key.pem"),
		ClientCertAuth: true,
		ClientCertFile: filepath.Join(dir, "client.pem"), ClientKeyFile: filepath.Join(dir, "client-key.pem"),
	}
}

const anonymous = "anonymous"

// AnonymousClientCert returns the certificate and key files of the client
// certificate NewTLS wrote beside t's without a CN: with auth enabled, etcd
// takes a CN for the user name, and its grpc-gateway refuses a certificate
// with one.
func AnonymousClientCert(t *TLS) (certFile, keyFile string) {
	dir := filepath.Dir(t.CAFile)
	return filepath.Join(dir, anonymous+".pem"), filepath.Join(dir, anonymous+"-key.pem")
}

var serial atomic.Int64

// newCert makes a key and a certificate from tmpl, signed by parent (self-signed if nil).
func newCert(t testing.TB, parent *x509.Certificate, parentKey *ecdsa.PrivateKey, tmpl *x509.Certificate) (*ecdsa.PrivateKey, *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl.SerialNumber = big.NewInt(serial.Add(1))
	tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour)
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return key, cert
}

func writePEM(t testing.TB, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

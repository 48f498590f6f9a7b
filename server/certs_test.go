package server

import (
	"bytes"
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
	"sync"
	"testing"
	"time"
)

// testCA is a certificate authority made for one test: its certificate in
// dir/<name>-ca.pem, and certificates it issues beside it.
type testCA struct {
	t      testing.TB
	dir    string
	name   string
	cert   *x509.Certificate
	key    *ecdsa.PrivateKey
	CAFile string
}

var serialMu sync.Mutex
var nextSerial int64 = 1000

func newSerial() *big.Int {
	serialMu.Lock()
	defer serialMu.Unlock()
	nextSerial++
	return big.NewInt(nextSerial)
}

func newTestCA(t testing.TB, dir, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          newSerial(),
		Subject:               pkix.Name{CommonName: name + " CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	ca := &testCA{t: t, dir: dir, name: name, cert: cert, key: key, CAFile: filepath.Join(dir, name+"-ca.pem")}
	writeTestPEM(t, ca.CAFile, "CERTIFICATE", der)
	return ca
}

// issued is a certificate and key on disk.
type issued struct {
	CertFile, KeyFile string
	Serial            *big.Int
}

// issue makes a certificate for cn, valid for 127.0.0.1, localhost and
// <cn>.test as
// server and client, written to dir/<file>.pem and dir/<file>-key.pem.
func (ca *testCA) issue(file, cn string) issued {
	ca.t.Helper()
	return ca.issueFor(file, cn, x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth)
}

// issueFor is issue with the given extended key usages only.
func (ca *testCA) issueFor(file, cn string, usages ...x509.ExtKeyUsage) issued {
	ca.t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		ca.t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: newSerial(),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  usages,
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:     []string{"localhost", cn + ".test"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		ca.t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		ca.t.Fatal(err)
	}
	out := issued{CertFile: filepath.Join(ca.dir, file+".pem"), KeyFile: filepath.Join(ca.dir, file+"-key.pem"), Serial: tmpl.SerialNumber}
	writeTestPEM(ca.t, out.KeyFile, "EC PRIVATE KEY", keyDER)
	writeTestPEM(ca.t, out.CertFile, "CERTIFICATE", der)
	return out
}

// crl writes a revocation list of serials to dir/<file>.
func (ca *testCA) crl(file string, serials ...*big.Int) string {
	ca.t.Helper()
	var entries []x509.RevocationListEntry
	for _, s := range serials {
		entries = append(entries, x509.RevocationListEntry{SerialNumber: s, RevocationTime: time.Now()})
	}
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number: newSerial(), ThisUpdate: time.Now(), NextUpdate: time.Now().Add(time.Hour),
		RevokedCertificateEntries: entries,
	}, ca.cert, ca.key)
	if err != nil {
		ca.t.Fatal(err)
	}
	path := filepath.Join(ca.dir, file)
	writeTestPEM(ca.t, path, "X509 CRL", der)
	return path
}

// writeTestPEM writes a PEM file through a rename, as a rotation would.
func writeTestPEM(t testing.TB, path, typ string, der []byte) {
	t.Helper()
	var buf bytes.Buffer
	if err := pem.Encode(&buf, &pem.Block{Type: typ, Bytes: der}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path+".tmp", buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		t.Fatal(err)
	}
}

// concatFiles writes the concatenation of files to dst (a CA bundle).
func concatFiles(t testing.TB, dst string, files ...string) string {
	t.Helper()
	var all []byte
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, b...)
	}
	if err := os.WriteFile(dst, all, 0o600); err != nil {
		t.Fatal(err)
	}
	return dst
}

// logBuffer collects a member's JSON log lines for a test to wait on.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) contains(s string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Contains(b.buf.Bytes(), []byte(s))
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

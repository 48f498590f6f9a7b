package interoptest

import (
	"context"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// A cluster started with NewTLS serves https and refuses a client without
// a certificate; one with the client certificate reads and writes.
func TestStartEtcdWithClientCertificates(t *testing.T) {
	tlsFiles := NewTLS(t)
	c := StartEtcd(t, Options{Members: 1, TLS: tlsFiles})
	if got := c.ClientURLs[0]; got[:8] != "https://" {
		t.Fatalf("client URL %s", got)
	}
	full, err := tlsFiles.ClientConfig()
	if err != nil {
		t.Fatal(err)
	}
	noCert := full.Clone()
	noCert.Certificates = nil
	for _, tt := range []struct {
		name   string
		tls    bool
		cert   bool
		wantOK bool
	}{
		{"client certificate", true, true, true},
		{"no client certificate", true, false, false},
		{"plain text", false, false, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := clientv3.Config{Endpoints: c.Endpoints(), DialTimeout: 2 * time.Second, Logger: zap.NewNop()}
			if tt.tls {
				cfg.TLS = noCert
				if tt.cert {
					cfg.TLS = full
				}
			}
			cli, err := clientv3.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer cli.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			_, err = cli.Put(ctx, "k", "v")
			if (err == nil) != tt.wantOK {
				t.Errorf("put: %v, want ok %v", err, tt.wantOK)
			}
		})
	}
}

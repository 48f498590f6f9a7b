package cli

import (
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

func writeConfigFile(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "etcd.conf.yml")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestConfigFile(t *testing.T) {
	tests := []struct {
		name    string
		yaml    string
		check   func(t *testing.T, o *memberOptions, ignored []string)
		wantErr string
	}{
		{
			name: "etcd keys",
			yaml: `name: m1
data-dir: /var/lib/m1
listen-client-urls: https://127.0.0.1:2379
advertise-client-urls: https://127.0.0.1:2379
listen-peer-urls: https://127.0.0.1:2380
initial-advertise-peer-urls: https://127.0.0.1:2380
initial-cluster: m1=https://127.0.0.1:2380
snapshot-count: 500
heartbeat-interval: 50
election-timeout: 500
auto-compaction-mode: revision
auto-compaction-retention: "1000"
max-txn-ops: 64
max-request-bytes: 1048576
grpc-keepalive-min-time: 1000000000
experimental-corrupt-check-time: 2m
log-outputs: [stderr]
cipher-suites: [TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256]
client-transport-security:
  cert-file: /c.pem
  key-file: /c-key.pem
  client-cert-auth: true
  trusted-ca-file: /ca.pem
  auto-tls: false
peer-transport-security:
  cert-file: /p.pem
  key-file: /p-key.pem
  allowed-cn: [m1, m2]
discovery:
cors: ""
enable-v2: false
`,
			check: func(t *testing.T, o *memberOptions, ignored []string) {
				c, err := o.config()
				if err != nil {
					t.Fatal(err)
				}
				if c.Name != "m1" || c.DataDir != "/var/lib/m1" || c.SnapshotCount != 500 || c.HeartbeatMs != 50 ||
					c.AutoCompactionMode != "revision" || c.AutoCompactionRetention != "1000" || c.MaxTxnOps != 64 ||
					c.MaxRequestBytes != 1<<20 || c.GRPCKeepAliveMinTime != time.Second || c.CorruptCheckTime != 2*time.Minute ||
					len(c.CipherSuites) != 1 {
					t.Fatalf("config %+v", c)
				}
				if c.ClientTLSInfo.CertFile != "/c.pem" || !c.ClientTLSInfo.ClientCertAuth || c.ClientTLSInfo.TrustedCAFile != "/ca.pem" ||
					c.PeerTLSInfo.KeyFile != "/p-key.pem" || strings.Join(c.PeerTLSInfo.AllowedCNs, ",") != "m1,m2" {
					t.Fatalf("TLS client %+v peer %+v", c.ClientTLSInfo, c.PeerTLSInfo)
				}
				if strings.Join(ignored, ",") != "cors,discovery,enable-v2" {
					t.Fatalf("ignored %v", ignored)
				}
			},
		},
		{name: "unimplemented key with a value", yaml: "discovery-srv: example.com\n", wantErr: "discovery-srv: lifeboat does not implement it"},
		{name: "unimplemented TLS key", yaml: "client-transport-security:\n  client-cert-file: /x.pem\n", wantErr: "client-transport-security.client-cert-file: lifeboat does not implement it"},
		{name: "bad value", yaml: "snapshot-count: many\n", wantErr: "snapshot-count"},
		{name: "not YAML", yaml: "name: [\n", wantErr: "yaml"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := newMemberOptions()
			fs := pflag.NewFlagSet("x", pflag.ContinueOnError)
			o.addFlags(fs)
			ignored, err := applyConfigFile(fs, writeConfigFile(t, tc.yaml))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, o, ignored)
		})
	}
}

// TestConfigFileWinsOverFlags: given --config-file, the other flags are
// ignored (and said so), as etcd.
func TestConfigFileWinsOverFlags(t *testing.T) {
	path := writeConfigFile(t, "name: from-file\n")
	fs := pflag.NewFlagSet("x", pflag.ContinueOnError)
	o2 := newMemberOptions()
	o2.addFlags(fs)
	if err := fs.Parse([]string{"--config-file", path, "--name", "from-flag"}); err != nil {
		t.Fatal(err)
	}
	got, notes, err := withConfigFile(o2, fs)
	if err != nil {
		t.Fatal(err)
	}
	if got.name != "from-file" || len(notes) != 1 || !strings.Contains(notes[0], "--name ignored") {
		t.Fatalf("name %q, notes %v", got.name, notes)
	}
}

func TestUnknownFlagIsNamed(t *testing.T) {
	for _, flag := range []string{"--discovery-srv", "--experimental-enable-distributed-tracing"} {
		_, err := parse(t, []string{flag, "x"}, nil)
		if err == nil || !strings.Contains(err.Error(), strings.TrimPrefix(flag, "--")) {
			t.Fatalf("%s: error %v, want one naming it", flag, err)
		}
	}
}

// TestLogShape: the log is JSON in zap's shape, as etcd's (level, ts,
// caller, msg), written to every --log-outputs.
func TestLogShape(t *testing.T) {
	path := filepath.Join(t.TempDir(), "member.log")
	var stderr strings.Builder
	lg, closeLog, err := newLogger(&stderr, io.Discard, &memberOptions{logger: "zap", logLevel: "info", logFormat: "json", logOutputs: []string{"stderr", path}})
	if err != nil {
		t.Fatal(err)
	}
	lg.Info("ready to serve client requests")
	closeLog()
	file, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, out := range []string{stderr.String(), string(file)} {
		var entry struct{ Level, Ts, Caller, Msg string }
		if err := json.Unmarshal([]byte(out), &entry); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		if _, err := time.Parse("2006-01-02T15:04:05.999999Z0700", entry.Ts); err != nil || entry.Level != "info" ||
			!strings.HasPrefix(entry.Caller, "cli/configfile_test.go:") || entry.Msg != "ready to serve client requests" {
			t.Fatalf("log line %s", out)
		}
	}
	if _, _, err := newLogger(io.Discard, io.Discard, &memberOptions{logger: "capnslog", logLevel: "info", logFormat: "json"}); err == nil {
		t.Fatal("--logger capnslog accepted")
	}
}

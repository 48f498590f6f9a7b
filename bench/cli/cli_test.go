package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/lifeboat-dev/lifeboat/bench"
	"github.com/lifeboat-dev/lifeboat/internal/interoptest"
)

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		argv []string
		want string
	}{
		{"unknown workload", []string{"run", "--workload", "scan"}, `unknown workload "scan"`},
		{"unbounded", []string{"run", "--total", "0"}, "total 0 out of range"},
		{"bad output", []string{"run", "-w", "yaml"}, "want one of: table, json"},
		{"compare without etcd", []string{"compare"}, "compare needs the etcd binary"},
		{"compare with a missing binary", []string{"compare", "--etcd", "/nonexistent/etcd"}, "/nonexistent/etcd is not an executable"},
		{"unknown flag", []string{"run", "--qps", "5"}, "unknown flag: --qps"},
		{"user without password", []string{"run", "--user", "root"}, `--user "root": want name:password`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := Run(context.Background(), tt.argv, &stdout, &stderr)
			if code != ExitUsage || !strings.Contains(stderr.String(), tt.want) {
				t.Fatalf("exit %d, stderr %q; want exit %d and %q", code, stderr.String(), ExitUsage, tt.want)
			}
		})
	}
}

func TestRunJSON(t *testing.T) {
	c := interoptest.StartEtcd(t, interoptest.Options{})
	var stdout, stderr bytes.Buffer
	argv := []string{"run", "-w", "json", "--endpoints", strings.Join(c.Endpoints(), ","),
		"--workload", "txn", "--clients", "4", "--conns", "2", "--total", "100", "--duration", "2m", "--key-space", "10"}
	if code := Run(context.Background(), argv, &stdout, &stderr); code != ExitOK {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	var rep bench.Report
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("output is not a report: %v\n%s", err, stdout.String())
	}
	if rep.Workload != bench.Txn || rep.Requests != 100 || rep.Clients != 4 || rep.Throughput <= 0 {
		t.Fatalf("report %+v, want 100 txn requests by 4 clients", rep)
	}
}

// The help marks only --etcd as required: compare runs etcd alone without
// --lifeboat. And the binary says its version.
func TestHelpAndVersion(t *testing.T) {
	tests := []struct {
		argv []string
		want string
	}{
		{[]string{"compare", "--help"}, "compare --etcd PATH [--lifeboat PATH] [flags]"},
		{[]string{"--version"}, "lifeboat-bench version: "},
		{[]string{"version"}, "API version: 3.6\n"},
	}
	for _, tt := range tests {
		var stdout, stderr bytes.Buffer
		if code := Run(context.Background(), tt.argv, &stdout, &stderr); code != ExitOK || !strings.Contains(stdout.String(), tt.want) {
			t.Errorf("%v: exit %d, stdout %q; want %q", tt.argv, code, stdout.String(), tt.want)
		}
	}
}

package cli

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/lifeboat-dev/lifeboat/internal/clikit"
)

func TestFlagsAndEnvironment(t *testing.T) {
	typed := func() (string, error) { return "typed", nil }
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		// The config wanted, or a substring of the error wanted.
		endpoints []string
		dial      time.Duration
		timeout   time.Duration
		hash      time.Duration
		user      string
		password  string
		tls       bool
		err       string
	}{
		{name: "defaults", endpoints: []string{"127.0.0.1:2379"}, dial: 2 * time.Second, timeout: 2 * time.Second, hash: 30 * time.Second},
		{name: "environment", env: map[string]string{"ETCDCTL_ENDPOINTS": "a:1,b:2", "ETCDCTL_DIAL_TIMEOUT": "3s", "ETCDCTL_COMMAND_TIMEOUT": "1s"},
			endpoints: []string{"a:1", "b:2"}, dial: 3 * time.Second, timeout: time.Second, hash: 30 * time.Second},
		{name: "a flag wins over its variable", args: []string{"--endpoints", "c:3"}, env: map[string]string{"ETCDCTL_ENDPOINTS": "a:1"},
			endpoints: []string{"c:3"}, dial: 2 * time.Second, timeout: 2 * time.Second, hash: 30 * time.Second},
		// A member's timeout is at most the refresh, so that a hung member
		// never holds a refresh up longer than one period.
		{name: "refresh bounds the member timeout", args: []string{"--refresh", "500ms", "--hash-interval", "0"},
			endpoints: []string{"127.0.0.1:2379"}, dial: 2 * time.Second, timeout: 500 * time.Millisecond, hash: -1},
		{name: "user with password", args: []string{"--user", "root:pw"}, endpoints: []string{"127.0.0.1:2379"},
			dial: 2 * time.Second, timeout: 2 * time.Second, hash: 30 * time.Second, user: "root", password: "pw"},
		{name: "user and --password from the environment", args: []string{"--user", "root"}, env: map[string]string{"ETCDCTL_PASSWORD": "envpw"},
			endpoints: []string{"127.0.0.1:2379"}, dial: 2 * time.Second, timeout: 2 * time.Second, hash: 30 * time.Second, user: "root", password: "envpw"},
		{name: "user without password is asked", args: []string{"--user", "root"}, endpoints: []string{"127.0.0.1:2379"},
			dial: 2 * time.Second, timeout: 2 * time.Second, hash: 30 * time.Second, user: "root", password: "typed"},
		{name: "https endpoint", args: []string{"--endpoints", "https://e:2379"}, endpoints: []string{"https://e:2379"},
			dial: 2 * time.Second, timeout: 2 * time.Second, hash: 30 * time.Second, tls: true},
		{name: "two passwords", args: []string{"--user", "root:pw", "--password", "x"}, err: "--password given, and a password in --user too"},
		{name: "password alone", args: []string{"--password", "x"}, err: "--password needs --user"},
		{name: "bad variable", env: map[string]string{"ETCDCTL_COMMAND_TIMEOUT": "soon"}, err: `ETCDCTL_COMMAND_TIMEOUT="soon"`},
		{name: "cert without key", args: []string{"--cert", "c.pem"}, err: "--cert and --key go together"},
		{name: "missing CA file", args: []string{"--cacert", "/nonexistent/ca.pem"}, err: "TLS"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := &options{}
			fs := pflag.NewFlagSet("lbtop", pflag.ContinueOnError)
			o.AddFlags(fs)
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			lookup := func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok }
			err := applyEnv(fs, lookup)
			cfg, cfgErr := o.pollConfig(typed)
			err = errors.Join(err, cfgErr)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(cfg.Endpoints, tc.endpoints) || cfg.Client.DialTimeout != tc.dial || cfg.Timeout != tc.timeout || cfg.HashInterval != tc.hash {
				t.Errorf("config %+v", cfg)
			}
			if cfg.Client.Username != tc.user || cfg.Client.Password != tc.password || (cfg.Client.TLS != nil) != tc.tls {
				t.Errorf("user %q password %q tls %v", cfg.Client.Username, cfg.Client.Password, cfg.Client.TLS != nil)
			}
		})
	}
}

// A --bucket that cannot be opened, or a negative --interval, is bad usage.
func TestBucketUsage(t *testing.T) {
	for _, args := range [][]string{
		{"--bucket", "nosuch://b/etcd"},
		{"--bucket", "file://" + t.TempDir(), "--interval", "-1h"},
	} {
		var stderr bytes.Buffer
		code := clikit.Run(context.Background(), NewCommand(nil, nil, func(string) (string, bool) { return "", false }), args, &stderr)
		if code != clikit.ExitUsage || !strings.Contains(stderr.String(), "--") {
			t.Errorf("%q: exit %d, stderr %q", args, code, stderr.String())
		}
	}
}

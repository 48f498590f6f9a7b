package etcdflags

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Flags, then ETCDCTL_* variables (empty ones unset), make one
// clientv3.Config; bad combinations are refused with the flag named.
func TestConfig(t *testing.T) {
	asked := func() (string, error) { return "typed", nil }
	for _, tc := range []struct {
		name      string
		args      []string
		env       map[string]string
		ask       func() (string, error)
		endpoints []string
		dial      time.Duration
		command   time.Duration
		user      string
		password  string
		tls       bool
		insecure  bool
		err       string
	}{
		{name: "defaults", endpoints: []string{"127.0.0.1:2379"}, dial: 2 * time.Second, command: time.Minute},
		{name: "environment", env: map[string]string{"ETCDCTL_ENDPOINTS": "a:1,b:2", "ETCDCTL_DIAL_TIMEOUT": "3s", "ETCDCTL_COMMAND_TIMEOUT": "1s",
			"ETCDCTL_INSECURE_SKIP_TLS_VERIFY": "true", "ETCDCTL_USER": "root:pw"},
			endpoints: []string{"a:1", "b:2"}, dial: 3 * time.Second, command: time.Second, user: "root", password: "pw", tls: true, insecure: true},
		{name: "an empty variable is unset", env: map[string]string{"ETCDCTL_ENDPOINTS": ""}, endpoints: []string{"127.0.0.1:2379"}, dial: 2 * time.Second, command: time.Minute},
		{name: "a flag wins", args: []string{"--endpoints", "c:3", "--dial-timeout", "1s"}, env: map[string]string{"ETCDCTL_ENDPOINTS": "a:1", "ETCDCTL_DIAL_TIMEOUT": "bad"},
			endpoints: []string{"c:3"}, dial: time.Second, command: time.Minute},
		{name: "--password", args: []string{"--user", "root", "--password", "pw"}, endpoints: []string{"127.0.0.1:2379"}, dial: 2 * time.Second, command: time.Minute, user: "root", password: "pw"},
		{name: "asked", args: []string{"--user", "root"}, ask: asked, endpoints: []string{"127.0.0.1:2379"}, dial: 2 * time.Second, command: time.Minute, user: "root", password: "typed"},
		{name: "no one to ask", args: []string{"--user", "root"}, endpoints: []string{"127.0.0.1:2379"}, dial: 2 * time.Second, command: time.Minute, user: "root"},
		{name: "https endpoint", args: []string{"--endpoints", "https://e:2379"}, endpoints: []string{"https://e:2379"}, dial: 2 * time.Second, command: time.Minute, tls: true},
		{name: "bad variable", env: map[string]string{"ETCDCTL_DIAL_TIMEOUT": "soon"}, err: `ETCDCTL_DIAL_TIMEOUT="soon"`},
		{name: "zero dial timeout", args: []string{"--dial-timeout", "0"}, err: "--dial-timeout must be positive"},
		{name: "no endpoints", args: []string{"--endpoints", ""}, err: "no --endpoints"},
		{name: "two passwords", args: []string{"--user", "root:pw", "--password", "x"}, err: "--password given, and a password in --user too"},
		{name: "password alone", args: []string{"--password", "x"}, err: "--password needs --user"},
		{name: "key without cert", args: []string{"--key", "k.pem"}, err: "--cert and --key go together"},
		{name: "missing CA file", args: []string{"--cacert", "/nonexistent/ca.pem"}, err: "TLS: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var f Flags
			fs := pflag.NewFlagSet("x", pflag.ContinueOnError)
			f.AddFlags(fs)
			f.AddCommandTimeout(fs, time.Minute, "timeout")
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			err := ApplyEnv(fs, NonEmpty(func(k string) string { return tc.env[k] }))
			var c clientv3.Config
			if err == nil {
				c, err = f.Config(tc.ask)
			}
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(c.Endpoints, tc.endpoints) || c.DialTimeout != tc.dial || f.CommandTimeout != tc.command ||
				c.Username != tc.user || c.Password != tc.password || (c.TLS != nil) != tc.tls || (c.TLS != nil && c.TLS.InsecureSkipVerify != tc.insecure) {
				t.Errorf("config %+v, command timeout %v", c, f.CommandTimeout)
			}
		})
	}
}

// Every flag's help names its variable.
func TestHelpNamesTheVariable(t *testing.T) {
	var f Flags
	fs := pflag.NewFlagSet("x", pflag.ContinueOnError)
	f.AddFlags(fs)
	f.AddCommandTimeout(fs, time.Minute, "timeout")
	fs.VisitAll(func(fl *pflag.Flag) {
		if want := "(env " + EnvName(fl.Name) + ")"; !strings.HasSuffix(fl.Usage, want) {
			t.Errorf("--%s: %q does not end in %q", fl.Name, fl.Usage, want)
		}
	})
	if !slices.Contains(names, "command-timeout") || EnvName("insecure-skip-tls-verify") != "ETCDCTL_INSECURE_SKIP_TLS_VERIFY" {
		t.Error(names)
	}
}

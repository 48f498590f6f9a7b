package cli

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
)

// parse runs flag parsing and env application the way the root command
// does, and returns the resulting options' config.
func parse(t *testing.T, args []string, env map[string]string) (*memberOptions, error) {
	t.Helper()
	opts := newMemberOptions()
	cmd := &cobra.Command{Use: "x", RunE: func(*cobra.Command, []string) error { return nil }}
	opts.addFlags(cmd.Flags())
	if err := cmd.Flags().Parse(args); err != nil {
		return nil, err
	}
	var environ []string
	for k, v := range env {
		environ = append(environ, k+"="+v)
	}
	if err := applyEnv(cmd.Flags(), environ); err != nil {
		return nil, err
	}
	return opts, nil
}

func TestFlagsAndEnv(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		check   func(t *testing.T, o *memberOptions)
		wantErr string
	}{
		{
			name: "defaults",
			check: func(t *testing.T, o *memberOptions) {
				c, err := o.config()
				if err != nil {
					t.Fatal(err)
				}
				if c.Name != "default" || c.DataDir != "default.etcd" || c.SnapshotCount != 10000 ||
					c.HeartbeatMs != 100 || c.ElectionMs != 1000 || c.QuotaBackendBytes != 2<<30 || c.MaxSnapshots != 5 || !c.NewCluster ||
					!c.StrictReconfigCheck {
					t.Fatalf("defaults: %+v", c)
				}
			},
		},
		{
			name: "env sets, data dir follows name",
			env:  map[string]string{"ETCD_NAME": "n1", "ETCD_SNAPSHOT_COUNT": "42", "ETCD_INITIAL_CLUSTER_STATE": "existing"},
			check: func(t *testing.T, o *memberOptions) {
				c, err := o.config()
				if err != nil {
					t.Fatal(err)
				}
				if c.Name != "n1" || c.DataDir != "n1.etcd" || c.SnapshotCount != 42 || c.NewCluster {
					t.Fatalf("env: %+v", c)
				}
			},
		},
		{
			name:    "env shadowed by a flag is refused, as etcd",
			args:    []string{"--name", "flag", "--data-dir", "/tmp/x"},
			env:     map[string]string{"ETCD_NAME": "env"},
			wantErr: `conflicting environment variable "ETCD_NAME" is shadowed`,
		},
		{
			name:    "unknown ETCD_ variable is refused, naming it",
			env:     map[string]string{"ETCD_DISCOVERY_SRV": "example.com"},
			wantErr: "unrecognized environment variable ETCD_DISCOVERY_SRV: lifeboat has no flag --discovery-srv",
		},
		{
			name: "ETCD_UNSUPPORTED_ARCH and ETCD_VERIFY are etcd's, not flags",
			env:  map[string]string{"ETCD_UNSUPPORTED_ARCH": "arm64", "ETCD_VERIFY": "all"},
			check: func(t *testing.T, o *memberOptions) {
				if _, err := o.config(); err != nil {
					t.Fatal(err)
				}
			},
		},
		{
			name: "initial cluster",
			args: []string{"--name", "a", "--initial-advertise-peer-urls", "http://10.0.0.1:2380",
				"--initial-cluster", "a=http://10.0.0.1:2380,b=http://10.0.0.2:2380"},
			check: func(t *testing.T, o *memberOptions) {
				c, err := o.config()
				if err != nil {
					t.Fatal(err)
				}
				if len(c.InitialCluster) != 2 || c.InitialCluster["b"][0] != "http://10.0.0.2:2380" {
					t.Fatalf("initial cluster %v", c.InitialCluster)
				}
			},
		},
		{
			name: "lease checkpoint interval from the env",
			env:  map[string]string{"ETCD_EXPERIMENTAL_LEASE_CHECKPOINT_INTERVAL": "30s"},
			check: func(t *testing.T, o *memberOptions) {
				c, err := o.config()
				if err != nil {
					t.Fatal(err)
				}
				if c.LeaseCheckpointInterval != 30*time.Second {
					t.Fatalf("lease checkpoint interval %v, want 30s", c.LeaseCheckpointInterval)
				}
			},
		},
		{
			name: "strict reconfiguration check off by flag",
			args: []string{"--strict-reconfig-check=false"},
			check: func(t *testing.T, o *memberOptions) {
				if c, err := o.config(); err != nil || c.StrictReconfigCheck {
					t.Fatalf("strict reconfig check %v, %v; want off", c, err)
				}
			},
		},
		{
			name: "strict reconfiguration check off by the env",
			env:  map[string]string{"ETCD_STRICT_RECONFIG_CHECK": "false"},
			check: func(t *testing.T, o *memberOptions) {
				if c, err := o.config(); err != nil || c.StrictReconfigCheck {
					t.Fatalf("strict reconfig check %v, %v; want off", c, err)
				}
			},
		},
		{
			name:    "bad env value",
			env:     map[string]string{"ETCD_SNAPSHOT_COUNT": "many"},
			wantErr: "ETCD_SNAPSHOT_COUNT",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o, err := parse(t, tc.args, tc.env)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one naming %s", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, o)
		})
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"state", []string{"--initial-cluster-state", "maybe"}, "--initial-cluster-state"},
		{"self missing", []string{"--name", "x", "--initial-cluster", "y=http://127.0.0.1:2380"}, `no member named "x"`},
		{"election", []string{"--election-timeout", "200"}, "--election-timeout"},
		{"url", []string{"--listen-client-urls", "ftp://h:1"}, "--listen-client-urls"},
		{"lease checkpoint", []string{"--experimental-lease-checkpoint-interval", "-1s"}, "--experimental-lease-checkpoint-interval"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o, err := parse(t, tc.args, nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := o.config(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestExecuteExitCodes(t *testing.T) {
	tests := []struct {
		args []string
		code int
		out  string
	}{
		{[]string{"version"}, exitOK, "etcd Version: 3.6.6"},
		{[]string{"--no-such-flag"}, exitUsage, ""},
		{[]string{"--initial-cluster-state", "maybe"}, exitUsage, ""},
	}
	for _, tc := range tests {
		var out, errb bytes.Buffer
		if code := Execute(tc.args, &out, &errb, Options{}); code != tc.code {
			t.Fatalf("%v: exit %d, want %d (%s)", tc.args, code, tc.code, errb.String())
		}
		if !strings.Contains(out.String(), tc.out) {
			t.Fatalf("%v: output %q lacks %q", tc.args, out.String(), tc.out)
		}
	}
}

func TestDeprecationWarnings(t *testing.T) {
	opts := newMemberOptions()
	cmd := &cobra.Command{Use: "x"}
	opts.addFlags(cmd.Flags())
	if err := cmd.Flags().Parse([]string{"--snapshot-count=100", "--name", "n"}); err != nil {
		t.Fatal(err)
	}
	got := deprecations(cmd.Flags())
	if len(got) != 1 || got[0] != "--snapshot-count is deprecated in 3.6 and will be decommissioned in 3.7" {
		t.Fatalf("warnings %q", got)
	}
}

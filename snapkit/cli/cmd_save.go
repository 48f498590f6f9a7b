package cli

import (
	"context"
	"crypto/tls"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/lifeboat-dev/lifeboat/internal/clikit"
	"github.com/lifeboat-dev/lifeboat/snapkit/save"
)

// saveOptions are etcdctl's connection flags, with its environment variables.
type saveOptions struct {
	out            *clikit.Output
	endpoints      []string
	dialTimeout    time.Duration
	commandTimeout time.Duration
	cacert         string
	cert           string
	key            string
	insecureSkip   bool
}

// AddFlags registers save's flags.
func (o *saveOptions) AddFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	o.out.AddFlags(f)
	f.StringSliceVar(&o.endpoints, "endpoints", nil, "the one endpoint to snapshot (env ETCDCTL_ENDPOINTS; default 127.0.0.1:2379)")
	f.DurationVar(&o.dialTimeout, "dial-timeout", 2*time.Second, "dial timeout")
	f.DurationVar(&o.commandTimeout, "command-timeout", 5*time.Minute, "timeout for the whole download")
	f.StringVar(&o.cacert, "cacert", "", "verify the server with this CA bundle (env ETCDCTL_CACERT)")
	f.StringVar(&o.cert, "cert", "", "client TLS certificate (env ETCDCTL_CERT)")
	f.StringVar(&o.key, "key", "", "client TLS key (env ETCDCTL_KEY)")
	f.BoolVar(&o.insecureSkip, "insecure-skip-tls-verify", false, "do not verify the server's certificate")
}

// config builds a clientv3 config; flags win over ETCDCTL_* variables.
func (o *saveOptions) config(e *env) (clientv3.Config, error) {
	fromEnv := func(v *string, name string) {
		if *v == "" {
			*v = e.getenv(name)
		}
	}
	if len(o.endpoints) == 0 {
		if v := e.getenv("ETCDCTL_ENDPOINTS"); v != "" {
			o.endpoints = strings.Split(v, ",")
		} else {
			o.endpoints = []string{"127.0.0.1:2379"}
		}
	}
	if len(o.endpoints) != 1 {
		return clientv3.Config{}, fmt.Errorf("save needs exactly one endpoint, got %d (%s)", len(o.endpoints), strings.Join(o.endpoints, ","))
	}
	fromEnv(&o.cacert, "ETCDCTL_CACERT")
	fromEnv(&o.cert, "ETCDCTL_CERT")
	fromEnv(&o.key, "ETCDCTL_KEY")
	cfg := clientv3.Config{Endpoints: o.endpoints, DialTimeout: o.dialTimeout}
	if o.cacert != "" || o.cert != "" || o.key != "" || o.insecureSkip {
		if (o.cert == "") != (o.key == "") {
			return clientv3.Config{}, fmt.Errorf("--cert and --key go together")
		}
		info := transport.TLSInfo{CertFile: o.cert, KeyFile: o.key, TrustedCAFile: o.cacert, InsecureSkipVerify: o.insecureSkip}
		var tc *tls.Config
		tc, err := info.ClientConfig()
		if err != nil {
			return clientv3.Config{}, fmt.Errorf("TLS: %w", err)
		}
		cfg.TLS = tc
	}
	return cfg, nil
}

func newSaveCommand(e *env) *cobra.Command {
	o := &saveOptions{out: clikit.NewOutput("table", "json")}
	cmd := &cobra.Command{
		Use:   "save <file>",
		Short: "Stream a snapshot from one member into <file>, checking its SHA-256 on the way",
		Long: `save asks one member for a snapshot (Maintenance.Snapshot), writes it to
<file>.part, checks the SHA-256 that ends the stream, and renames the file to
<file> only if it matches. <file> must not exist.`,
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			cfg, err := o.config(e)
			if err != nil {
				return usage(err)
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), o.commandTimeout)
			defer cancel()
			progress := clikit.NewProgress(e.stderr, "saving", 0)
			res, err := save.Snapshot(ctx, e.logger, cfg, a[0], progress.Func())
			progress.Done()
			if err != nil {
				return inputError(err)
			}
			if o.out.Is("json") {
				return clikit.WriteJSON(e.stdout, res)
			}
			fmt.Fprintf(e.stdout, "Snapshot saved at %s (%s from member %s, server %s, took %s)\n",
				res.Path, clikit.Size(res.Size), res.MemberID, res.Version, res.Took.Round(time.Millisecond))
			return nil
		},
	}
	o.AddFlags(cmd)
	return cmd
}

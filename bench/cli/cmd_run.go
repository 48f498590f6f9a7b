package cli

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/lifeboat-dev/lifeboat/bench"
	"github.com/lifeboat-dev/lifeboat/internal/clikit"
)

// runOptions are the flags of `run`.
type runOptions struct {
	cfg      bench.Config
	workload string
	user     string
	out      *clikit.Output
}

func (o *runOptions) AddFlags(cmd *cobra.Command) {
	o.cfg = bench.DefaultConfig()
	o.out = clikit.NewOutput("table", "json")
	f := cmd.Flags()
	o.out.AddFlags(f)
	f.StringSliceVar(&o.cfg.Endpoints, "endpoints", o.cfg.Endpoints, "client endpoints (host:port), comma separated")
	f.StringVar(&o.workload, "workload", string(o.cfg.Workload), "put, range (linearizable), range-serializable or txn")
	f.IntVar(&o.cfg.Clients, "clients", o.cfg.Clients, "concurrent clients, one request in flight each")
	f.IntVar(&o.cfg.Conns, "conns", o.cfg.Conns, "gRPC connections shared by the clients")
	f.IntVar(&o.cfg.Total, "total", o.cfg.Total, "stop after this many requests")
	f.DurationVar(&o.cfg.Duration, "duration", o.cfg.Duration, "stop after this long")
	f.IntVar(&o.cfg.KeySize, "key-size", o.cfg.KeySize, "key size in bytes")
	f.IntVar(&o.cfg.ValSize, "val-size", o.cfg.ValSize, "value size in bytes")
	f.IntVar(&o.cfg.KeySpace, "key-space", o.cfg.KeySpace, "number of distinct keys, drawn uniformly")
	f.DurationVar(&o.cfg.RequestTimeout, "request-timeout", 10*time.Second, "timeout of each request")
	f.StringVar(&o.user, "user", "", "authenticate every connection as name:password (etcdctl's --user)")
}

func newRunCommand(e *env) *cobra.Command {
	var o runOptions
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Drive the endpoints with one workload and report throughput and latency",
		Long: `run opens --conns gRPC connections to --endpoints and starts --clients
requesters on them, each with one request in flight, until --total requests
were issued or --duration passed. The range workloads write the key space
first, unmeasured.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			w, err := bench.ParseWorkload(o.workload)
			if err != nil {
				return usage(err)
			}
			o.cfg.Workload = w
			if o.user != "" {
				name, password, ok := strings.Cut(o.user, ":")
				if !ok || name == "" {
					return usage(fmt.Errorf("--user %q: want name:password", o.user))
				}
				o.cfg.Username, o.cfg.Password = name, password
			}
			if err := o.cfg.Validate(); err != nil {
				return usage(err)
			}
			rep, err := bench.Run(cmd.Context(), o.cfg)
			if err != nil {
				return clikit.Finding(err)
			}
			return e.write(o.out, func(w io.Writer) error { return bench.WriteTable(w, []*bench.Report{rep}) }, rep)
		},
	}
	o.AddFlags(cmd)
	return cmd
}

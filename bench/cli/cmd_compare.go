package cli

import (
	"errors"
	"io"

	"github.com/spf13/cobra"

	"github.com/lifeboat-dev/lifeboat/bench"
	"github.com/lifeboat-dev/lifeboat/internal/clikit"
)

// compareOptions are the flags of `compare`.
type compareOptions struct {
	cfg       bench.CompareConfig
	workloads []string
	security  string
	out       *clikit.Output
}

func (o *compareOptions) AddFlags(cmd *cobra.Command) {
	o.cfg = bench.DefaultCompareConfig()
	o.out = clikit.NewOutput("table", "json")
	f := cmd.Flags()
	o.out.AddFlags(f)
	f.StringVar(&o.cfg.EtcdBinary, "etcd", "", "path of the real etcd v3.6 binary (required)")
	f.StringVar(&o.cfg.LifeboatBinary, "lifeboat", "", "path of the lifeboat binary; without it only etcd runs")
	f.IntSliceVar(&o.cfg.Members, "members", o.cfg.Members, "cluster sizes")
	f.IntSliceVar(&o.cfg.Clients, "clients", o.cfg.Clients, "client counts")
	f.StringSliceVar(&o.workloads, "workloads", []string{"put", "range", "txn"}, "workloads: put, range, range-serializable, txn")
	f.IntVar(&o.cfg.Conns, "conns", 0, "gRPC connections per run; 0 means ceil(clients/8)")
	f.IntVar(&o.cfg.Rounds, "rounds", o.cfg.Rounds, "runs of each cell per system, alternating the systems; the median is kept")
	f.IntVar(&o.cfg.Total, "total", o.cfg.Total, "requests per run (upper bound)")
	f.DurationVar(&o.cfg.Duration, "duration", o.cfg.Duration, "duration per run (upper bound)")
	f.IntVar(&o.cfg.KeySize, "key-size", o.cfg.KeySize, "key size in bytes")
	f.IntVar(&o.cfg.ValSize, "val-size", o.cfg.ValSize, "value size in bytes")
	f.IntVar(&o.cfg.KeySpace, "key-space", o.cfg.KeySpace, "number of distinct keys")
	f.StringVar(&o.cfg.Dir, "dir", "", "directory for the data dirs (default: a temp dir, removed at the end)")
	f.StringVar(&o.security, "security", "none", "secure both systems: none, tls (client TLS with a CA made for the run) or auth (auth enabled, runs as root)")
}

func newCompareCommand(e *env) *cobra.Command {
	var o compareOptions
	cmd := &cobra.Command{
		Use:   "compare --etcd PATH [--lifeboat PATH]",
		Short: "Start real etcd and lifeboat side by side and run the same workloads against each",
		Long: `compare starts, for each cluster size, a real etcd cluster and a
lifeboat cluster on fresh data dirs and 127.0.0.1 ports, runs every workload
at every client count against each leader's endpoint --rounds times,
alternating the systems so that both see the same background load, keeps
the median round of each, and prints both results and the ratio
lifeboat/etcd. Progress goes to stderr. A system that fails is reported in
its cells, and the command exits 1.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.cfg.Workloads = nil
			for _, s := range o.workloads {
				w, err := bench.ParseWorkload(s)
				if err != nil {
					return usage(err)
				}
				o.cfg.Workloads = append(o.cfg.Workloads, w)
			}
			sec, err := bench.ParseSecurity(o.security)
			if err != nil {
				return usage(err)
			}
			o.cfg.Security = sec
			o.cfg.Log = e.stderr
			c, err := bench.Compare(cmd.Context(), o.cfg)
			if err != nil {
				return usage(err)
			}
			if err := e.write(o.out, func(w io.Writer) error { return bench.WriteCompareTable(w, c) }, c); err != nil {
				return err
			}
			for _, r := range c.Results {
				if r.Error != "" {
					return clikit.Finding(errors.New("some runs failed; see the errors under the table"))
				}
			}
			return nil
		},
	}
	o.AddFlags(cmd)
	return cmd
}

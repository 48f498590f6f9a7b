package cli

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/lifeboat-dev/lifeboat/internal/clikit"
	"github.com/lifeboat-dev/lifeboat/internal/clikit/etcdflags"
	"github.com/lifeboat-dev/lifeboat/snapkit/save"
)

// saveOptions are save's flags: -w and etcdctl's connection flags.
type saveOptions struct {
	out  *clikit.Output
	conn etcdflags.Flags
}

// AddFlags registers save's flags.
func (o *saveOptions) AddFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	o.out.AddFlags(f)
	o.conn.AddFlags(f)
	o.conn.AddCommandTimeout(f, 5*time.Minute, "timeout for the whole download")
}

// config builds the client config of the one endpoint; flags win over
// ETCDCTL_* variables.
func (o *saveOptions) config(e *env, cmd *cobra.Command) (clientv3.Config, error) {
	if err := etcdflags.ApplyEnv(cmd.Flags(), etcdflags.NonEmpty(e.getenv)); err != nil {
		return clientv3.Config{}, err
	}
	if n := len(o.conn.Endpoints); n != 1 {
		return clientv3.Config{}, fmt.Errorf("save needs exactly one endpoint, got %d (%s)", n, strings.Join(o.conn.Endpoints, ","))
	}
	return o.conn.Config(func() (string, error) { return etcdflags.PromptPassword(e.stderr) })
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
			cfg, err := o.config(e, cmd)
			if err != nil {
				return usage(err)
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), o.conn.CommandTimeout)
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

package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/lifeboat-dev/lifeboat/internal/clikit"
)

// lsOptions are the flags of snapkit ls.
type lsOptions struct {
	listOptions
	values bool
}

// AddFlags registers ls' flags.
func (o *lsOptions) AddFlags(cmd *cobra.Command) {
	o.listOptions.AddFlags(cmd)
	cmd.Flags().BoolVar(&o.values, "values", false, "show the values too")
}

func newLsCommand(e *env) *cobra.Command {
	o := &lsOptions{listOptions: listOptions{out: clikit.NewOutput("table", "json", "simple")}}
	cmd := &cobra.Command{
		Use:   "ls <file|data-dir> [prefix]",
		Short: "List the keys live at a revision (every key, or those under a prefix)",
		Long: `ls lists the keys live at a revision under a prefix (every key without one),
with their revisions, version, lease and value size; --values adds the values.
-w simple prints the keys alone, one a line.`,
		Args: args(cobra.RangeArgs(1, 2)),
		RunE: func(cmd *cobra.Command, a []string) error {
			o.list.Prefix, o.list.KeysOnly = true, !o.values
			if len(a) == 2 {
				o.list.Key = []byte(a[1])
			}
			res, err := o.read(cmd, e, a[0])
			if err != nil {
				return err
			}
			switch o.out.Format() {
			case "json":
				return clikit.WriteJSON(e.stdout, res)
			case "simple":
				for _, kv := range res.KVs {
					if _, err := fmt.Fprintf(e.stdout, "%s\n", kv.Key.Raw); err != nil {
						return err
					}
				}
				return nil
			}
			return renderList(e, res, o.list.KeysOnly)
		},
	}
	o.AddFlags(cmd)
	return cmd
}

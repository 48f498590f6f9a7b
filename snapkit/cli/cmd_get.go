package cli

import (
	"github.com/spf13/cobra"

	"github.com/lifeboat-dev/lifeboat/internal/clikit"
)

func newGetCommand(e *env) *cobra.Command {
	o := &listOptions{out: clikit.NewOutput("table", "json")}
	cmd := &cobra.Command{
		Use:   "get <file|data-dir> <key>",
		Short: "Print a key (or, with --prefix, keys) with its value as of a revision",
		Args:  args(cobra.RangeArgs(1, 2)),
		RunE:  func(cmd *cobra.Command, a []string) error { return o.run(cmd, e, a) },
	}
	o.AddFlags(cmd, false)
	return cmd
}

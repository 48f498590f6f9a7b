package cli

import (
	"github.com/spf13/cobra"

	"github.com/lifeboat-dev/lifeboat/internal/clikit"
)

func newLsCommand(e *env) *cobra.Command {
	o := &listOptions{out: clikit.NewOutput("table", "json")}
	cmd := &cobra.Command{
		Use:   "ls <file|data-dir> [prefix]",
		Short: "List the keys live at a revision (every key, or those under a prefix)",
		Args:  args(cobra.RangeArgs(1, 2)),
		RunE:  func(cmd *cobra.Command, a []string) error { return o.run(cmd, e, a) },
	}
	o.AddFlags(cmd, true)
	return cmd
}

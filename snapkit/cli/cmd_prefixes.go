package cli

import (
	"fmt"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/lifeboat-dev/lifeboat/internal/clikit"
)

// prefixesOptions are the flags of snapkit prefixes.
type prefixesOptions struct {
	out   *clikit.Output
	depth int
}

// AddFlags registers prefixes' flags.
func (o *prefixesOptions) AddFlags(cmd *cobra.Command) {
	o.out.AddFlags(cmd.Flags())
	cmd.Flags().IntVar(&o.depth, "depth", 2, "path components in a prefix")
}

func newPrefixesCommand(e *env) *cobra.Command {
	o := &prefixesOptions{out: clikit.NewOutput("table", "json")}
	cmd := &cobra.Command{
		Use:   "prefixes <file|data-dir>",
		Short: "Size the key space by key prefix: live keys at the head, and every revision kept",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			if o.depth < 1 {
				return usage(fmt.Errorf("--depth must be at least 1, not %d", o.depth))
			}
			db, err := openDB(cmd, e, a[0])
			if err != nil {
				return err
			}
			defer db.Close()
			r, err := db.Prefixes(o.depth)
			if err != nil {
				return inputError(err)
			}
			if o.out.Is("json") {
				return clikit.WriteJSON(e.stdout, r)
			}
			t := &clikit.Table{Headers: []string{"prefix", "live keys", "key bytes", "value bytes", "revisions", "revision bytes"}}
			for _, p := range r.Prefixes {
				name := text(p.Prefix)
				if name == "" {
					name = "(none)"
				}
				t.Add(name, strconv.Itoa(p.LiveKeys), clikit.Size(p.LiveKeyBytes), clikit.Size(p.LiveValueBytes), strconv.Itoa(p.Revisions), clikit.Size(p.RevisionBytes))
			}
			return t.Render(e.stdout)
		},
	}
	o.AddFlags(cmd)
	return cmd
}

package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/lifeboat-dev/lifeboat/backupd"
	"github.com/lifeboat-dev/lifeboat/internal/clikit"
)

func newDrillCommand(e *env) *cobra.Command {
	var o identityOptions
	cmd := &cobra.Command{
		Use:   "drill <id|latest>",
		Short: "Restore a backup into a temporary data dir, boot a member on it, and check it against the manifest",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			ro, err := o.readOptions(e, "fetching")
			if err != nil {
				return err
			}
			s, err := e.openStore(cmd.Context())
			if err != nil {
				return err
			}
			defer s.Close()
			d := &backupd.Drill{Store: s, Read: ro, Restore: e.opts.Restorer, WorkDir: e.spoolDir, Logger: e.logger}
			rep, err := d.Run(cmd.Context(), a[0])
			e.endProgress()
			if rep != nil {
				if e.output == "json" {
					if werr := clikit.WriteJSON(e.stdout, rep); werr != nil {
						return werr
					}
				} else {
					t := &clikit.Table{Headers: []string{"check", "ok", "detail"}, Left: true}
					if rep.Verify != nil {
						for _, c := range rep.Verify.Checks {
							t.Add("fetch: "+c.Name, okWord(c.OK), c.Detail)
						}
					}
					for _, c := range rep.Checks {
						t.Add(c.Name, okWord(c.OK), c.Detail)
					}
					fmt.Fprintf(e.stdout, "drill of %s\n", rep.ID)
					if werr := t.Render(e.stdout); werr != nil {
						return werr
					}
				}
			}
			return classify(err)
		},
	}
	o.AddFlags(cmd)
	return cmd
}

func okWord(ok bool) string {
	if ok {
		return "ok"
	}
	return "FAILED"
}

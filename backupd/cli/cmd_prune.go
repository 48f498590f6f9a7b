package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/lifeboat-dev/lifeboat/backupd"
	"github.com/lifeboat-dev/lifeboat/internal/clikit"
)

func newPruneCommand(e *env) *cobra.Command {
	var (
		r      retentionOptions
		dryRun bool
		holder string
	)
	cmd := &cobra.Command{
		Use:   "prune [--dry-run]",
		Short: "Apply retention: keep or delete every backup, with the reason; remove old orphans",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := e.openStore(cmd.Context())
			if err != nil {
				return err
			}
			defer s.Close()
			run := &backupd.Runner{Config: &backupd.Config{Store: s, Logger: e.logger}, Holder: holder}
			if run.Holder == "" {
				run.Holder = defaultHolder("prune")
			}
			if err := r.apply(run); err != nil {
				return err
			}
			rep, err := run.Prune(cmd.Context(), dryRun)
			if err != nil {
				return usage(err)
			}
			if e.output == "json" {
				return clikit.WriteJSON(e.stdout, rep)
			}
			verb := map[bool]string{true: "keep", false: "delete"}
			if !dryRun {
				verb[false] = "deleted"
			}
			t := &clikit.Table{Headers: []string{"backup", "decision", "reason"}, Left: true}
			for _, d := range rep.Decisions {
				t.Add(d.ID, verb[d.Keep], strings.Join(d.Reasons, "; "))
			}
			for _, o := range rep.Orphans {
				v := "keep"
				if o.Remove {
					v = "remove"
					if !dryRun {
						v = "removed"
					}
				}
				t.Add(o.Key, v, "orphan: "+o.Reason)
			}
			for _, b := range rep.Broken {
				t.Add(b.Dir, "keep", "manifest does not parse, never touched: "+b.Error)
			}
			if err := t.Render(e.stdout); err != nil {
				return err
			}
			if rep.Paused != "" {
				fmt.Fprintf(e.stdout, "retention paused: %s\n", rep.Paused)
			}
			return nil
		},
	}
	r.AddFlags(cmd)
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "only show what would be kept and deleted")
	cmd.Flags().StringVar(&holder, "holder", "", "name in the lock (default prune@host:pid)")
	return cmd
}

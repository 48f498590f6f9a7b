package cli

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/lifeboat-dev/lifeboat/backupd"
	"github.com/lifeboat-dev/lifeboat/backupd/manifest"
	"github.com/lifeboat-dev/lifeboat/internal/clikit"
)

// onceResult is once's report.
type onceResult struct {
	Manifest *manifest.Manifest   `json:"manifest"`
	Prune    *backupd.PruneReport `json:"prune,omitempty"`
}

func newOnceCommand(e *env) *cobra.Command {
	var (
		o     backupOptions
		r     retentionOptions
		prune bool
	)
	cmd := &cobra.Command{
		Use:   "once",
		Short: "Take one backup now (and apply retention with --prune)",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			run, err := o.runner(e, cmd)
			if err != nil {
				return err
			}
			defer run.Config.Store.Close()
			if err := r.apply(run); err != nil {
				return err
			}
			run.PruneAfter = prune
			run.Config.Progress = e.progress("streaming")
			a := run.Attempt(cmd.Context(), time.Time{})
			e.endProgress()
			if a.Err != nil {
				return classify(a.Err)
			}
			res := onceResult{Manifest: a.Manifest, Prune: a.Prune}
			if e.output == "json" {
				return clikit.WriteJSON(e.stdout, res)
			}
			m := a.Manifest
			enc := "no"
			if m.Encrypted() {
				enc = fmt.Sprintf("yes, to %d recipients", len(m.Object.Recipients))
			}
			t := &clikit.Table{Headers: []string{"field", "value"}, Left: true}
			t.Add("id", m.ID)
			t.Add("source", fmt.Sprintf("%s (member %s, %s)", m.Endpoint, m.MemberID, m.Role))
			t.Add("revision", fmt.Sprint(m.Revision))
			t.Add("db", fmt.Sprintf("%s, sha256 %s", clikit.Size(m.DBSize), m.DBSHA256))
			t.Add("stored", fmt.Sprintf("%s %s, %s", m.Object.Key, clikit.Size(m.Object.Size), m.Object.Codec))
			t.Add("encrypted", enc)
			t.Add("took", m.End.Sub(m.Start).Round(time.Millisecond).String())
			if err := t.Render(e.stdout); err != nil {
				return err
			}
			if a.Prune != nil {
				fmt.Fprintf(e.stdout, "retention: %d backups deleted, %d orphan objects removed\n", a.Prune.Deleted, a.Prune.Removed)
			}
			return nil
		},
	}
	o.AddFlags(cmd)
	r.AddFlags(cmd)
	cmd.Flags().BoolVar(&prune, "prune", false, "apply retention after the backup")
	return cmd
}

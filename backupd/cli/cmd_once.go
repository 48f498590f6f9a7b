package cli

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/lifeboat-dev/lifeboat/backupd"
	"github.com/lifeboat-dev/lifeboat/backupd/manifest"
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
				return writeJSON(e.stdout, res)
			}
			m := a.Manifest
			enc := "no"
			if m.Encrypted() {
				enc = fmt.Sprintf("yes, to %d recipients", len(m.Object.Recipients))
			}
			t := &table{headers: []string{"field", "value"}}
			t.add("id", m.ID)
			t.add("source", fmt.Sprintf("%s (member %s, %s)", m.Endpoint, m.MemberID, m.Role))
			t.add("revision", fmt.Sprint(m.Revision))
			t.add("db", fmt.Sprintf("%s, sha256 %s", size(m.DBSize), m.DBSHA256))
			t.add("stored", fmt.Sprintf("%s %s, %s", m.Object.Key, size(m.Object.Size), m.Object.Codec))
			t.add("encrypted", enc)
			t.add("took", m.End.Sub(m.Start).Round(time.Millisecond).String())
			if err := t.render(e.stdout); err != nil {
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

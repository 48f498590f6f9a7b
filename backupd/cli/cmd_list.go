package cli

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/lifeboat-dev/lifeboat/backupd/store"
	"github.com/lifeboat-dev/lifeboat/internal/clikit"
)

// listEntry is one backup in list's report.
type listEntry struct {
	ID        string    `json:"id"`
	Time      time.Time `json:"time"`
	Age       string    `json:"age"`
	Revision  int64     `json:"revision"`
	DBSize    int64     `json:"dbSize"`
	Size      int64     `json:"size"` // stored
	Codec     string    `json:"codec"`
	Verified  bool      `json:"verified"`
	Encrypted bool      `json:"encrypted"`
	Member    string    `json:"member"`
	Role      string    `json:"role"`
}

type listReport struct {
	Backups []listEntry    `json:"backups"`
	Orphans []store.Orphan `json:"orphans"`
	Broken  []store.Broken `json:"broken"`
	State   *store.State   `json:"state,omitempty"`
}

func newListCommand(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the committed backups (a backup without a manifest is not one)",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := e.openStore(cmd.Context())
			if err != nil {
				return err
			}
			defer s.Close()
			l, err := s.List(cmd.Context())
			if err != nil {
				return usage(err)
			}
			st, found, err := s.State(cmd.Context())
			if err != nil {
				return usage(err)
			}
			now := time.Now()
			rep := listReport{Orphans: l.Orphans, Broken: l.Broken, Backups: []listEntry{}}
			if found {
				rep.State = &st
			}
			for _, b := range l.Backups {
				m := b.Manifest
				rep.Backups = append(rep.Backups, listEntry{ID: m.ID, Time: b.ID.Time, Age: ageOf(now, b.ID.Time), Revision: m.Revision,
					DBSize: m.DBSize, Size: m.Object.Size, Codec: m.Object.Codec, Verified: true, Encrypted: m.Encrypted(),
					Member: m.MemberID, Role: m.Role})
			}
			if e.output == "json" {
				return clikit.WriteJSON(e.stdout, rep)
			}
			t := &clikit.Table{Headers: []string{"id", "age", "revision", "db size", "size", "codec", "verified", "encrypted", "member"}, Left: true}
			yes := func(b bool) string {
				if b {
					return "yes"
				}
				return "no"
			}
			for _, b := range rep.Backups {
				t.Add(b.ID, b.Age, fmt.Sprint(b.Revision), clikit.Size(b.DBSize), clikit.Size(b.Size), b.Codec, yes(b.Verified), yes(b.Encrypted), b.Member+" ("+b.Role+")")
			}
			if err := t.Render(e.stdout); err != nil {
				return err
			}
			if len(l.Orphans) > 0 || len(l.Broken) > 0 {
				fmt.Fprintf(e.stdout, "%d orphan objects (no manifest), %d directories with a manifest that does not parse; -w json lists them\n", len(l.Orphans), len(l.Broken))
			}
			if found && st.Result == store.ResultFailed {
				fmt.Fprintf(e.stdout, "newest attempt FAILED at %s (%s): %s\n", st.Start.Format(time.RFC3339), st.Cause, st.Error)
			}
			return nil
		},
	}
}

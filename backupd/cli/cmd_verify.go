package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/lifeboat-dev/lifeboat/backupd"
	"github.com/lifeboat-dev/lifeboat/backupd/store"
	"github.com/lifeboat-dev/lifeboat/internal/clikit"
)

// findBackup resolves a reference in the listing.
func findBackup(e *env, cmd *cobra.Command, ref string) (*store.Store, store.Backup, error) {
	s, err := e.openStore(cmd.Context())
	if err != nil {
		return nil, store.Backup{}, err
	}
	l, err := s.List(cmd.Context())
	if err != nil {
		s.Close()
		return nil, store.Backup{}, usage(err)
	}
	b, err := l.Find(ref)
	if err != nil {
		s.Close()
		return nil, store.Backup{}, usage(err)
	}
	return s, b, nil
}

func renderChecks(e *env, rep *backupd.VerifyReport) error {
	t := &clikit.Table{Headers: []string{"check", "ok", "detail"}, Left: true}
	for _, c := range rep.Checks {
		ok := "ok"
		if !c.OK {
			ok = "FAILED"
		}
		t.Add(c.Name, ok, c.Detail)
	}
	fmt.Fprintf(e.stdout, "backup %s\n", rep.ID)
	return t.Render(e.stdout)
}

func newVerifyCommand(e *env) *cobra.Command {
	var o identityOptions
	cmd := &cobra.Command{
		Use:   "verify <id|latest>",
		Short: "Download, decrypt and decompress a backup, and check everything against its manifest",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			ro, err := o.readOptions(e, "verifying")
			if err != nil {
				return err
			}
			s, b, err := findBackup(e, cmd, a[0])
			if err != nil {
				return err
			}
			defer s.Close()
			rep, err := backupd.Verify(cmd.Context(), s, b, ro)
			e.endProgress()
			if rep != nil {
				if e.output == "json" {
					if werr := clikit.WriteJSON(e.stdout, rep); werr != nil {
						return werr
					}
				} else if werr := renderChecks(e, rep); werr != nil {
					return werr
				}
			}
			return classify(err)
		},
	}
	o.AddFlags(cmd)
	return cmd
}

func newFetchCommand(e *env) *cobra.Command {
	var (
		o   identityOptions
		out string
	)
	cmd := &cobra.Command{
		Use:   "fetch <id|latest> -o FILE",
		Short: "Fetch a backup as a snapshot file with its SHA-256 trailer, verified, ready for restore",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			if out == "" {
				return usage(fmt.Errorf("fetch needs -o FILE"))
			}
			ro, err := o.readOptions(e, "fetching")
			if err != nil {
				return err
			}
			s, b, err := findBackup(e, cmd, a[0])
			if err != nil {
				return err
			}
			defer s.Close()
			rep, err := backupd.Fetch(cmd.Context(), s, b, ro, out)
			e.endProgress()
			if rep != nil && e.output == "json" {
				if werr := clikit.WriteJSON(e.stdout, rep); werr != nil {
					return werr
				}
			} else if rep != nil && err != nil {
				if werr := renderChecks(e, rep); werr != nil {
					return werr
				}
			}
			if err != nil {
				return classify(err)
			}
			if e.output != "json" {
				fmt.Fprintf(e.stdout, "Snapshot %s fetched to %s (revision %d, %s)\n", b.Manifest.ID, out, b.Manifest.Revision, clikit.Size(b.Manifest.DBSize+32))
			}
			return nil
		},
	}
	o.AddFlags(cmd)
	cmd.Flags().StringVarP(&out, "output", "o", "", "the snapshot file to write (must not exist)")
	return cmd
}

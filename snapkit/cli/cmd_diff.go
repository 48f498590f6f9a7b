package cli

import (
	"fmt"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/lifeboat-dev/lifeboat/internal/clikit"
	"github.com/lifeboat-dev/lifeboat/snapkit"
)

// diffOptions are the flags of snapkit diff.
type diffOptions struct {
	out *clikit.Output
}

// AddFlags registers diff's flags.
func (o *diffOptions) AddFlags(cmd *cobra.Command) { o.out.AddFlags(cmd.Flags()) }

func newDiffCommand(e *env) *cobra.Command {
	o := &diffOptions{out: clikit.NewOutput("table", "json")}
	cmd := &cobra.Command{
		Use:   "diff <a> <b>",
		Short: "Compare the live keys of two snapshots or data dirs; exit 1 if they differ",
		Long: `diff compares the keys live at the head of a and of b: added (only in b),
removed (only in a), changed (value or lease differs), with each side's
revisions. A key rewritten with the same value does not count.`,
		Args: args(cobra.ExactArgs(2)),
		RunE: func(cmd *cobra.Command, a []string) error {
			da, err := openDB(cmd, e, a[0])
			if err != nil {
				return err
			}
			defer da.Close()
			db, err := openDB(cmd, e, a[1])
			if err != nil {
				return err
			}
			defer db.Close()
			r, err := snapkit.Diff(da, db)
			if err != nil {
				return inputError(err)
			}
			if o.out.Is("json") {
				if err := clikit.WriteJSON(e.stdout, r); err != nil {
					return err
				}
			} else if err := renderDiff(e, r); err != nil {
				return err
			}
			if !r.Same() {
				return finding(fmt.Errorf("%s and %s differ: %d added, %d removed, %d changed", a[0], a[1], r.Added, r.Removed, r.Changed))
			}
			return nil
		},
	}
	o.AddFlags(cmd)
	return cmd
}

func renderDiff(e *env, r *snapkit.DiffReport) error {
	sides := &clikit.Table{Headers: []string{"side", "path", "compact revision", "revision", "live keys"}}
	for _, s := range []struct {
		name string
		d    snapkit.DiffSide
	}{{"a", r.A}, {"b", r.B}} {
		sides.Add(s.name, s.d.Path, strconv.FormatInt(s.d.CompactRevision, 10), strconv.FormatInt(s.d.Revision, 10), strconv.Itoa(s.d.Keys))
	}
	if err := sides.Render(e.stdout); err != nil {
		return err
	}
	if len(r.Entries) > 0 {
		rev := func(k *snapkit.KeyRevision) string {
			if k == nil {
				return ""
			}
			return fmt.Sprintf("mod %d create %d v%d", k.ModRevision, k.CreateRevision, k.Version)
		}
		t := &clikit.Table{Headers: []string{"change", "key", "a", "b"}}
		for _, d := range r.Entries {
			t.Add(d.Change, text(d.Key), rev(d.A), rev(d.B))
		}
		if err := t.Render(e.stdout); err != nil {
			return err
		}
	}
	_, err := fmt.Fprintf(e.stdout, "%d added, %d removed, %d changed\n", r.Added, r.Removed, r.Changed)
	return err
}

package cli

import (
	"strings"

	"github.com/spf13/cobra"

	"github.com/lifeboat-dev/lifeboat/internal/clikit"
	"github.com/lifeboat-dev/lifeboat/restore"
)

func newRollForwardCommand(e *env) *cobra.Command {
	var o restore.RollForwardOptions
	cmd := &cobra.Command{
		Use:   "roll-forward --base SNAPSHOT|DATA-DIR --data-dir SURVIVOR --output-dir OUT",
		Short: "Restore a snapshot or db and replay a surviving WAL's committed entries over it, as that member alone",
		Long: `roll-forward restores the base (a snapshot file, its SHA-256 checked, or a
stopped member's data dir or db) and replays over it the committed entries of
the survivor's WAL past the base's consistent index, through lifeboat's own
apply code: a lifeboat member is started in this process, on 127.0.0.1 ports
of its own, with --force-new-cluster on the new dir, and stopped once it has
applied everything. The result is the old cluster (same cluster ID, the
survivor's member ID) as one member holding every committed entry, as
'restore force-new-cluster' makes of a survivor whose db is intact; add the
other members back with 'etcdctl member add'. The inputs are never changed.

The WAL must hold the entries from the base's consistent index + 1 on (not
purged), agree with the base's term there, and belong to one of the base's
members. It is read as far as it is sound: a torn tail ends it, as on a
restart; other damage cuts it (in a copy) at the first bad record.`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.Base == "" || o.DataDir == "" {
				return clikit.Usage(errorf("--base and --data-dir are required"))
			}
			return runNewDataDir(e, &o.OutputDir, o.DataDir, "roll-forward", o.Base,
				func(p restore.Progress) (*restore.RollForwardResult, error) {
					o.Progress = p
					return restore.RollForward(cmd.Context(), e.logger, o)
				},
				func(f *fields, res *restore.RollForwardResult) string {
					f.add("written", "%s (wal %s)", res.DataDir, res.WALDir)
					f.add("member", "%s %s, cluster %s (unchanged)", res.MemberID, res.Name, res.ClusterID)
					f.add("base", "%s: index %d, term %d, revision %d", o.Base, res.BaseIndex, res.BaseTerm, res.BaseRevision)
					f.add("replayed", "entries %d-%d (%d), applied to %d, revision %d", res.From, res.To, res.Entries, res.Applied, res.Revision)
					if res.Repair != nil && res.Repair.Damage != nil {
						f.add("cut", "the WAL (a copy) at %s offset %d (%d entries after it not replayed)", res.Repair.Damage.Segment, res.Repair.Damage.Offset, len(res.Repair.LostEntries))
					}
					f.add("removed", "%s", strings.Join(res.Removed, " "))
					return res.DataDir
				})
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&o.Base, "base", "", "the snapshot file, db file or stopped member's data dir to start from (only read)")
	fl.StringVar(&o.DataDir, "data-dir", "", "the survivor's data dir, whose WAL is replayed (only read)")
	fl.StringVar(&o.WALDir, "wal-dir", "", "the survivor's dedicated WAL dir")
	fl.StringVar(&o.OutputDir, "output-dir", "", "the new data dir, absent or empty (default <data-dir>.roll-forward)")
	fl.StringVar(&o.OutputWALDir, "output-wal-dir", "", "a dedicated WAL dir for the new dir, absent")
	fl.StringVar(&o.Name, "name", "", "the survivor's member name, if the base's membership lacks it")
	fl.DurationVar(&o.Timeout, "timeout", restore.DefaultReplayTimeout, "how long the replay may take")
	return cmd
}

package cli

import (
	"strings"

	"github.com/spf13/cobra"

	"github.com/lifeboat-dev/lifeboat/internal/clikit"
	"github.com/lifeboat-dev/lifeboat/restore"
)

func newForceNewClusterCommand(e *env) *cobra.Command {
	var (
		o        restore.ForceNewClusterOptions
		peerURLs string
	)
	cmd := &cobra.Command{
		Use:   "force-new-cluster --data-dir DIR [--output-dir OUT]",
		Short: "Write a copy of a member as a one-member cluster with the same ID and data (etcd --force-new-cluster, offline)",
		Long: `force-new-cluster does offline, into a copy, what etcd's --force-new-cluster does
on start: it keeps everything the member committed, drops what it had not,
and appends the membership changes that remove every other member. The copy
then starts as a one-member cluster with the old cluster ID and nothing
rewound, on a plain start of etcd or lifeboat (no --force-new-cluster needed);
add members back with 'etcdctl member add'. The input is never changed.

A torn WAL tail is cut in the copy, as etcd would on start; other damage is
refused unless --repair-wal, which cuts the copy at the first bad record.`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.DataDir == "" {
				return clikit.Usage(errorf("--data-dir is required"))
			}
			if peerURLs != "" {
				o.PeerURLs = strings.Split(peerURLs, ",")
			}
			return runNewDataDir(e, &o.OutputDir, o.DataDir, "force-new-cluster", o.DataDir,
				func(p restore.Progress) (*restore.ForceNewClusterResult, error) {
					o.Progress = p
					return restore.ForceNewCluster(cmd.Context(), e.logger, o)
				},
				func(f *fields, res *restore.ForceNewClusterResult) string {
					f.add("written", "%s (wal %s)", res.DataDir, res.WALDir)
					f.add("member", "%s, cluster %s (unchanged)", res.MemberID, res.ClusterID)
					f.add("kept", "everything committed, to index %d", res.Commit)
					if res.KeptPastCommit > 0 {
						f.add("kept", "%d entries past the recorded commit", res.KeptPastCommit)
					}
					if res.Dropped > 0 {
						f.add("dropped", "%d uncommitted entries", res.Dropped)
					}
					if res.Repair != nil && res.Repair.Damage != nil {
						f.add("cut", "the WAL copy at %s offset %d (%d entries lost)", res.Repair.Damage.Segment, res.Repair.Damage.Offset, len(res.Repair.LostEntries))
					}
					f.add("removes", "%s (entries %d-%d, term %d)", strings.Join(res.Removed, " "), res.Commit+1, res.LastIndex, res.Term)
					return res.DataDir
				})
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&o.DataDir, "data-dir", "", "the member's data dir (only read)")
	fl.StringVar(&o.WALDir, "wal-dir", "", "the member's dedicated WAL dir")
	fl.StringVar(&o.OutputDir, "output-dir", "", "the new data dir, absent or empty (default <data-dir>.force-new-cluster)")
	fl.StringVar(&o.OutputWALDir, "output-wal-dir", "", "a dedicated WAL dir for the copy, absent")
	fl.BoolVar(&o.RepairWAL, "repair-wal", false, "cut a damaged WAL copy at its first bad record, losing what follows")
	fl.BoolVar(&o.KeepPastCommit, "keep-past-commit", false, "keep and commit the WAL's entries past its recorded commit, which etcd's --force-new-cluster drops (some may have been acknowledged)")
	fl.StringVar(&o.Name, "name", "", "this member's name, if its membership lacks it")
	fl.StringVar(&peerURLs, "initial-advertise-peer-urls", "", "this member's peer URLs, if its membership lacks it")
	return cmd
}

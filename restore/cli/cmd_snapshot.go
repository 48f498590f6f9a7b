package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/lifeboat-dev/lifeboat/restore"
	"github.com/lifeboat-dev/lifeboat/snapkit"
	"github.com/lifeboat-dev/lifeboat/snapkit/schema"
)

func newSnapshotCommand(e *env) *cobra.Command {
	var (
		o        restore.SnapshotOptions
		cluster  string
		learners []string
		peerURLs string
	)
	cmd := &cobra.Command{
		Use:   "snapshot <file> [flags]",
		Short: "Restore a snapshot file into a new data dir (etcdutl snapshot restore, faster, with learners)",
		Long: `snapshot restores a file made by 'etcdctl snapshot save' into the data dir
of one member of a new cluster, as 'etcdutl snapshot restore' does, with the
same flags. Run it on every member's machine with the same file and the same
--initial-cluster.

Without --initial-cluster-token it derives a fresh token from the snapshot's
SHA-256 (the same on every member restored from the same file), so the new
cluster never takes the old one's ID. It refuses a token and peer URLs that
would make the old cluster ID again unless --allow-same-cluster-id.

--bump-revision N --mark-compacted raises the revision by N and marks it
compacted: clients watching from before the restore are told so, instead of
being sent events again (Kubernetes wants this; use more than the writes the
cluster took after the snapshot).`,
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			o.Path = a[0]
			if cluster != "" || cmd.Flags().Changed("initial-learners") {
				if cluster == "" {
					cluster = o.Name + "=" + restore.DefaultPeerURL
				}
				specs, err := restore.ParseInitialCluster(cluster, learners)
				if err != nil {
					return classify(err)
				}
				o.Cluster = specs
			}
			if peerURLs != "" {
				o.PeerURLs = strings.Split(peerURLs, ",")
			}
			var end func()
			if src, err := snapkit.Resolve(o.Path); err == nil {
				o.Progress, end = e.progress("copying "+o.Path, src.DBSize)
			} else {
				end = func() {}
			}
			res, err := restore.Snapshot(cmd.Context(), e.logger, o)
			end()
			if err != nil {
				return classify(err)
			}
			if e.output == "json" {
				return writeJSON(e.stdout, res)
			}
			return printSnapshot(e, res)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Name, "name", restore.DefaultName, "this member's name")
	f.StringVar(&cluster, "initial-cluster", "", "the new cluster, name=peer-url,... (default <name>=http://localhost:2380)")
	f.StringSliceVar(&learners, "initial-learners", nil, "members of --initial-cluster that start as learners")
	f.StringVar(&o.Token, "initial-cluster-token", "", "the new cluster's token (default: derived from the snapshot's SHA-256)")
	f.StringVar(&peerURLs, "initial-advertise-peer-urls", "", "this member's peer URLs; must be its URLs in --initial-cluster")
	f.StringVar(&o.DataDir, "data-dir", "", "the new data dir, absent or empty (default <name>.etcd)")
	f.StringVar(&o.WALDir, "wal-dir", "", "a dedicated WAL dir, absent (default <data-dir>/member/wal)")
	f.BoolVar(&o.SkipHashCheck, "skip-hash-check", false, "do not check the SHA-256 trailer (needed for a copied member/snap/db)")
	f.Int64Var(&o.BumpRevision, "bump-revision", 0, "raise the revision by this much (requires --mark-compacted)")
	f.BoolVar(&o.MarkCompacted, "mark-compacted", false, "mark the bumped revision compacted (required with --bump-revision)")
	f.BoolVar(&o.AllowSameClusterID, "allow-same-cluster-id", false, "restore even if the new cluster takes the old cluster's ID")
	return cmd
}

func printSnapshot(e *env, r *restore.SnapshotResult) error {
	f := newFields(e.stdout)
	f.add("restored", "%s (%s, %s)", r.Source.Path, size(r.DBSize), hashNote(r))
	f.add("data dir", "%s", r.DataDir)
	f.add("wal dir", "%s", r.WALDir)
	f.add("member", "%s %s", r.Name, r.MemberID)
	token := r.Token
	if r.FreshToken {
		token += " (fresh, from the snapshot's SHA-256: the same for every member restored from this file)"
	}
	f.add("cluster", "%s, token %s", r.ClusterID, token)
	for _, m := range r.Members {
		kind := "voter"
		if m.IsLearner {
			kind = "learner"
		}
		f.add("  "+kind, "%s %s %s", schema.FormatID(m.ID), m.Name, strings.Join(m.PeerURLs, ","))
	}
	rev := fmt.Sprint(r.Revision)
	if r.RestoredRevision != r.Revision {
		rev = fmt.Sprintf("%d, bumped to %d and marked compacted", r.Revision, r.RestoredRevision)
	}
	f.add("revision", "%s", rev)
	f.add("took", "%s", r.Took.Round(1e6))
	return f.flush()
}

func hashNote(r *restore.SnapshotResult) string {
	if r.HashChecked {
		return "SHA-256 checked"
	}
	return "SHA-256 NOT checked"
}

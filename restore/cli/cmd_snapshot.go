package cli

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/lifeboat-dev/lifeboat/internal/clikit"
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
		bucket   string
		bf       bucketFlags
	)
	cmd := &cobra.Command{
		Use:   "snapshot <file> | --bucket URL [--prefix P] [--identity FILE] <latest|backup-id> [flags]",
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
cluster took after the snapshot). The member compacts at that revision when
it starts, as etcd's does. With --compact as well the db holds only what that
compaction keeps, the last put of each live key, and the member starts without
compacting: a smaller db and a faster start for a slower restore (the
revisions it leaves out are unreachable once compacted; the snapshot file
still has them). 'restore apply' restores this way.

--bucket URL restores a backupd backup instead (s3://, gs://, azblob://,
file://): the argument names it, "latest" or an ID 'backupd list' shows; it
is fetched, checked against its manifest and decrypted (--identity), into a
temporary snapshot file (or --fetch-dir, kept), then restored like a file.`,
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			o.Path = a[0]
			if bucket != "" {
				path, done, err := e.fetchBucket(cmd.Context(), bucket, bf.o, a[0])
				if err != nil {
					return classify(err)
				}
				defer done()
				o.Path = path
			} else if cmd.Flags().Changed("prefix") || cmd.Flags().Changed("identity") || cmd.Flags().Changed("fetch-dir") {
				return clikit.Usage(errorf("--prefix, --identity and --fetch-dir need --bucket"))
			}
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
	f.BoolVar(&o.Compact, "compact", false, "with a bump: write only what the compaction at the bumped revision keeps, so the member starts without compacting")
	f.BoolVar(&o.AllowSameClusterID, "allow-same-cluster-id", false, "restore even if the new cluster takes the old cluster's ID")
	f.StringVar(&bucket, "bucket", "", "restore a backupd backup from this bucket URL; the argument is latest or its ID")
	f.StringVar(&bf.o.Dir, "fetch-dir", "", "keep the fetched snapshot file in this dir (default: a temporary one, removed)")
	bf.addFlags(cmd)
	return cmd
}

// fetchBucket fetches backup ref of the bucket to a local snapshot file;
// done releases it and closes the bucket.
func (e *env) fetchBucket(ctx context.Context, url string, o restore.BucketOptions, ref string) (string, func(), error) {
	src, err := restore.OpenSource(ctx, e.logger, url, e.opener(o))
	if err != nil {
		return "", nil, err
	}
	closeSrc := func() {
		if c, ok := src.(io.Closer); ok {
			if err := c.Close(); err != nil {
				e.logger.Warn("closing the bucket", "bucket", url, "error", err)
			}
		}
	}
	path, release, err := src.Open(ctx, ref)
	if err != nil {
		closeSrc()
		return "", nil, err
	}
	return path, func() {
		if err := release(); err != nil {
			e.logger.Warn("removing the fetched snapshot", "path", path, "error", err)
		}
		closeSrc()
	}, nil
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

package cli

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/lifeboat-dev/lifeboat/internal/clikit"
	"github.com/lifeboat-dev/lifeboat/snapkit"
)

// statusOptions are the flags of snapkit status.
type statusOptions struct {
	out         *clikit.Output
	skipTrailer bool
}

// AddFlags registers status' flags.
func (o *statusOptions) AddFlags(cmd *cobra.Command) {
	o.out.AddFlags(cmd.Flags())
	cmd.Flags().BoolVar(&o.skipTrailer, "skip-hash-check", false, "do not verify the SHA-256 trailer")
}

func newStatusCommand(e *env) *cobra.Command {
	o := &statusOptions{out: clikit.NewOutput("table", "json")}
	cmd := &cobra.Command{
		Use:   "status <file|data-dir>",
		Short: "Print etcdutl's snapshot status numbers, and the meta, members and trailer",
		Long: `status prints what 'etcdutl snapshot status' prints (hash, revision,
totalKey, totalSize, version; JSON fields named the same), then the compaction
marks, consistent index and term, members and the SHA-256 trailer. It exits 1
if any check found a problem (run verify to list them all).`,
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			r, err := inspectFile(cmd, e, a[0], o.skipTrailer)
			if err != nil {
				return err
			}
			if o.out.Is("json") {
				if err := clikit.WriteJSON(e.stdout, r); err != nil {
					return err
				}
			} else if err := renderStatus(e, r); err != nil {
				return err
			}
			if !r.OK() {
				return finding(fmt.Errorf("%s: %d problem(s) found, first: %s (run snapkit verify)", a[0], len(r.Findings)+r.Suppressed, r.Findings[0]))
			}
			return nil
		},
	}
	o.AddFlags(cmd)
	return cmd
}

func renderStatus(e *env, r *snapkit.Report) error {
	t := &table{headers: []string{"hash", "revision", "total keys", "total size", "version"}}
	t.add(fmt.Sprintf("%x", r.Hash), strconv.FormatInt(r.Revision, 10), strconv.Itoa(r.TotalKey), clikit.Size(r.TotalSize), r.Version)
	if err := t.render(e.stdout); err != nil {
		return err
	}
	d := &table{headers: []string{"field", "value"}}
	d.add("source", r.Source.Describe())
	trailer := "absent"
	switch {
	case r.Trailer.Present && r.Trailer.Valid:
		trailer = "valid " + r.Trailer.Got[:16] + "…"
	case r.Trailer.Present:
		trailer = "MISMATCH"
	case r.Source.HasTrailer:
		trailer = "not checked"
	}
	d.add("sha-256 trailer", trailer)
	d.add("size in use", clikit.Size(r.SizeInUse))
	d.add("pairs (3.5 totalKey)", strconv.Itoa(r.TotalKeyV35))
	m := r.Meta
	d.add("consistent index", strconv.FormatUint(m.ConsistentIndex, 10))
	d.add("term", strconv.FormatUint(m.Term, 10))
	d.add("compact revision", fmt.Sprintf("%d (scheduled %d)", m.CompactRevision, m.ScheduledCompactRevision))
	d.add("cluster version", m.ClusterVersion)
	d.add("revisions", fmt.Sprintf("%d (%d tombstones)", r.KeyBucket.Revisions, r.KeyBucket.Tombstones))
	d.add("leases", fmt.Sprintf("%d (%d live keys hold one)", r.Leases, r.KeyBucket.LiveWithLease))
	for _, mb := range r.Members {
		role := "member"
		if mb.IsLearner {
			role = "learner"
		}
		d.add(role+" "+mb.ID, fmt.Sprintf("%s %s", mb.Name, strings.Join(mb.PeerURLs, ",")))
	}
	if len(r.Removed) > 0 {
		d.add("removed members", strings.Join(r.Removed, ","))
	}
	return d.render(e.stdout)
}

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
	o := &statusOptions{out: clikit.NewOutput("table", "json", "simple", "fields")}
	cmd := &cobra.Command{
		Use:   "status <file|data-dir|file.snap>",
		Short: "Print etcdutl's snapshot status numbers, and the meta, members and trailer",
		Long: `status prints what 'etcdutl snapshot status' prints (hash, revision,
totalKey, totalSize, version; JSON fields named the same, and -w simple and
-w fields as etcdutl's), then the compaction marks, consistent index and term,
leases, auth (enabled, auth revision, users and roles), members and the SHA-256
trailer. It exits 1 if any check found a problem (run
verify to list them all). When the bbolt structure is damaged, it prints only
what it could read (the file, the trailer, the meta page): no numbers from a
db it could not read whole.

Given a raft .snap file (member/snap/<term>-<index>.snap), it prints the
snapshot's term, index and conf state, and the membership kept in its v2
store.`,
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			if isSnapFile(a[0]) {
				return o.snapStatus(e, a[0])
			}
			r, err := inspectFile(cmd, e, a[0], o.skipTrailer)
			if err != nil {
				return err
			}
			if err := o.write(e, r); err != nil {
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

// write prints r in the chosen format.
func (o *statusOptions) write(e *env, r *snapkit.Report) error {
	switch {
	case o.out.Is("json"):
		return clikit.WriteJSON(e.stdout, r)
	case r.Partial && o.out.Is("table"):
		return renderPartialStatus(e, r)
	case r.Partial:
		return nil // simple and fields hold only numbers that were not read
	case o.out.Is("simple"):
		// etcdutl's: the table's row, comma separated.
		_, err := fmt.Fprintf(e.stdout, "%x, %d, %d, %s, %s\n", r.Hash, r.Revision, r.TotalKey, clikit.Size(r.TotalSize), r.Version)
		return err
	case o.out.Is("fields"):
		_, err := fmt.Fprintf(e.stdout, "\"Hash\" : %d\n\"Revision\" : %d\n\"Keys\" : %d\n\"Size\" : %d\n\"Version\" : %s\n",
			r.Hash, r.Revision, r.TotalKey, r.TotalSize, r.Version)
		return err
	}
	return renderStatus(e, r)
}

// trailerText says what the SHA-256 trailer check found.
func trailerText(r *snapkit.Report) string {
	switch {
	case r.Trailer.Present && r.Trailer.Valid:
		return "valid " + r.Trailer.Got[:16] + "…"
	case r.Trailer.Present:
		return "MISMATCH"
	case r.Source.HasTrailer:
		return "not checked"
	}
	return "absent"
}

// renderPartialStatus prints what was read of a db whose structure is
// damaged: the file, the trailer and the meta page, and no status number.
func renderPartialStatus(e *env, r *snapkit.Report) error {
	d := &clikit.Table{Headers: []string{"field", "value"}}
	d.Add("source", r.Source.Describe())
	d.Add("file size", clikit.Size(r.FileSize))
	d.Add("sha-256 trailer", trailerText(r))
	d.Add("bbolt page size", strconv.FormatUint(uint64(r.Bolt.PageSize), 10))
	d.Add("bbolt high-water mark", fmt.Sprintf("%d pages", r.Bolt.HWM))
	d.Add("bbolt txid", strconv.FormatUint(r.Bolt.TxID, 10))
	if err := d.Render(e.stdout); err != nil {
		return err
	}
	_, err := fmt.Fprintln(e.stdout, "The bbolt structure is damaged: hash, revision, keys and sizes could not be read (snapkit verify lists the damage).")
	return err
}

func renderStatus(e *env, r *snapkit.Report) error {
	t := &clikit.Table{Headers: []string{"hash", "revision", "total keys", "total size", "version"}}
	t.Add(fmt.Sprintf("%x", r.Hash), strconv.FormatInt(r.Revision, 10), strconv.Itoa(r.TotalKey), clikit.Size(r.TotalSize), r.Version)
	if err := t.Render(e.stdout); err != nil {
		return err
	}
	d := &clikit.Table{Headers: []string{"field", "value"}}
	d.Add("source", r.Source.Describe())
	d.Add("sha-256 trailer", trailerText(r))
	d.Add("size in use", clikit.Size(r.SizeInUse))
	d.Add("pairs (3.5 totalKey)", strconv.Itoa(r.TotalKeyV35))
	m := r.Meta
	d.Add("consistent index", strconv.FormatUint(m.ConsistentIndex, 10))
	d.Add("term", strconv.FormatUint(m.Term, 10))
	d.Add("compact revision", fmt.Sprintf("%d (scheduled %d)", m.CompactRevision, m.ScheduledCompactRevision))
	d.Add("cluster version", m.ClusterVersion)
	d.Add("revisions", fmt.Sprintf("%d (%d tombstones)", r.KeyBucket.Revisions, r.KeyBucket.Tombstones))
	d.Add("leases", fmt.Sprintf("%d (%d live keys hold one)", r.Leases, r.KeyBucket.LiveWithLease))
	d.Add("auth", authText(r.Auth))
	addMembers(d, r.Members, r.Removed)
	return d.Render(e.stdout)
}

// authText says whether auth is enabled, at which auth revision, and how
// many users and roles there are.
func authText(a snapkit.AuthStatus) string {
	state := "disabled"
	if a.Enabled {
		state = "enabled"
	}
	return fmt.Sprintf("%s, revision %d, %d users, %d roles", state, a.Revision, a.Users, a.Roles)
}

// addMembers adds a row per member, and one for the removed ones.
func addMembers(d *clikit.Table, members []snapkit.MemberStatus, removed []string) {
	for _, mb := range members {
		role := "member"
		if mb.IsLearner {
			role = "learner"
		}
		d.Add(role+" "+mb.ID, fmt.Sprintf("%s %s", mb.Name, strings.Join(mb.PeerURLs, ",")))
	}
	if len(removed) > 0 {
		d.Add("removed members", strings.Join(removed, ","))
	}
}

// snapStatus prints a raft .snap file.
func (o *statusOptions) snapStatus(e *env, path string) error {
	if !o.out.Is("table") && !o.out.Is("json") {
		return usage(fmt.Errorf("%s: a .snap file prints with -w table or json, not %s", path, o.out.Format()))
	}
	st, err := inspectSnap(path)
	if err != nil {
		return err
	}
	if o.out.Is("json") {
		err = clikit.WriteJSON(e.stdout, st)
	} else {
		err = renderSnapStatus(e, st)
	}
	if err != nil {
		return err
	}
	if !st.OK() {
		return finding(fmt.Errorf("%s: %d problem(s) found, first: %s", path, len(st.Findings), st.Findings[0]))
	}
	return nil
}

func renderSnapStatus(e *env, st *snapkit.SnapStatus) error {
	ids := func(ids []uint64) string {
		s := make([]string, len(ids))
		for i, id := range ids {
			s[i] = strconv.FormatUint(id, 16)
		}
		return strings.Join(s, ",")
	}
	d := &clikit.Table{Headers: []string{"field", "value"}}
	d.Add("source", st.Source.Describe())
	d.Add("term", strconv.FormatUint(st.Term, 10))
	d.Add("index", strconv.FormatUint(st.Index, 10))
	cs := st.ConfState
	d.Add("voters", ids(cs.Voters))
	if len(cs.Learners) > 0 {
		d.Add("learners", ids(cs.Learners))
	}
	if len(cs.VotersOutgoing) > 0 || len(cs.LearnersNext) > 0 || cs.AutoLeave {
		d.Add("joint config", fmt.Sprintf("outgoing voters %s, next learners %s, auto leave %t", ids(cs.VotersOutgoing), ids(cs.LearnersNext), cs.AutoLeave))
	}
	d.Add("v2 store", clikit.Size(int64(st.DataSize)))
	d.Add("cluster version", st.ClusterVersion)
	addMembers(d, st.Members, st.Removed)
	for _, f := range st.Findings {
		d.Add("PROBLEM", f.String())
	}
	return d.Render(e.stdout)
}

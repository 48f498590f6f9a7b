package cli

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/lifeboat-dev/lifeboat/internal/clikit"
	"github.com/lifeboat-dev/lifeboat/restore"
	"github.com/lifeboat-dev/lifeboat/snapkit/datadir"
	"github.com/lifeboat-dev/lifeboat/snapkit/schema"
)

func newInspectCommand(e *env) *cobra.Command {
	var o restore.InspectOptions
	cmd := &cobra.Command{
		Use:   "inspect <data-dir>...",
		Short: "Report what each member's data dir holds: IDs, raft state, damage, .snap, db, agreement, locks",
		Long: `inspect reads each data dir without changing it and reports, per member: the
node and cluster IDs and the last HardState from the WAL, its first and last
entries, its damage and what a repair would cut; the newest .snap a restart
would load; the db's applied index, term, revision, compaction, members and
HashKV; whether the three agree (applied <= commit <= last index); and
whether a running member holds the dir's locks.

It exits 1 if it finds damage or disagreement, or cannot read a part.`,
		Args: args(cobra.MinimumNArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			if o.WALDir != "" && len(a) > 1 {
				return clikit.Usage(errors.New("--wal-dir goes with one data dir"))
			}
			for _, d := range a {
				if _, err := datadir.Locate(d); err != nil {
					return classify(err)
				}
			}
			var reports []*restore.MemberReport
			ok := true
			for _, d := range a {
				r, err := restore.Inspect(cmd.Context(), e.logger, d, o)
				if err != nil {
					return classify(err)
				}
				reports = append(reports, r)
				ok = ok && r.OK()
			}
			var err error
			if e.output == "json" {
				err = writeJSON(e.stdout, reports)
			} else {
				err = printInspect(e, reports)
			}
			if err != nil {
				return err
			}
			if !ok {
				return clikit.Finding(errors.New("damage, disagreement or unreadable parts found (see the report)"))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&o.WALDir, "wal-dir", "", "the member's dedicated WAL dir (one data dir only)")
	cmd.Flags().BoolVar(&o.SkipHashKV, "skip-hashkv", false, "do not compute HashKV (faster on large dbs)")
	return cmd
}

func printInspect(e *env, reports []*restore.MemberReport) error {
	f := newFields(e.stdout)
	for i, r := range reports {
		if i > 0 {
			f.row("")
		}
		f.add("data dir", "%s", r.DataDir)
		inUse := "no"
		if r.InUse {
			inUse = "YES, a running member holds the " + r.InUseBy + " lock"
		}
		f.add("  in use", "%s", inUse)
		if w := r.WAL; w != nil {
			f.add("  wal", "%s: node %s, cluster %s, %d segments", r.WALDir, w.NodeID, w.ClusterID, w.Segments)
			f.add("  hard state", "term %d, vote %s, commit %d", w.HardState.Term, schema.FormatID(w.HardState.Vote), w.HardState.Commit)
			f.add("  entries", "%d, index %d to %d (last term %d)", w.Entries, w.FirstIndex, w.LastIndex, w.LastTerm)
			damage := "none"
			if len(w.Damage) > 0 {
				d := w.Damage[0]
				damage = fmt.Sprintf("%d finding(s); first %s in %s at offset %d", len(w.Damage), d.Kind, d.Segment, d.Offset)
			}
			f.add("  damage", "%s", damage)
			if p := w.Repair; p != nil && p.Damage != nil {
				f.add("  repair", "would keep entries to %d and lose %d (%d records)", p.LastKeptIndex, len(p.LostEntries), p.LostRecords)
			} else if w.RepairError != "" {
				f.add("  repair", "impossible: %s", w.RepairError)
			}
		}
		if s := r.Snap; s != nil && s.File != "" {
			f.add("  snap", "%s (index %d, term %d), voters %s, learners %s", s.File, s.Index, s.Term, ids(s.ConfState.Voters), ids(s.ConfState.Learners))
		} else if r.WAL != nil {
			f.add("  snap", "none matching the WAL")
		}
		if d := r.DB; d != nil {
			f.add("  db", "%s, applied %d (term %d), revision %d, compacted at %d", size(d.Size), d.ConsistentIndex, d.Term, d.Revision, d.CompactRevision)
			f.add("  hashkv", "%d at revision %d", d.HashKV.Hash, d.HashKV.HashRevision)
			for _, m := range d.Members {
				kind := "member"
				if m.IsLearner {
					kind = "learner"
				}
				f.add("  "+kind, "%s %s %s", schema.FormatID(m.ID), m.Name, strings.Join(m.PeerURLs, ","))
			}
		}
		for _, c := range r.Checks {
			f.add("  "+c.Status, "%s: %s", c.Name, c.Detail)
		}
		for _, fi := range r.Findings {
			f.add("  FINDING", "%s", fi)
		}
		for _, er := range r.Errors {
			f.add("  ERROR", "%s", er)
		}
	}
	return f.flush()
}

func ids(v []uint64) string {
	s := make([]string, len(v))
	for i, id := range v {
		s[i] = schema.FormatID(id)
	}
	return "[" + strings.Join(s, " ") + "]"
}

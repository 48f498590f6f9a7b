package cli

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/lifeboat-dev/lifeboat/internal/clikit"
	"github.com/lifeboat-dev/lifeboat/restore"
)

func newPlanCommand(e *env) *cobra.Command {
	var (
		o          restore.PlanOptions
		cluster    string
		learners   []string
		memberDirs []string
		out        string
		bf         bucketFlags
	)
	cmd := &cobra.Command{
		Use:   "plan --from SOURCE... [--prefix P] [--identity FILE] [--initial-cluster NAME=URL,...] [--member-dir NAME=DIR...] -o plan.json",
		Short: "Rank the sources, choose how to recover, estimate the loss, and write the steps per node",
		Long: `plan reads every source (surviving data dirs, snapshot files or dirs of them,
backupd buckets), ranks them by the committed data they hold (raft index,
term, revision) and chooses:

  force-new-cluster  the most advanced survivor kept as a one-member cluster,
                     same cluster ID, nothing rewound; the others rejoin;
  new-cluster        the best snapshot or db restored into a new logical
                     cluster: fresh token, new IDs (the cluster ID checked to
                     differ), revision bumped and marked compacted;
  roll-forward       the best snapshot or db restored and the committed entries
                     of a survivor's WAL of the same cluster replayed over it
                     through lifeboat's apply code, when that WAL holds more
                     than any survivor whose db and WAL are intact; the WAL's
                     member is then kept as force-new-cluster keeps one.

It says why in a paragraph, estimates what is lost against the latest state
any source shows, warns about old members still answering, and lists each
node's steps with the command to run there. A plan that loses data is not
written unless --accept-loss (exit 1). Apply it with 'restore apply'.

A bucket URL (s3://, gs://, azblob://, file://; --prefix and --identity as
backupd's) contributes its committed backups: each is fetched, checked
against its manifest, into --fetch-dir, and the plan restores from there.`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cluster != "" {
				specs, err := restore.ParseInitialCluster(cluster, learners)
				if err != nil {
					return classify(err)
				}
				o.Cluster = specs
			} else if len(learners) > 0 {
				return clikit.Usage(errors.New("--initial-learners needs --initial-cluster"))
			}
			o.MemberDirs = map[string]string{}
			for _, md := range memberDirs {
				name, dir, ok := strings.Cut(md, "=")
				if !ok || name == "" || dir == "" {
					return clikit.Usage(fmt.Errorf("--member-dir %q is not NAME=DIR", md))
				}
				o.MemberDirs[name] = dir
			}
			if bf.o.Dir != "" {
				dir, err := filepath.Abs(bf.o.Dir)
				if err != nil {
					return clikit.Usage(err)
				}
				bf.o.Dir = dir
			}
			o.Buckets = e.opener(bf.o)
			p, err := restore.MakePlan(cmd.Context(), e.logger, o)
			if p != nil {
				var perr error
				if e.output == "json" {
					perr = writeJSON(e.stdout, p)
				} else {
					perr = printPlan(e, p)
				}
				if perr != nil {
					return perr
				}
			}
			if err != nil {
				if errors.Is(err, restore.ErrLoss) || errors.Is(err, restore.ErrNoUsableSource) {
					return clikit.Finding(err)
				}
				return classify(err)
			}
			if out != "" {
				if err := restore.WritePlan(p, out); err != nil {
					return clikit.Finding(err)
				}
				fmt.Fprintf(e.stderr, "plan %s written to %s\n", p.ID, out)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&o.From, "from", nil, "a source: a data dir, a snapshot file or a dir of them, a bucket URL (repeat)")
	f.StringVar(&bf.o.Dir, "fetch-dir", "restore-fetched", "where a bucket's backups are fetched to; the plan restores from there")
	bf.addFlags(cmd)
	f.StringVar(&cluster, "initial-cluster", "", "the target cluster, name=peer-url,... (default: the members the chosen source names)")
	f.StringSliceVar(&learners, "initial-learners", nil, "members of --initial-cluster that start as learners")
	f.StringArrayVar(&memberDirs, "member-dir", nil, "NAME=DIR: where the member's data dir goes (default <name>.etcd; repeat)")
	f.StringVar(&o.Token, "token", "", "the new cluster's token (default: a fresh random one)")
	f.Int64Var(&o.RevisionMargin, "revision-margin", restore.DefaultRevisionMargin, "added to the revision bump beyond the highest revision seen")
	f.BoolVar(&o.AcceptLoss, "accept-loss", false, "write the plan even though it loses data")
	f.StringVarP(&out, "output", "o", "", "write the plan to this file (plan.json)")
	return cmd
}

func printPlan(e *env, p *restore.Plan) error {
	f := newFields(e.stdout)
	f.add("plan", "%s (%s)", p.ID, p.Created.Format("2006-01-02 15:04:05Z"))
	f.add("strategy", "%s", p.Strategy)
	f.add("why", "%s", p.Reason)
	if err := f.flush(); err != nil {
		return err
	}
	fmt.Fprintln(e.stdout, "\nsources, best first:")
	t := newFields(e.stdout)
	t.header("rank", "source", "kind", "raft index", "term", "revision", "usable", "note")
	for i, s := range p.Sources {
		usable := "yes"
		if !s.Usable {
			usable = "no"
		}
		note := strings.Join(s.Why, "; ")
		if i == p.Chosen {
			note = strings.TrimPrefix("chosen; "+note, "; ")
			note = strings.TrimSuffix(note, "; ")
		}
		t.row(fmt.Sprint(i+1), s.Source, s.Kind, fmt.Sprint(s.Index), fmt.Sprint(s.Term), fmt.Sprint(s.Revision), usable, note)
	}
	if err := t.flush(); err != nil {
		return err
	}
	if p.Chosen < 0 {
		return nil
	}
	fmt.Fprintln(e.stdout)
	f = newFields(e.stdout)
	loss := "nothing"
	if p.Loss.Entries > 0 || p.Loss.Revisions > 0 {
		loss = fmt.Sprintf("%d committed raft entries, up to %d revisions (latest state seen in %s)", p.Loss.Entries, p.Loss.Revisions, p.Loss.Evidence)
		if !p.Loss.Accepted {
			loss += "; NOT ACCEPTED (--accept-loss)"
		}
	}
	f.add("loss", "%s", loss)
	if rf := p.RollForward; rf != nil && rf.Available {
		f.add("roll-forward", "replays %d-%d of the WAL of %s (%d entries, %d writes) over %s; %s", rf.From, rf.To, rf.WAL, rf.Entries, rf.Writes, rf.Base, rf.Note)
	} else if rf != nil {
		f.add("roll-forward", "the WAL of %s commits to %d but cannot roll %s forward: %s", rf.WAL, rf.To, rf.Base, rf.Note)
	}
	f.add("cluster", "%s (old: %s)", p.ClusterID, strings.Join(p.OldClusterIDs, ", "))
	if p.Token != "" {
		f.add("token", "%s", p.Token)
	}
	if p.BumpRevision > 0 {
		f.add("revision", "bumped by %d to %d, marked compacted", p.BumpRevision, p.Revision)
	}
	if k := p.KeepSet; k != nil {
		f.add("keep set", "%d of the source's %d pairs, in the file <plan>.keep beside the plan: copy it with the plan (without it apply walks the source twice)", k.Kept, k.Pairs)
	}
	for _, w := range p.Warnings {
		f.add("WARNING", "%s", w)
	}
	if err := f.flush(); err != nil {
		return err
	}
	for _, m := range p.Members {
		role := ""
		if m.Survivor {
			role = ", the survivor"
		}
		if m.Learner {
			role += ", learner"
		}
		id := m.ID
		if id == "" {
			id = "(ID from member add)"
		}
		fmt.Fprintf(e.stdout, "\nmember %s %s%s, %s, data dir %s:\n", m.Name, id, role, strings.Join(m.PeerURLs, ","), m.DataDir)
		for i, s := range m.Steps {
			by := "apply"
			if !s.Auto {
				by = "you"
			}
			fmt.Fprintf(e.stdout, "  %d. %-10s (%s) %s\n       %s\n", i+1, s.Name, by, s.Detail, s.Run)
		}
	}
	return nil
}

func newApplyCommand(e *env) *cobra.Command {
	var o restore.ApplyOptions
	cmd := &cobra.Command{
		Use:   "apply plan.json [--member NAME]...",
		Short: "Carry out a plan's steps on this node; safe to run again after a failure or a kill",
		Long: `apply carries out the automatic steps of a plan for the members named (all by
default): it refuses a dir that a running member holds, or an old member that
still answers on its client URL, unless --force; moves the old data dir aside
(never deletes it); writes the new one in a temporary dir, synced and renamed;
and checks it against the plan (member and cluster IDs, revision, HashKV).
Each step records its completion beside the data dir, so a run stopped at any
point and run again ends in the same state. It then lists what is left to do
by hand (start the members, join them).`,
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			p, err := restore.ReadPlan(a[0])
			if err != nil {
				return classify(err)
			}
			res, err := restore.Apply(cmd.Context(), e.logger, p, o)
			if res != nil {
				var perr error
				if e.output == "json" {
					perr = writeJSON(e.stdout, res)
				} else {
					perr = printApply(e, res)
				}
				if perr != nil {
					return perr
				}
			}
			return classify(err)
		},
	}
	cmd.Flags().StringArrayVar(&o.Members, "member", nil, "apply for this member only (repeat)")
	cmd.Flags().BoolVar(&o.Force, "force", false, "go on although a dir is in use or an old member answers")
	return cmd
}

func printApply(e *env, r *restore.ApplyResult) error {
	for _, m := range r.Members {
		fmt.Fprintf(e.stdout, "member %s (record %s):\n", m.Name, m.State)
		for _, s := range m.Steps {
			how := "done before"
			if s.Now {
				how = "done now"
			}
			fmt.Fprintf(e.stdout, "  %-10s %-11s %s\n", s.Name, how, s.Detail)
		}
		for _, s := range m.ToDo {
			fmt.Fprintf(e.stdout, "  %-10s %-11s %s\n             %s\n", s.Name, "to do", s.Detail, s.Run)
		}
	}
	return nil
}

package cli

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/lifeboat-dev/lifeboat/internal/clikit"
	"github.com/lifeboat-dev/lifeboat/walkit"
	"github.com/lifeboat-dev/lifeboat/walkit/inspect"
)

// repairOptions are the flags of walkit repair.
type repairOptions struct {
	in     walInput
	out    *clikit.Output
	dryRun bool
	apply  bool
	force  bool
	show   int
}

// AddFlags registers repair's flags.
func (o *repairOptions) AddFlags(cmd *cobra.Command) {
	fs := cmd.Flags()
	o.in.AddFlags(fs)
	o.in.AddDataDirFlag(fs)
	o.out.AddFlags(fs)
	fs.BoolVar(&o.dryRun, "dry-run", false, "print the plan and change nothing (the default)")
	fs.BoolVar(&o.apply, "apply", false, "carry the plan out, keeping each changed segment as <name>.broken")
	fs.BoolVar(&o.force, "force", false, "with --apply, cut even below the db's consistent index or the newest .snap (the member must be rebuilt)")
	fs.IntVar(&o.show, "show-lost", 20, "how many of the lost entries to decode and print (0: all)")
}

// repairReport is what walkit repair prints.
type repairReport struct {
	*walkit.RepairPlan
	// LostIndexes counts the raft indexes the cut drops, the damaged record's included.
	LostIndexes uint64 `json:"lostIndexes"`
	// LostReadable counts the entries still readable after the cut.
	LostReadable int `json:"lostReadable"`
	// LostEntries, shadowing the plan's list, are the first --show-lost of
	// them decoded as dump prints them.
	LostEntries []inspect.Record `json:"lostEntries"`
	// Member is the db and .snap files beside the WAL; nil when the WAL
	// belongs to no data dir that repair can see.
	Member *memberState `json:"member,omitempty"`
	// Unsafe says that the WAL ends (or would end) below what the member
	// has applied, and Rebuild what the member then needs.
	Unsafe  string `json:"unsafe,omitempty"`
	Rebuild string `json:"rebuild,omitempty"`
	Applied bool   `json:"applied"`
}

func newRepairCommand(e *env) *cobra.Command {
	o := &repairOptions{out: clikit.NewOutput("table", "json")}
	cmd := &cobra.Command{
		Use:   "repair [flags] <data-dir | wal-dir>",
		Short: "Plan (default) or apply the truncation of a damaged WAL at its first bad record",
		Long: `repair finds the first bad record in any segment (etcd repairs only a torn
tail of the last one) and plans to cut the WAL there: that segment is
truncated at the record and later segments are set aside. It prints the plan
and the entries that would be lost. With --apply it carries the plan out:
every changed segment is kept as <name>.broken, the new file is written beside
it and renamed into place; bytes before the cut are copied unchanged.

The plan also shows the db's consistent index and the newest .snap file of
the member (the data dir given, the one the WAL dir sits in, or --data-dir
with --wal-dir). A cut below either leaves a member that has applied entries
its WAL no longer holds: it would skip new writes as already applied, so
Lifeboat refuses to start it. --apply refuses such a cut unless --force; the
member must then be removed and added again, or restored from a snapshot.

Exit codes: 0 nothing to do, nothing lost (a torn tail), or repaired
(--apply); 1 the dry run found damage that loses entries, damage that cannot
be repaired, or a cut below the db or .snap files (refused without --force);
2 bad usage, unreadable input, or a WAL that cannot be changed (in use,
.broken present).`,
		Args: func(cmd *cobra.Command, args []string) error { return o.in.args(cmd, args) },
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.apply && o.dryRun {
				return usage(errors.New("--apply and --dry-run exclude each other"))
			}
			if o.force && !o.apply {
				return usage(errors.New("--force goes with --apply"))
			}
			if o.show < 0 {
				return usage(errors.New("--show-lost must not be negative"))
			}
			dir, err := o.in.dir(args)
			if err != nil {
				return err
			}
			layout, found, err := o.in.layout(args, dir)
			if err != nil {
				return err
			}
			var member *memberState
			if found {
				member = readMember(layout, dir)
			}
			return o.run(cmd, e, dir, member)
		},
	}
	o.AddFlags(cmd)
	return cmd
}

func (o *repairOptions) run(cmd *cobra.Command, e *env, dir string, member *memberState) error {
	plan, err := interruptible(cmd.Context(), func() (*walkit.RepairPlan, error) { return walkit.PlanRepair(dir) })
	switch {
	case cmd.Context().Err() != nil:
		return cmd.Context().Err()
	case errors.Is(err, walkit.ErrUnrepairable):
		// The head of the first segment is bad. If even its first record
		// does not decode, this is no WAL (scan says so, exit 2), as verify
		// and dump find; otherwise it is a WAL that cannot be cut (exit 1).
		errFirst := errors.New("first record read")
		first := func(walkit.Record, walkit.Position, *walkit.DamageError) error { return errFirst }
		if serr := e.scan(cmd.Context(), dir, "repair", first); !errors.Is(serr, errFirst) {
			return serr
		}
		return finding(err)
	case err != nil:
		return usage(err) // walkit's errors name the dir or segment
	}
	rep := repairReport{RepairPlan: plan, LostIndexes: plan.LostIndexes(), LostReadable: len(plan.LostEntries),
		LostEntries: []inspect.Record{}, Member: member}
	if member != nil {
		if above := member.above(plan.EndIndex); above != "" {
			verb := "would end"
			if plan.Damage == nil {
				verb = "ends"
			}
			rep.Unsafe = fmt.Sprintf("the WAL %s at index %d, below %s", verb, plan.EndIndex, above)
			rep.Rebuild = member.rebuildAdvice()
		}
	}
	if len(plan.LostEntries) > 0 {
		if rep.LostEntries, err = o.decodeLost(cmd, e, plan); err != nil {
			return err
		}
	}
	refused := o.apply && rep.Unsafe != "" && !o.force
	if o.apply && plan.Damage != nil && !refused {
		if err := plan.Apply(e.logger); err != nil {
			// A WAL in use (locked), a .broken already there, a file that
			// changed: nothing was lost, the input could not be worked on.
			if errors.Is(err, walkit.ErrLocked) {
				err = fmt.Errorf("%w (is the member running?)", err)
			}
			return usage(err)
		}
		rep.Applied = true
	}
	if o.out.Is("json") {
		err = clikit.WriteJSON(e.stdout, rep)
	} else {
		err = renderRepair(e.stdout, &rep, refused)
	}
	if err != nil {
		return err
	}
	switch {
	case plan.Damage == nil && rep.Unsafe != "":
		return finding(fmt.Errorf("walkit: %s: no damage, but %s: the member must be rebuilt", dir, rep.Unsafe))
	case refused:
		return finding(fmt.Errorf("walkit: %s: repair refused: %s (--force cuts anyway; the member must then be rebuilt)", dir, rep.Unsafe))
	case plan.Damage == nil || rep.Applied:
		return nil
	case rep.Unsafe != "":
		return finding(fmt.Errorf("walkit: %s: damaged at segment %s offset %d; %s: --apply refuses the cut without --force",
			dir, plan.Damage.Segment, plan.Damage.Offset, rep.Unsafe))
	case rep.LostIndexes > 0 || plan.Damage.Kind != walkit.TornTail:
		return finding(fmt.Errorf("walkit: %s: damaged at segment %s offset %d; %d entries would be lost (--apply repairs)",
			dir, plan.Damage.Segment, plan.Damage.Offset, rep.LostIndexes))
	}
	return nil // a torn tail that loses nothing
}

// decodeLost reads the WAL once more and decodes the first entries the plan
// loses, found by their position.
func (o *repairOptions) decodeLost(cmd *cobra.Command, e *env, plan *walkit.RepairPlan) ([]inspect.Record, error) {
	want := len(plan.LostEntries)
	if o.show > 0 {
		want = min(want, o.show)
	}
	type at struct {
		segment string
		offset  int64
	}
	lost := make(map[at]bool, want)
	for _, l := range plan.LostEntries[:want] {
		lost[at{l.Segment, l.Offset}] = true
	}
	out := make([]inspect.Record, 0, want)
	errDone := errors.New("done")
	err := e.scan(cmd.Context(), plan.Dir, "repair", func(rec walkit.Record, pos walkit.Position, damage *walkit.DamageError) error {
		if damage != nil || !lost[at{pos.Segment, pos.Offset}] {
			return nil
		}
		r, err := inspect.DecodeRecord(rec, pos, inspect.Options{}, nil)
		if err != nil {
			return finding(err)
		}
		out = append(out, r)
		if len(out) == want {
			return errDone
		}
		return nil
	})
	if err != nil && !errors.Is(err, errDone) {
		return nil, err
	}
	return out, nil
}

func renderRepair(w io.Writer, r *repairReport, refused bool) error {
	var b strings.Builder
	if r.Damage == nil {
		fmt.Fprintf(&b, "%s: no damage, nothing to repair\n", r.Dir)
		if r.Unsafe != "" {
			r.Member.render(&b)
			r.renderUnsafe(&b)
		}
		_, err := io.WriteString(w, b.String())
		return err
	}
	f := r.Damage
	fmt.Fprintf(&b, "Damage:  %s at segment %s offset %d record %d: %s\n", f.Kind, f.Segment, f.Offset, f.Record, f.Message)
	fmt.Fprintf(&b, "Keep:    entries up to index %d", r.LastKeptIndex)
	if r.EndIndex > r.LastKeptIndex {
		fmt.Fprintf(&b, ", and the snapshot record at index %d", r.EndIndex)
	}
	b.WriteString("\n")
	if r.Member != nil {
		r.Member.render(&b)
	} else {
		b.WriteString("Note:    no data dir beside the WAL: the cut is not checked against the db and .snap files (give the data dir, or --data-dir with --wal-dir)\n")
	}
	for _, c := range r.Changes {
		switch c.Action {
		case "truncate":
			fmt.Fprintf(&b, "Change:  truncate %s from %d to %d bytes (original kept as %s.broken)\n", c.Segment, c.Size, c.Truncate, c.Segment)
		default:
			fmt.Fprintf(&b, "Change:  %s %s (%d bytes, kept as %s.broken)\n", c.Action, c.Segment, c.Size, c.Segment)
		}
	}
	if r.LostIndexes > 0 {
		fmt.Fprintf(&b, "Lost:    %d entries (index %d to %d), %d of them readable after the cut; %d records in all, %d more damaged records\n",
			r.LostIndexes, r.FirstLostIndex, r.LastLostIndex, r.LostReadable, r.LostRecords, r.LostDamage)
	} else {
		fmt.Fprintf(&b, "Lost:    0 entries; %d records in all, %d more damaged records\n", r.LostRecords, r.LostDamage)
	}
	for _, l := range r.LostEntries {
		fmt.Fprintf(&b, "  %6d  %10d  %-27s  %s\n", l.Entry.Term, l.Entry.Index, l.Entry.Type, l.Entry.Summary())
	}
	if n := r.LostReadable - len(r.LostEntries); n > 0 {
		fmt.Fprintf(&b, "  ... and %d more (--show-lost 0 lists them all)\n", n)
	}
	switch {
	case r.LostIndexes > 0:
	case f.Kind == walkit.TornTail:
		b.WriteString("Note:    a torn tail (the last write, cut short by a crash) loses no entry; etcd and Lifeboat repair it themselves on start\n")
	default:
		fmt.Fprintf(&b, "Note:    no readable entry follows the cut, but the damaged record itself may have been entry %d\n", r.EndIndex+1)
	}
	r.renderUnsafe(&b)
	switch {
	case r.Applied:
		b.WriteString("Applied: the WAL was cut; originals kept as .broken\n")
	case refused:
		b.WriteString("Refused: nothing changed (--force cuts anyway)\n")
	default:
		b.WriteString("Dry run: nothing changed (--apply carries this out)\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// renderUnsafe explains a WAL that ends below the member's applied data.
func (r *repairReport) renderUnsafe(b *strings.Builder) {
	if r.Unsafe == "" {
		return
	}
	fmt.Fprintf(b, "Unsafe:  %s: the member has applied entries its WAL does not hold, and would skip new writes "+
		"as already applied (Lifeboat refuses to start it)\n", r.Unsafe)
	fmt.Fprintf(b, "After:   %s\n", r.Rebuild)
}

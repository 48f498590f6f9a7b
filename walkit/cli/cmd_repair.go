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
	show   int
}

// AddFlags registers repair's flags.
func (o *repairOptions) AddFlags(cmd *cobra.Command) {
	fs := cmd.Flags()
	o.in.AddFlags(fs)
	o.out.AddFlags(fs)
	fs.BoolVar(&o.dryRun, "dry-run", false, "print the plan and change nothing (the default)")
	fs.BoolVar(&o.apply, "apply", false, "carry the plan out, keeping each changed segment as <name>.broken")
	fs.IntVar(&o.show, "show-lost", 20, "how many of the lost entries to decode and print (0: all)")
}

// repairReport is what walkit repair prints.
type repairReport struct {
	*walkit.RepairPlan
	// Lost decodes the first --show-lost entries the repair drops.
	Lost    []inspect.Record `json:"lost"`
	Applied bool             `json:"applied"`
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

Exit codes: 0 nothing to do, or repaired (--apply); 1 the dry run found
damage (data would be lost, or the damage cannot be repaired); 2 bad usage,
unreadable input, or a WAL that cannot be changed (in use, .broken present).`,
		Args: func(cmd *cobra.Command, args []string) error { return o.in.args(cmd, args) },
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.apply && o.dryRun {
				return usage(errors.New("--apply and --dry-run exclude each other"))
			}
			if o.show < 0 {
				return usage(errors.New("--show-lost must not be negative"))
			}
			dir, err := o.in.dir(args)
			if err != nil {
				return err
			}
			return o.run(cmd, e, dir)
		},
	}
	o.AddFlags(cmd)
	return cmd
}

func (o *repairOptions) run(cmd *cobra.Command, e *env, dir string) error {
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
		return usage(fmt.Errorf("walkit: plan repair of %s: %w", dir, err))
	}
	rep := repairReport{RepairPlan: plan, Lost: []inspect.Record{}}
	if len(plan.LostEntries) > 0 {
		if rep.Lost, err = o.decodeLost(cmd, e, plan); err != nil {
			return err
		}
	}
	if o.apply && plan.Damage != nil {
		if err := plan.Apply(e.logger); err != nil {
			// A WAL in use (locked), a .broken already there, a file that
			// changed: nothing was lost, the input could not be worked on.
			return usage(fmt.Errorf("walkit: repair %s: %w", dir, err))
		}
		rep.Applied = true
	}
	if o.out.Is("json") {
		err = clikit.WriteJSON(e.stdout, rep)
	} else {
		err = renderRepair(e.stdout, &rep)
	}
	if err != nil {
		return err
	}
	if plan.Damage != nil && !rep.Applied {
		return finding(fmt.Errorf("walkit: %s: damaged at segment %s offset %d; %d entries would be lost (--apply repairs)",
			dir, plan.Damage.Segment, plan.Damage.Offset, len(plan.LostEntries)))
	}
	return nil
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

func renderRepair(w io.Writer, r *repairReport) error {
	var b strings.Builder
	if r.Damage == nil {
		fmt.Fprintf(&b, "%s: no damage, nothing to repair\n", r.Dir)
		_, err := io.WriteString(w, b.String())
		return err
	}
	f := r.Damage
	fmt.Fprintf(&b, "Damage:  %s at segment %s offset %d record %d: %s\n", f.Kind, f.Segment, f.Offset, f.Record, f.Message)
	fmt.Fprintf(&b, "Keep:    entries up to index %d\n", r.LastKeptIndex)
	for _, c := range r.Changes {
		switch c.Action {
		case "truncate":
			fmt.Fprintf(&b, "Change:  truncate %s from %d to %d bytes (original kept as %s.broken)\n", c.Segment, c.Size, c.Truncate, c.Segment)
		default:
			fmt.Fprintf(&b, "Change:  %s %s (%d bytes, kept as %s.broken)\n", c.Action, c.Segment, c.Size, c.Segment)
		}
	}
	fmt.Fprintf(&b, "Lost:    %d entries, %d records in all, %d more damaged records\n", len(r.LostEntries), r.LostRecords, r.LostDamage)
	for _, l := range r.Lost {
		fmt.Fprintf(&b, "  %6d  %10d  %-27s  %s\n", l.Entry.Term, l.Entry.Index, l.Entry.Type, l.Entry.Summary())
	}
	if n := len(r.LostEntries) - len(r.Lost); n > 0 {
		fmt.Fprintf(&b, "  ... and %d more (--show-lost 0 lists them all)\n", n)
	}
	if r.Applied {
		b.WriteString("Applied: the WAL was cut; originals kept as .broken\n")
	} else {
		b.WriteString("Dry run: nothing changed (--apply carries this out)\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

package cli

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/lifeboat-dev/lifeboat/internal/clikit"
	"github.com/lifeboat-dev/lifeboat/walkit"
)

// verifyOptions are the flags of walkit verify.
type verifyOptions struct {
	in   walInput
	out  *clikit.Output
	cont bool
}

// AddFlags registers verify's flags.
func (o *verifyOptions) AddFlags(cmd *cobra.Command) {
	o.in.AddFlags(cmd.Flags())
	o.out.AddFlags(cmd.Flags())
	cmd.Flags().BoolVar(&o.cont, "continue", false, "read past damage and report every problem, not only the first")
}

func newVerifyCommand(e *env) *cobra.Command {
	o := &verifyOptions{out: clikit.NewOutput("table", "json")}
	cmd := &cobra.Command{
		Use:   "verify [flags] <data-dir | wal-dir>",
		Short: "Check every record of every segment: framing, CRC, encoding, order",
		Long: `verify reads every segment strictly: the length frames, the rolling CRC-32C,
the canonical encoding of each record and its place (a CRC record heading each
segment, entry indexes without gaps, ...). It reports per segment the records,
the first and last index, the terms, the CRC status and the first bad offset,
then every problem found. It stops at the first problem unless --continue.

Exit codes: 0 clean; 1 damage found; 2 bad usage or unreadable input.`,
		Args: func(cmd *cobra.Command, args []string) error { return o.in.args(cmd, args) },
		RunE: func(cmd *cobra.Command, args []string) error {
			dir, err := o.in.dir(args)
			if err != nil {
				return err
			}
			return o.run(cmd.Context(), e, dir)
		},
	}
	o.AddFlags(cmd)
	return cmd
}

func (o *verifyOptions) run(ctx context.Context, e *env, dir string) error {
	// The sizes are for progress only: ListSegments refuses a sequence gap,
	// which Verify reports as damage, so its error is not ours to report.
	segs, _ := walkit.ListSegments(dir)
	var total int64
	for _, s := range segs {
		total += s.Size
	}
	progress := clikit.NewProgress(e.stderr, "verify", total)
	rep, err := interruptible(ctx, func() (*walkit.VerifyReport, error) {
		return walkit.Verify(dir, walkit.VerifyOptions{ContinueOnError: o.cont, Progress: progress.Func()})
	})
	progress.Done()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err != nil {
		return usage(err) // walkit's errors name the dir or segment
	}
	if len(rep.Segments) > 0 && rep.Segments[0].Records == 0 {
		if len(rep.Findings) > 0 && rep.Findings[0].Segment == rep.Segments[0].Name {
			f := rep.Findings[0]
			return notWAL(dir, f.Segment, f.Offset, f.Kind, fmt.Errorf("%s", f.Message))
		}
		if len(rep.Findings) == 0 {
			return usage(fmt.Errorf("walkit: %s: not a WAL: %s holds no records", dir, rep.Segments[0].Name))
		}
	}
	if o.out.Is("json") {
		err = clikit.WriteJSON(e.stdout, rep)
	} else {
		err = renderVerify(e.stdout, rep)
	}
	if err != nil {
		return err
	}
	if !rep.OK() {
		return finding(fmt.Errorf("walkit: %s: %d problem(s) found, the first at segment %s offset %d",
			dir, len(rep.Findings), rep.Findings[0].Segment, rep.Findings[0].Offset))
	}
	return nil
}

func renderVerify(w io.Writer, rep *walkit.VerifyReport) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "SEGMENT\tSIZE\tRECORDS\tENTRIES\tFIRST INDEX\tLAST INDEX\tTERMS\tCRC\tFIRST BAD OFFSET\t")
	for _, s := range rep.Segments {
		crc, bad := "ok", "-"
		if !s.CRCOK {
			crc = "MISMATCH"
		}
		if s.FirstBadOffset >= 0 {
			bad = fmt.Sprint(s.FirstBadOffset)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%s\t%s\t%s\t\n", s.Name, clikit.Size(s.Size), s.Records, s.Entries,
			s.FirstIndex, s.LastIndex, terms(s.Terms), crc, bad)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\n%d segments, %d records, %d entries, %s of records\n", len(rep.Segments), rep.Records, rep.Entries, clikit.Size(rep.Bytes))
	if rep.OK() {
		b.WriteString("OK: no damage found\n")
	} else {
		fmt.Fprintf(&b, "DAMAGED: %d problem(s)\n", len(rep.Findings))
		for _, f := range rep.Findings {
			fmt.Fprintf(&b, "  %s: segment %s offset %d record %d: %s (last good entry %d)", f.Kind, f.Segment, f.Offset, f.Record, f.Message, f.LastGoodIndex)
			if f.Skipped > 0 {
				fmt.Fprintf(&b, "; skipped %d bytes", f.Skipped)
			}
			b.WriteString("\n")
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// terms prints a segment's terms compactly: "2", "2,3", or "2..9 (8)".
func terms(ts []uint64) string {
	switch {
	case len(ts) == 0:
		return "-"
	case len(ts) > 3:
		return fmt.Sprintf("%d..%d (%d)", ts[0], ts[len(ts)-1], len(ts))
	}
	s := make([]string, len(ts))
	for i, t := range ts {
		s[i] = fmt.Sprint(t)
	}
	return strings.Join(s, ",")
}

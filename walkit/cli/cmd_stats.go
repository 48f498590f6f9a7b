package cli

import (
	"cmp"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/lifeboat-dev/lifeboat/internal/clikit"
	"github.com/lifeboat-dev/lifeboat/walkit"
	"github.com/lifeboat-dev/lifeboat/walkit/inspect"
)

// statsOptions are the flags of walkit stats.
type statsOptions struct {
	in    walInput
	out   *clikit.Output
	depth int
	top   int
	hex   bool
}

// AddFlags registers stats' flags.
func (o *statsOptions) AddFlags(cmd *cobra.Command) {
	fs := cmd.Flags()
	o.in.AddFlags(fs)
	o.out.AddFlags(fs)
	fs.IntVar(&o.depth, "depth", 2, "path segments that make a key prefix (2: /registry/pods/)")
	fs.IntVar(&o.top, "top", 10, "how many key prefixes to list (0: all)")
	fs.BoolVar(&o.hex, "hex", false, "print key prefixes as hex")
}

// statsReport is what walkit stats prints.
type statsReport struct {
	Dir string `json:"dir"`
	inspect.Stats
	Damage []inspect.Record `json:"damage"`
}

func newStatsCommand(e *env) *cobra.Command {
	o := &statsOptions{out: clikit.NewOutput("table", "json")}
	cmd := &cobra.Command{
		Use:   "stats [flags] <data-dir | wal-dir>",
		Short: "Count what a WAL holds: entries by type, indexes, terms, snapshots, top key prefixes",
		Long: `stats reads the whole WAL and counts: records by type, entries by raft type and
by request type, entry bytes, the index and term ranges, entries rewritten by
a new leader, the snapshot records, the last HardState, the node and cluster
IDs, and the key prefixes (the first --depth path segments) with the most
bytes written. Damage is counted and listed, and makes the exit code 1.`,
		Args: func(cmd *cobra.Command, args []string) error { return o.in.args(cmd, args) },
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.depth < 0 || o.top < 0 {
				return usage(fmt.Errorf("--depth and --top must not be negative"))
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

func (o *statsOptions) run(cmd *cobra.Command, e *env, dir string) error {
	opt := inspect.Options{Hex: o.hex}
	b := inspect.NewStats(o.depth, o.top, opt)
	rep := statsReport{Dir: dir, Damage: []inspect.Record{}}
	err := e.scan(cmd.Context(), dir, "stats", func(rec walkit.Record, pos walkit.Position, damage *walkit.DamageError) error {
		if damage != nil {
			r := inspect.DamageRecord(damage)
			rep.Damage = append(rep.Damage, r)
			b.Add(&r)
			return nil
		}
		r, err := inspect.DecodeRecord(rec, pos, opt, nil)
		if err != nil {
			return finding(err)
		}
		b.Add(&r)
		return nil
	})
	if err != nil {
		return err
	}
	// ListSegments refuses a sequence gap; the records read are counted anyway.
	all, _ := walkit.ListSegments(dir)
	for _, s := range all {
		b.AddSegment(s.Size)
	}
	rep.Stats = b.Stats()
	if o.out.Is("json") {
		err = clikit.WriteJSON(e.stdout, rep)
	} else {
		err = renderStats(e.stdout, &rep)
	}
	if err != nil {
		return err
	}
	if len(rep.Damage) > 0 {
		return finding(fmt.Errorf("walkit: %s: %d damaged record(s); the first: %s", dir, len(rep.Damage), rep.Damage[0].Summary()))
	}
	return nil
}

// maxSnapshotsShown is how many snapshot records the table lists, the last ones.
const maxSnapshotsShown = 8

func renderStats(w io.Writer, r *statsReport) error {
	s := r.Stats // a copy: the table shortens lists
	var b strings.Builder
	line := func(k, format string, a ...any) {
		fmt.Fprintf(&b, "%-16s "+format+"\n", append([]any{k + ":"}, a...)...)
	}
	line("WAL", "%s", r.Dir)
	line("Node ID", "%s", s.NodeID)
	line("Cluster ID", "%s", s.ClusterID)
	line("Segments", "%d (%s)", s.Segments, clikit.Size(s.SegmentBytes))
	line("Records", "%s", counts(s.Records))
	line("Entries", "%d (%s of data)", s.Entries, clikit.Size(s.EntryBytes))
	if s.Entries > 0 {
		line("Index range", "%d..%d", s.FirstIndex, s.LastIndex)
		line("Term range", "%d..%d", s.FirstTerm, s.LastTerm)
	}
	line("Rewritten", "%d", s.Rewritten)
	if hs := s.HardState; hs != nil {
		line("HardState", "term=%d vote=%s commit=%d", hs.Term, hs.Vote, hs.Commit)
	}
	var snaps []string
	if n := len(s.Snapshots); n > maxSnapshotsShown {
		snaps = append(snaps, "...")
		s.Snapshots = s.Snapshots[n-maxSnapshotsShown:]
	}
	for _, sn := range s.Snapshots {
		snaps = append(snaps, fmt.Sprintf("%d/%d", sn.Index, sn.Term))
	}
	line("Snapshots", "%d (index/term: %s)", len(r.Snapshots), strings.Join(snaps, " "))
	if len(r.Damage) > 0 {
		line("Damage", "%d", len(r.Damage))
		for _, d := range r.Damage {
			fmt.Fprintf(&b, "  segment %s offset %d: %s\n", d.Segment, d.Offset, d.Summary())
		}
	}
	b.WriteString("\n")
	if _, err := io.WriteString(w, b.String()); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ENTRY TYPE\tCOUNT")
	for _, t := range byCount(s.EntryTypes) {
		fmt.Fprintf(tw, "%s\t%d\n", t, s.EntryTypes[t])
	}
	fmt.Fprintln(tw, "\nREQUEST TYPE\tCOUNT")
	for _, t := range byCount(s.RequestTypes) {
		fmt.Fprintf(tw, "%s\t%d\n", t, s.RequestTypes[t])
	}
	fmt.Fprintf(tw, "\nKEY PREFIX (depth %d)\tPUTS\tDELETES\tBYTES\n", s.Depth)
	for _, p := range s.TopPrefixes {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\n", p.Prefix, p.Puts, p.Deletes, clikit.Size(p.Bytes))
	}
	return tw.Flush()
}

// byCount orders a map's keys by count, largest first, then by name.
func byCount[K cmp.Ordered](m map[K]int) []K {
	return slices.SortedFunc(maps.Keys(m), func(a, b K) int { return cmp.Or(cmp.Compare(m[b], m[a]), cmp.Compare(a, b)) })
}

// counts prints "entry=670 state=670 crc=1".
func counts(m map[string]int) string {
	var parts []string
	for _, k := range byCount(m) {
		parts = append(parts, fmt.Sprintf("%s=%d", k, m[k]))
	}
	return strings.Join(parts, " ")
}

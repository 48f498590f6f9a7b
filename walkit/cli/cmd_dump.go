package cli

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/lifeboat-dev/lifeboat/internal/clikit"
	"github.com/lifeboat-dev/lifeboat/walkit"
	"github.com/lifeboat-dev/lifeboat/walkit/inspect"
)

// dumpOptions are the flags of walkit dump.
type dumpOptions struct {
	in         walInput
	out        *clikit.Output
	startIndex uint64
	endIndex   uint64
	term       uint64
	entryTypes string
	keyPrefix  string
	raw        bool
	hex        bool
}

// AddFlags registers dump's flags.
func (o *dumpOptions) AddFlags(cmd *cobra.Command) {
	fs := cmd.Flags()
	o.in.AddFlags(fs)
	o.out.AddFlags(fs)
	fs.Uint64Var(&o.startIndex, "start-index", 0, "show entries from this raft index on")
	fs.Uint64Var(&o.endIndex, "end-index", 0, "show entries up to this raft index (0: to the end)")
	fs.Uint64Var(&o.term, "term", 0, "show entries of this term only")
	fs.StringVar(&o.entryTypes, "entry-type", "", "comma list of entry types, etcd-dump-logs' names and more (e.g. ConfigChange,IRRPut,IRRTxn)")
	fs.StringVar(&o.keyPrefix, "key-prefix", "", "show requests that touch a key under this prefix (txns and delete ranges included)")
	fs.BoolVar(&o.raw, "raw", false, "show every record (metadata, state, crc, snapshot) and read past damage, showing it inline")
	fs.BoolVar(&o.hex, "hex", false, "print keys and values as hex")
}

// filter builds the entry filter from the flags.
func (o *dumpOptions) filter() (inspect.Filter, error) {
	f := inspect.Filter{StartIndex: o.startIndex, EndIndex: o.endIndex, Term: o.term}
	if o.endIndex != 0 && o.endIndex < o.startIndex {
		return f, usage(fmt.Errorf("--end-index %d is below --start-index %d", o.endIndex, o.startIndex))
	}
	types, err := inspect.ParseTypes(o.entryTypes)
	if err != nil {
		return f, usage(err)
	}
	f.Types = types
	if o.keyPrefix != "" {
		f.KeyPrefix = []byte(o.keyPrefix)
	}
	return f, nil
}

func newDumpCommand(e *env) *cobra.Command {
	o := &dumpOptions{out: clikit.NewOutput("table", "json", "jsonl")}
	cmd := &cobra.Command{
		Use:   "dump [flags] <data-dir | wal-dir>",
		Short: "Print the entries of a WAL, decoded (what etcd-dump-logs does, and more)",
		Long: `dump prints the raft entries of a WAL in the order they were written, with
their requests decoded: puts, deletes and txns with their keys, leases,
compactions, auth and membership changes (ConfChange with the member JSON),
and the v2 requests etcd 3.5 still writes. Keys and values print as text when
printable and as base64 otherwise (--hex for hex).

Filters combine: --start-index/--end-index, --term, --entry-type (a comma
list: Normal, ConfigChange, InternalRaftRequest, Request, IRRPut, IRRTxn,
IRRDeleteRange, IRRLeaseGrant, NoOp, ...) and --key-prefix. Without --raw,
dump stops at the first damaged record (exit 1); with --raw it shows every
record and every damage inline, filters applying to entries only.`,
		Args: func(cmd *cobra.Command, args []string) error { return o.in.args(cmd, args) },
		RunE: func(cmd *cobra.Command, args []string) error {
			filter, err := o.filter()
			if err != nil {
				return err
			}
			dir, err := o.in.dir(args)
			if err != nil {
				return err
			}
			return o.run(cmd, e, dir, filter)
		},
	}
	o.AddFlags(cmd)
	return cmd
}

func (o *dumpOptions) run(cmd *cobra.Command, e *env, dir string, filter inspect.Filter) error {
	w := bufio.NewWriterSize(e.stdout, 64<<10)
	var out dumpWriter
	switch o.out.Format() {
	case "table":
		out = &dumpTable{w: w, raw: o.raw}
	case "json":
		out = &dumpJSON{w: w, raw: o.raw}
	default:
		out = &dumpJSONL{enc: json.NewEncoder(w)}
	}
	if err := out.begin(); err != nil {
		return err
	}
	opt := inspect.Options{Hex: o.hex}
	var counts dumpCounts
	scanErr := e.scan(cmd.Context(), dir, "dump", func(rec walkit.Record, pos walkit.Position, damage *walkit.DamageError) error {
		if damage != nil {
			counts.Damage++
			if !o.raw {
				return finding(fmt.Errorf("%w; --raw reads past it", damage))
			}
			r := inspect.DamageRecord(damage)
			return out.record(&r)
		}
		counts.Records++
		if rec.Type != walkit.EntryType && !o.raw {
			return nil
		}
		r, err := inspect.DecodeRecord(rec, pos, opt, filter.MatchIndex)
		if err != nil {
			return finding(err)
		}
		if r.Entry != nil {
			if !filter.Match(r.Entry) {
				return nil
			}
			counts.Entries++
		}
		return out.record(&r)
	})
	if clikit.IsUsage(scanErr) {
		return scanErr // not a WAL: nothing read, nothing to show
	}
	if err := out.end(counts); err != nil {
		return err
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if scanErr != nil {
		return scanErr
	}
	if counts.Damage > 0 {
		return finding(fmt.Errorf("walkit: %s: %d damaged record(s) shown above", dir, counts.Damage))
	}
	return nil
}

// dumpCounts closes a dump.
type dumpCounts struct {
	Entries int `json:"entries"` // entries shown
	Records int `json:"records"` // records read
	Damage  int `json:"damage"`  // damaged records met
}

// dumpWriter renders the stream of records in one format.
type dumpWriter interface {
	begin() error
	record(r *inspect.Record) error
	end(c dumpCounts) error
}

// dumpTable writes fixed-width columns, so that it streams.
type dumpTable struct {
	w       io.Writer
	raw     bool
	segment string
}

func (t *dumpTable) begin() error {
	var err error
	if t.raw {
		_, err = fmt.Fprintf(t.w, "%10s  %-8s  ", "OFFSET", "RECORD")
	}
	if err == nil {
		_, err = fmt.Fprintf(t.w, "%6s  %10s  %-27s  %s\n", "TERM", "INDEX", "TYPE", "DATA")
	}
	return err
}

func (t *dumpTable) record(r *inspect.Record) error {
	if t.raw && r.Segment != t.segment {
		t.segment = r.Segment
		if _, err := fmt.Fprintf(t.w, "# segment %s\n", r.Segment); err != nil {
			return err
		}
	}
	if t.raw {
		if _, err := fmt.Fprintf(t.w, "%10d  %-8s  ", r.Offset, r.Kind); err != nil {
			return err
		}
	}
	var err error
	if e := r.Entry; e != nil {
		_, err = fmt.Fprintf(t.w, "%6d  %10d  %-27s  %s\n", e.Term, e.Index, e.Type, e.Summary())
	} else {
		_, err = fmt.Fprintf(t.w, "%6s  %10s  %-27s  %s\n", "", "", "", r.Summary())
	}
	return err
}

func (t *dumpTable) end(c dumpCounts) error {
	var err error
	if t.raw {
		_, err = fmt.Fprintf(t.w, "\n%d entries shown, %d records read, %d damaged\n", c.Entries, c.Records, c.Damage)
	} else {
		_, err = fmt.Fprintf(t.w, "\n%d entries\n", c.Entries)
	}
	return err
}

// dumpJSON writes one JSON document, streaming its array:
// {"entries":[...],"count":{...}} ("records" with --raw).
type dumpJSON struct {
	w   io.Writer
	raw bool
	n   int
}

func (j *dumpJSON) begin() error {
	key := "entries"
	if j.raw {
		key = "records"
	}
	_, err := fmt.Fprintf(j.w, "{\n  %q: [", key)
	return err
}

func (j *dumpJSON) record(r *inspect.Record) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	sep := ",\n    "
	if j.n == 0 {
		sep = "\n    "
	}
	j.n++
	_, err = fmt.Fprintf(j.w, "%s%s", sep, b)
	return err
}

func (j *dumpJSON) end(c dumpCounts) error {
	b, err := json.Marshal(c)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(j.w, "\n  ],\n  \"count\": %s\n}\n", b)
	return err
}

// dumpJSONL writes one record per line and nothing else.
type dumpJSONL struct{ enc *json.Encoder }

func (j *dumpJSONL) begin() error                   { return nil }
func (j *dumpJSONL) record(r *inspect.Record) error { return j.enc.Encode(r) }
func (j *dumpJSONL) end(dumpCounts) error           { return nil }

package clikit

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/dustin/go-humanize"
	"github.com/spf13/pflag"
	"golang.org/x/term"
)

// Output is the -w/--write-out flag of one command: the formats it writes,
// the first being the default. An unknown format is refused when the flag
// is parsed, with the list of the accepted ones.
type Output struct {
	format   string
	accepted []string
}

// NewOutput accepts the given formats; the first is the default.
func NewOutput(accepted ...string) *Output {
	return &Output{format: accepted[0], accepted: accepted}
}

// AddFlags registers -w/--write-out, its help listing the accepted formats.
func (o *Output) AddFlags(fs *pflag.FlagSet) {
	fs.VarP(o, "write-out", "w", "output format, one of: "+strings.Join(o.accepted, ", "))
}

// Format is the format chosen.
func (o *Output) Format() string { return o.format }

// Is reports whether the format chosen is f.
func (o *Output) Is(f string) bool { return o.format == f }

// String, Set and Type make Output a pflag.Value.
func (o *Output) String() string { return o.format }

// Set chooses a format, or says which ones are accepted.
func (o *Output) Set(s string) error {
	if !slices.Contains(o.accepted, s) {
		return fmt.Errorf("want one of: %s", strings.Join(o.accepted, ", "))
	}
	o.format = s
	return nil
}

// Type names the flag's value in the help.
func (o *Output) Type() string { return "format" }

// WriteJSON prints v as indented JSON, the one JSON form of every tool.
func WriteJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("writing JSON: %w", err)
	}
	return nil
}

// Size humanizes a byte count as etcdutl does ("25 kB"); a negative count,
// unknown, is "-".
func Size(n int64) string {
	if n < 0 {
		return "-"
	}
	return humanize.Bytes(uint64(n))
}

// IsTerminal reports whether w is a terminal.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

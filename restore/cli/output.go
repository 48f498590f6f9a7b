package cli

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/lifeboat-dev/lifeboat/internal/clikit"
	"github.com/lifeboat-dev/lifeboat/restore"
)

// writeJSON and size are clikit's.
var (
	writeJSON = clikit.WriteJSON
	size      = clikit.Size
)

// fields prints name/value lines, aligned, for a person.
type fields struct {
	w  *tabwriter.Writer
	on bool
}

func newFields(w io.Writer) *fields {
	return &fields{w: tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)}
}

func (f *fields) add(name, format string, a ...any) {
	fmt.Fprintf(f.w, "%s:\t%s\n", name, fmt.Sprintf(format, a...))
}

// rows prints a table: a header line, then one line per row.
func (f *fields) header(cells ...string) {
	fmt.Fprintln(f.w, strings.ToUpper(strings.Join(cells, "\t")))
}

func (f *fields) row(cells ...string) { fmt.Fprintln(f.w, strings.Join(cells, "\t")) }

func (f *fields) flush() error { return f.w.Flush() }

// progressFactory makes the progress reporter of one long step: nil when
// nothing is to be drawn.
type progressFactory func(what string, total int64) (report restore.Progress, end func())

// largeInput is the size from which a copy shows progress on a terminal.
const largeInput = 64 << 20

// terminalProgress draws progress on stderr when it is a terminal
// (clikit.Progress), and nothing otherwise.
func terminalProgress(stderr io.Writer) progressFactory {
	return func(what string, total int64) (restore.Progress, func()) {
		if total < largeInput {
			return nil, func() {}
		}
		p := clikit.NewProgress(stderr, what, total)
		return p.Func(), p.Done
	}
}

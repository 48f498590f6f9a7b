package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/dustin/go-humanize"

	"github.com/lifeboat-dev/lifeboat/restore"
)

// writeJSON prints v as indented JSON.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

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

// size humanizes bytes ("25 kB").
func size(n int64) string { return humanize.Bytes(uint64(max(n, 0))) }

// progressFactory makes the progress reporter of one long step: nil when
// nothing is to be drawn. It stands in for internal/clikit's progress
// helper until that exists.
type progressFactory func(what string, total int64) (report restore.Progress, end func())

// largeInput is the size from which a copy shows progress on a terminal.
const largeInput = 64 << 20

// terminalProgress draws progress on stderr when it is a terminal, and
// nothing otherwise.
func terminalProgress(stderr io.Writer) progressFactory {
	tty := false
	if f, ok := stderr.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			tty = true
		}
	}
	return func(what string, total int64) (restore.Progress, func()) {
		if !tty || total < largeInput {
			return nil, func() {}
		}
		var (
			mu    sync.Mutex
			last  time.Time
			drawn bool
		)
		report := func(done, total int64) {
			mu.Lock()
			defer mu.Unlock()
			if now := time.Now(); now.Sub(last) >= 200*time.Millisecond || done == total {
				last, drawn = now, true
				fmt.Fprintf(stderr, "\r%s: %s of %s (%d%%)   ", what, size(done), size(total), done*100/max(total, 1))
			}
		}
		end := func() {
			if drawn {
				fmt.Fprint(stderr, "\r\033[K")
			}
		}
		return report, end
	}
}

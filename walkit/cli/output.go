package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/spf13/pflag"
)

// largeWAL is the size from which long work shows progress on a terminal.
const largeWAL = 128 << 20

// format is the -w flag.
type format struct {
	value   string
	allowed []string
}

// AddFlags registers -w/--write-out.
func (f *format) AddFlags(fs *pflag.FlagSet) {
	fs.StringVarP(&f.value, "write-out", "w", f.allowed[0], fmt.Sprintf("output format: %v", f.allowed))
}

// check rejects a format the command does not write.
func (f *format) check() error {
	for _, a := range f.allowed {
		if f.value == a {
			return nil
		}
	}
	return usage(fmt.Errorf("--write-out must be one of %v, not %q", f.allowed, f.value))
}

// writeJSON prints v as indented JSON.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// size humanizes bytes ("64 MB").
func size(n int64) string { return humanize.Bytes(uint64(max(n, 0))) }

// progress returns a reporter of bytes done that draws on stderr when it is
// a terminal and the WAL is large, and nil otherwise; end clears the line.
func (e *env) progress(what string, total int64) (report func(done, total int64), end func()) {
	if !e.tty || total < largeWAL {
		return nil, func() {}
	}
	var (
		mu    sync.Mutex
		last  time.Time
		drawn bool
	)
	report = func(done, total int64) {
		mu.Lock()
		defer mu.Unlock()
		if now := time.Now(); now.Sub(last) >= 200*time.Millisecond || done == total {
			last, drawn = now, true
			fmt.Fprintf(e.stderr, "\r%s: %s of %s (%d%%)   ", what, size(done), size(total), done*100/max(total, 1))
		}
	}
	end = func() {
		if drawn {
			fmt.Fprint(e.stderr, "\r\033[K")
		}
	}
	return report, end
}

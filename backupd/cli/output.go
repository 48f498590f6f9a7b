package cli

import (
	"fmt"
	"time"

	"github.com/lifeboat-dev/lifeboat/internal/clikit"
)

func ageOf(now, t time.Time) string {
	d := now.Sub(t)
	switch {
	case d < time.Minute:
		return d.Round(time.Second).String()
	case d < 48*time.Hour:
		return d.Round(time.Minute).String()
	}
	return fmt.Sprintf("%dd%dh", int(d.Hours())/24, int(d.Hours())%24)
}

// progress starts the progress of what on stderr, drawn when it is a
// terminal; endProgress ends it.
func (e *env) progress(what string) func(done, total int64) {
	e.prog = clikit.NewProgress(e.stderr, what, 0)
	return e.prog.Func()
}

// endProgress clears the progress line, if one was drawn.
func (e *env) endProgress() { e.prog.Done() }

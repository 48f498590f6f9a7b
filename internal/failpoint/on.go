//go:build failpoints

package failpoint

import (
	"fmt"
	"os"
	"runtime/debug"

	gofail "go.etcd.io/gofail/runtime"
)

// Point is a named place where a failpoint may act.
type Point struct {
	name string
	fp   *gofail.Failpoint
}

// New registers the failpoint name with gofail.
func New(name string) Point { return Point{name, gofail.NewFailpoint(name)} }

// Hit runs the failpoint's action, if it is armed. A panic ends the
// process here, whoever would recover it.
func (p Point) Hit() {
	defer func() {
		if r := recover(); r != nil {
			fmt.Fprintf(os.Stderr, "failpoint %s: %v\n%s", p.name, r, debug.Stack())
			os.Exit(2)
		}
	}()
	_, _ = p.fp.Acquire() // ErrDisabled when not armed; the values of return() mean nothing here
}

//go:build !failpoints

package failpoint

// Point is a named place where a failpoint may act: none, in this build.
type Point struct{}

// New returns a point that never acts.
func New(string) Point { return Point{} }

// Hit does nothing.
func (Point) Hit() {}

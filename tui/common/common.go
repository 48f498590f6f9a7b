// Package common holds what every page and component of lbtop shares: the
// screen size, the styles, the keymap and the clock.
package common

import (
	"time"

	"github.com/lifeboat-dev/lifeboat/tui/keymap"
	"github.com/lifeboat-dev/lifeboat/tui/styles"
)

// Common is shared by pointer; the model updates Width and Height on
// resize.
type Common struct {
	Width, Height int
	Styles        *styles.Styles
	KeyMap        *keymap.KeyMap
	// Now is the clock ages are measured with.
	Now func() time.Time
}

// New returns a Common with the default styles and keys; now nil means
// time.Now.
func New(now func() time.Time) *Common {
	if now == nil {
		now = time.Now
	}
	return &Common{Width: 80, Height: 24, Styles: styles.Default(), KeyMap: keymap.Default(), Now: now}
}

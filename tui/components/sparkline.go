package components

import (
	"math"
	"strings"
)

var levels = []rune("▁▂▃▄▅▆▇█")

// Sparkline draws the last width values between their minimum (▁) and
// maximum (█); a NaN (no answer that refresh) is a blank. Flat values sit
// on the bottom line.
func Sparkline(values []float64, width int) string {
	if len(values) > width {
		values = values[len(values)-width:]
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, v := range values {
		if !math.IsNaN(v) {
			lo, hi = min(lo, v), max(hi, v)
		}
	}
	var b strings.Builder
	for _, v := range values {
		switch {
		case math.IsNaN(v):
			b.WriteByte(' ')
		case hi == lo:
			b.WriteRune(levels[0])
		default:
			b.WriteRune(levels[int((v-lo)/(hi-lo)*float64(len(levels)-1)+0.5)])
		}
	}
	return b.String()
}

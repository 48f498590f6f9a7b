//go:build !race

package walkit

// raceEnabled is true when the tests run under the race detector.
const raceEnabled = false

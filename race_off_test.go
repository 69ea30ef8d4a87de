//go:build !race

package ntpctl

// raceEnabled reports a build with the race detector, whose instrumentation
// allocates where a normal build does not.
const raceEnabled = false

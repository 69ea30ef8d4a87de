//go:build race

package enrich

// raceEnabled reports whether the race detector is on; it allocates, so
// allocation budgets are checked only without it.
const raceEnabled = true

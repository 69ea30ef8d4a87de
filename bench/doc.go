// Package bench holds side-by-side benchmarks of ntpctl against other
// implementations. It is its own module so that what it compares against
// never becomes a dependency of github.com/ntpctl/ntpctl.
package bench

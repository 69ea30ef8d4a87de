// Package buildinfo describes the build of a program of this module, for
// the programs' --version: the module's path and version ("(devel)" when
// built from a work tree), the VCS revision, its time and whether the
// tree was modified, and the Go version, from runtime/debug.ReadBuildInfo.
package buildinfo

import (
	"fmt"
	"runtime/debug"
	"strings"
)

// Text returns the description of the running program's build, one
// "name value" a line, led by the program's name.
func Text(program string) string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return program + ": no build information (not built with module support)\n"
	}
	return Format(program, bi)
}

// Format describes bi as Text does.
func Format(program string, bi *debug.BuildInfo) string {
	var b strings.Builder
	version := bi.Main.Version
	if version == "" {
		version = "(devel)"
	}
	fmt.Fprintf(&b, "%s %s\n", program, version)
	path := bi.Main.Path
	if path == "" {
		path = "(unknown)"
	}
	fmt.Fprintf(&b, "module   %s\n", path)
	if bi.Path != "" && bi.Path != bi.Main.Path {
		fmt.Fprintf(&b, "package  %s\n", bi.Path)
	}
	settings := map[string]string{}
	for _, s := range bi.Settings {
		settings[s.Key] = s.Value
	}
	if rev := settings["vcs.revision"]; rev != "" {
		fmt.Fprintf(&b, "revision %s\n", rev)
		if t := settings["vcs.time"]; t != "" {
			fmt.Fprintf(&b, "time     %s\n", t)
		}
		if m := settings["vcs.modified"]; m != "" {
			fmt.Fprintf(&b, "modified %s\n", m)
		}
	} else {
		b.WriteString("revision unknown (built without VCS information: go build -buildvcs=false, or outside a checkout)\n")
	}
	fmt.Fprintf(&b, "go       %s\n", bi.GoVersion)
	return b.String()
}

// Line returns the running program's build on one line, "program
// version" followed by the first 12 digits of the VCS revision when
// known, for records that name what made them (a scan's statistics).
func Line(program string) string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return program
	}
	return FormatLine(program, bi)
}

// FormatLine describes bi as Line does.
func FormatLine(program string, bi *debug.BuildInfo) string {
	version := bi.Main.Version
	if version == "" {
		version = "(devel)"
	}
	s := program + " " + version
	for _, st := range bi.Settings {
		if st.Key == "vcs.revision" && st.Value != "" {
			s += " " + st.Value[:min(12, len(st.Value))]
		}
	}
	return s
}

package main

import "github.com/ntpctl/ntpctl/report"

// termSafe is report.TerminalSafe: what a server sent, escaped for a
// terminal.
func termSafe(s string) string { return report.TerminalSafe(s) }

// jsonSafe is report.EscapeJSON.
func jsonSafe(js []byte) []byte { return report.EscapeJSON(js) }

// Command ntpctl verifies whether one NTP server can be abused for
// reflection DDoS, the way Shadowserver's NTP reports ask network owners
// to check (`ntpdc -n -c monlist IP`, `ntpq -c rv IP`), and runs a lab of
// simulated servers on loopback to try it on.
//
// Usage:
//
//	ntpctl monlist [flags] HOST[:PORT]       Mode 7 monlist, printed as ntpdc -n -c monlist does
//	ntpctl rv [flags] HOST[:PORT] [NAME...]  Mode 6 READVAR, printed as ntpq -c rv does (--assoc ID or &N)
//	ntpctl peers [flags] HOST[:PORT]         Mode 6 READSTAT association list, as ntpq -c as (alias: as)
//	ntpctl mrulist [flags] HOST[:PORT]       Mode 6 MRU list (REQ_NONCE, READ_MRU), as ntpq -c mrulist
//	ntpctl check [flags] HOST[:PORT]...      both queries and a verdict with remediation
//	ntpctl verify [flags] FILE.csv...        every row of received reports asked again
//	ntpctl lab [flags]                       simulated servers on loopback until Ctrl-C
//	ntpctl version                           module version and VCS revision (also --version)
//	ntpctl help [COMMAND]
//
// HOST is an address or a name; an IPv6 address with a port goes in
// brackets ([2001:db8::1]:123), and one that reads as an address followed
// by the port without them (::1:123) is refused with the two ways to
// write it.
//
// Every command takes --json, --timeout, --retries and --port; `ntpctl
// help COMMAND` describes the rest. --json prints one object, with the
// time of the query, in the vocabulary of the scanner's JSON lines: the
// JSON Schema report/schema/ntpctl.schema.json (report.Schema) documents
// it ($defs ntpctl_monlist, ntpctl_rv, ntpctl_peers, ntpctl_mrulist, ntpctl_check, ntpctl_verify,
// ntpctl_lab).
//
// Exit status: 0 answered (for monlist: the host is a monlist amplifier),
// 1 error (bad usage, unresolvable or refused host, socket error), 2 no
// answer, 3 refused (an error reply: monlist disabled, Mode 7 error 4
// INFO_ERR_NODATA, or a Mode 6 error), 4 incomplete or malformed reply,
// 7 no NTP service (ICMP: port closed, host unreachable, prohibited), 130
// interrupted. check has its own: 0 not an amplifier, 5 monlist
// amplifier, 6 Mode 6 (READVAR) amplification only (of several hosts, the
// worst verdict). verify: 0 every row fixed, 5 some rows still open or
// changed, 8 none open but some unverified.
//
// Install it with
//
//	go install github.com/ntpctl/ntpctl/ntpctl@latest
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

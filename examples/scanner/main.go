// Scanner is the full ntpctl scanner: target space → prober → enrichment →
// Shadowserver-compatible reports. It finds NTP servers that can be abused
// for reflection DDoS the way Shadowserver's daily scans do (NTP Monitor:
// Mode 7 monlist; NTP Version: Mode 6 READVAR) and writes the findings in
// the reports' own format, for a CERT to hand to the networks that run
// them.
//
// With no arguments it runs a lab: a few hundred simulated servers on
// loopback, scanned, enriched from a built-in table of documentation AS
// numbers and reported, in a few seconds, ending with a check of the
// reports against what each simulated server is:
//
//	go run ./examples/scanner
//
// Scanning real networks (only those you are allowed to scan):
//
//	go run ./examples/scanner -rate 5000 -out reports -i constituency.txt 198.51.100.0/24
//
// Targets are addresses, prefixes and ranges, as arguments or in files
// (-i, IPv6 hitlists too); flags may come before or after them. The IANA
// special-purpose ranges and loopback are never scanned (loopback only
// with -allow-loopback), and -blocklist and -allowlist take zmap-format
// files. -seed fixes the permuted order; -shard i/n with the same -seed on
// n machines splits a scan. As in zmap, -dryrun lists the targets in scan
// order and sends nothing, -max-targets N (or N%) stops after the first N,
// -source-ip and -interface pick the addresses to send from, and
// -bandwidth 10M replaces -rate (bits per second over the requests' IP,
// UDP and payload octets). Without -concurrency the targets in flight
// follow the rate (rate × (retries × timeout + timeout) × 1.25, within
// 4096..262144).
//
// The output directory (-out) holds YYYY-MM-DD-scan_ntpmonitor-ID.csv and
// YYYY-MM-DD-scan_ntp-ID.csv (scan6_ for IPv6 targets) in Shadowserver's
// format, YYYY-MM-DD-ntpctl-ID.jsonl with every answering target in full,
// the statistics YYYY-MM-DD-ntpctl-ID-stats.json and -stats.txt, and with
// -split the reports per AS or country in by-asn or by-country.
//
// -probes chooses the probes: monitor and version (both, the default),
// mru (the MRU list of every server that answered READVAR: the NTP MRU
// report, scan_ntpmru, counts each server's clients and never lists
// them; -mru-clients puts their addresses in the JSON lines) and time (a
// Mode 3 client request: the Accessible NTP report, scan_ntpaccessible);
// all is all four, the lab's default. -discover sends the Mode 3 request
// first and the control queries only to the targets that answered it:
// about half the requests on a sparse space, but servers that refuse
// time service and answer Mode 6 or 7 are missed.
//
// A progress bar shows on a terminal, plain lines otherwise. Ctrl-C stops
// sending and collects the replies in flight; a second one finishes at
// once; the files are complete either way (a third exits immediately).
// The exit status is 0 after a complete scan, 1 when the scan failed
// (writing the reports, sockets), 2 for bad flags, targets, input files
// or an output directory it cannot use (nothing is sent then), and 130
// after an interrupt.
//
// Run it with -h for every flag; -version prints the module version and
// VCS revision it was built from.
//
// The program is meant to be copied as a template: one generic code path
// (probe.go) runs each probe's pipeline (prober, enrichment, reports), the
// output stage (output.go) writes the files, and the lab (lab.go) hooks in
// only where a program built on it would, through the scan's observers,
// which see every result. A copy without lab.go scans real targets.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/ntpctl/ntpctl/internal/buildinfo"
)

func main() {
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	sigs := make(chan os.Signal, 3)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	interrupts := make(chan struct{}, 3)
	go func() {
		n := 0
		for range sigs {
			n++
			if n >= 3 {
				fmt.Fprintln(os.Stderr, "scanner: third interrupt: exiting now")
				os.Exit(130)
			}
			interrupts <- struct{}{}
		}
	}()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr, interrupts))
}

// Exit codes.
const (
	exitOK          = 0
	exitError       = 1 // the scan failed (files, sockets, enrichment setup)
	exitUsage       = 2 // bad flags, targets, input files or output directory: nothing was sent
	exitInterrupted = 130
)

// run is the whole program: it parses args, scans and writes the reports.
// interrupts delivers Ctrl-C: the first stops sending and collects what is
// in flight, the second finishes at once; the files are complete either
// way.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, interrupts <-chan struct{}) int {
	opts, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		fmt.Fprintln(stderr, "scanner:", err)
		return exitUsage
	}
	if opts.showVersion {
		fmt.Fprint(stdout, buildinfo.Text("scanner"))
		return exitOK
	}
	if opts.submit != "" || opts.worker != "" || opts.merge != "" {
		if distributed == nil {
			fmt.Fprintln(stderr, "scanner: -submit, -worker and -merge need a build with -tags nats (go run -tags nats ./examples/scanner …)")
			return exitUsage
		}
		return distributed(ctx, opts, stdout, stderr, interrupts)
	}
	return scanWith(ctx, opts, stdout, stderr, interrupts)
}

// scanWith runs one scan with parsed options: the whole program, and
// each shard a worker scans.
func scanWith(ctx context.Context, opts *options, stdout, stderr io.Writer, interrupts <-chan struct{}) int {
	var s *scan
	var err error
	if opts.lab {
		if startLab == nil {
			fmt.Fprintln(stderr, "scanner: this build has no lab: give targets (scanner -h)")
			return exitUsage
		}
		s, err = startLab(ctx, opts, stdout, stderr)
	} else {
		s, err = newScan(ctx, opts, stdout, stderr)
	}
	if err != nil {
		var ue usageError
		fmt.Fprintln(stderr, "scanner:", err)
		if errors.As(err, &ue) {
			return exitUsage
		}
		return exitError
	}
	defer s.close()
	if opts.habits.dryrun {
		if err := s.dryRun(stdout); err != nil {
			fmt.Fprintln(stderr, "scanner:", err)
			return exitError
		}
		return exitOK
	}
	interrupted, err := s.run(ctx, interrupts)
	if err != nil {
		fmt.Fprintln(stderr, "scanner:", err)
		var ue usageError
		if errors.As(err, &ue) {
			return exitUsage // the output directory, before anything was sent
		}
		return exitError
	}
	if opts.db != "" {
		// The files are whole (interrupted or not): the run goes into the
		// store as they hold it, marked incomplete if it was cut short.
		msg, err := importRun(ctx, opts.db, opts.constituencies, s.dir)
		if err != nil {
			fmt.Fprintln(stderr, "scanner: -db:", err)
			return exitError
		}
		fmt.Fprintln(stdout, msg)
	}
	if interrupted {
		return exitInterrupted
	}
	return exitOK
}

// importRun imports a finished scan's directory into the report store
// named by dsn (store.go, in a build with -tags store); nil in a build
// without the store, which keeps the scanner's dependencies lean.
var importRun func(ctx context.Context, dsn, constituencies, dir string) (string, error)

// distributed runs -submit, -worker or -merge (dist.go, in a build with
// -tags nats); nil in a build without NATS.
var distributed func(ctx context.Context, opts *options, stdout, stderr io.Writer, interrupts <-chan struct{}) int

// startLab starts the lab of simulated servers and prepares a scan of it
// (lab.go); nil in a build without the lab.
var startLab func(ctx context.Context, o *options, stdout, stderr io.Writer) (*scan, error)

// usageError is an error in what the user asked for.
type usageError struct{ error }

func (u usageError) Unwrap() error { return u.error }

func usagef(format string, a ...any) error { return usageError{fmt.Errorf(format, a...)} }

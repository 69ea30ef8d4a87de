// Command scanner is the full ntpctl scanner: target space → prober →
// enrichment → Shadowserver-compatible reports. It finds NTP servers that
// can be abused for reflection DDoS the way Shadowserver's daily scans do
// (NTP Monitor: Mode 7 monlist; NTP Version: Mode 6 READVAR) and writes
// the findings in the reports' own format, for a CERT to hand to the
// networks that run them.
//
// With no arguments it runs a lab: a few hundred simulated servers on
// loopback, scanned, enriched from a built-in table and reported, in a few
// seconds:
//
//	go run ./examples/scanner
//
// Scanning real networks (only those you are allowed to scan):
//
//	go run ./examples/scanner -rate 5000 -out reports 192.0.2.0/24 -i constituency.txt
//
// Run it with -h for every flag.
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
	exitUsage       = 2 // bad flags or targets
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
	var s *scan
	if opts.lab {
		s, err = newLabScan(ctx, opts, stdout, stderr)
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
	interrupted, err := s.run(ctx, interrupts)
	if err != nil {
		fmt.Fprintln(stderr, "scanner:", err)
		return exitError
	}
	if interrupted {
		return exitInterrupted
	}
	return exitOK
}

// usageError is an error in what the user asked for.
type usageError struct{ error }

func usagef(format string, a ...any) error { return usageError{fmt.Errorf(format, a...)} }

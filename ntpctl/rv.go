package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/ntpctl/ntpctl"
	"github.com/ntpctl/ntpctl/enrich"
	"github.com/ntpctl/ntpctl/mode6"
	"github.com/ntpctl/ntpctl/report"
)

const rvUsage = `Usage: ntpctl rv [flags] HOST[:PORT] [NAME...]

Sends one Mode 6 READVAR request (ntpq -c rv; 12 bytes without names) and prints the
variables as ntpsec's ntpq -c rv does: the association and its decoded status word,
then the variables folded at 78 columns, leap in binary, reach in octal (001), flash
in hexadecimal with its bits named (00 ok), numbers as ntpq prints them (0.000 as 0.0),
timestamps with their date and strings in quotes, followed by the packets and bytes
that came back and the amplification (reply bytes divided by request bytes, UDP
payloads).
Control characters and octets outside ASCII in names and values are escaped as cat -v
does ("^[" for ESC, "M-" before an octet with the high bit set): a server cannot send
escape sequences to your terminal. --json prints the query's record, as the scanner's
JSON lines have it: the values under variables.vars as they came (invalid UTF-8 as
U+FFFD), with such characters as \u escapes, and the status word a number
(variables.status_word, decoded in status_text).

NAMEs (or NAME,NAME,...) ask for those variables only, as "ntpq -c 'rv 0 NAME,...'"
(printed, as ntpq prints them, without the status line).
--assoc ID reads a peer association instead of the server's system variables; --assoc &N
reads the N-th association of the list ntpctl peers (ntpq -c as) prints, as ntpq's
"rv &N" does (ntpctl asks for the list first: it keeps none between runs).
`

// rvOptions are rv's own flags.
type rvOptions struct {
	assoc string
}

func (e env) rv(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var c common
	var o rvOptions
	fs := newFlags("rv", rvUsage, exitStatusHelp, &c)
	fs.StringVar(&o.assoc, "assoc", "", "association `ID` to read (0: the server itself), or &N: the N-th of ntpctl peers")
	pos, code := parseArgs(fs, args, &c, stdout, stderr)
	if code >= 0 {
		return code
	}
	if len(pos) == 0 {
		return usageError(stderr, fs, errors.New("want HOST[:PORT] [NAME...]"))
	}
	assoc, err := parseAssoc(o.assoc)
	if err != nil {
		return usageError(stderr, fs, err)
	}
	var names []string
	for _, a := range pos[1:] {
		for n := range strings.SplitSeq(a, ",") {
			if n = strings.TrimSpace(n); n != "" {
				names = append(names, n)
			}
		}
	}
	if err := (mode6.Request{Op: mode6.OpReadVar, Names: names}).Validate(); err != nil {
		return usageError(stderr, fs, fmt.Errorf("variable names %q: %s", names, errText(err)))
	}
	target, err := e.target(ctx, pos[0], uint16(c.port))
	if err != nil {
		return failure(stderr, "rv", err)
	}
	id, list, err := e.resolveAssoc(ctx, &c, target, assoc)
	if err != nil {
		return failure(stderr, "rv", err)
	}
	if list != nil {
		// The association list did not come: that query's outcome is
		// the answer, with its exit status (no answer, ICMP, refused).
		if list.Status == ntpctl.StatusSendError || list.Status == ntpctl.StatusBlocked {
			return failure(stderr, "rv", fmt.Errorf("%s: %s", target, errText(list.Err)))
		}
		if c.json {
			rec := report.NewRecord(list, enrich.Result{})
			if err := writeJSON(stdout, &rec); err != nil {
				return failure(stderr, "rv", err)
			}
		} else {
			fmt.Fprintln(stdout, rvSummary(list, fmt.Sprintf("READSTAT (the association list --assoc &%d needs)", assoc.index)))
		}
		return statusExit(list.Status)
	}
	probe := &ntpctl.ReadVarProbe{AssocID: id, Names: names}
	r, err := ntpctl.Query(ctx, e.config(&c), probe, target)
	if err != nil {
		return failure(stderr, "rv", err)
	}
	if r.Status == ntpctl.StatusSendError || r.Status == ntpctl.StatusBlocked {
		return failure(stderr, "rv", fmt.Errorf("%s: %s", target, errText(r.Err)))
	}
	if c.json {
		rec := report.NewRecord(&r, enrich.Result{})
		if err := writeJSON(stdout, &rec); err != nil {
			return failure(stderr, "rv", err)
		}
	} else {
		printRV(stdout, &r, probe.AssocID, len(names) > 0)
	}
	return statusExit(r.Status)
}

// printRV prints a READVAR result as ntpq -c rv does (without the status
// line when the request named variables, as ntpq), then the outcome.
func printRV(w io.Writer, r *ntpctl.Result[mode6.Reply], assoc uint16, named bool) {
	if v := &r.Value; r.Status == ntpctl.StatusOK || r.Status == ntpctl.StatusPartial {
		writeVars(w, v.AssocID, v.Status, v.Vars, report.StatusText(v.AssocID, v.Status), named)
		if v.Parse.Dropped > 0 {
			// ntpq drops them silently (its parser keeps octets 1 to 126 only)
			fmt.Fprintf(w, "note: %s dropped from the reply (control characters, binary junk)\n",
				plural(v.Parse.Dropped, "junk octet"))
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w, rvSummary(r, readVarWhat(assoc)))
}

// readVarWhat names a READVAR query in a summary.
func readVarWhat(assoc uint16) string {
	if assoc != 0 {
		return fmt.Sprintf("READVAR of association %d", assoc)
	}
	return "READVAR"
}

// rvSummary says in one line how a Mode 6 query (what: its name, such as
// "READVAR" or "READSTAT") ended.
func rvSummary(r *ntpctl.Result[mode6.Reply], what string) string {
	t := r.Target.String()
	ev := evidence(r.Packets, r.Bytes, r.RequestBytes, r.Amplification())
	switch r.Status {
	case ntpctl.StatusOK:
		return fmt.Sprintf("%s: %s answered: %s.", t, what, ev)
	case ntpctl.StatusServerError:
		return fmt.Sprintf("%s: %s refused: %s; %s.", t, what, errText(r.Err), ev)
	case ntpctl.StatusNoAnswer:
		return fmt.Sprintf("%s: no answer to %s (%s sent, no reply within the timeout).", t, what,
			plural(r.Attempts, "request"))
	case ntpctl.StatusClosed, ntpctl.StatusUnreachable, ntpctl.StatusProhibited:
		return fmt.Sprintf("%s: %s.", t, icmpText(r.Status, r.Err))
	case ntpctl.StatusPartial:
		return fmt.Sprintf("%s: %s answered in part (%s): %s.", t, what, errText(r.Err), ev)
	}
	return fmt.Sprintf("%s: unusable reply to %s (%s): %s.", t, what, errText(r.Err), ev)
}

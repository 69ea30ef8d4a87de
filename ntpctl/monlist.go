package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"

	"github.com/ntpctl/ntpctl"
	"github.com/ntpctl/ntpctl/enrich"
	"github.com/ntpctl/ntpctl/mode7"
	"github.com/ntpctl/ntpctl/report"
)

const monlistUsage = `Usage: ntpctl monlist [flags] HOST[:PORT]

Sends one Mode 7 REQ_MON_GETLIST_1 request (monlist, 48 bytes, implementation 3, as
nmap and most scanners send it) and prints the monitor list as ntpdc -n -c monlist does,
IPv6 clients included, followed by the packets and bytes that came back and the
amplification: reply bytes divided by request bytes (UDP payloads).

A server with monlist disabled (ntpd 4.2.7p26 and later with "enable mode7") answers
with error 4, INFO_ERR_NODATA, as older ntpd does with monitoring off or an empty list;
ntpsec and a default ntpd 4.2.8 do not answer at all.
Columns: avgint and lstint are seconds (average interval, since the last packet),
rstr the restriction flags in hexadecimal, m the client's NTP mode, ver its version.

--json prints the query's record, as the scanner's JSON lines have it: the entries
under monitor.entries with avgint, lstint and rstr as avg_int, last_int and restrict
(a number); monlist disabled is status "server_error" with monitor.error_code 4.
`

// monlistDisabled reports the error reply of a server with monlist
// disabled: Mode 7 error 4, INFO_ERR_NODATA.
func monlistDisabled(r *ntpctl.Result[mode7.Reply]) bool {
	var ie mode7.InfoErr
	return r.Status == ntpctl.StatusServerError && errors.As(r.Err, &ie) && ie == mode7.InfoErrNoData
}

func (e env) monlist(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c, target, code := e.oneHost(ctx, "monlist", monlistUsage, exitStatusHelp, args, stdout, stderr)
	if code >= 0 {
		return code
	}
	r, err := ntpctl.Query(ctx, e.config(&c), ntpctl.MonList(), target)
	if err != nil {
		return failure(stderr, "monlist", err)
	}
	if r.Status == ntpctl.StatusSendError || r.Status == ntpctl.StatusBlocked {
		return failure(stderr, "monlist", fmt.Errorf("%s: %s", target, errText(r.Err)))
	}
	if c.json {
		rec := report.NewRecord(&r, enrich.Result{})
		if err := writeJSON(stdout, &rec); err != nil {
			return failure(stderr, "monlist", err)
		}
	} else {
		printMonlist(stdout, &r)
	}
	return statusExit(r.Status)
}

// printMonlist prints a monlist result: the table as ntpdc prints it,
// then what the outcome amounts to.
func printMonlist(w io.Writer, r *ntpctl.Result[mode7.Reply]) {
	if len(r.Value.Entries) > 0 {
		writeMonTable(w, r.Value.ItemSize, r.Value.Entries)
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w, monlistSummary(r))
}

// monlistSummary is one line on the outcome and the amplification.
func monlistSummary(r *ntpctl.Result[mode7.Reply]) string {
	t := r.Target.String()
	ev := evidence(r.Packets, r.Bytes, r.RequestBytes, r.Amplification())
	switch {
	case r.Status == ntpctl.StatusOK:
		if r.Bytes <= r.RequestBytes { // an empty list: ntpd says INFO_ERR_NODATA instead
			return fmt.Sprintf("%s: monlist answered: %s, %s; no larger than the request.",
				t, plural(len(r.Value.Entries), "entry"), ev)
		}
		return fmt.Sprintf("%s: monlist answered: %s, %s. This server is a monlist amplifier.",
			t, plural(len(r.Value.Entries), "entry"), ev)
	case monlistDisabled(r):
		return fmt.Sprintf("%s: monlist disabled: the server answered with error 4 (INFO_ERR_NODATA); %s.", t, ev)
	case r.Status == ntpctl.StatusServerError:
		return fmt.Sprintf("%s: monlist refused: %s; %s.", t, errText(r.Err), ev)
	case r.Status == ntpctl.StatusNoAnswer:
		return fmt.Sprintf("%s: no answer to monlist (%s sent, no reply within the timeout).", t,
			plural(r.Attempts, "request"))
	case r.Status == ntpctl.StatusClosed || r.Status == ntpctl.StatusUnreachable || r.Status == ntpctl.StatusProhibited:
		return fmt.Sprintf("%s: %s.", t, icmpText(r.Status, r.Err))
	case r.Status == ntpctl.StatusPartial:
		return fmt.Sprintf("%s: monlist answered in part (%s; %s received): %s.", t, errText(r.Err),
			plural(len(r.Value.Entries), "entry"), ev)
	}
	return fmt.Sprintf("%s: unusable reply to monlist (%s): %s.", t, errText(r.Err), ev)
}

// writeMonTable prints entries as ntpdc -n -c monlist does (ntpdc_ops.c,
// monlist), choosing the layout by the reply's item size as ntpdc does.
// Addresses are never cut: ntpdc truncates the remote address to 22
// characters, which makes IPv6 clients unreadable.
func writeMonTable(w io.Writer, itemSize int, entries []mode7.MonitorEntry) {
	addr := func(a netip.Addr) string {
		if !a.IsValid() {
			return "0.0.0.0"
		}
		return a.String()
	}
	switch itemSize {
	case mode7.ItemSizeMonitor, mode7.ItemSizeMonitorV4:
		fmt.Fprintln(w, "     address               port     count mode ver rstr avgint  lstint")
		fmt.Fprintln(w, strings.Repeat("=", 79))
		for _, e := range entries {
			fmt.Fprintf(w, "%-25s %5d %9d %4d %2d %9x %9d %9d\n", addr(e.Addr), e.Port, e.Count, e.Mode, e.Version,
				e.Restrict, e.AvgInt, e.LastInt)
		}
	case mode7.ItemSizeOldMonitor, mode7.ItemSizeOldMonitorV4:
		fmt.Fprintln(w, "     address          port     count  mode version  lasttime firsttime")
		fmt.Fprintln(w, strings.Repeat("=", 70))
		for _, e := range entries {
			fmt.Fprintf(w, "%-20s %5d %9d %4d   %3d %9d %9d\n", addr(e.Addr), e.Port, e.Count, e.Mode, e.Version,
				e.LastInt, e.FirstInt)
		}
	default:
		fmt.Fprintln(w, "remote address          port local address      count m ver rstr avgint  lstint")
		fmt.Fprintln(w, strings.Repeat("=", 79))
		for _, e := range entries {
			fmt.Fprintf(w, "%-22s %5d %-15s %8d %d %d %6x %6d %7d\n", addr(e.Addr), e.Port, addr(e.LocalAddr), e.Count,
				e.Mode, e.Version, e.Restrict, e.AvgInt, e.LastInt)
		}
	}
}

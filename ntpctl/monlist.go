package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"

	"github.com/ntpctl/ntpctl"
	"github.com/ntpctl/ntpctl/mode7"
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
`

// monEntryJSON is one monitor entry in --json output.
type monEntryJSON struct {
	Remote   string `json:"remote"`
	Port     uint16 `json:"port"`
	Local    string `json:"local,omitempty"`
	Count    uint32 `json:"count"`
	Mode     uint8  `json:"mode"`
	Version  uint8  `json:"version"`
	Restrict uint32 `json:"restrict"`
	AvgInt   uint32 `json:"avgint"`
	LastInt  uint32 `json:"lstint"`
	FirstInt uint32 `json:"firstint,omitempty"`
	Flags    uint32 `json:"flags,omitempty"`
}

// monlistJSON is the --json output of monlist (and part of check's).
type monlistJSON struct {
	Target        string         `json:"target"`
	Outcome       string         `json:"outcome"`
	Status        ntpctl.Status  `json:"status"`
	Error         string         `json:"error,omitempty"`
	ErrorCode     *int           `json:"error_code,omitempty"`
	ItemSize      int            `json:"item_size,omitempty"`
	NumEntries    int            `json:"num_entries"`
	Entries       []monEntryJSON `json:"entries,omitempty"`
	Missing       []int          `json:"missing,omitempty"` // sequence numbers ([]uint8 would be base64)
	Packets       int            `json:"packets"`
	Bytes         int            `json:"bytes"`
	RequestBytes  int            `json:"request_bytes"`
	Attempts      int            `json:"attempts"`
	Amplification float64        `json:"amplification"`
	RTTms         float64        `json:"rtt_ms,omitempty"`
}

// monlistOutcome names the outcome of a monlist query.
func monlistOutcome(r *ntpctl.Result[mode7.Reply]) string {
	var ie mode7.InfoErr
	switch {
	case r.Status == ntpctl.StatusOK:
		return "amplifier"
	case r.Status == ntpctl.StatusServerError && errors.As(r.Err, &ie) && ie == mode7.InfoErrNoData:
		return "monlist-disabled"
	case r.Status == ntpctl.StatusServerError:
		return "refused"
	case r.Status == ntpctl.StatusNoAnswer:
		return "no-answer"
	case r.Status == ntpctl.StatusPartial:
		return "partial"
	case r.Status == ntpctl.StatusProtocolError:
		return "malformed"
	}
	return r.Status.String()
}

func toMonlistJSON(r *ntpctl.Result[mode7.Reply], withEntries bool) monlistJSON {
	j := monlistJSON{
		Target: r.Target.String(), Outcome: monlistOutcome(r), Status: r.Status, Error: errText(r.Err),
		ItemSize: r.Value.ItemSize, NumEntries: len(r.Value.Entries),
		Packets: r.Packets, Bytes: r.Bytes, RequestBytes: r.RequestBytes, Attempts: r.Attempts,
		Amplification: round2(r.Amplification()), RTTms: ms(r.RTT),
	}
	for _, seq := range r.Value.Missing {
		j.Missing = append(j.Missing, int(seq))
	}
	var ie mode7.InfoErr
	if errors.As(r.Err, &ie) {
		c := int(ie)
		j.ErrorCode = &c
	}
	if withEntries {
		j.Entries = make([]monEntryJSON, 0, len(r.Value.Entries))
		for _, e := range r.Value.Entries {
			je := monEntryJSON{Remote: e.Addr.String(), Port: e.Port, Count: e.Count, Mode: e.Mode, Version: e.Version,
				Restrict: e.Restrict, AvgInt: e.AvgInt, LastInt: e.LastInt, FirstInt: e.FirstInt, Flags: e.Flags}
			if e.LocalAddr.IsValid() {
				je.Local = e.LocalAddr.String()
			}
			j.Entries = append(j.Entries, je)
		}
	}
	return j
}

func round2(f float64) float64 { return float64(int64(f*100+0.5)) / 100 }

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
		writeJSON(stdout, toMonlistJSON(&r, true))
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
	switch monlistOutcome(r) {
	case "amplifier":
		if r.Bytes <= r.RequestBytes { // an empty list: ntpd says INFO_ERR_NODATA instead
			return fmt.Sprintf("%s: monlist answered: %s, %s; no larger than the request.",
				t, plural(len(r.Value.Entries), "entry"), ev)
		}
		return fmt.Sprintf("%s: monlist answered: %s, %s. This server is a monlist amplifier.",
			t, plural(len(r.Value.Entries), "entry"), ev)
	case "monlist-disabled":
		return fmt.Sprintf("%s: monlist disabled: the server answered with error 4 (INFO_ERR_NODATA); %s.", t, ev)
	case "refused":
		return fmt.Sprintf("%s: monlist refused: %s; %s.", t, errText(r.Err), ev)
	case "no-answer":
		return fmt.Sprintf("%s: no answer to monlist (%s sent, no reply within the timeout).", t,
			plural(r.Attempts, "request"))
	case "partial":
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

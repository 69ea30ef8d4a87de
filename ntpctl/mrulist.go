package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/ntpctl/ntpctl"
	"github.com/ntpctl/ntpctl/mode6"
	"github.com/ntpctl/ntpctl/report"
)

const mrulistUsage = `Usage: ntpctl mrulist [flags] HOST[:PORT]

Fetches the server's MRU list as ntpq -c mrulist does: a Mode 6 REQ_NONCE, then READ_MRU
requests with that nonce, each naming the newest entries already received, until the
server says the list is done. It prints the list as ntpsec's ntpq prints it, newest first:
lstint (seconds since the client's last packet), avgint (mean seconds between its
packets), rstr (the restrict mask in hexadecimal), r (K kiss-o'-death, L limited), m and
v (mode and version of its last packet), count, score and drop (ntpsec's rate limiting),
rport and the client's address; then what the outcome amounts to.

The MRU list is ntpd's successor of monlist (ntpd 4.2.8, ntpsec). It is not an amplifier,
as the nonce proves the asker's address, but a server that gives it to anyone shows
everyone its recent clients' addresses. ntpsec and ntpd answer it unless told
"restrict default nomrulist" (ntpsec) or "restrict default noquery".
--json prints one object (report.JSONMRUList, schema ntpctl_mrulist) with the entries.
`

// ntpsec's restrict bits that ntpq's r column shows (include/ntp.h).
const (
	resLimited = 0x0020
	resKoD     = 0x0400
)

func (e env) mrulist(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var c common
	probe := &ntpctl.MRUListProbe{}
	fs := newFlags("mrulist", mrulistUsage, exitStatusHelp, &c)
	fs.IntVar(&probe.Frags, "frags", 32, "fragments asked per READ_MRU reply (`N`, 1 to 128)")
	fs.IntVar(&probe.MaxEntries, "max-entries", 10000, "stop after `N` distinct clients")
	fs.IntVar(&probe.MaxRequests, "max-requests", 256, "stop after `N` READ_MRU requests (at most 65535)")
	pos, code := parseArgs(fs, args, &c, stdout, stderr)
	if code >= 0 {
		return code
	}
	if len(pos) != 1 {
		return usageError(stderr, fs, fmt.Errorf("want one HOST[:PORT], got %d arguments", len(pos)))
	}
	if probe.Frags < 1 || probe.Frags > 128 || probe.MaxEntries < 1 || probe.MaxRequests < 1 || probe.MaxRequests > 65535 {
		return usageError(stderr, fs, errors.New("--frags is 1 to 128; --max-entries at least 1; --max-requests 1 to 65535"))
	}
	target, err := e.target(ctx, pos[0], uint16(c.port))
	if err != nil {
		return failure(stderr, "mrulist", err)
	}
	cfg := e.config(&c)
	// A whole list: room for the caps above, not the scanner's.
	cfg.MaxPackets = probe.MaxRequests*probe.Frags + 1
	cfg.MaxBytes = cfg.MaxPackets * (mode6.MaxPacketLen + 64)
	cfg.MaxDuration = time.Minute
	r, err := ntpctl.Query(ctx, cfg, probe, target)
	if err != nil {
		return failure(stderr, "mrulist", err)
	}
	if r.Status == ntpctl.StatusSendError || r.Status == ntpctl.StatusBlocked {
		return failure(stderr, "mrulist", fmt.Errorf("%s: %s", target, errText(r.Err)))
	}
	if c.json {
		if err := writeJSON(stdout, mruJSON(&r)); err != nil {
			return failure(stderr, "mrulist", err)
		}
	} else {
		printMRUList(stdout, &r)
	}
	return statusExit(r.Status)
}

// printMRUList prints the list as ntpsec's ntpq -c mrulist does, then the
// outcome.
func printMRUList(w io.Writer, r *ntpctl.Result[ntpctl.MRUResult]) {
	if len(r.Value.Entries) > 0 {
		fmt.Fprintln(w, " lstint avgint rstr r m v  count    score   drop rport remote address")
		fmt.Fprintln(w, strings.Repeat("=", 69))
		for _, e := range report.MRUEntries(&r.Value, r.Time) {
			var avg string
			switch {
			case e.Count <= 1 || e.AvgInt > 5:
				avg = fmt.Sprintf("%6d", int64(e.AvgInt+0.5))
			case e.AvgInt >= 1:
				avg = fmt.Sprintf("%6.2f", e.AvgInt)
			default:
				avg = fmt.Sprintf("%6.3f", e.AvgInt)
			}
			code := '.'
			switch {
			case e.Restrict&resKoD != 0:
				code = 'K'
			case e.Restrict&resLimited != 0:
				code = 'L'
			}
			fmt.Fprintf(w, "%7d %s %4x %c %d %d %6d %8.3f %6d %5d %s\n", e.LstInt, avg, uint16(e.Restrict), code,
				e.Mode, e.Version, e.Count, e.Score, e.Dropped, e.Port, e.IP)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w, mruSummary(r))
}

// mruSummary is one line on the outcome.
func mruSummary(r *ntpctl.Result[ntpctl.MRUResult]) string {
	t, v := r.Target.String(), &r.Value
	n := plural(len(v.Entries), "client")
	pages := plural(v.Pages, "page")
	switch {
	case r.Status == ntpctl.StatusOK:
		return fmt.Sprintf("%s: MRU list answered: %s in %s, the whole list (%s, %s). "+
			"Anyone may read this server's recent clients: restrict the list (restrict default nomrulist, or noquery).",
			t, n, pages, plural(r.Packets, "packet"), plural(r.Bytes, "byte"))
	case r.Status == ntpctl.StatusPartial:
		why := "cut short"
		switch {
		case v.Truncated:
			why = "stopped at --max-entries"
		case r.Err != nil:
			why = errText(r.Err)
		}
		return fmt.Sprintf("%s: MRU list answered in part (%s): %s in %s. Anyone may read this server's recent clients.",
			t, why, n, pages)
	case r.Status == ntpctl.StatusServerError && v.Nonce:
		return fmt.Sprintf("%s: MRU list refused: %s (the nonce came).", t, errText(r.Err))
	case r.Status == ntpctl.StatusServerError:
		return fmt.Sprintf("%s: REQ_NONCE refused: %s; no MRU list.", t, errText(r.Err))
	case errors.Is(r.Err, ntpctl.ErrMRUNoList):
		return fmt.Sprintf("%s: a nonce came, but no answer to READ_MRU: no MRU list.", t)
	case r.Status == ntpctl.StatusNoAnswer:
		return fmt.Sprintf("%s: no answer to REQ_NONCE (%s sent, no reply within the timeout).", t,
			plural(r.Attempts, "request"))
	case noService(r.Status):
		return fmt.Sprintf("%s: %s.", t, icmpText(r.Status, r.Err))
	}
	return fmt.Sprintf("%s: unusable reply to the MRU list's requests (%s).", t, errText(r.Err))
}

// mruJSON is the --json object.
func mruJSON(r *ntpctl.Result[ntpctl.MRUResult]) report.JSONMRUList {
	v := &r.Value
	j := report.JSONMRUList{Time: r.Time.UTC(), IP: r.Target.Addr().String(), Port: r.Target.Port(), Status: r.Status.String(),
		Nonce: v.Nonce, Complete: v.Complete, Truncated: v.Truncated, Pages: v.Pages,
		Packets: r.Packets, Bytes: r.Bytes, RequestBytes: r.RequestBytes, Amplification: r.Amplification()}
	if r.Err != nil {
		j.Error = errText(r.Err)
	}
	j.Entries = report.MRUEntries(v, r.Time)
	return j
}

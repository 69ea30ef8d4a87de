package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/ntpctl/ntpctl"
	"github.com/ntpctl/ntpctl/enrich"
	"github.com/ntpctl/ntpctl/mode6"
	"github.com/ntpctl/ntpctl/mode7"
	"github.com/ntpctl/ntpctl/report"
)

const checkUsage = `Usage: ntpctl check [flags] HOST[:PORT]

Sends the two queries Shadowserver's NTP reports are built from, at the same time:
Mode 7 monlist (the "NTP Monitor" report, CVE-2013-5211) and Mode 6 READVAR (the
"NTP Version" report), then says whether the host can be abused for reflection DDoS,
by how much (reply bytes divided by request bytes), and how to fix it.

--json prints the time, ip and port, the verdict ("monlist_amplifier",
"mode6_amplifier", "not_amplifier" or "no_ntp_service"), its amplification, the remediation and the
two queries' records under monitor and version, as monlist --json and rv --json
print them.
`

// Remediation, as the project's seed and ntp.org's advice for
// CVE-2013-5211 put it: upgrade, turn monitoring off, refuse queries.
var (
	fixUpgrade = "Upgrade to ntpd 4.2.7p26 or later (a current 4.2.8 release) or to ntpsec: they have no monlist."
	fixMonitor = `Until then, turn monitoring off in ntp.conf:  disable monitor`
	fixNoquery = `Refuse status queries from other hosts in ntp.conf (time service keeps working):
       restrict default kod limited nomodify notrap nopeer noquery
       restrict -6 default kod limited nomodify notrap nopeer noquery
       restrict 127.0.0.1
       restrict ::1`
	fixMode7 = `Mode 7 is still answered, an attack surface even without monlist. On ntpd 4.2.8,
       remove "enable mode7" from ntp.conf unless you use ntpdc; older ntpd always answers
       Mode 7 (error 4 there means monitoring is off or the list is empty): upgrade.`
)

func (e env) check(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c, target, code := e.oneHost(ctx, "check", checkUsage, checkExitHelp, args, stdout, stderr)
	if code >= 0 {
		return code
	}
	cfg := e.config(&c)
	var (
		wg        sync.WaitGroup
		mon       ntpctl.Result[mode7.Reply]
		rv        ntpctl.Result[mode6.Reply]
		monE, rvE error
	)
	wg.Add(2)
	go func() { defer wg.Done(); mon, monE = ntpctl.Query(ctx, cfg, ntpctl.MonList(), target) }()
	go func() { defer wg.Done(); rv, rvE = ntpctl.Query(ctx, cfg, ntpctl.ReadVar(), target) }()
	wg.Wait()
	for _, err := range []error{monE, rvE} {
		if err != nil {
			return failure(stderr, "check", err)
		}
	}
	for _, r := range []struct {
		s   ntpctl.Status
		err error
	}{{mon.Status, mon.Err}, {rv.Status, rv.Err}} {
		if r.s == ntpctl.StatusSendError || r.s == ntpctl.StatusBlocked {
			return failure(stderr, "check", fmt.Errorf("%s: %s", target, errText(r.err)))
		}
	}

	j := report.JSONCheck{Time: queryTime(mon.Time, rv.Time), IP: target.Addr(), Port: target.Port(),
		Remediation: []string{}, Monitor: report.NewRecord(&mon, enrich.Result{}),
		Version: report.NewRecord(&rv, enrich.Result{})}
	// What counts is what came back, decodable or not: a broken reply
	// reflects as well as a good one. Error replies are never larger than
	// the request.
	monAmp := mon.Status != ntpctl.StatusServerError && mon.Bytes > mon.RequestBytes
	rvAmp := rv.Status != ntpctl.StatusServerError && rv.Bytes > rv.RequestBytes
	exit := exitOK
	switch {
	case monAmp:
		j.Verdict, exit = report.VerdictMonlistAmplifier, exitAmplifier
		j.Amplification = mon.Amplification()
		j.Remediation = append(j.Remediation, fixUpgrade, fixMonitor, fixNoquery)
	case rvAmp:
		j.Verdict, exit = report.VerdictMode6Amplifier, exitMode6Only
		j.Amplification = rv.Amplification()
		j.Remediation = append(j.Remediation, fixNoquery)
	case noService(mon.Status) && noService(rv.Status):
		j.Verdict, exit = report.VerdictNoService, exitNoService
	default:
		j.Verdict = report.VerdictNotAmplifier
	}
	if mon.Status == ntpctl.StatusServerError { // monlist disabled or refused: Mode 7 is answered
		j.Remediation = append(j.Remediation, fixMode7)
	}
	if c.json {
		if err := writeJSON(stdout, &j); err != nil {
			return failure(stderr, "check", err)
		}
		return exit
	}

	w := stdout
	fmt.Fprintf(w, "%s\n", target)
	fmt.Fprintf(w, "  monlist (Mode 7):  %s\n", checkLine(monlistSummary(&mon), target.String()))
	rvLine := checkLine(rvSummary(&rv, 0), target.String())
	if v, ok := rv.Value.Vars.Lookup("version"); ok {
		rvLine += "\n                     version: " + termSafe(v)
	}
	fmt.Fprintf(w, "  READVAR (Mode 6):  %s\n\n", rvLine)
	switch j.Verdict {
	case report.VerdictMonlistAmplifier:
		fmt.Fprintf(w, "Verdict: AMPLIFIER. monlist returns %.1f times the bytes of the request (%d bytes for %d).\n",
			mon.Amplification(), mon.Bytes, mon.RequestBytes)
		fmt.Fprintln(w, "Anyone who spoofs a victim's address can reflect that much traffic at it (CVE-2013-5211).")
		if rvAmp {
			fmt.Fprintf(w, "READVAR adds a factor of %.1f.\n", rv.Amplification())
		}
	case report.VerdictMode6Amplifier:
		fmt.Fprintf(w, "Verdict: no monlist, but Mode 6 queries are answered: READVAR returns %.1f times the bytes\n",
			rv.Amplification())
		fmt.Fprintln(w, "of the request, enough for reflection and for Shadowserver's \"NTP Version\" report.")
	case report.VerdictNoService:
		fmt.Fprintf(w, "Verdict: no NTP service: %s.\n", icmpText(mon.Status, mon.Err))
		fmt.Fprintln(w, "Nothing here can be abused for reflection; check the address and port if you expected a server.")
	default:
		fmt.Fprintln(w, "Verdict: not an amplifier: no reply larger than the request.")
		if mon.Status == ntpctl.StatusNoAnswer && rv.Status == ntpctl.StatusNoAnswer {
			fmt.Fprintln(w, "Neither query was answered: queries are restricted, nothing listens there, or a firewall")
			fmt.Fprintln(w, "drops them. Check from outside your network as well.")
		}
	}
	if len(j.Remediation) > 0 {
		fmt.Fprintln(w, "\nRemediation:")
		for i, r := range j.Remediation {
			fmt.Fprintf(w, "  %d. %s\n", i+1, r)
		}
	}
	return exit
}

// queryTime is the time of a query made of several: the earliest that is
// set, in UTC.
func queryTime(ts ...time.Time) time.Time {
	var first time.Time
	for _, t := range ts {
		if !t.IsZero() && (first.IsZero() || t.Before(first)) {
			first = t
		}
	}
	return first.UTC()
}

// checkLine turns a command's summary into a line of check's report.
func checkLine(summary, target string) string {
	s := strings.TrimPrefix(summary, target+": ")
	return strings.TrimSuffix(s, " This server is a monlist amplifier.")
}

package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/ntpctl/ntpctl"
	"github.com/ntpctl/ntpctl/mode6"
	"github.com/ntpctl/ntpctl/mode7"
)

const checkUsage = `Usage: ntpctl check [flags] HOST[:PORT]

Sends the two queries Shadowserver's NTP reports are built from, at the same time:
Mode 7 monlist (the "NTP Monitor" report, CVE-2013-5211) and Mode 6 READVAR (the
"NTP Version" report), then says whether the host can be abused for reflection DDoS,
by how much (reply bytes divided by request bytes), and how to fix it.
`

// Verdicts of check.
const (
	verdictMonlist = "monlist-amplifier"
	verdictMode6   = "mode6-amplifier"
	verdictNone    = "not-amplifier"
)

// checkJSON is the --json output of check.
type checkJSON struct {
	Target        string      `json:"target"`
	Verdict       string      `json:"verdict"`
	Amplification float64     `json:"amplification"`
	Monlist       monlistJSON `json:"monlist"`
	ReadVar       rvJSON      `json:"rv"`
	Remediation   []string    `json:"remediation,omitempty"`
}

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

	j := checkJSON{Target: target.String(), Monlist: toMonlistJSON(&mon, false), ReadVar: toRVJSON(&rv, 0)}
	// What counts is what came back, decodable or not: a broken reply
	// reflects as well as a good one. Error replies are never larger than
	// the request.
	monAmp := mon.Status != ntpctl.StatusServerError && mon.Bytes > mon.RequestBytes
	rvAmp := rv.Status != ntpctl.StatusServerError && rv.Bytes > rv.RequestBytes
	exit := exitOK
	switch {
	case monAmp:
		j.Verdict, exit = verdictMonlist, exitAmplifier
		j.Amplification = round2(mon.Amplification())
		j.Remediation = []string{fixUpgrade, fixMonitor, fixNoquery}
	case rvAmp:
		j.Verdict, exit = verdictMode6, exitMode6Only
		j.Amplification = round2(rv.Amplification())
		j.Remediation = []string{fixNoquery}
	default:
		j.Verdict = verdictNone
	}
	if monlistOutcome(&mon) == "monlist-disabled" || monlistOutcome(&mon) == "refused" {
		j.Remediation = append(j.Remediation, fixMode7)
	}
	if c.json {
		writeJSON(stdout, j)
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
	case verdictMonlist:
		fmt.Fprintf(w, "Verdict: AMPLIFIER. monlist returns %.1f times the bytes of the request (%d bytes for %d).\n",
			mon.Amplification(), mon.Bytes, mon.RequestBytes)
		fmt.Fprintln(w, "Anyone who spoofs a victim's address can reflect that much traffic at it (CVE-2013-5211).")
		if rvAmp {
			fmt.Fprintf(w, "READVAR adds a factor of %.1f.\n", rv.Amplification())
		}
	case verdictMode6:
		fmt.Fprintf(w, "Verdict: no monlist, but Mode 6 queries are answered: READVAR returns %.1f times the bytes\n",
			rv.Amplification())
		fmt.Fprintln(w, "of the request, enough for reflection and for Shadowserver's \"NTP Version\" report.")
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

// checkLine turns a command's summary into a line of check's report.
func checkLine(summary, target string) string {
	s := strings.TrimPrefix(summary, target+": ")
	return strings.TrimSuffix(s, " This server is a monlist amplifier.")
}

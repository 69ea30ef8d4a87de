package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/ntpctl/ntpctl"
	"github.com/ntpctl/ntpctl/enrich"
	"github.com/ntpctl/ntpctl/mode6"
	"github.com/ntpctl/ntpctl/mode7"
	"github.com/ntpctl/ntpctl/report"
)

const checkUsage = `Usage: ntpctl check [flags] HOST[:PORT]...
       ntpctl check [flags] -i FILE

Sends the two queries Shadowserver's NTP reports are built from, at the same time:
Mode 7 monlist (the "NTP Monitor" report, CVE-2013-5211) and Mode 6 READVAR (the
"NTP Version" report), then says whether the host can be abused for reflection DDoS,
by how much (reply bytes divided by request bytes), and how to fix it.

--json prints the time, ip and port, the verdict ("monlist_amplifier",
"mode6_amplifier", "not_amplifier" or "no_ntp_service"), its amplification, the remediation and the
two queries' records under monitor and version, as monlist --json and rv --json
print them.

Several hosts (as arguments, or one per line of -i FILE) are checked together, at
--rate requests per second in all: each gets its report, then one line counts the
verdicts; with --json, one object per host and line (JSON lines). A host that cannot
be resolved or sent to is reported on stderr (and with --json as a line with "host" and
"error") and the others go on. The exit status is
that of the worst verdict: 5 before 6, then 1 if a host could not be checked, then 7
when no host has an NTP service.
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
	var c common
	var files hostFiles
	rate := 0
	fs := newFlags("check", checkUsage, checkExitHelp, &c)
	fs.Var(&files, "i", "read hosts from `file`, one HOST[:PORT] per line, # comments (repeatable; - for stdin)")
	fs.IntVar(&rate, "rate", 100, "at most this many `requests` per second in all, when several hosts are checked (0: no limit)")
	pos, code := parseArgs(fs, args, &c, stdout, stderr)
	if code >= 0 {
		return code
	}
	if rate < 0 {
		return usageError(stderr, fs, fmt.Errorf("--rate %d: want 0 (no limit) or more", rate))
	}
	hosts := pos
	for _, name := range files {
		got, err := readHosts(name, e.stdinOr())
		if err != nil {
			return failure(stderr, "check", err)
		}
		hosts = append(hosts, got...)
	}
	switch {
	case len(hosts) == 0 && len(files) > 0:
		return failure(stderr, "check", errors.New("no hosts in the files"))
	case len(hosts) == 0:
		return usageError(stderr, fs, errors.New("want one or more HOST[:PORT], or -i FILE"))
	case len(hosts) > maxHostsFile:
		return failure(stderr, "check", fmt.Errorf("more than %d hosts", maxHostsFile))
	}
	many := len(hosts) > 1 || len(files) > 0

	// Resolve; a host that fails ends the command when it is the only
	// one, and is reported and counted otherwise.
	var targets []netip.AddrPort
	failed := 0
	seen := map[netip.AddrPort]bool{}
	for _, r := range e.resolveAll(ctx, hosts, uint16(c.port)) {
		if r.err != nil {
			if !many {
				return failure(stderr, "check", r.err)
			}
			failed++
			fmt.Fprintf(stderr, "ntpctl check: %v\n", r.err)
			if c.json {
				if err := writeJSONLine(stdout, &report.JSONError{Command: "check", Host: r.arg, Error: r.err.Error()}); err != nil {
					return failure(stderr, "check", err)
				}
			}
			continue
		}
		if !seen[r.target] {
			seen[r.target] = true
			targets = append(targets, r.target)
		}
	}
	if ctx.Err() != nil {
		return failure(stderr, "check", ctx.Err())
	}
	cfg := e.config(&c)
	if many {
		cfg.Limiter = ntpctl.NewRateLimiter(float64(rate), 0)
	}
	var (
		wg        sync.WaitGroup
		mon       map[netip.AddrPort]ntpctl.Result[mode7.Reply]
		rv        map[netip.AddrPort]ntpctl.Result[mode6.Reply]
		monE, rvE error
	)
	wg.Add(2)
	go func() { defer wg.Done(); mon, monE = probeMany(ctx, cfg, ntpctl.MonList(), targets) }()
	go func() { defer wg.Done(); rv, rvE = probeMany(ctx, cfg, ntpctl.ReadVar(), targets) }()
	wg.Wait()
	for _, err := range []error{monE, rvE} {
		if err != nil {
			return failure(stderr, "check", err)
		}
	}

	var n checkCounts
	for i, target := range targets {
		m, v := mon[target], rv[target]
		if err := sendFailure(&m, &v); err != nil {
			if !many {
				return failure(stderr, "check", fmt.Errorf("%s: %s", target, err))
			}
			failed++
			fmt.Fprintf(stderr, "ntpctl check: %s: %s\n", target, err)
			if c.json {
				if err := writeJSONLine(stdout, &report.JSONError{Command: "check", Host: target.String(), Error: err.Error()}); err != nil {
					return failure(stderr, "check", err)
				}
			}
			continue
		}
		j, exit := judgeCheck(&m, &v)
		n.add(exit)
		switch {
		case c.json && !many:
			if err := writeJSON(stdout, &j); err != nil {
				return failure(stderr, "check", err)
			}
		case c.json:
			if err := writeJSONLine(stdout, &j); err != nil {
				return failure(stderr, "check", err)
			}
		default:
			if i > 0 {
				fmt.Fprintln(stdout)
			}
			printCheck(stdout, target, &m, &v, &j)
		}
	}
	if !many {
		return n.exit(0)
	}
	if !c.json {
		fmt.Fprintf(stdout, "\n%s checked: %d monlist %s, %d Mode 6 only, %d not %s, %d without NTP service",
			plural(len(targets)+failed, "host"), n.monlist, pluralWord(n.monlist, "amplifier"), n.mode6, n.not,
			pluralWord(n.not, "an amplifier"), n.noService)
		if failed > 0 {
			fmt.Fprintf(stdout, ", %d not checked (errors above)", failed)
		}
		fmt.Fprintln(stdout, ".")
	}
	return n.exit(failed)
}

// hostFiles collects the -i flags.
type hostFiles []string

func (h *hostFiles) String() string     { return strings.Join(*h, ",") }
func (h *hostFiles) Set(v string) error { *h = append(*h, v); return nil }

// sendFailure says why a host could not be checked at all: a request
// that could not be sent, or a refused target.
func sendFailure(mon *ntpctl.Result[mode7.Reply], rv *ntpctl.Result[mode6.Reply]) error {
	for _, r := range []struct {
		s   ntpctl.Status
		err error
	}{{mon.Status, mon.Err}, {rv.Status, rv.Err}} {
		if r.s == ntpctl.StatusSendError || r.s == ntpctl.StatusBlocked || r.s == ntpctl.StatusRepeated {
			return errors.New(errText(r.err))
		}
	}
	return nil
}

// checkCounts counts the verdicts of several hosts.
type checkCounts struct{ monlist, mode6, not, noService int }

func (n *checkCounts) add(exit int) {
	switch exit {
	case exitAmplifier:
		n.monlist++
	case exitMode6Only:
		n.mode6++
	case exitNoService:
		n.noService++
	default:
		n.not++
	}
}

// exit is the status of the hosts checked: the worst verdict (monlist
// before Mode 6), then errors, then no NTP service when no host has one.
func (n *checkCounts) exit(failed int) int {
	switch {
	case n.monlist > 0:
		return exitAmplifier
	case n.mode6 > 0:
		return exitMode6Only
	case failed > 0:
		return exitError
	case n.noService > 0 && n.not == 0:
		return exitNoService
	}
	return exitOK
}

// pluralWord is word for n, in the plural unless n is 1.
func pluralWord(n int, word string) string {
	if n == 1 {
		return word
	}
	if rest, ok := strings.CutPrefix(word, "an "); ok {
		return rest + "s"
	}
	return word + "s"
}

// judgeCheck says what the two replies of a host amount to, and the exit
// status of that verdict.
func judgeCheck(mon *ntpctl.Result[mode7.Reply], rv *ntpctl.Result[mode6.Reply]) (report.JSONCheck, int) {
	target := mon.Target
	j := report.JSONCheck{Time: queryTime(mon.Time, rv.Time), IP: target.Addr(), Port: target.Port(),
		Remediation: []string{}, Monitor: report.NewRecord(mon, enrich.Result{}),
		Version: report.NewRecord(rv, enrich.Result{})}
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
	return j, exit
}

// printCheck prints one host's check as text.
func printCheck(w io.Writer, target netip.AddrPort, mon *ntpctl.Result[mode7.Reply], rv *ntpctl.Result[mode6.Reply],
	j *report.JSONCheck) {
	rvAmp := rv.Status != ntpctl.StatusServerError && rv.Bytes > rv.RequestBytes
	fmt.Fprintf(w, "%s\n", target)
	fmt.Fprintf(w, "  monlist (Mode 7):  %s\n", checkLine(monlistSummary(mon), target.String()))
	rvLine := checkLine(rvSummary(rv, "READVAR"), target.String())
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

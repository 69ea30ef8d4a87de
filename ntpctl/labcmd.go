package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/ntpctl/ntpctl/internal/lab"
)

const labUsage = `Usage: ntpctl lab [flags]

Runs simulated NTP servers in the foreground until Ctrl-C: a few hundred 127.42.x.y
addresses and [::1], all on one UDP port, with the mix a real scan finds: monlist
amplifiers (monitor tables of a handful to 600 entries, IPv6 clients among them),
servers with monlist disabled, ntpsec and ntpd 4.2.8 servers that only answer Mode 6,
ntpd 4.2.4 and xntpd variable sets, silent addresses and a few hostile servers. The
mix is the same for the same --seed. Try ntpctl, ntpq, ntpdc, nmap or your own tools
on them; nothing leaves the loopback interface.

By default the lab takes port 123 when it can (ntpq and ntpdc cannot be told another
port; it needs root and a free port 123) and an ephemeral port otherwise. --timeout
and --retries are accepted and ignored; --port 0 asks for an ephemeral port.
`

type labOptions struct {
	seed  uint64
	hosts int
	list  bool
}

// labJSON is the output of lab --json: $defs/ntpctl_lab of the
// vocabulary's JSON Schema (report.Schema), in its style: the time, ip,
// snake_case values.
type labJSON struct {
	Time  time.Time     `json:"time"`
	Port  uint16        `json:"port"`
	Hosts []labHostJSON `json:"hosts"`
}

// labHostJSON is one host of labJSON ($defs/lab_host).
type labHostJSON struct {
	IP             netip.Addr `json:"ip"`
	Kind           string     `json:"kind"`
	Daemon         string     `json:"daemon,omitempty"`
	Hostile        string     `json:"hostile,omitempty"`
	MonlistEntries int        `json:"monlist_entries,omitempty"`
	PeerAssoc      uint16     `json:"peer_assoc,omitempty"`
}

// kindName is the name of a lab host's kind in JSON: lab.Kind's name
// (which the text output prints as it is) in snake_case, as the statuses
// are spelled.
func kindName(k lab.Kind) string { return strings.ReplaceAll(k.String(), "-", "_") }

func (e env) lab(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var c common
	var o labOptions
	fs := newFlags("lab", labUsage, "Exit status:\n  0    stopped by Ctrl-C (or SIGTERM)\n  1    error: bad usage, the port cannot be bound\n", &c)
	fs.Uint64Var(&o.seed, "seed", 1, "`seed` of the mix of hosts")
	fs.IntVar(&o.hosts, "hosts", 300, "")
	fs.BoolVar(&o.list, "list", false, "print every host, not a summary")
	fs.Lookup("port").Usage = "UDP `port` every host answers on; 0 for an ephemeral one"
	fs.Lookup("hosts").Usage = "number of IPv4 `addresses`, 32 to 16384"
	c.portZeroOK = true
	pos, code := parseArgs(fs, args, &c, stdout, stderr)
	if code >= 0 {
		return code
	}
	portSet := false
	fs.Visit(func(f *flag.Flag) { portSet = portSet || f.Name == "port" })
	if len(pos) != 0 {
		return usageError(stderr, fs, fmt.Errorf("unexpected argument %q", pos[0]))
	}
	if o.hosts < 32 || o.hosts > 16384 {
		return usageError(stderr, fs, fmt.Errorf("--hosts %d: want 32 to 16384", o.hosts))
	}
	cfg := lab.Config{Seed: o.seed, Hosts: o.hosts, Port: uint16(c.port)}
	started := time.Now().UTC()
	l, err := lab.Start(ctx, cfg)
	fallback := ""
	if err != nil && !portSet {
		fallback = fmt.Sprintf("(port 123 is not available: %v; ntpq and ntpdc need it)", errText(err))
		cfg.Port = 0
		l, err = lab.Start(ctx, cfg)
	}
	if err != nil {
		// Without an IPv6 loopback interface, do without [::1].
		cfg.NoIPv6 = true
		if l6, err6 := lab.Start(ctx, cfg); err6 == nil {
			l, err = l6, nil
			fallback = strings.TrimSpace(fallback + "\n([::1] left out: " + "cannot listen there)")
		}
	}
	if err != nil {
		return failure(stderr, "lab", err)
	}
	defer l.Close()

	hosts := l.Hosts()
	if c.json {
		j := labJSON{Time: started, Port: l.Port()}
		for _, h := range hosts {
			j.Hosts = append(j.Hosts, labHostJSON{IP: h.Addr.Addr(), Kind: kindName(h.Kind), Daemon: h.Daemon,
				Hostile: h.Hostile, MonlistEntries: h.Monlist.Entries, PeerAssoc: h.PeerAssoc})
		}
		if err := writeJSON(stdout, &j); err != nil {
			return failure(stderr, "lab", err)
		}
	} else {
		printLab(stdout, l, hosts, o.list, fallback)
	}
	if e.labReady != nil {
		e.labReady(l.Targets())
	}
	<-ctx.Done()
	st := l.Stats()
	if !c.json {
		fmt.Fprintf(stdout, "\nntpctl lab: stopped after %s (%d answered with %s).\n",
			plural(int(st.Requests), "request"), st.Requests-st.Ignored, plural(int(st.Replies), "datagram"))
	}
	return exitOK
}

// hostDesc describes a lab host in a few words.
func hostDesc(h lab.Host) string {
	var parts []string
	if h.Daemon != "" {
		parts = append(parts, h.Daemon)
	}
	if h.Hostile != "" {
		parts = append(parts, h.Hostile)
	}
	if h.Monlist.Entries > 0 {
		parts = append(parts, plural(h.Monlist.Entries, "monitor entry"))
	}
	return strings.Join(parts, ", ")
}

func hostArg(a netip.AddrPort) string {
	if a.Port() == 123 {
		return a.Addr().String()
	}
	return a.String()
}

func printLab(w io.Writer, l *lab.Lab, hosts []lab.Host, list bool, fallback string) {
	port := l.Port()
	_, v6 := l.Host(netip.IPv6Loopback())
	where := l.Prefix().String()
	if v6 {
		where += " and [::1]"
	}
	fmt.Fprintf(w, "ntpctl lab: %d simulated NTP servers on loopback (%s), UDP port %d. Ctrl-C stops them.\n",
		len(hosts), where, port)
	if fallback != "" {
		fmt.Fprintln(w, fallback)
	}
	fmt.Fprintln(w)
	if list {
		for _, h := range hosts {
			fmt.Fprintln(w, strings.TrimRight(fmt.Sprintf("  %-22s %-17s %s", h.Addr, h.Kind, hostDesc(h)), " "))
		}
		fmt.Fprintln(w)
	}
	var amp, big, dis, sec, ntpd, silent lab.Host
	counts := map[lab.Kind]int{}
	for _, h := range hosts {
		counts[h.Kind]++
		switch {
		case h.Kind == lab.Amplifier && h.Addr.Addr().Is4() && h.Monlist.Entries < 100 && !amp.Addr.IsValid():
			amp = h
		case h.Kind == lab.Amplifier && h.Monlist.Entries == 600 && !big.Addr.IsValid():
			big = h
		case h.Kind == lab.MonlistDisabled && !dis.Addr.IsValid():
			dis = h
		case h.Kind == lab.ReadVarOnly && strings.HasPrefix(h.Daemon, "ntpsec") && !sec.Addr.IsValid():
			sec = h
		case h.Kind == lab.ReadVarOnly && strings.HasPrefix(h.Daemon, "ntpd") && !ntpd.Addr.IsValid():
			ntpd = h
		case h.Kind == lab.Silent && !silent.Addr.IsValid():
			silent = h
		}
	}
	if !list {
		fmt.Fprintf(w, "  %-17s %5s  %s\n", "kind", "hosts", "for example")
		for _, k := range []lab.Kind{lab.Amplifier, lab.MonlistDisabled, lab.ReadVarOnly, lab.Silent, lab.Hostile} {
			ex := ""
			for _, h := range []lab.Host{big, dis, sec, silent} {
				if h.Kind == k && h.Addr.IsValid() {
					ex = h.Addr.Addr().String() + "  " + hostDesc(h)
				}
			}
			if k == lab.Hostile {
				var names []string
				for _, h := range l.OfKind(lab.Hostile) {
					names = append(names, h.Hostile)
				}
				ex = strings.Join(names, ", ")
			}
			fmt.Fprintln(w, strings.TrimRight(fmt.Sprintf("  %-17s %5d  %s", k, counts[k], ex), " "))
		}
		fmt.Fprintln(w, "  (ntpctl lab --list prints every host)")
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w, "Try, in another terminal:")
	lines := [][2]string{
		{"ntpctl check " + hostArg(big.Addr), "a full monitor table: 100 packets"},
		{"ntpctl monlist " + hostArg(amp.Addr), hostDesc(amp)},
		{"ntpctl monlist " + hostArg(dis.Addr), "monlist disabled (error 4)"},
		{"ntpctl rv " + hostArg(sec.Addr), hostDesc(sec)},
		{"ntpctl rv --assoc " + strconv.Itoa(int(ntpd.PeerAssoc)) + " " + hostArg(ntpd.Addr), "a peer association"},
		{"ntpctl check " + hostArg(silent.Addr), "silent"},
	}
	if v6 {
		lines = append(lines, [2]string{"ntpctl check " + hostArg(netip.AddrPortFrom(netip.IPv6Loopback(), port)), "IPv6"})
	}
	for _, line := range lines {
		fmt.Fprintf(w, "  %-50s # %s\n", line[0], line[1])
	}
	nmapPort := strconv.Itoa(int(port))
	fmt.Fprintf(w, "  %s\n", "nmap -n -Pn -sU -p U:"+nmapPort+" --script ntp-info,ntp-monlist "+big.Addr.Addr().String())
	if port == 123 {
		fmt.Fprintf(w, "  %s\n", "ntpq -n -c rv "+sec.Addr.Addr().String())
		fmt.Fprintf(w, "  %-50s # ntp.org's ntpdc, where packaged\n", "ntpdc -n -c monlist "+amp.Addr.Addr().String())
	} else {
		fmt.Fprintln(w, "  (ntpq and ntpdc only talk to port 123: run ntpctl lab as root with port 123 free)")
	}
}

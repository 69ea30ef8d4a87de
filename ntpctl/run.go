package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/ntpctl/ntpctl"
	"github.com/ntpctl/ntpctl/internal/buildinfo"
	"github.com/ntpctl/ntpctl/report"
)

// Exit statuses, the same for every command (check adds its verdicts).
const (
	exitOK        = 0   // answered (monlist: the host is a monlist amplifier)
	exitError     = 1   // bad usage, unresolvable or refused host, socket error
	exitNoAnswer  = 2   // nothing came back within the timeout and retries
	exitRefused   = 3   // an error reply: monlist disabled (Mode 7 error 4), Mode 6 error code
	exitBadReply  = 4   // a reply came back incomplete or malformed, or spoofing was suspected
	exitAmplifier = 5   // check: the reply to monlist is larger than the request
	exitMode6Only = 6   // check: no monlist amplification, but READVAR replies larger than the request
	exitNoService = 7   // ICMP said no NTP service: port closed, host unreachable, prohibited
	exitInterrupt = 130 // interrupted (Ctrl-C)
)

const exitStatusHelp = `Exit status:
  0    answered (monlist: the monitor list came back, the host is an amplifier)
  1    error: bad usage, unresolvable or refused host, socket error
  2    no answer within the timeout and retries
  3    refused: an error reply (monlist disabled: Mode 7 error 4, INFO_ERR_NODATA;
       a Mode 6 error such as an unknown association or variable)
  4    a reply came back, but incomplete or malformed, or forged replies were
       suspected (datagrams from the host answering other requests)
  7    no NTP service: an ICMP error came back (port unreachable: nothing listens
       there; host unreachable; administratively prohibited)
  130  interrupted (Ctrl-C)
`

const checkExitHelp = `Exit status:
  0    not an amplifier: no reply larger than the request (silent, or error replies only)
  1    error: bad usage, unresolvable or refused host, socket error
  5    monlist amplifier: the reply to monlist is larger than the request
  6    no monlist amplification, but READVAR (Mode 6) replies larger than the request
  7    no NTP service: ICMP said so for both queries (port closed, host unreachable,
       prohibited)
  130  interrupted (Ctrl-C)
`

// env is what run needs from the outside world; tests replace it.
type env struct {
	// listenUDP opens the prober's sockets; nil means net.ListenUDP.
	listenUDP func(network string, laddr *net.UDPAddr) (*net.UDPConn, error)
	// lookup resolves host names; nil means net.DefaultResolver.
	lookup func(ctx context.Context, host string) ([]netip.Addr, error)
	// labReady, when set, receives the running lab (tests).
	labReady func(addr []netip.AddrPort)
	// stdin is what "-i -" reads; nil means os.Stdin.
	stdin io.Reader
}

// stdinOr returns e.stdin, or os.Stdin.
func (e env) stdinOr() io.Reader {
	if e.stdin != nil {
		return e.stdin
	}
	return os.Stdin
}

// run is the whole program: it parses args (without the program name),
// runs a command and returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return env{}.run(ctx, args, stdout, stderr)
}

type command struct {
	name, summary string
	run           func(e env, ctx context.Context, args []string, stdout, stderr io.Writer) int
}

var commands []command

func init() {
	commands = []command{
		{"monlist", "ask for the Mode 7 monitor list, as ntpdc -n -c monlist does", env.monlist},
		{"rv", "read variables with Mode 6 READVAR, as ntpq -c rv does", env.rv},
		{"peers", "list the associations with Mode 6 READSTAT, as ntpq -c as does", env.peers},
		{"mrulist", "fetch the MRU list (recent clients) with Mode 6 READ_MRU, as ntpq -c mrulist does", env.mrulist},
		{"as", "the same as peers", env.peers},
		{"check", "run both queries and say whether the host is an amplifier", env.check},
		{"verify", "ask again about every row of received reports", env.verify},
		{"lab", "run simulated NTP servers on loopback until Ctrl-C", env.lab},
		{"version", "print the module version and VCS revision of this build", env.version},
		{"help", "describe the commands", env.help},
	}
}

const mainUsage = `ntpctl verifies whether an NTP server can be abused for reflection DDoS
(Mode 7 monlist, Mode 6 READVAR), as Shadowserver's NTP reports ask network owners to check.

Usage:
  ntpctl monlist [flags] HOST[:PORT]        the monitor list, as ntpdc -n -c monlist prints it
  ntpctl rv [flags] HOST[:PORT] [NAME...]   system or peer variables, as ntpq -c rv prints them
                                            (--assoc ID, or --assoc &N: the N-th of peers)
  ntpctl peers [flags] HOST[:PORT]          the association IDs, as ntpq -c as prints them
                                            (alias: ntpctl as)
  ntpctl mrulist [flags] HOST[:PORT]        the MRU list of recent clients, as ntpq -c mrulist
                                            prints it
  ntpctl check [flags] HOST[:PORT]...       both queries, a verdict and the remediation
                                            (several hosts, or -i FILE: one per line)
  ntpctl verify [flags] FILE.csv...         ask again about every row of received reports:
                                            open, changed, fixed or unverified
  ntpctl lab [flags]                        simulated servers on loopback to try it on
  ntpctl version                            the module version and VCS revision (also --version)
  ntpctl help [COMMAND]                     this text, or a command's flags and exit status

Flags every command takes:
  --json            print one JSON object instead of text, in the vocabulary of the
                    scanner's JSON lines (JSON Schema: report/schema/ntpctl.schema.json);
                    an error is then JSON on stdout too ({"command", "error", "exit_status"})
  --timeout 2s      how long to wait for a first reply to each request
  --retries 1       how many times to ask again when nothing came back
  --port 123        the UDP port, when HOST has none

A query answered by ICMP is reported as such, never as "not an amplifier":
closed (port unreachable), unreachable (host or network) or prohibited
(filtered); check then says "no NTP service" and exits 7, and verify counts
such a row as fixed, saying which.
ntpctl asks any address it is given, private and loopback ones included (the
scanner refuses those unless told: -allow-private, -allow-loopback).
"ntpctl help COMMAND" lists a command's flags and exit statuses.

Examples:
  ntpctl check 192.0.2.10
  ntpctl monlist ntp.example.net
  ntpctl rv '[2001:db8::123]:123' version stratum
  ntpctl verify 2026-11-30-scan_ntpmonitor-my-org.csv
  ntpctl lab        (then, in another terminal: ntpctl check 127.42.x.y)

Only query hosts you are responsible for or allowed to test.
`

func (e env) run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, mainUsage)
		return exitError
	}
	name := args[0]
	switch name {
	case "-h", "-help", "--help":
		fmt.Fprint(stdout, mainUsage)
		return exitOK
	case "-version", "--version":
		name = "version"
	}
	for _, c := range commands {
		if c.name == name {
			if !wantsJSON(args[1:]) {
				return c.run(e, ctx, args[1:], stdout, stderr)
			}
			// With --json, a command that ends in an error before it
			// printed its object prints the error as JSON too.
			out := &countingWriter{w: stdout}
			errs := &lastLine{w: stderr}
			code := c.run(e, ctx, args[1:], out, errs)
			if out.n == 0 && code != exitOK {
				msg := strings.TrimPrefix(errs.line(), "ntpctl "+name+": ")
				_ = writeJSON(stdout, &report.JSONError{Command: name, Error: msg, ExitStatus: code})
			}
			return code
		}
	}
	fmt.Fprintf(stderr, "ntpctl: unknown command %q (commands: %s)\n", name, commandNames())
	return exitError
}

// commandNames lists the commands, for an error.
func commandNames() string {
	names := make([]string, len(commands))
	for i, c := range commands {
		names[i] = c.name
	}
	return strings.Join(names, ", ")
}

const helpUsage = `Usage: ntpctl help [COMMAND]

Without a COMMAND, describes every command and the flags they share; with one,
that command's flags and exit status (as ntpctl COMMAND --help does).
`

func (e env) help(_ context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stdout, mainUsage)
		return exitOK
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, helpUsage)
		return exitOK
	}
	if len(args) > 1 {
		fmt.Fprintf(stderr, "ntpctl help: want one COMMAND, got %d arguments (see ntpctl help help)\n", len(args))
		return exitError
	}
	for _, c := range commands {
		if c.name == args[0] {
			return c.run(e, context.Background(), []string{"--help"}, stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "ntpctl help: unknown command %q (commands: %s)\n", args[0], commandNames())
	return exitError
}

const versionUsage = `Usage: ntpctl version

Prints the module path and version ("(devel)" when built from a work tree), the
VCS revision, its time and whether the tree was modified, and the Go version the
program was built with (runtime/debug.ReadBuildInfo). ntpctl --version is the same.
`

func (e env) version(_ context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "-h", "-help", "--help":
			fmt.Fprint(stdout, versionUsage)
			return exitOK
		}
		fmt.Fprintf(stderr, "ntpctl version: takes no arguments, got %q (see ntpctl help version)\n", args[0])
		return exitError
	}
	fmt.Fprint(stdout, buildinfo.Text("ntpctl"))
	return exitOK
}

// wantsJSON reports whether a command's arguments ask for --json, before
// they are parsed (a usage error stops parsing).
func wantsJSON(args []string) bool {
	for _, a := range args {
		if a == "--" {
			return false
		}
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") || name != "json" {
			continue
		}
		if !hasVal {
			return true
		}
		b, err := strconv.ParseBool(val)
		return err == nil && b
	}
	return false
}

// countingWriter counts what goes through it.
type countingWriter struct {
	w io.Writer
	n int
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += n
	return n, err
}

// lastLine passes writes on and keeps the last line written (at most
// 4 KiB of it).
type lastLine struct {
	w   io.Writer
	buf []byte
}

func (l *lastLine) Write(p []byte) (int, error) {
	l.buf = append(l.buf, p...)
	if i := bytes.LastIndexByte(bytes.TrimRight(l.buf, "\n"), '\n'); i >= 0 {
		l.buf = append(l.buf[:0], l.buf[i+1:]...)
	}
	if len(l.buf) > 4096 {
		l.buf = l.buf[len(l.buf)-4096:]
	}
	return l.w.Write(p)
}

func (l *lastLine) line() string { return strings.TrimSpace(string(l.buf)) }

// common holds the flags every command takes.
type common struct {
	json    bool
	timeout time.Duration
	retries int
	port    uint
	// portZeroOK accepts --port 0 (lab: an ephemeral port).
	portZeroOK bool
}

// newFlags returns a flag set for a command, with the common flags, whose
// usage text is usage (synopsis and description) followed by the flags
// and the exit status help.
func newFlags(name, usage, exitHelp string, c *common) *flag.FlagSet {
	fs := flag.NewFlagSet("ntpctl "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.BoolVar(&c.json, "json", false, "print JSON instead of text")
	fs.DurationVar(&c.timeout, "timeout", 2*time.Second, "how long to wait for a first reply to each request")
	fs.IntVar(&c.retries, "retries", 1, "how many times to ask again when nothing came back")
	fs.UintVar(&c.port, "port", 123, "UDP `port`, when HOST has none")
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprint(w, usage)
		fmt.Fprintln(w, "\nFlags:")
		fs.VisitAll(func(f *flag.Flag) {
			typ, text := flag.UnquoteUsage(f)
			head := "  --" + f.Name
			if typ != "" {
				head += " " + typ
			}
			def := ""
			if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" {
				def = " (default " + f.DefValue + ")"
			}
			fmt.Fprintf(w, "%-22s %s%s\n", head, text, def)
		})
		if exitHelp != "" {
			fmt.Fprintln(w)
			fmt.Fprint(w, exitHelp)
		}
	}
	return fs
}

// errHelp reports that the usage was printed at the user's request.
var errHelp = errors.New("help requested")

// parse parses flags and positional arguments in any order ("--" ends
// the flags). Help goes to stdout; a bad flag is one line on stderr.
func parse(fs *flag.FlagSet, args []string, stdout io.Writer) ([]string, error) {
	var pos []string
	for {
		err := fs.Parse(args)
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(stdout)
			fs.Usage()
			return nil, errHelp
		}
		if err != nil {
			return nil, err
		}
		rest := fs.Args()
		if used := len(args) - len(rest); used > 0 && args[used-1] == "--" {
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// usageError prints one line about a usage error and returns exitError.
func usageError(stderr io.Writer, fs *flag.FlagSet, err error) int {
	fmt.Fprintf(stderr, "%s: %v (see %s --help)\n", fs.Name(), err, fs.Name())
	return exitError
}

// parseArgs handles the outcome of parse: it returns the exit status to
// stop with, or -1 to go on.
func parseArgs(fs *flag.FlagSet, args []string, c *common, stdout, stderr io.Writer) ([]string, int) {
	pos, err := parse(fs, args, stdout)
	switch {
	case errors.Is(err, errHelp):
		return nil, exitOK
	case err != nil:
		return nil, usageError(stderr, fs, err)
	}
	switch {
	case c.timeout <= 0:
		return nil, usageError(stderr, fs, fmt.Errorf("--timeout %v: must be positive", c.timeout))
	case c.retries < 0 || c.retries > 100:
		return nil, usageError(stderr, fs, fmt.Errorf("--retries %d: want 0 to 100", c.retries))
	case c.port > 65535 || (c.port == 0 && !c.portZeroOK):
		return nil, usageError(stderr, fs, fmt.Errorf("--port %d: want 1 to 65535", c.port))
	}
	return pos, -1
}

// target resolves HOST[:PORT]: an IPv4 or IPv6 address (IPv6 with a port
// in brackets), or a name, resolved only then. It refuses addresses no
// NTP server has: unspecified, multicast, broadcast.
// oneHost parses the flags and the single HOST[:PORT] of a command that
// takes exactly one host. code is -1 when the command should go on, or
// the exit status to return.
func (e env) oneHost(ctx context.Context, name, usage, exitHelp string, args []string, stdout, stderr io.Writer) (c common, target netip.AddrPort, code int) {
	fs := newFlags(name, usage, exitHelp, &c)
	pos, code := parseArgs(fs, args, &c, stdout, stderr)
	if code >= 0 {
		return c, target, code
	}
	if len(pos) != 1 {
		return c, target, usageError(stderr, fs, fmt.Errorf("want one HOST[:PORT], got %d arguments", len(pos)))
	}
	target, err := e.target(ctx, pos[0], uint16(c.port))
	if err != nil {
		return c, target, failure(stderr, name, err)
	}
	return c, target, -1
}

func (e env) target(ctx context.Context, arg string, defPort uint16) (netip.AddrPort, error) {
	host, port := arg, defPort
	if addr, p, ok := portWithoutBrackets(arg, defPort); ok {
		return netip.AddrPort{}, fmt.Errorf("%q: an IPv6 address with a port needs brackets: [%s]:%s (or [%s] for the address %s)",
			arg, addr, p, arg, arg)
	}
	if ap, err := netip.ParseAddrPort(arg); err == nil {
		host, port = ap.Addr().String(), ap.Port()
	} else if _, err := netip.ParseAddr(arg); err == nil {
		// a bare address, IPv6 included
	} else if strings.HasPrefix(arg, "[") && strings.HasSuffix(arg, "]") {
		host = arg[1 : len(arg)-1]
	} else if h, p, err := net.SplitHostPort(arg); err == nil {
		n, err := strconv.ParseUint(p, 10, 16)
		if err != nil || n == 0 {
			return netip.AddrPort{}, fmt.Errorf("%q: bad port %q", arg, p)
		}
		host, port = h, uint16(n)
	} else if strings.Count(arg, ":") > 0 && !strings.Contains(arg, "]") {
		return netip.AddrPort{}, fmt.Errorf("%q: not an address or host name", arg)
	}
	if port == 0 {
		return netip.AddrPort{}, fmt.Errorf("%q: port 0", arg)
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		if host == "" || strings.ContainsAny(host, " /[]%") {
			return netip.AddrPort{}, fmt.Errorf("%q: not an address or host name", arg)
		}
		addr, err = e.resolve(ctx, host)
		if err != nil {
			return netip.AddrPort{}, err
		}
	}
	addr = addr.Unmap()
	if err := refuse(addr); err != nil {
		return netip.AddrPort{}, fmt.Errorf("%s: %w", addr, err)
	}
	return netip.AddrPortFrom(addr, port), nil
}

// portWithoutBrackets reports whether arg reads as an IPv6 address
// followed by ":PORT" without the brackets that tell them apart, such as
// "::1:123": an address, but more likely [::1]:123. It is taken as that
// when the last group is the NTP port or defPort written in decimal and
// what comes before it is an address too.
func portWithoutBrackets(arg string, defPort uint16) (addr, port string, ok bool) {
	a, err := netip.ParseAddr(arg)
	if err != nil || !a.Is6() || !strings.Contains(arg, "::") {
		return "", "", false
	}
	i := strings.LastIndexByte(arg, ':')
	addr, port = arg[:i], arg[i+1:]
	if port != "123" && port != strconv.Itoa(int(defPort)) {
		return "", "", false
	}
	if _, err := netip.ParseAddr(addr); err != nil {
		return "", "", false
	}
	return addr, port, true
}

func (e env) resolve(ctx context.Context, host string) (netip.Addr, error) {
	lookup := e.lookup
	if lookup == nil {
		lookup = func(ctx context.Context, host string) ([]netip.Addr, error) {
			return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	addrs, err := lookup(ctx, host)
	if err != nil {
		var de *net.DNSError
		if errors.As(err, &de) && de.IsNotFound {
			return netip.Addr{}, fmt.Errorf("cannot resolve %q: no such host", host)
		}
		return netip.Addr{}, fmt.Errorf("cannot resolve %q: %v", host, err)
	}
	if len(addrs) == 0 {
		return netip.Addr{}, fmt.Errorf("cannot resolve %q: no addresses", host)
	}
	for _, a := range addrs { // prefer IPv4, as ntpq and ntpdc do by default
		if a.Unmap().Is4() {
			return a.Unmap(), nil
		}
	}
	return addrs[0], nil
}

// refuse says why no NTP server can be at addr, or returns nil. Loopback
// and private addresses are fine: the user checks their own hosts.
func refuse(a netip.Addr) error {
	switch {
	case a.Zone() != "":
		return errors.New("addresses with a zone are not supported")
	case a.IsUnspecified():
		return errors.New("the unspecified address is not a host")
	case a.IsMulticast():
		return errors.New("multicast addresses are refused")
	case a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return errors.New("the broadcast address is refused")
	case a.Is4() && a.As4()[0] == 0:
		return errors.New("0.0.0.0/8 is not a host")
	case a.Is4() && a.As4()[0] >= 240:
		return errors.New("240.0.0.0/4 is reserved")
	}
	return nil
}

// config is the prober configuration for the common flags.
func (e env) config(c *common) ntpctl.Config {
	return ntpctl.Config{
		Timeout:   c.timeout,
		Retries:   c.retries,
		Port:      uint16(c.port),
		Blocklist: &ntpctl.Blocklist{NoBuiltin: true, AllowLoopback: true},
		ListenUDP: e.listenUDP,
	}
}

// failure reports an error that stops a command before any result.
func failure(stderr io.Writer, name string, err error) int {
	if errors.Is(err, context.Canceled) {
		fmt.Fprintf(stderr, "ntpctl %s: interrupted\n", name)
		return exitInterrupt
	}
	fmt.Fprintf(stderr, "ntpctl %s: %v\n", name, err)
	return exitError
}

// statusExit maps a probe outcome to the exit status.
func statusExit(s ntpctl.Status) int {
	switch s {
	case ntpctl.StatusOK:
		return exitOK
	case ntpctl.StatusNoAnswer:
		return exitNoAnswer
	case ntpctl.StatusServerError:
		return exitRefused
	case ntpctl.StatusPartial, ntpctl.StatusProtocolError, ntpctl.StatusSpoofed:
		return exitBadReply
	case ntpctl.StatusClosed, ntpctl.StatusUnreachable, ntpctl.StatusProhibited:
		return exitNoService
	}
	return exitError
}

// writeJSON prints v as indented JSON, with the characters a terminal
// would act on escaped (see jsonSafe): values come from the network. It
// writes nothing when v cannot be encoded (not with the output types: no
// maps, no NaN, every status known), so stdout only ever carries the
// vocabulary of report.Schema.
func writeJSON(w io.Writer, v any) error {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("encoding JSON: %w", err)
	}
	_, err := w.Write(jsonSafe(b.Bytes()))
	return err
}

// writeJSONLine prints v as one line of JSON (JSON lines), escaped as
// writeJSON escapes.
func writeJSONLine(w io.Writer, v any) error {
	var b bytes.Buffer
	if err := json.NewEncoder(&b).Encode(v); err != nil {
		return fmt.Errorf("encoding JSON: %w", err)
	}
	_, err := w.Write(jsonSafe(b.Bytes()))
	return err
}

// plural returns "1 packet", "2 packets", "3 entries".
func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	if w, ok := strings.CutSuffix(word, "y"); ok {
		return strconv.Itoa(n) + " " + w + "ies"
	}
	return strconv.Itoa(n) + " " + word + "s"
}

// evidence describes the octets that came back for one request.
func evidence(packets, bytes, reqBytes int, amp float64) string {
	return fmt.Sprintf("%s, %s in reply to a %d-byte request: amplification %.1f", plural(packets, "packet"),
		plural(bytes, "byte"), reqBytes, amp)
}

// errText is an error's text without the package prefixes the codecs use.
func errText(err error) string {
	if err == nil {
		return ""
	}
	s := err.Error()
	for _, p := range []string{"ntpctl: ", "mode7: ", "mode6: "} {
		s = strings.ReplaceAll(s, p, "")
	}
	return s
}

// icmpText says what an ICMP status means for the user.
func icmpText(s ntpctl.Status, err error) string {
	switch s {
	case ntpctl.StatusClosed:
		return "no NTP service: the port is closed (" + errText(err) + ")"
	case ntpctl.StatusProhibited:
		return "no NTP service reached: a firewall refuses (" + errText(err) + ")"
	}
	return "no NTP service reached: the host is unreachable (" + errText(err) + ")"
}

// noService reports an ICMP status: nothing listens, or nothing is reached.
func noService(s ntpctl.Status) bool {
	return s == ntpctl.StatusClosed || s == ntpctl.StatusUnreachable || s == ntpctl.StatusProhibited
}

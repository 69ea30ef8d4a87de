package main

import (
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// options are the parsed flags.
type options struct {
	targets        []string // arguments: addresses, prefixes, ranges
	targetFiles    []string
	blockFiles     []string
	allowFiles     []string
	allowLoopback  bool
	lab            bool
	labHosts       int
	labSeed        uint64
	port           uint
	seed           uint64
	shard, shards  int
	probes         string
	rate           int
	retries        int
	timeout        time.Duration
	quiet          time.Duration
	concurrency    int
	out            string
	id             string
	split          string
	neutralize     bool
	jsonAll        bool
	rdns           bool
	rdnsServer     string
	cymru          bool
	cymruServer    string
	mmdb           []string
	static         []string
	enrichWorkers  int
	enrichTimeout  time.Duration
	progress       string
	progressPeriod time.Duration
}

// list is a repeatable string flag.
type list []string

func (l *list) String() string     { return strings.Join(*l, ",") }
func (l *list) Set(v string) error { *l = append(*l, v); return nil }

const usageText = `scanner: find NTP servers that amplify (NTP Monitor: Mode 7 monlist;
NTP Version: Mode 6 READVAR) and write Shadowserver-compatible reports.

Usage:
  scanner                        run the lab: simulated servers on loopback
  scanner [flags] TARGET...      scan addresses, prefixes and ranges
  scanner [flags] -i FILE        scan the targets of a file (one per line)

Targets: 192.0.2.1, 192.0.2.0/24, 192.0.2.1-192.0.2.9, 192.0.2.1-9,
2001:db8::/64; files take one per line, '#' comments (IPv6 hitlists too).
The IANA special-purpose ranges are never scanned; loopback only with
-allow-loopback. Scan only networks you are allowed to scan.

Output (in -out): YYYY-MM-DD-scan_ntpmonitor-ID.csv and
YYYY-MM-DD-scan_ntp-ID.csv (scan6_ for IPv6) in Shadowserver's format,
YYYY-MM-DD-ntpctl-ID.jsonl with every result in full, and the statistics
YYYY-MM-DD-ntpctl-ID-stats.json and -stats.txt.

Ctrl-C stops sending and collects the replies in flight; a second Ctrl-C
finishes at once. The files are complete either way.

Flags:
`

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("scanner", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usageText)
		fs.PrintDefaults()
	}
	var targetFiles, blockFiles, allowFiles, mmdb, static list
	var shard string
	fs.Var(&targetFiles, "i", "read targets from `file` (repeatable; - for stdin)")
	fs.Var(&blockFiles, "blocklist", "zmap-format blocklist `file` (repeatable)")
	fs.Var(&allowFiles, "allowlist", "zmap-format allowlist `file` (repeatable): only these are scanned")
	fs.BoolVar(&o.allowLoopback, "allow-loopback", false, "allow 127.0.0.0/8 and ::1 targets")
	fs.BoolVar(&o.lab, "lab", false, "run the lab of simulated servers (the default without targets)")
	fs.IntVar(&o.labHosts, "lab-hosts", 0, "IPv4 hosts in the lab (0: 300)")
	fs.Uint64Var(&o.labSeed, "lab-seed", 0, "seed of the lab's mix (0: 1)")
	fs.UintVar(&o.port, "port", 123, "UDP `port` to probe")
	fs.Uint64Var(&o.seed, "seed", 0, "permutation seed: the same seed gives the same order (0: random)")
	fs.StringVar(&shard, "shard", "0/1", "scan shard `i/n` of the permuted target space")
	fs.StringVar(&o.probes, "probes", "both", "which reports: monitor, version or both")
	fs.IntVar(&o.rate, "rate", 10000, "requests per `second` (0: no limit)")
	fs.IntVar(&o.retries, "retries", 1, "extra requests to a silent target")
	fs.DurationVar(&o.timeout, "timeout", 2*time.Second, "wait for a first reply")
	fs.DurationVar(&o.quiet, "quiet", 500*time.Millisecond, "wait after the last datagram of a multi-packet reply")
	fs.IntVar(&o.concurrency, "concurrency", 0, "targets in flight per probe (0: 4096)")
	fs.StringVar(&o.out, "out", "", "output `directory` (default: ./ntpctl-scan-DATE-TIME, or a new temporary one for the lab)")
	fs.StringVar(&o.id, "id", "ntpctl", "report ID in the file names")
	fs.StringVar(&o.split, "split", "", "also split the reports per `asn` or country, into subdirectories")
	fs.BoolVar(&o.neutralize, "neutralize-formulas", false, "prefix ' to values a spreadsheet would run as formulas")
	fs.BoolVar(&o.jsonAll, "json-all", false, "write every target to the JSON lines, silent and blocked ones too")
	fs.BoolVar(&o.rdns, "rdns", false, "look up reverse DNS names (hostname column)")
	fs.StringVar(&o.rdnsServer, "rdns-server", "", "DNS server `host:port` for -rdns and -cymru (default: the system's)")
	fs.BoolVar(&o.cymru, "cymru", false, "look up ASNs with Team Cymru's DNS service")
	fs.StringVar(&o.cymruServer, "cymru-server", "", "DNS server `host:port` for -cymru (default: -rdns-server, or the system's)")
	fs.Var(&mmdb, "mmdb", "MMDB `file` for ASN or geolocation: GeoLite2/GeoIP2, DB-IP, IPinfo (repeatable)")
	fs.Var(&static, "static", "static enrichment `CSV`: prefix,asn,as_name,country,region,city,... (repeatable)")
	fs.IntVar(&o.enrichWorkers, "enrich-workers", 32, "concurrent enrichment lookups")
	fs.DurationVar(&o.enrichTimeout, "enrich-timeout", 3*time.Second, "time limit of one enrichment lookup")
	fs.StringVar(&o.progress, "progress", "auto", "progress display: auto (a bar on a terminal), bar, lines or none")
	fs.DurationVar(&o.progressPeriod, "progress-every", 5*time.Second, "period of plain progress lines")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	o.targets = fs.Args()
	o.targetFiles, o.blockFiles, o.allowFiles, o.mmdb, o.static = targetFiles, blockFiles, allowFiles, mmdb, static
	if len(o.targets) == 0 && len(o.targetFiles) == 0 {
		o.lab = true
	}
	if o.lab && (len(o.targets) > 0 || len(o.targetFiles) > 0) {
		return nil, usagef("-lab takes no targets")
	}
	i, n, ok := strings.Cut(shard, "/")
	var err1, err2 error
	o.shard, err1 = strconv.Atoi(i)
	o.shards, err2 = strconv.Atoi(n)
	if !ok || err1 != nil || err2 != nil || o.shards < 1 || o.shard < 0 || o.shard >= o.shards {
		return nil, usagef("-shard %q: want i/n with 0 ≤ i < n", shard)
	}
	switch o.probes {
	case "both", "monitor", "version":
	default:
		return nil, usagef("-probes %q: want monitor, version or both", o.probes)
	}
	switch o.split {
	case "", "asn", "country":
	default:
		return nil, usagef("-split %q: want asn or country", o.split)
	}
	switch o.progress {
	case "auto", "bar", "lines", "none":
	default:
		return nil, usagef("-progress %q: want auto, bar, lines or none", o.progress)
	}
	if o.port == 0 || o.port > 65535 {
		return nil, usagef("-port %d: want 1..65535", o.port)
	}
	if o.rate < 0 || o.retries < 0 || o.concurrency < 0 || o.timeout < 0 || o.quiet < 0 || o.enrichWorkers < 0 {
		return nil, usagef("-rate, -retries, -concurrency, -timeout, -quiet and -enrich-workers cannot be negative")
	}
	if o.id == "" || strings.ContainsAny(o.id, `/\`) {
		return nil, usagef("-id %q: want a non-empty name without slashes", o.id)
	}
	return o, nil
}

func (o *options) monitor() bool { return o.probes != "version" }
func (o *options) version() bool { return o.probes != "monitor" }

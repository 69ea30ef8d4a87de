package main

import (
	"errors"
	"flag"
	"fmt"
	"github.com/ntpctl/ntpctl"
	"io"
	"strconv"
	"strings"
	"time"
)

// options are the parsed flags.
type options struct {
	targets        []string // arguments: addresses, prefixes, ranges
	showVersion    bool     // -version: print the build and stop
	targetFiles    []string
	blockFiles     []string
	allowFiles     []string
	allowLoopback  bool
	allowPrivate   bool
	lab            bool
	labHosts       int
	labSeed        uint64
	labDay         int
	db             string // -db: the report store to import the run into
	constituencies string // -constituencies: for -db
	port           uint
	seed           uint64
	shard, shards  int
	probes         string
	probeSet       map[string]bool // -probes, parsed: monitor, version, mru, time
	discover       bool            // -discover: Mode 3 first, the control queries only to those that answered
	mruClients     bool            // -mru-clients: the MRU clients' addresses in the JSON lines
	rate           int
	retries        int
	timeout        time.Duration
	quiet          time.Duration
	concurrency    int
	senders        int
	out            string
	force          bool
	id             string
	split          string
	neutralize     bool // the main reports too
	splitRaw       bool // the -split files as Shadowserver writes them
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
	habits         habits          // -dryrun, -max-targets, -source-ip, -interface, -bandwidth (habits.go)
	set            map[string]bool // the flags given
	fs             *flag.FlagSet

	// Scanning on many machines (dist.go, a build with -tags nats).
	submit, worker, merge string        // -submit, -worker, -merge: the NATS server's URL
	runID                 string        // -run
	nShards               int           // -shards
	workers               int           // -workers
	ackWait               time.Duration // -ack-wait
	idleExit              time.Duration // -idle-exit
	indexedJob            bool          // -indexed-job
	// date, when set, names the files instead of the start's date (a
	// shard of a scan takes its run's); onProgress, when set, is given
	// the counts every progressPeriod.
	date       time.Time
	onProgress func(done, total, replied, sendErrs uint64, rate float64)
	// onSpace, when set, is given the whole target space of a sharded
	// scan (every shard's), blocked addresses taken out.
	onSpace func(space []string)
}

// list is a repeatable string flag.
type list []string

func (l *list) String() string     { return strings.Join(*l, ",") }
func (l *list) Set(v string) error { *l = append(*l, v); return nil }

const usageText = `scanner: find NTP servers that amplify (NTP Monitor: Mode 7 monlist;
NTP Version: Mode 6 READVAR) and write Shadowserver-compatible reports;
with -probes mru and time, also those that show their clients (NTP MRU)
and those that serve time to anyone (Accessible NTP).

Usage:
  scanner                        run the lab: simulated servers on loopback
  scanner [flags] TARGET...      scan addresses, prefixes and ranges
  scanner [flags] -i FILE        scan the targets of a file (one per line)
  scanner -version               the module version and VCS revision of this build

Targets: 192.0.2.1, 192.0.2.0/24, 192.0.2.1-192.0.2.9, 192.0.2.1-9,
2001:db8::/64; files take one per line, '#' comments (IPv6 hitlists too).
Flags may come before or after the targets. The IANA special-purpose
ranges are never scanned; loopback only with -allow-loopback, the
private-use ranges only with -allow-private. Scan only networks you are
allowed to scan.

Output (in -out): YYYY-MM-DD-scan_ntpmonitor-ID.csv and
YYYY-MM-DD-scan_ntp-ID.csv (scan6_ for IPv6) in Shadowserver's format,
YYYY-MM-DD-ntpctl-ID.jsonl with every answering target in full, and the
statistics YYYY-MM-DD-ntpctl-ID-stats.json and -stats.txt; with -split,
one report per AS or country in by-asn/ or by-country/. -probes mru adds
YYYY-MM-DD-scan_ntpmru-ID.csv (the MRU list of every server that answered
READVAR: how many clients, never their addresses), -probes time
YYYY-MM-DD-scan_ntpaccessible-ID.csv (Mode 3). -discover sends Mode 3
first and the control queries only to the targets that answered: fewer
requests on a sparse space, but it misses servers that refuse time
service and answer Mode 6 or 7.

Ctrl-C stops sending and collects the replies in flight; a second Ctrl-C
finishes at once. The files are complete either way. Exit status: 0 done,
1 the scan failed, 2 bad flags, targets, files or -out directory (nothing
is sent then), 130 interrupted.

Flags:
`

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("scanner", flag.ContinueOnError)
	// The flag package would print its error and the whole usage text;
	// run prints one line instead, and -h prints the usage below.
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	var targetFiles, blockFiles, allowFiles, mmdb, static list
	var shard string
	fs.BoolVar(&o.showVersion, "version", false, "print the module version and VCS revision of this build, and exit")
	fs.Var(&targetFiles, "i", "read targets from `file` (repeatable; - for stdin)")
	fs.Var(&blockFiles, "blocklist", "zmap-format blocklist `file` (repeatable)")
	fs.Var(&allowFiles, "allowlist", "zmap-format allowlist `file` (repeatable): only these are scanned")
	fs.BoolVar(&o.allowLoopback, "allow-loopback", false, "allow 127.0.0.0/8 and ::1 targets")
	fs.BoolVar(&o.allowPrivate, "allow-private", false, "allow the private-use ranges (10/8, 172.16/12, 192.168/16, 100.64/10, fc00::/7), to audit your own internal networks")
	fs.BoolVar(&o.lab, "lab", false, "run the lab of simulated servers (the default without targets)")
	fs.IntVar(&o.labHosts, "lab-hosts", 0, "IPv4 hosts in the lab, 32 to 16384 (0: 300)")
	fs.Uint64Var(&o.labSeed, "lab-seed", 0, "seed of the lab's mix (0: 1)")
	fs.IntVar(&o.labDay, "lab-day", 0, "the lab as on day N of a week of changes: servers fixed, appearing, flapping, answering on odd days (0: no changes)")
	fs.UintVar(&o.port, "port", 123, "UDP `port` to probe (lab: the port its servers answer on; default a free one)")
	fs.Uint64Var(&o.seed, "seed", 0, "permutation seed: the same seed gives the same order (0: random; required with -shard)")
	fs.StringVar(&shard, "shard", "0/1", "scan shard `i/n` of the permuted target space (every machine with the same -seed)")
	fs.StringVar(&o.probes, "probes", "both", "which probes and reports, comma-separated: monitor (NTP Monitor), version (NTP Version), mru (NTP MRU: the MRU list, asked of the servers that answered READVAR; needs version), time (Accessible NTP: a Mode 3 client request); both is monitor,version, all is all four (the lab's default)")
	fs.BoolVar(&o.discover, "discover", false, "send a Mode 3 client request to every target first (the Accessible NTP report), and the control queries only to those that answered; adds time to -probes. Misses servers that refuse time service but answer Mode 6 or 7")
	fs.BoolVar(&o.mruClients, "mru-clients", false, "write the MRU lists' client addresses into the JSON lines (third parties' addresses: only where you may keep them; the CSV never has them)")
	fs.IntVar(&o.rate, "rate", 10000, "at most this many `requests` per second in all, shared by the probes (0: no limit)")
	fs.IntVar(&o.retries, "retries", 1, "extra requests to a silent target (lab: 0)")
	fs.DurationVar(&o.timeout, "timeout", 2*time.Second, "wait for a first reply (lab: 1s)")
	fs.DurationVar(&o.quiet, "quiet", 500*time.Millisecond, "wait after the last datagram of a multi-packet reply (lab: 300ms)")
	fs.IntVar(&o.concurrency, "concurrency", 0, "targets in flight per probe (0: sized from the rate, -rate × (-retries × -timeout + -timeout) × 1.25, within 4096..262144, about 1.3 KiB each; 65536 with -rate 0); a lower value caps the rate, and the scanner warns")
	fs.IntVar(&o.senders, "senders", 1, "sending sockets and goroutines per probe and address family (about one per core helps)")
	fs.StringVar(&o.out, "out", "", "output `directory` (default: ./ntpctl-scan-DATE-TIME, or a new temporary one for the lab; not -: the scan writes several files)")
	fs.StringVar(&o.db, "db", "", "also import the run into the report store `DSN` (an SQLite path or postgres://…; needs a build with -tags store)")
	fs.StringVar(&o.constituencies, "constituencies", "", "constituency `file` (YAML) that maps the rows -db imports")
	fs.BoolVar(&o.force, "force", false, "use a non-empty -out directory, replacing the files this scan writes (by name) and nothing else")
	fs.StringVar(&o.id, "id", "ntpctl", "report `ID` in the file names (letters, digits, _ and - are kept; other characters, / and \\ too, become _)")
	fs.StringVar(&o.split, "split", "", "also split the reports per `key`, asn or country, into the subdirectory by-asn or by-country")
	fs.BoolVar(&o.neutralize, "neutralize-formulas", false, "prefix ' to values a spreadsheet would run as formulas in the main reports too (the -split files have it unless -split-raw)")
	fs.BoolVar(&o.splitRaw, "split-raw", false, "write the -split files byte for byte as Shadowserver does, formulas and all")
	fs.BoolVar(&o.jsonAll, "json-all", false, "write every target to the JSON lines, silent and blocked ones too")
	fs.BoolVar(&o.rdns, "rdns", false, "look up reverse DNS names (hostname column)")
	fs.StringVar(&o.rdnsServer, "rdns-server", "", "DNS server `host:port` for -rdns and -cymru (default: the system's)")
	fs.BoolVar(&o.cymru, "cymru", false, "look up ASNs with Team Cymru's DNS service")
	fs.StringVar(&o.cymruServer, "cymru-server", "", "DNS server `host:port` for -cymru (default: -rdns-server, or the system's)")
	fs.Var(&mmdb, "mmdb", "MMDB `file` for ASN or geolocation: GeoLite2/GeoIP2, DB-IP, IPinfo (repeatable)")
	fs.Var(&static, "static", "static enrichment `CSV`: prefix,asn,as_name,country,region,city,... (repeatable)")
	fs.IntVar(&o.enrichWorkers, "enrich-workers", 32, "concurrent enrichment lookups")
	fs.DurationVar(&o.enrichTimeout, "enrich-timeout", 3*time.Second, "time limit of one enrichment lookup (0: none)")
	fs.StringVar(&o.progress, "progress", "auto", "progress display: auto (a bar on a terminal), bar, lines or none")
	fs.DurationVar(&o.progressPeriod, "progress-every", 5*time.Second, "period of plain progress lines")
	o.habits.register(fs)
	fs.StringVar(&o.submit, "submit", "", "submit the scan to the NATS JetStream server at `URL` (nats://host:4222) as -shards units of work for -worker scanners, then follow it and, with -out, merge it (a build with -tags nats)")
	fs.StringVar(&o.worker, "worker", "", "scan shards of submitted scans taken from the NATS JetStream server at `URL`, one at a time (a build with -tags nats)")
	fs.StringVar(&o.merge, "merge", "", "merge the shards of -run from the NATS JetStream server at `URL` into -out, as one scan (a build with -tags nats)")
	fs.StringVar(&o.runID, "run", "", "the submitted scan's `ID` (-submit: default a new one; -merge: required; -worker: only this scan's shards, with JOB_COMPLETION_INDEX the one shard of a Kubernetes Indexed Job)")
	fs.IntVar(&o.nShards, "shards", 0, "-submit: split the scan into `N` shards (0: 4 per worker)")
	fs.IntVar(&o.workers, "workers", 1, "-submit: the workers that will scan at once; -rate is shared out among them")
	fs.DurationVar(&o.ackWait, "ack-wait", time.Minute, "-submit: a shard whose worker has not reported for this long is given to another")
	fs.BoolVar(&o.indexedJob, "indexed-job", false, "-submit: queue nothing; the shards are scanned by a Kubernetes Indexed Job of -shards completions (examples/scanner/k8s)")
	fs.DurationVar(&o.idleExit, "idle-exit", 0, "-worker: exit after this long without a shard to scan (0: never)")

	// Flags may come after the targets too, as with zmap: parse, take
	// the first argument left as a target, and parse the rest again.
	rest := args
	for {
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fs.SetOutput(stderr)
				fmt.Fprint(stderr, usageText)
				fs.PrintDefaults()
				return nil, err
			}
			return nil, usagef("%v (scanner -h lists the flags)", err)
		}
		rest = fs.Args()
		if len(rest) == 0 {
			break
		}
		o.targets = append(o.targets, rest[0])
		rest = rest[1:]
	}
	if o.showVersion {
		return o, nil // nothing else is looked at
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	o.set, o.fs = set, fs
	o.targetFiles, o.blockFiles, o.allowFiles, o.mmdb, o.static = targetFiles, blockFiles, allowFiles, mmdb, static
	if len(o.targets) == 0 && len(o.targetFiles) == 0 && o.worker == "" && o.merge == "" {
		o.lab = true
	}
	if o.lab {
		if len(o.targetFiles) > 0 {
			return nil, usagef("-lab takes no target files; addresses, prefixes or ranges after -lab scan the part of the lab inside them")
		}
		// The lab has its own targets and enrichment: refuse what it
		// would silently ignore (and what would leave loopback).
		for _, name := range []string{"allowlist", "blocklist", "rdns", "rdns-server", "cymru", "cymru-server", "mmdb", "static"} {
			if set[name] {
				return nil, usagef("-%s needs targets (addresses, prefixes, ranges or -i FILE); without them the scanner runs the lab, which has its own", name)
			}
		}
	} else {
		for _, name := range []string{"lab-hosts", "lab-seed", "lab-day"} {
			if set[name] {
				return nil, usagef("-%s is for the lab, which runs without targets", name)
			}
		}
	}
	i, n, ok := strings.Cut(shard, "/")
	var err1, err2 error
	o.shard, err1 = strconv.Atoi(i)
	o.shards, err2 = strconv.Atoi(n)
	if !ok || err1 != nil || err2 != nil || o.shards < 1 || o.shard < 0 || o.shard >= o.shards {
		return nil, usagef("-shard %q: want i/n with 0 ≤ i < n", shard)
	}
	if o.shards > 1 && o.seed == 0 {
		// A random seed per machine would give shards of different
		// permutations: overlapping, with gaps.
		return nil, usagef("-shard %s needs -seed: every shard of a scan must use the same non-zero seed", shard)
	}
	if o.lab && !set["probes"] {
		o.probes = "all" // the lab shows every report
	}
	if err := o.parseProbes(); err != nil {
		return nil, err
	}
	switch o.split {
	case "", "asn", "country":
	default:
		return nil, usagef("-split %q: want asn or country", o.split)
	}
	if o.split != "" && !o.lab && len(o.static) == 0 && len(o.mmdb) == 0 && !o.cymru {
		return nil, usagef("-split %s needs enrichment that gives it: -mmdb, -cymru or -static", o.split)
	}
	switch o.progress {
	case "auto", "bar", "lines", "none":
	default:
		return nil, usagef("-progress %q: want auto, bar, lines or none", o.progress)
	}
	if o.progressPeriod <= 0 {
		return nil, usagef("-progress-every %s: want a positive duration", o.progressPeriod)
	}
	if o.port == 0 || o.port > 65535 {
		return nil, usagef("-port %d: want 1..65535", o.port)
	}
	for _, name := range []string{"rate", "retries", "concurrency", "senders", "enrich-workers", "enrich-timeout"} {
		if v := fs.Lookup(name).Value.String(); strings.HasPrefix(v, "-") {
			return nil, usagef("-%s %s: cannot be negative", name, v)
		}
	}
	// As in ntpctl: a wait of 0 would mean no wait, which the prober
	// cannot do (its zero value is the default), so it is refused.
	for _, name := range []string{"timeout", "quiet"} {
		if d := fs.Lookup(name).Value.(flag.Getter).Get().(time.Duration); d <= 0 {
			return nil, usagef("-%s %s: must be positive", name, d)
		}
	}
	if err := o.habits.check(set); err != nil {
		return nil, err
	}
	if o.constituencies != "" && o.db == "" {
		return nil, usagef("-constituencies is for -db")
	}
	if o.db != "" && importRun == nil {
		return nil, usagef("-db: this scanner was built without the report store; build it with -tags store (go run -tags store ./examples/scanner …), or import its output directory with reportd import")
	}
	if o.labDay < 0 || o.labDay > 1000 {
		return nil, usagef("-lab-day %d: want 0 to 1000", o.labDay)
	}
	if o.labHosts != 0 && (o.labHosts < 32 || o.labHosts > 16384) {
		return nil, usagef("-lab-hosts %d: want 32 to 16384", o.labHosts)
	}
	if o.cymruServer != "" && !o.cymru {
		return nil, usagef("-cymru-server needs -cymru")
	}
	if o.rdnsServer != "" && !o.rdns && !o.cymru {
		return nil, usagef("-rdns-server needs -rdns or -cymru")
	}
	if o.id == "" {
		// report.FileName makes every other ID safe in a file name.
		return nil, usagef("-id \"\": want a non-empty name")
	}
	return o, nil
}

// limiter is the scan's rate limiter, shared by its probes so that
// their requests together stay within -rate; nil without a limit.
func (o *options) limiter() *ntpctl.RateLimiter {
	if o.rate <= 0 {
		return nil
	}
	return ntpctl.NewRateLimiter(float64(o.rate), 0)
}

// probeNames are the probes -probes can name, in the order the scan
// runs them.
var probeNames = []string{"time", "monitor", "version", "mru"}

// parseProbes reads -probes and -discover into probeSet.
func (o *options) parseProbes() error {
	o.probeSet = map[string]bool{}
	for _, name := range strings.Split(o.probes, ",") {
		switch name = strings.TrimSpace(name); name {
		case "both":
			o.probeSet["monitor"], o.probeSet["version"] = true, true
		case "all":
			for _, n := range probeNames {
				o.probeSet[n] = true
			}
		case "monitor", "version", "mru", "time":
			o.probeSet[name] = true
		default:
			return usagef("-probes %q: want monitor, version, mru, time (comma-separated), both or all", o.probes)
		}
	}
	if o.probeSet["mru"] && !o.probeSet["version"] {
		return usagef("-probes %s: mru needs version: the MRU list is asked only of the servers that answered READVAR", o.probes)
	}
	if o.discover {
		o.probeSet["time"] = true
		if len(o.probeSet) == 1 {
			return usagef("-discover needs a control query in -probes (monitor, version, mru): it sends them only to the servers that answered Mode 3")
		}
	}
	if o.mruClients && !o.probeSet["mru"] && o.worker == "" {
		// (A worker's -mru-clients applies to the shards that ask for
		// MRU lists.)
		return usagef("-mru-clients needs mru in -probes")
	}
	return nil
}

// feeder is the probe that gives the probe called name the targets that
// answered it (scan.newProbes): READVAR the MRU list, and with -discover
// Mode 3 the control queries; "" for a probe that takes the scan's.
func (o *options) feeder(name string) string {
	switch {
	case name == "mru":
		return "version"
	case o.discover && (name == "monitor" || name == "version"):
		return "time"
	}
	return ""
}

// fed reports whether the probe called name takes only the targets that
// answered another.
func (o *options) fed(name string) bool { return o.feeder(name) != "" }

func (o *options) monitor() bool { return o.probeSet["monitor"] }
func (o *options) version() bool { return o.probeSet["version"] }

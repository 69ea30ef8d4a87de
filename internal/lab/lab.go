// Package lab runs a laboratory of simulated NTP servers on loopback: a
// few hundred 127.x.y.z addresses (and ::1) answered by the project's
// simulated ntpd (internal/ntpsim), with the mix a scan of a real network
// finds: monlist amplifiers with monitor tables from a handful of entries
// to the full 600, servers with monlist disabled, ntpsec and ntpd 4.2.8
// servers that ignore Mode 7 but answer READVAR, READVAR responders of
// each daemon generation, silent addresses and a few hostile servers.
// Every answering server also answers Mode 3 (time) requests, except
// about one in ten of the well-behaved ones, which refuse time service
// yet answer ntpq and ntpdc, as behind a firewall that passes only the
// control queries, or with "restrict … noserve" ([Host.Time]).
//
// The mix is drawn from a seeded generator: the same Config gives the same
// addresses, daemons and monitor tables. Every host comes with what a
// correct client should observe ([Host.Monlist], [Host.ReadVar],
// [Host.MRU], [Host.Time]), so tests can check a scan against it, and
// [Lab.StaticCSV] gives an enrichment table for the lab's addresses with
// documentation AS numbers.
//
// The simulated servers only answer requests sent to loopback addresses
// of the lab; they never send a packet anywhere else.
package lab

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ntpctl/ntpctl"
	"github.com/ntpctl/ntpctl/internal/ntpsim"
)

// Kind is what a lab host is, as a scanner should classify it.
type Kind uint8

const (
	// Silent hosts answer nothing: no server, or "restrict noquery".
	Silent Kind = iota
	// Amplifier hosts answer monlist (ntpd ≤ 4.2.7p25, xntpd-era
	// firmware) and READVAR.
	Amplifier
	// MonlistDisabled hosts answer monlist with INFO_ERR_NODATA (ntpd
	// 4.2.8 with "enable mode7") and answer READVAR.
	MonlistDisabled
	// ReadVarOnly hosts ignore Mode 7 and answer READVAR: ntpsec, and
	// ntpd 4.2.8 as installed.
	ReadVarOnly
	// Hostile hosts misbehave on purpose (see Host.Hostile).
	Hostile
)

var kindNames = [...]string{"silent", "amplifier", "monlist-disabled", "readvar-only", "hostile"}

// String names the kind: "silent", "amplifier", "monlist-disabled",
// "readvar-only" or "hostile".
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Expect is what a correct client observes for one query to one host,
// asked once with the project's default request (ntpctl.MonList,
// ntpctl.ReadVar, ntpctl.MRUList or ntpctl.Client).
type Expect struct {
	// Status is the outcome. For hostile hosts it is what the project's
	// prober makes of the misbehaviour with its default caps.
	Status ntpctl.Status
	// Packets and Bytes are the reply's datagrams and UDP payload octets,
	// for well-behaved hosts that answer (0 otherwise).
	Packets, Bytes int
	// Entries is the number of monitor entries of a monlist reply, or of
	// distinct clients of an MRU list.
	Entries int
	// Stratum is the stratum of a mode 4 reply (Host.Time of a host
	// that answers it: 1 to 4 in the lab); 0 otherwise.
	Stratum int
}

// Host is one simulated server of the lab.
type Host struct {
	// Addr is where it answers.
	Addr netip.AddrPort
	// Kind is what it is.
	Kind Kind
	// Daemon names the software simulated, such as "ntpd 4.2.6p5" or
	// "ntpsec 1.2.2"; "" for silent hosts.
	Daemon string
	// Hostile says how a hostile host misbehaves ("" otherwise).
	Hostile string
	// Monlist and ReadVar are what a client observes for the two queries.
	Monlist, ReadVar Expect
	// MRU is what ntpctl.MRUList observes: the whole list (Entries: its
	// clients and the asker) from ntpd 4.2.8 and ntpsec hosts, CERR_BADOP
	// from older daemons, no answer from silent hosts; zero (not
	// predicted) for hostile ones.
	MRU Expect
	// Time is what ntpctl.Client observes: a mode 4 reply (StatusOK, one
	// packet of 48 octets, with the server's Stratum) from the hosts
	// that serve time, no answer from silent hosts and from those that
	// refuse time service while answering Mode 6 or 7 (Sim.NoTime);
	// zero (not predicted) for hostile ones.
	Time Expect
	// PeerAssoc is the association ID of the host's one peer, for
	// `ntpctl rv --assoc`; 0 when it has none.
	PeerAssoc uint16
	// Role is how the server behaves from day to day in a lab with
	// Config.Day set (a server silent on the day is Silent, with its
	// Role kept); Steady otherwise.
	Role Role
	// Sim is the simulated host; it must not be changed.
	Sim *ntpsim.Host
}

// Config configures a lab. The zero value starts the default lab.
type Config struct {
	// Seed selects the mix; 0 means 1.
	Seed uint64
	// Hosts is the number of IPv4 addresses (hostile ones included); 0
	// means 300. At least 32.
	Hosts int
	// Prefix is the IPv4 /16 inside 127.0.0.0/8 the addresses are drawn
	// from; the zero value means 127.42.0.0/16.
	Prefix netip.Prefix
	// Port is the UDP port every host answers on; 0 means an ephemeral
	// port. Port 123 lets ntpq and ntpdc reach the lab (they cannot be
	// given another port) and needs privileges.
	Port uint16
	// NoIPv6 leaves out the host on [::1].
	NoIPv6 bool
	// Day, from 1, changes the lab as a week of daily scans finds it
	// (see DayRole): some servers get fixed, some appear, one flaps, some
	// answer only on odd days. 0 is the lab without changes, as on day 1.
	Day int
}

// Role is how a server of a multi-day lab behaves from day to day.
type Role uint8

// The roles of DayRole.
const (
	Steady  Role = iota // answers every day
	Fixed               // answers on days 1 and 2, silent from day 3 on
	Appears             // silent on day 1, answers from day 2 on
	Flaps               // silent on days 2 and 5 only: one miss at a time, never fixed
	OddDays             // answers on odd days only
)

// DayRole returns the role of the i-th answering server (hostile ones
// and the IPv6 host are always Steady) in address order.
func DayRole(i int) Role {
	switch i % 10 {
	case 1:
		return Fixed
	case 2:
		return Appears
	case 3:
		return Flaps
	case 4:
		return OddDays
	}
	return Steady
}

// Answers reports whether a server of role r answers on day (from 1).
func (r Role) Answers(day int) bool {
	switch r {
	case Fixed:
		return day <= 2
	case Appears:
		return day >= 2
	case Flaps:
		return day != 2 && day != 5
	case OddDays:
		return day%2 == 1
	}
	return true
}

// String names the role.
func (r Role) String() string {
	return [...]string{"steady", "fixed", "appears", "flaps", "odd-days"}[r]
}

// Lab is a running laboratory.
type Lab struct {
	hosts   []Host
	byAddr  map[netip.Addr]int
	servers []*ntpsim.Server
	port    uint16
	prefix  netip.Prefix
	csv     string
}

// DefaultPrefix is the IPv4 prefix of the default lab.
var DefaultPrefix = netip.MustParsePrefix("127.42.0.0/16")

// Start builds the lab's hosts and starts the simulated servers. They
// stop when ctx is done or Close is called.
func Start(ctx context.Context, cfg Config) (*Lab, error) {
	if cfg.Seed == 0 {
		cfg.Seed = 1
	}
	if cfg.Hosts == 0 {
		cfg.Hosts = 300
	}
	if cfg.Hosts < 32 || cfg.Hosts > 16384 {
		return nil, fmt.Errorf("lab: %d hosts: want 32 to 16384", cfg.Hosts)
	}
	if !cfg.Prefix.IsValid() {
		cfg.Prefix = DefaultPrefix
	}
	cfg.Prefix = cfg.Prefix.Masked()
	if !cfg.Prefix.Addr().Is4() || cfg.Prefix.Bits() != 16 || cfg.Prefix.Addr().As4()[0] != 127 {
		return nil, fmt.Errorf("lab: prefix %v: want an IPv4 /16 inside 127.0.0.0/8", cfg.Prefix)
	}
	l := build(cfg, time.Now())

	// The IPv4 hosts are answered by one server bound to the wildcard
	// address (it answers only the lab's addresses, all loopback); the
	// IPv6 host by one bound to ::1 on the same port.
	hosts4 := map[netip.Addr]*ntpsim.Host{}
	hosts6 := map[netip.Addr]*ntpsim.Host{}
	for _, h := range l.hosts {
		if h.Sim == nil {
			continue
		}
		if h.Addr.Addr().Is4() {
			hosts4[h.Addr.Addr()] = h.Sim
		} else {
			hosts6[h.Addr.Addr()] = h.Sim
		}
	}
	var err error
	for attempt := 0; attempt < 10; attempt++ {
		if err = l.listen(ctx, cfg, hosts4, hosts6); err == nil || cfg.Port != 0 {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	for i := range l.hosts {
		l.hosts[i].Addr = netip.AddrPortFrom(l.hosts[i].Addr.Addr(), l.port)
	}
	return l, nil
}

// listen starts the servers; with an ephemeral port the IPv6 server may
// find the IPv4 server's port taken, and the caller tries again.
func (l *Lab) listen(ctx context.Context, cfg Config, hosts4, hosts6 map[netip.Addr]*ntpsim.Host) error {
	s4, err := ntpsim.Start(ctx, "udp4", "0.0.0.0:"+strconv.Itoa(int(cfg.Port)), ntpsim.Config{Hosts: hosts4})
	if err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	servers := []*ntpsim.Server{s4}
	if len(hosts6) > 0 {
		s6, err := ntpsim.Start(ctx, "udp6", "[::1]:"+strconv.Itoa(int(s4.Port())), ntpsim.Config{Hosts: hosts6})
		if err != nil {
			s4.Close()
			return fmt.Errorf("lab: IPv6 on [::1]:%d: %w", s4.Port(), err)
		}
		servers = append(servers, s6)
	}
	l.servers = servers
	l.port = s4.Port()
	return nil
}

// Close stops the servers.
func (l *Lab) Close() error {
	var errs []error
	for _, s := range l.servers {
		errs = append(errs, s.Close())
	}
	return errors.Join(errs...)
}

// Port returns the UDP port every host answers on.
func (l *Lab) Port() uint16 { return l.port }

// Prefix returns the IPv4 prefix the lab's addresses are drawn from.
func (l *Lab) Prefix() netip.Prefix { return l.prefix }

// Hosts returns every host, in address order (IPv4 first, then ::1).
func (l *Lab) Hosts() []Host { return slices.Clone(l.hosts) }

// Host returns the host at addr.
func (l *Lab) Host(addr netip.Addr) (Host, bool) {
	i, ok := l.byAddr[addr.Unmap()]
	if !ok {
		return Host{}, false
	}
	return l.hosts[i], true
}

// Targets returns the address and port of every host, silent ones
// included, in address order.
func (l *Lab) Targets() []netip.AddrPort {
	out := make([]netip.AddrPort, len(l.hosts))
	for i, h := range l.hosts {
		out[i] = h.Addr
	}
	return out
}

// OfKind returns the hosts of one kind, in address order.
func (l *Lab) OfKind(k Kind) []Host {
	var out []Host
	for _, h := range l.hosts {
		if h.Kind == k {
			out = append(out, h)
		}
	}
	return out
}

// Stats counts what the servers did.
func (l *Lab) Stats() ntpsim.Stats {
	var st ntpsim.Stats
	for _, s := range l.servers {
		x := s.Stats()
		st.Requests += x.Requests
		st.Replies += x.Replies
		st.Ignored += x.Ignored
		st.Errors += x.Errors
	}
	return st
}

// StaticCSV returns the lab's enrichment table, one line per prefix:
//
//	prefix,asn,as_name,country,region,city,naics,sector,abuse_email
//
// after a header line and '#' comments. The AS numbers are the
// documentation range 64496–64511 (RFC 5398); names and contacts are made
// up, places are real and written in upper case, as Shadowserver writes
// them.
func (l *Lab) StaticCSV() string { return l.csv }

// network is one AS of the lab: a /19 of the lab prefix.
type network struct {
	asn                 int
	name, cc, region    string
	city                string
	naics               int
	sector, abuseDomain string
}

var networks = [8]network{
	{64496, "EXAMPLE-BACKBONE-AS Example Backbone GmbH", "DE", "HESSEN", "FRANKFURT AM MAIN", 517311, "Communications, Service Provider, and Hosting Service", "backbone.example"},
	{64497, "DOCNET-CABLE Docnet Cable Inc.", "US", "TEXAS", "DALLAS", 517311, "Communications, Service Provider, and Hosting Service", "docnet.example"},
	{64498, "UNIVERSIDADE-EXEMPLO Universidade Exemplo", "BR", "SAO PAULO", "CAMPINAS", 611310, "Education", "uni-exemplo.example"},
	{64499, "SAMPLE-HOSTING Sample Hosting K.K.", "JP", "TOKYO", "TOKYO", 518210, "Communications, Service Provider, and Hosting Service", "sample-hosting.example"},
	{64500, "TESTBANK-NL Testbank N.V.", "NL", "NOORD-HOLLAND", "AMSTERDAM", 522110, "Finance and Insurance", "testbank.example"},
	{64501, "MAIRIE-EXEMPLE Ville d'Exemple", "FR", "AUVERGNE-RHONE-ALPES", "LYON", 921110, "Government and Public Administration", "ville.example"},
	{64502, "DEMO-BROADBAND Demo Broadband Pvt Ltd", "IN", "KARNATAKA", "BENGALURU", 517311, "Communications, Service Provider, and Hosting Service", "demo-broadband.example"},
	{64503, "FICTION-MINING Fiction Mining (Pty) Ltd", "ZA", "GAUTENG", "JOHANNESBURG", 212221, "Mining, Quarrying, and Oil and Gas Extraction", "fiction-mining.example"},
}

var network6 = network{64511, "LOOPBACK6-LAB Loopback Lab Ltd", "GB", "ENGLAND", "LONDON", 541512, "Professional, Scientific, and Technical Services", "loopback-lab.example"}

func (l *Lab) buildCSV(v6 bool) string {
	var b strings.Builder
	b.WriteString("prefix,asn,as_name,country,region,city,naics,sector,abuse_email\n")
	b.WriteString("# ntpctl lab: documentation AS numbers (RFC 5398); names and contacts are made up.\n")
	row := func(p netip.Prefix, n network) {
		fmt.Fprintf(&b, "%s,%d,%s,%s,%s,%s,%d,%s,abuse@%s\n", p, n.asn, csvField(n.name), n.cc,
			csvField(n.region), csvField(n.city), n.naics, csvField(n.sector), n.abuseDomain)
	}
	base := l.prefix.Addr().As4()
	for i, n := range networks {
		row(netip.PrefixFrom(netip.AddrFrom4([4]byte{base[0], base[1], byte(i << 5), 0}), 19), n)
	}
	if v6 {
		row(netip.MustParsePrefix("::1/128"), network6)
	}
	return b.String()
}

// csvField quotes a field that needs it (RFC 4180).
func csvField(s string) string {
	if strings.ContainsAny(s, ",\"\r\n") {
		return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
	}
	return s
}

package enrich

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Cymru looks up the originating AS of an address through Team Cymru's
// IP-to-ASN mapping service over DNS. It implements [ASNLookup] and
// [Enricher].
//
// For an address it asks for the TXT record of the reversed octets (IPv4)
// or nibbles (IPv6) under origin.<Zone> or origin6.<Zone>, then for the AS
// name under AS<n>.<Zone>. The answers look like this (Team Cymru, "IP to
// ASN Mapping Service", https://www.team-cymru.com/ip-asn-mapping):
//
//	31.108.90.216.origin.asn.cymru.com  "23028 | 216.90.108.0/24 | US | arin | 1998-09-25"
//	AS23028.asn.cymru.com               "23028 | US | arin | 2002-01-04 | TEAMCYMRU - SAUNET"
//
// that is "AS | BGP prefix | CC | registry | allocated" and "AS | CC |
// registry | allocated | AS name". Answers are parsed strictly: one that
// does not have this shape is a [*ParseError] (matching [ErrMalformed]).
// When several origin records answer, the longest prefix covering the
// address wins; when a prefix is announced by several ASes (listed
// space-separated), the first is used.
//
// The zero value sends queries for asn.cymru.com to the system's resolver.
// A Cymru is safe for concurrent use and must not be copied after first
// use. It remembers AS names (up to NameCacheSize), since many addresses
// share an AS.
type Cymru struct {
	// Server, when set, is the host:port of the DNS server to query
	// instead of the system's resolver (port 53 when only a host is
	// given).
	Server string
	// Resolver is used when Server is empty; nil means
	// [net.DefaultResolver].
	Resolver *net.Resolver
	// Zone is the service's zone; "" means "asn.cymru.com".
	Zone string
	// SkipName leaves out the AS name query.
	SkipName bool
	// NameCacheSize bounds how many AS names are remembered; 0 means
	// 4096, a negative value remembers none.
	NameCacheSize int

	mu    sync.Mutex
	names map[uint32]string
}

// CymruOrigin is one parsed origin record of Team Cymru's service.
type CymruOrigin struct {
	// ASNs are the originating ASes, usually one.
	ASNs []uint32
	// Prefix is the BGP prefix announced.
	Prefix netip.Prefix
	// Country is the ISO 3166-1 alpha-2 code of the allocation, if any.
	Country string
	// Registry is the regional registry ("arin", "ripencc", …), if any.
	Registry string
	// Allocated is the allocation date; zero when the record has none.
	Allocated time.Time
}

// CymruAS is one parsed AS name record of Team Cymru's service.
type CymruAS struct {
	// Number is the AS number.
	Number uint32
	// Country is the ISO 3166-1 alpha-2 code of the registration, if any.
	Country string
	// Registry is the regional registry ("arin", "ripencc", …), if any.
	Registry string
	// Allocated is the allocation date; zero when the record has none.
	Allocated time.Time
	// Name is the AS name as written, such as "CLOUDFLARENET, US".
	Name string
}

// ParseCymruOrigin parses the text of one origin or origin6 TXT record,
// "AS[ AS…] | prefix | CC | registry | allocated". Country and date may
// be empty. A malformed record, including one with control characters or
// invalid UTF-8, is a [*ParseError].
func ParseCymruOrigin(txt string) (CymruOrigin, error) {
	const src = "cymru origin"
	if reason := badText(txt); reason != "" {
		return CymruOrigin{}, parseErr(src, 0, txt, reason, nil)
	}
	f := strings.Split(txt, "|")
	if len(f) != 5 {
		return CymruOrigin{}, parseErr(src, 0, txt, fmt.Sprintf("%d fields, want 5", len(f)), nil)
	}
	for i := range f {
		f[i] = strings.TrimSpace(f[i])
	}
	var o CymruOrigin
	for _, a := range strings.Fields(f[0]) {
		n, err := parseCymruASN(a)
		if err != nil {
			return CymruOrigin{}, parseErr(src, 0, txt, err.Error(), nil)
		}
		o.ASNs = append(o.ASNs, n)
	}
	if len(o.ASNs) == 0 {
		return CymruOrigin{}, parseErr(src, 0, txt, "no AS number", nil)
	}
	p, err := netip.ParsePrefix(f[1])
	if err != nil || p.Addr().Zone() != "" {
		return CymruOrigin{}, parseErr(src, 0, txt, "bad prefix", err)
	}
	o.Prefix = p.Masked()
	var reason string
	o.Country, o.Registry, o.Allocated, reason = parseCymruCommon(f[2], f[3], f[4])
	if reason != "" {
		return CymruOrigin{}, parseErr(src, 0, txt, reason, nil)
	}
	return o, nil
}

// ParseCymruAS parses the text of one AS name TXT record, "AS | CC |
// registry | allocated | name". The name may itself contain '|'. A
// malformed record, including one with control characters or invalid
// UTF-8, is a [*ParseError].
func ParseCymruAS(txt string) (CymruAS, error) {
	const src = "cymru as"
	if reason := badText(txt); reason != "" {
		return CymruAS{}, parseErr(src, 0, txt, reason, nil)
	}
	f := strings.SplitN(txt, "|", 5)
	if len(f) != 5 {
		return CymruAS{}, parseErr(src, 0, txt, fmt.Sprintf("%d fields, want 5", len(f)), nil)
	}
	for i := range f {
		f[i] = strings.TrimSpace(f[i])
	}
	n, err := parseCymruASN(f[0])
	if err != nil {
		return CymruAS{}, parseErr(src, 0, txt, err.Error(), nil)
	}
	a := CymruAS{Number: n, Name: f[4]}
	var reason string
	a.Country, a.Registry, a.Allocated, reason = parseCymruCommon(f[1], f[2], f[3])
	if reason != "" {
		return CymruAS{}, parseErr(src, 0, txt, reason, nil)
	}
	return a, nil
}

// badText says why txt cannot be a Team Cymru answer, or returns "": the
// service answers in printable text, so control characters and invalid
// UTF-8 (which would end up in a report's as_name column) are malformed.
func badText(txt string) string {
	if !utf8.ValidString(txt) {
		return "invalid UTF-8"
	}
	for _, r := range txt {
		if r < 0x20 || r == 0x7f || r >= 0x80 && r < 0xa0 {
			return fmt.Sprintf("control character %U", r)
		}
	}
	return ""
}

func parseCymruASN(s string) (uint32, error) {
	if s == "" || len(s) > 10 {
		return 0, fmt.Errorf("bad AS number %q", s)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("bad AS number %q", s)
		}
	}
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("bad AS number %q", s)
	}
	return uint32(n), nil
}

// parseCymruCommon checks the country, registry and date fields; it
// returns a reason when one is malformed.
func parseCymruCommon(cc, reg, date string) (string, string, time.Time, string) {
	if cc != "" && !isAlpha2(cc) {
		return "", "", time.Time{}, fmt.Sprintf("bad country %q", cc)
	}
	if len(reg) > 16 {
		return "", "", time.Time{}, "registry too long"
	}
	for i := 0; i < len(reg); i++ {
		if c := reg[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return "", "", time.Time{}, fmt.Sprintf("bad registry %q", reg)
		}
	}
	var t time.Time
	if date != "" {
		var err error
		if t, err = time.Parse(time.DateOnly, date); err != nil {
			return "", "", time.Time{}, fmt.Sprintf("bad date %q", date)
		}
	}
	return strings.ToUpper(cc), reg, t, ""
}

func (c *Cymru) zone() string {
	if c.Zone == "" {
		return "asn.cymru.com"
	}
	return strings.TrimSuffix(c.Zone, ".")
}

// originName returns the query name for addr: reversed octets under
// origin.<zone> or all 32 reversed nibbles under origin6.<zone>.
func (c *Cymru) originName(addr netip.Addr) string {
	var b strings.Builder
	if addr.Is4() {
		a := addr.As4()
		for i := 3; i >= 0; i-- {
			b.WriteString(strconv.Itoa(int(a[i])))
			b.WriteByte('.')
		}
		b.WriteString("origin.")
	} else {
		const hex = "0123456789abcdef"
		a := addr.As16()
		b.Grow(64 + 8 + len(c.zone()))
		for i := 15; i >= 0; i-- {
			b.WriteByte(hex[a[i]&0xf])
			b.WriteByte('.')
			b.WriteByte(hex[a[i]>>4])
			b.WriteByte('.')
		}
		b.WriteString("origin6.")
	}
	b.WriteString(c.zone())
	b.WriteByte('.')
	return b.String()
}

// LookupASN implements [ASNLookup]. The ASN's Prefix, Country and Registry
// come from the origin record and its Name from the AS record. When the
// origin is found but the name query fails, the ASN is returned without
// its name, along with the error (a missing name record is not an error).
func (c *Cymru) LookupASN(ctx context.Context, addr netip.Addr) (ASN, error) {
	addr = addr.Unmap().WithZone("")
	if !addr.IsValid() {
		return ASN{}, notFound("cymru asn", addr)
	}
	res := resolver(c.Resolver, c.Server)
	txts, err := res.LookupTXT(ctx, c.originName(addr))
	if err != nil {
		return ASN{}, dnsError("cymru origin", addr, err)
	}
	var best CymruOrigin
	for _, t := range txts {
		o, err := ParseCymruOrigin(t)
		if err != nil {
			return ASN{}, err
		}
		if o.Prefix.Contains(addr) && (!best.Prefix.IsValid() || o.Prefix.Bits() > best.Prefix.Bits()) {
			best = o
		}
	}
	if !best.Prefix.IsValid() {
		if len(txts) == 0 {
			return ASN{}, notFound("cymru origin", addr)
		}
		return ASN{}, parseErr("cymru origin", 0, strings.Join(txts, "; "),
			fmt.Sprintf("no prefix covers %v", addr), nil)
	}
	a := ASN{Number: best.ASNs[0], Prefix: best.Prefix, Country: best.Country, Registry: best.Registry}
	if c.SkipName {
		return a, nil
	}
	name, err := c.lookupName(ctx, res, a.Number)
	a.Name = name
	return a, err
}

func (c *Cymru) lookupName(ctx context.Context, res *net.Resolver, n uint32) (string, error) {
	c.mu.Lock()
	name, ok := c.names[n]
	c.mu.Unlock()
	if ok {
		return name, nil
	}
	q := "AS" + strconv.FormatUint(uint64(n), 10) + "." + c.zone() + "."
	txts, err := res.LookupTXT(ctx, q)
	if err != nil {
		var de *net.DNSError
		if errors.As(err, &de) && de.IsNotFound {
			c.remember(n, "")
			return "", nil
		}
		return "", fmt.Errorf("enrich: cymru AS%d name: %w", n, err)
	}
	for _, t := range txts {
		a, err := ParseCymruAS(t)
		if err != nil {
			return "", err
		}
		if a.Number == n {
			name = a.Name
			break
		}
	}
	c.remember(n, name)
	return name, nil
}

func (c *Cymru) remember(n uint32, name string) {
	max := c.NameCacheSize
	if max == 0 {
		max = 4096
	}
	if max < 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.names == nil || len(c.names) >= max {
		// Crude but bounded: start over rather than track recency.
		c.names = make(map[uint32]string)
	}
	c.names[n] = name
}

// Enrich implements [Enricher] by filling [Result.ASN].
func (c *Cymru) Enrich(ctx context.Context, addr netip.Addr, r *Result) error {
	return FromASN(c).Enrich(ctx, addr, r)
}

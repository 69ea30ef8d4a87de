package ntpctl

import (
	"fmt"
	"io"
	"net/netip"
	"slices"
)

// specialPurpose lists the IANA special-purpose address ranges a scanner
// must not probe: every entry of the IANA IPv4 and IPv6 Special-Purpose
// Address Registries (RFC 6890 and successors; testdata/iana holds them,
// and a test checks each entry against this list), multicast, and the
// ranges zmap's default blocklist carries. Loopback is listed apart; the
// IPv6 entries inside 2001::/23 and outside 2000::/3 are covered by those
// two blocks.
var specialPurpose = []string{
	"0.0.0.0/8",       // "this network" (RFC 791)
	"10.0.0.0/8",      // private use (RFC 1918)
	"100.64.0.0/10",   // shared address space (RFC 6598)
	"169.254.0.0/16",  // link local (RFC 3927)
	"172.16.0.0/12",   // private use (RFC 1918)
	"192.0.0.0/24",    // IETF protocol assignments (RFC 6890)
	"192.0.2.0/24",    // documentation, TEST-NET-1 (RFC 5737)
	"192.31.196.0/24", // AS112-v4 (RFC 7535)
	"192.52.193.0/24", // AMT (RFC 7450)
	"192.88.99.0/24",  // deprecated 6to4 relay anycast (RFC 7526)
	"192.168.0.0/16",  // private use (RFC 1918)
	"192.175.48.0/24", // direct delegation AS112 (RFC 7534)
	"198.18.0.0/15",   // benchmarking (RFC 2544)
	"198.51.100.0/24", // documentation, TEST-NET-2 (RFC 5737)
	"203.0.113.0/24",  // documentation, TEST-NET-3 (RFC 5737)
	"224.0.0.0/4",     // multicast (RFC 5771)
	"240.0.0.0/4",     // reserved (RFC 1112), includes 255.255.255.255
	"::/128",          // unspecified (RFC 4291)
	// The IPv4-mapped block (::ffff:0:0/96, RFC 4291) is not listed: an
	// IPv4-mapped address is judged as the IPv4 address it carries.
	"64:ff9b:1::/48",    // local-use IPv4/IPv6 translation (RFC 8215)
	"100::/64",          // discard-only (RFC 6666)
	"2001::/23",         // IETF protocol assignments (RFC 2928)
	"2001:db8::/32",     // documentation (RFC 3849)
	"2002::/16",         // 6to4 (RFC 3056)
	"2620:4f:8000::/48", // direct delegation AS112 service (RFC 7534)
	"3fff::/20",         // documentation (RFC 9637)
	"5f00::/16",         // segment routing SIDs (RFC 9602)
	"fc00::/7",          // unique local (RFC 4193)
	"fe80::/10",         // link local (RFC 4291)
	"ff00::/8",          // multicast (RFC 4291)
}

// loopback lists the loopback ranges, blocked unless a caller allows them.
var loopback = []string{"127.0.0.0/8", "::1/128"}

// SpecialPurposeRanges returns the IANA special-purpose ranges the
// default blocklist contains (loopback apart; see LoopbackRanges).
func SpecialPurposeRanges() []netip.Prefix { return prefixes(specialPurpose) }

// LoopbackRanges returns 127.0.0.0/8 and ::1/128.
func LoopbackRanges() []netip.Prefix { return prefixes(loopback) }

func prefixes(ss []string) []netip.Prefix {
	out := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParsePrefix(s)
	}
	return out
}

// Blocklist decides which addresses may be probed. Its zero value blocks
// the IANA special-purpose ranges and loopback and allows everything
// else; a target it blocks is never sent a packet.
//
// Entries are added as zmap's blocklist and allowlist files write them:
// addresses and prefixes, one per line, '#' comments (ranges such as
// 192.0.2.1-20 are accepted too). Once Allow or ReadAllow has been
// called (even with an empty file), only addresses on the allowlist may be
// probed; the blocklist and the built-in ranges apply on top of it. The
// built-in ranges also block IPv6 outside 2000::/3 (no global unicast
// space is allocated there), and a NAT64 address (64:ff9b::/96) is blocked
// when the IPv4 address inside it is. The unspecified addresses 0.0.0.0
// and :: are always blocked. A Blocklist must not be changed
// while a Prober uses it; reading it is safe from several goroutines.
type Blocklist struct {
	// NoBuiltin turns the IANA special-purpose ranges off. Loopback stays
	// blocked unless AllowLoopback is set too, and the unspecified
	// addresses stay blocked.
	NoBuiltin bool
	// AllowLoopback allows 127.0.0.0/8 and ::1, for tests and the lab.
	AllowLoopback bool
	// AllowPrivate allows the private-use ranges, and those only (10/8,
	// 172.16/12, 192.168/16 of RFC 1918, the shared address space
	// 100.64/10 of RFC 6598, the unique local fc00::/7 of RFC 4193), for
	// operators who audit their own internal networks; the other
	// special-purpose ranges stay blocked, and loopback too unless
	// AllowLoopback.
	AllowPrivate bool

	deny, allow TargetSet
	allowSet    bool
}

// Deny adds a range to the blocklist.
func (b *Blocklist) Deny(r Range) { b.deny.Add(r) }

// Allow adds a range to the allowlist.
func (b *Blocklist) Allow(r Range) {
	b.allow.Add(r)
	b.allowSet = true
}

// ReadDeny adds the entries of a blocklist file in zmap's format.
func (b *Blocklist) ReadDeny(r io.Reader) error {
	_, err := b.deny.ReadFrom(r)
	return err
}

// ReadAllow adds the entries of an allowlist file in zmap's format.
func (b *Blocklist) ReadAllow(r io.Reader) error {
	b.allowSet = true
	_, err := b.allow.ReadFrom(r)
	return err
}

// privateUse are the ranges AllowPrivate lifts.
var privateUse = []string{"10.0.0.0/8", "100.64.0.0/10", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"}

var (
	builtinSet = setOf(specialPurpose)
	privateSet = setOf(privateUse)
	// builtinPublic is builtinSet without the private-use ranges.
	builtinPublic = func() *TargetSet {
		s := *setOf(specialPurpose)
		s.ranges = slices.Clone(s.ranges)
		s.subtract(privateSet)
		return &s
	}()
	loopbackSet = setOf(loopback)
	// builtin8 marks the IPv4 /8s that the built-in ranges or loopback
	// touch; an address in any other /8 needs no search.
	builtin8 = firstOctets(builtinSet, loopbackSet)
)

func firstOctets(sets ...*TargetSet) (out [256]bool) {
	for _, s := range sets {
		for _, r := range s.ranges {
			if r.First.Is4() {
				for o := int(r.First.As4()[0]); o <= int(r.Last.As4()[0]); o++ {
					out[o] = true
				}
			}
		}
	}
	return out
}

func setOf(ss []string) *TargetSet {
	var s TargetSet
	for _, p := range prefixes(ss) {
		s.AddPrefix(p)
	}
	return &s
}

// Allowed reports whether a may be probed.
func (b *Blocklist) Allowed(a netip.Addr) bool { return b.Reason(a) == "" }

// Reason says why a may not be probed ("loopback", "unspecified
// address", "IANA special-purpose range", "blocklist", "not on the
// allowlist", "invalid address", or one of these for the IPv4 address
// inside a NAT64 address), or "" when it may.
func (b *Blocklist) Reason(a netip.Addr) string {
	if !a.IsValid() || a.Zone() != "" {
		return "invalid address"
	}
	a = a.Unmap()
	if b == nil {
		b = &Blocklist{}
	}
	if a.Is4() && !builtin8[a.As4()[0]] && len(b.deny.ranges) == 0 && !b.allowSet {
		return "" // the common case, without a search
	}
	if a.IsUnspecified() {
		// 0.0.0.0 and :: reach the local host on Linux: never, even with
		// NoBuiltin.
		return "unspecified address"
	}
	if why := b.reason(a, true); why != "" {
		return why
	}
	if a.Is6() && nat64.Contains(a) {
		// 64:ff9b::/96 (RFC 6052) reaches the IPv4 address in its last
		// 32 bits through a translator: that address must be allowed
		// too (the allowlist applies to the IPv6 form only).
		v4 := netip.AddrFrom4([4]byte(a.AsSlice()[12:16]))
		switch {
		case v4.IsUnspecified():
			return "NAT64 of unspecified address"
		case loopbackSet.Contains(v4):
			// A translator's loopback is not this host's: AllowLoopback
			// does not reach through it.
			return "NAT64 of loopback"
		}
		if why := b.reason(v4, false); why != "" {
			return "NAT64 of " + why
		}
	}
	return ""
}

func (b *Blocklist) reason(a netip.Addr, allow bool) string {
	switch {
	case !b.AllowLoopback && loopbackSet.Contains(a):
		return "loopback"
	case !b.NoBuiltin && builtinSet.Contains(a) && !(b.AllowPrivate && privateSet.Contains(a)):
		return "IANA special-purpose range"
	case !b.NoBuiltin && a.Is6() && !globalUnicast6.Contains(a) && !nat64.Contains(a) &&
		!(b.AllowPrivate && privateSet.Contains(a)) &&
		!(b.AllowLoopback && a == netip.IPv6Loopback()):
		// Outside 2000::/3 IANA has allocated no global unicast space.
		return "IANA special-purpose range"
	case b.deny.Contains(a):
		return "blocklist"
	case allow && b.allowSet && !b.allow.Contains(a):
		return "not on the allowlist"
	}
	return ""
}

var (
	nat64          = netip.MustParsePrefix("64:ff9b::/96")
	globalUnicast6 = netip.MustParsePrefix("2000::/3")
)

// String summarises the configuration.
func (b *Blocklist) String() string {
	return fmt.Sprintf("blocklist: builtin=%v loopback=%v deny=%d ranges allow=%d ranges",
		!b.NoBuiltin, b.AllowLoopback, len(b.deny.ranges), len(b.allow.ranges))
}

// Apply returns the addresses of s that the blocklist may allow: s
// without the loopback, built-in and denied ranges, and cut to the
// allowlist when there is one. A scanner iterates the result, so blocked
// space costs nothing; the prober still checks every address (NAT64
// addresses are judged only there).
func (b *Blocklist) Apply(s *TargetSet) TargetSet {
	if b == nil {
		b = &Blocklist{}
	}
	var out TargetSet
	out.ranges = slices.Clone(s.ranges)
	out.subtract(unspecifiedSet)
	if !b.AllowLoopback {
		out.subtract(loopbackSet)
	}
	if !b.NoBuiltin {
		if b.AllowPrivate {
			out.subtract(builtinPublic)
			out.subtract(outside2000Public)
		} else {
			out.subtract(builtinSet)
			out.subtract(outside2000)
		}
	}
	out.subtract(&b.deny)
	if b.allowSet {
		out.intersect(&b.allow)
	}
	return out
}

// Removed returns the addresses of s that Apply takes out: those the
// blocklist refuses (NAT64 addresses apart, which only Reason judges). A
// scanner that reports blocked targets iterates it.
func (b *Blocklist) Removed(s *TargetSet) TargetSet {
	kept := b.Apply(s)
	var out TargetSet
	out.ranges = slices.Clone(s.ranges)
	out.subtract(&kept)
	return out
}

var (
	unspecifiedSet = setOf([]string{"0.0.0.0/32", "::/128"})
	// outside2000 is the IPv6 space outside 2000::/3, but for ::1,
	// 64:ff9b::/96 and the IPv4-mapped space, which have their own rules.
	outside2000 = func() *TargetSet {
		var s TargetSet
		s.AddAll(
			Range{netip.MustParseAddr("::"), netip.MustParseAddr("::")},
			Range{netip.MustParseAddr("::2"), mappedFirst.Prev()},
			Range{mappedLast.Next(), netip.MustParseAddr("64:ff9a:ffff:ffff:ffff:ffff:ffff:ffff")},
			Range{netip.MustParseAddr("64:ff9b:0:0:0:1::"), netip.MustParseAddr("1fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")},
			Range{netip.MustParseAddr("4000::"), netip.MustParseAddr("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")},
		)
		return &s
	}()
	// outside2000Public is outside2000 without the unique local range.
	outside2000Public = func() *TargetSet {
		s := *outside2000
		s.ranges = slices.Clone(s.ranges)
		s.subtract(privateSet)
		return &s
	}()
)

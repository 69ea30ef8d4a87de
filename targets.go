package ntpctl

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"iter"
	"math/big"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// ErrTarget reports a target specification that cannot be parsed. Every
// parse error of this package wraps it; errors.As with a *TargetError
// gives the specification, its line and the reason.
var ErrTarget = errors.New("ntpctl: invalid target")

// TargetError is a target specification that cannot be parsed, with the
// reason in a user's terms ("prefix length must be 0–32"). It wraps
// ErrTarget. Its message has no package prefix: it is meant to be shown
// as it is, after the name of the file or flag it came from.
type TargetError struct {
	Spec   string // the specification as written
	Line   int    // its line in a file read by ReadFrom (1 is the first), or 0
	Reason string // what is wrong with it
}

// Error returns "line N: SPEC: REASON" (without "line N: " when Line is
// 0); SPEC is quoted when it holds spaces or characters a terminal would
// act on.
func (e *TargetError) Error() string {
	spec := e.Spec
	if q := strconv.Quote(spec); spec == "" || q[1:len(q)-1] != spec || strings.ContainsAny(spec, " \t") {
		spec = q
	}
	if e.Line > 0 {
		return fmt.Sprintf("line %d: %s: %s", e.Line, spec, e.Reason)
	}
	return spec + ": " + e.Reason
}

// Unwrap returns ErrTarget.
func (e *TargetError) Unwrap() error { return ErrTarget }

func targetErr(spec, format string, a ...any) error {
	return &TargetError{Spec: spec, Reason: fmt.Sprintf(format, a...)}
}

// Range is an inclusive range of addresses of one family, First ≤ Last.
type Range struct {
	First, Last netip.Addr
}

// RangeOf returns the range a prefix covers.
func RangeOf(p netip.Prefix) Range {
	p = p.Masked()
	first := p.Addr()
	bits := first.BitLen() - p.Bits()
	last := addrAdd(first, new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), uint(bits)), big.NewInt(1)))
	return Range{first, last}
}

// Contains reports whether a lies in r.
func (r Range) Contains(a netip.Addr) bool {
	return a.BitLen() == r.First.BitLen() && r.First.Compare(a) <= 0 && a.Compare(r.Last) <= 0
}

// Size returns the number of addresses in r.
func (r Range) Size() *big.Int {
	n := new(big.Int).Sub(addrInt(r.Last), addrInt(r.First))
	return n.Add(n, big.NewInt(1))
}

// String returns "first-last", or the single address.
func (r Range) String() string {
	if r.First == r.Last {
		return r.First.String()
	}
	return r.First.String() + "-" + r.Last.String()
}

func addrInt(a netip.Addr) *big.Int { return new(big.Int).SetBytes(a.AsSlice()) }

func addrAdd(a netip.Addr, n *big.Int) netip.Addr {
	v := new(big.Int).Add(addrInt(a), n)
	buf := make([]byte, a.BitLen()/8)
	v.FillBytes(buf)
	out, _ := netip.AddrFromSlice(buf)
	return out
}

// ParseRange parses one target specification: an address ("192.0.2.1",
// "2001:db8::1", or in brackets, "[2001:db8::1]"), a prefix
// ("192.0.2.0/24"), or a range ("192.0.2.1-192.0.2.20", or "192.0.2.1-20"
// for the last octet). IPv4-mapped IPv6 addresses are taken as IPv4, and
// so is a range whose ends are both IPv4-mapped; an IPv6 range may end
// inside the IPv4-mapped space (as ::/80 does). Zones, host names and
// ports ("[2001:db8::1]:123", "192.0.2.1:123": a target set has one port
// for all its addresses) are refused. Errors are *TargetError, wrapping
// ErrTarget.
func ParseRange(s string) (Range, error) {
	spec := strings.TrimSpace(s)
	s = spec
	if s == "" {
		return Range{}, targetErr(spec, "empty target")
	}
	if why := portOrName(s); why != "" {
		return Range{}, targetErr(spec, "%s", why)
	}
	if inner, ok := bracketed(s); ok {
		s = inner
	}
	if addr, bits, ok := strings.Cut(s, "/"); ok {
		a, why := addrReason(addr)
		if why != "" {
			return Range{}, targetErr(spec, "%s", why)
		}
		max := a.BitLen()
		n, err := strconv.ParseUint(bits, 10, 8)
		if err != nil || int(n) > max || bits == "" || bits[0] == '+' {
			return Range{}, targetErr(spec, "prefix length must be 0–%d", max)
		}
		p := netip.PrefixFrom(a, int(n))
		if p.Addr().Is4In6() {
			if p.Bits() < 96 {
				return Range{}, targetErr(spec, "an IPv4-mapped prefix must be /96 or longer")
			}
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		return RangeOf(p), nil
	}
	if lo, hi, ok := strings.Cut(s, "-"); ok {
		// The ends are unmapped only together: an IPv6 range may end
		// (or start) inside the IPv4-mapped space, as ::/80 does.
		first, why := addrReason(lo)
		if why != "" {
			return Range{}, targetErr(spec, "start of the range: %s", why)
		}
		var last netip.Addr
		if n, err := strconv.ParseUint(strings.TrimSpace(hi), 10, 8); err == nil && first.Unmap().Is4() {
			first = first.Unmap()
			b := first.As4()
			b[3] = byte(n)
			last = netip.AddrFrom4(b)
		} else if last, why = addrReason(hi); why != "" {
			return Range{}, targetErr(spec, "end of the range: %s", why)
		}
		if first.Is4In6() && last.Is4In6() {
			first, last = first.Unmap(), last.Unmap()
		} else if first.Is4In6() != last.Is4In6() && (first.Is4() || last.Is4()) {
			first, last = first.Unmap(), last.Unmap() // one IPv4 end: the mapped one is IPv4 too
		}
		if first.BitLen() != last.BitLen() {
			return Range{}, targetErr(spec, "a range's ends must be of one family (both IPv4 or both IPv6)")
		}
		if last.Less(first) {
			return Range{}, targetErr(spec, "a range must not end before it starts")
		}
		return Range{first, last}, nil
	}
	a, why := addrReason(s)
	if why != "" {
		return Range{}, targetErr(spec, "%s", why)
	}
	return Range{a.Unmap(), a.Unmap()}, nil
}

// bracketed returns the address inside "[ADDR]", as URLs and ntpctl
// write IPv6 addresses.
func bracketed(s string) (string, bool) {
	if len(s) > 2 && s[0] == '[' && s[len(s)-1] == ']' {
		return s[1 : len(s)-1], true
	}
	return s, false
}

// portOrName says why s is a host name or an address with a port, or
// returns "".
func portOrName(s string) string {
	if _, err := netip.ParseAddrPort(s); err == nil {
		return "ports are not supported here: every target is probed on the same port"
	}
	letter := false
	for _, c := range s {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
			letter = true
		case c >= '0' && c <= '9', c == '.', c == '-', c == '_':
		default:
			return ""
		}
	}
	if letter {
		return "host names are not supported here: give addresses, prefixes or ranges"
	}
	return ""
}

// addrReason parses an address (trimmed; zones refused), keeping an
// IPv4-mapped address as it is, or says what is wrong with it.
func addrReason(s string) (netip.Addr, string) {
	s = strings.TrimSpace(s)
	a, err := netip.ParseAddr(s)
	switch {
	case err == nil && a.Zone() != "":
		return netip.Addr{}, "zoned addresses are not targets"
	case err == nil:
		return a, ""
	case s == "":
		return a, "empty address"
	case strings.Contains(s, "%"):
		return a, "zoned addresses are not targets"
	case strings.Contains(s, ":"):
		return a, "not an IPv6 address"
	case strings.Trim(s, "0123456789.") == "":
		return a, "not an IPv4 address (four numbers 0–255 separated by dots)"
	}
	return a, "not an address"
}

// TargetSet is a set of addresses of both families, kept as sorted,
// merged ranges: memory grows with the number of ranges, not addresses.
// The zero value is empty and ready to use.
type TargetSet struct {
	ranges []Range // sorted, disjoint, not adjacent
}

// Add adds the addresses of r. Adding in ascending order costs O(1);
// out of order, a sort: for many unordered ranges use AddAll or ReadFrom,
// which sort once.
func (s *TargetSet) Add(r Range) {
	n := len(s.ranges)
	if inMapped(r) {
		s.AddAll(r) // split and sorted by normalize
		return
	}
	if n == 0 || (r.First.BitLen() == s.ranges[n-1].Last.BitLen() && s.ranges[n-1].Last.Next().IsValid() &&
		s.ranges[n-1].Last.Next().Less(r.First)) ||
		(r.First.Is6() && s.ranges[n-1].Last.Is4()) {
		s.ranges = append(s.ranges, r) // after everything: still sorted and disjoint
		return
	}
	s.ranges = append(s.ranges, r)
	s.normalize()
}

// AddAll adds the addresses of every range, sorting once.
func (s *TargetSet) AddAll(rs ...Range) {
	s.ranges = append(s.ranges, rs...)
	s.normalize()
}

// AddPrefix adds the addresses of p.
func (s *TargetSet) AddPrefix(p netip.Prefix) { s.Add(RangeOf(p)) }

// AddString parses and adds one target specification (see ParseRange).
func (s *TargetSet) AddString(spec string) error {
	r, err := ParseRange(spec)
	if err != nil {
		return err
	}
	s.Add(r)
	return nil
}

// ReadFrom adds the targets of a file: one specification per line (an
// address, prefix or range, so IPv6 hitlists too; several on a line,
// separated by blanks, as zmap's files have them); blank lines and text
// after '#' are ignored, and so is a UTF-8 byte order mark at the start.
// An error is a *TargetError with the line; the lines before it stay
// added. It returns the number of octets read.
func (s *TargetSet) ReadFrom(r io.Reader) (int64, error) {
	return readSpecs(r, func(line int, spec string) error {
		rg, err := ParseRange(spec)
		if err != nil {
			var te *TargetError
			if errors.As(err, &te) {
				te.Line = line
				return te
			}
			return fmt.Errorf("line %d: %w", line, err)
		}
		s.ranges = append(s.ranges, rg)
		return nil
	}, s.normalize)
}

// readSpecs calls add for every specification in r, then done.
func readSpecs(r io.Reader, add func(line int, spec string) error, done func()) (int64, error) {
	cr := &countingReader{r: r}
	sc := bufio.NewScanner(cr)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	line := 0
	defer done()
	for sc.Scan() {
		line++
		text := sc.Text()
		if line == 1 {
			text = strings.TrimPrefix(text, "\ufeff") // a byte order mark, as editors on Windows write
		}
		if i := strings.IndexByte(text, '#'); i >= 0 {
			text = text[:i]
		}
		text = strings.TrimSpace(text)
		if text == "" {
			continue
		}
		// zmap's files may list several entries separated by blanks.
		for _, spec := range strings.Fields(text) {
			if err := add(line, spec); err != nil {
				return cr.n, err
			}
		}
	}
	return cr.n, sc.Err()
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// The IPv4-mapped IPv6 space, ::ffff:0:0/96.
var (
	mappedFirst = netip.AddrFrom16([16]byte{10: 0xff, 11: 0xff})
	mappedLast  = netip.AddrFrom16([16]byte{10: 0xff, 11: 0xff, 12: 0xff, 13: 0xff, 14: 0xff, 15: 0xff})
)

// inMapped reports whether r is an IPv6 range that reaches into the
// IPv4-mapped space.
func inMapped(r Range) bool {
	return r.First.Is6() && !r.Last.Less(mappedFirst) && !mappedLast.Less(r.First)
}

// unmapRanges rewrites the part of each IPv6 range that lies in the
// IPv4-mapped space as the IPv4 range it stands for, keeping the IPv6
// parts before and after it: an address is judged as IPv4 whichever way
// it is written (Contains unmaps), so "::/80" on a blocklist must block
// 8.8.8.8 too.
func unmapRanges(rs []Range) []Range {
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		if !inMapped(r) {
			continue
		}
		v4 := Range{maxAddr(r.First, mappedFirst).Unmap(), minAddr(r.Last, mappedLast).Unmap()}
		rs[i] = v4
		if r.First.Less(mappedFirst) {
			rs = append(rs, Range{r.First, mappedFirst.Prev()})
		}
		if mappedLast.Less(r.Last) {
			rs = append(rs, Range{mappedLast.Next(), r.Last})
		}
	}
	return rs
}

func maxAddr(a, b netip.Addr) netip.Addr {
	if a.Less(b) {
		return b
	}
	return a
}

func minAddr(a, b netip.Addr) netip.Addr {
	if a.Less(b) {
		return a
	}
	return b
}

// normalize sorts and merges the ranges, IPv4-mapped parts as IPv4.
func (s *TargetSet) normalize() {
	s.ranges = unmapRanges(s.ranges)
	slices.SortFunc(s.ranges, func(a, b Range) int {
		if c := a.First.BitLen() - b.First.BitLen(); c != 0 {
			return c
		}
		return a.First.Compare(b.First)
	})
	out := s.ranges[:0]
	for _, r := range s.ranges {
		if n := len(out); n > 0 && out[n-1].First.BitLen() == r.First.BitLen() &&
			(r.First.Compare(out[n-1].Last) <= 0 || out[n-1].Last.Next() == r.First) {
			if out[n-1].Last.Less(r.Last) {
				out[n-1].Last = r.Last
			}
			continue
		}
		out = append(out, r)
	}
	s.ranges = out
}

// Ranges returns the set's ranges, sorted (IPv4 first) and merged.
func (s *TargetSet) Ranges() []Range { return slices.Clone(s.ranges) }

// Contains reports whether a is in the set.
func (s *TargetSet) Contains(a netip.Addr) bool {
	a = a.Unmap()
	i, _ := slices.BinarySearchFunc(s.ranges, a, func(r Range, a netip.Addr) int {
		if c := r.First.BitLen() - a.BitLen(); c != 0 {
			return c
		}
		if r.Last.Less(a) {
			return -1
		}
		if a.Less(r.First) {
			return 1
		}
		return 0
	})
	return i < len(s.ranges) && s.ranges[i].Contains(a)
}

// Len returns the number of addresses in the set.
func (s *TargetSet) Len() *big.Int {
	n := new(big.Int)
	for _, r := range s.ranges {
		n.Add(n, r.Size())
	}
	return n
}

// All yields every address of the set in order, IPv4 first, with the
// given port. It holds no more than the current address.
func (s *TargetSet) All(port uint16) iter.Seq[netip.AddrPort] {
	return func(yield func(netip.AddrPort) bool) {
		for _, r := range s.ranges {
			for a := r.First; ; a = a.Next() {
				if !yield(netip.AddrPortFrom(a, port)) {
					return
				}
				if a == r.Last {
					break
				}
			}
		}
	}
}

// Addrs yields the given addresses with port, in order.
func Addrs(port uint16, addrs ...netip.Addr) iter.Seq[netip.AddrPort] {
	return func(yield func(netip.AddrPort) bool) {
		for _, a := range addrs {
			if !yield(netip.AddrPortFrom(a.Unmap(), port)) {
				return
			}
		}
	}
}

// Prefix yields every address of p with port, in order.
func Prefix(p netip.Prefix, port uint16) iter.Seq[netip.AddrPort] {
	var s TargetSet
	s.AddPrefix(p)
	return s.All(port)
}

// FromChan yields the targets received from ch until it is closed. The
// prober pulls the next target on its own goroutine, so while ch is empty
// nothing else happens; feed it promptly or close it.
func FromChan(ch <-chan netip.AddrPort) iter.Seq[netip.AddrPort] {
	return func(yield func(netip.AddrPort) bool) {
		for t := range ch {
			if !yield(t) {
				return
			}
		}
	}
}

// subtract removes the addresses of o from s; both are normalized.
func (s *TargetSet) subtract(o *TargetSet) {
	var out []Range
	j := 0
	for _, r := range s.ranges {
		cur := r
		keep := true
		for ; j < len(o.ranges) && rangeBefore(o.ranges[j], cur); j++ {
		}
		for k := j; k < len(o.ranges) && !rangeBefore(cur, o.ranges[k]); k++ {
			d := o.ranges[k]
			if d.First.BitLen() != cur.First.BitLen() {
				continue
			}
			if cur.First.Less(d.First) {
				out = append(out, Range{cur.First, d.First.Prev()})
			}
			if !d.Last.Less(cur.Last) {
				keep = false
				break
			}
			cur.First = d.Last.Next()
		}
		if keep {
			out = append(out, cur)
		}
	}
	s.ranges = out
}

// intersect keeps only the addresses of s that o holds too.
func (s *TargetSet) intersect(o *TargetSet) {
	var out []Range
	for _, r := range s.ranges {
		for _, a := range o.ranges {
			if a.First.BitLen() != r.First.BitLen() || a.Last.Less(r.First) || r.Last.Less(a.First) {
				continue
			}
			first, last := r.First, r.Last
			if first.Less(a.First) {
				first = a.First
			}
			if a.Last.Less(last) {
				last = a.Last
			}
			out = append(out, Range{first, last})
		}
	}
	s.ranges = out
	s.normalize()
}

// rangeBefore reports whether a ends before b starts, in the set order
// (IPv4 before IPv6).
func rangeBefore(a, b Range) bool {
	if a.Last.BitLen() != b.First.BitLen() {
		return a.Last.BitLen() < b.First.BitLen()
	}
	return a.Last.Less(b.First)
}

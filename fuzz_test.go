package ntpctl_test

import (
	"bytes"
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/ntpctl/ntpctl"
)

// FuzzParseRange: any text either parses to an ascending range of one
// family, which prints and parses back to itself, or is refused with
// ErrTarget.
func FuzzParseRange(f *testing.F) {
	for _, s := range []string{"192.0.2.1", "192.0.2.0/24", "192.0.2.1-20", "2001:db8::/64", "::ffff:1.2.3.4",
		"1.2.3.4-1.2.3.3", "fe80::1%eth0", "0.0.0.0/0", "::/0", "1-2", "-", "/",
		"[::1]", "[::1]:123", "192.0.2.1:123", "[2001:db8::1]/64", "ntp.example.net", "192.0.2.1/33", "[]", "[::1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ntpctl.ParseRange(s)
		if err != nil {
			if !errors.Is(err, ntpctl.ErrTarget) {
				t.Fatalf("%q: %v", s, err)
			}
			return
		}
		if r.First.BitLen() != r.Last.BitLen() || r.Last.Less(r.First) || (r.First.Is4In6() && r.Last.Is4In6()) {
			t.Fatalf("%q: bad range %v", s, r)
		}
		back, err := ntpctl.ParseRange(r.String())
		if err != nil || back != r {
			t.Fatalf("%q -> %v -> %v (%v)", s, r, back, err)
		}
	})
}

// FuzzTargetFile: reading any file never panics; what is read is sorted,
// merged, and contains each range's ends.
func FuzzTargetFile(f *testing.F) {
	f.Add([]byte("# targets\n192.0.2.0/30 198.51.100.1\n2001:db8::1-2001:db8::3 # hitlist\n"))
	f.Add([]byte("\ufeff192.0.2.1\n[2001:db8::1]\n"))           // a byte order mark; an address in brackets
	f.Add([]byte("\ufeff# comment\n[::1]:123\n"))               // a port: refused
	f.Add([]byte("192.0.2.1\n\ufeff192.0.2.2\nhost.example\n")) // a mark past line 1 is an error
	f.Fuzz(func(t *testing.T, data []byte) {
		var s ntpctl.TargetSet
		_, err := s.ReadFrom(bytes.NewReader(data))
		if err != nil && !errors.Is(err, ntpctl.ErrTarget) {
			return // a line too long for the scanner
		}
		rs := s.Ranges()
		for i, r := range rs {
			if !s.Contains(r.First) || !s.Contains(r.Last) {
				t.Fatalf("range %v not contained", r)
			}
			if i > 0 && rs[i-1].First.BitLen() == r.First.BitLen() && !rs[i-1].Last.Less(r.First) {
				t.Fatalf("ranges %v and %v overlap", rs[i-1], r)
			}
		}
	})
}

// FuzzDenyForms: an address on a deny list, in any form a list accepts
// (an IPv4 address or prefix, its IPv4-mapped form, an IPv6 range running
// into the mapped space), is refused by Reason in either form, and never
// yielded by Permuted over a target set that Apply cut, however the
// target set writes it.
func FuzzDenyForms(f *testing.F) {
	f.Add([]byte{8, 8, 8, 8}, uint8(0), uint8(0), uint8(24))
	f.Add([]byte{198, 51, 100, 7}, uint8(3), uint8(1), uint8(30))
	f.Add([]byte{1, 2, 3, 4}, uint8(5), uint8(2), uint8(0))
	f.Add([]byte{9, 9, 9, 9}, uint8(8), uint8(0), uint8(0))  // in brackets
	f.Add([]byte{9, 9, 9, 10}, uint8(9), uint8(1), uint8(8)) // after a byte order mark
	f.Fuzz(func(t *testing.T, raw []byte, form, targetForm, bits uint8) {
		if len(raw) < 4 {
			return
		}
		v4 := netip.AddrFrom4([4]byte(raw[:4]))
		mapped := netip.AddrFrom16(v4.As16())
		bits = bits % 33
		entries := []string{
			v4.String(),
			mapped.String(),
			netip.PrefixFrom(v4, int(bits)).Masked().String(),
			netip.PrefixFrom(mapped, 96+int(bits)).Masked().String(),
			"::-" + mapped.String(),
			mapped.String() + "-::1:0:0:0",
			"::/80",
			"::fffe:0:0-" + mapped.String(),
			"[" + mapped.String() + "]",
			"\ufeff" + v4.String(),
		}
		entry := entries[int(form)%len(entries)]
		var b ntpctl.Blocklist
		b.NoBuiltin, b.AllowLoopback = true, true // judge the list alone
		if err := b.ReadDeny(strings.NewReader(entry + "\n")); err != nil {
			t.Fatalf("%q: %v", entry, err)
		}
		for _, a := range []netip.Addr{v4, mapped} {
			if b.Allowed(a) {
				t.Fatalf("deny %q allows %s", entry, a)
			}
		}
		var set ntpctl.TargetSet
		switch targetForm % 3 {
		case 0:
			set.Add(ntpctl.Range{First: v4, Last: v4})
		case 1:
			set.Add(ntpctl.Range{First: mapped, Last: mapped})
		case 2:
			if err := set.AddString(netip.PrefixFrom(mapped, 120).Masked().String()); err != nil {
				t.Fatal(err)
			}
		}
		kept := b.Apply(&set)
		seq, err := kept.Permuted(ntpctl.PermuteOptions{Port: 123, Seed: uint64(form) + 1})
		if err != nil {
			t.Fatal(err)
		}
		for ap := range seq {
			if ap.Addr().Unmap() == v4 {
				t.Fatalf("deny %q: %s yielded", entry, ap)
			}
		}
	})
}

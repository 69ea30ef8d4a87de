package ntpctl_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/ntpctl/ntpctl"
)

// FuzzParseRange: any text either parses to an ascending range of one
// family, which prints and parses back to itself, or is refused with
// ErrTarget.
func FuzzParseRange(f *testing.F) {
	for _, s := range []string{"192.0.2.1", "192.0.2.0/24", "192.0.2.1-20", "2001:db8::/64", "::ffff:1.2.3.4",
		"1.2.3.4-1.2.3.3", "fe80::1%eth0", "0.0.0.0/0", "::/0", "1-2", "-", "/"} {
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

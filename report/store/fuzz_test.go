package store_test

import (
	"net/netip"
	"testing"

	"github.com/ntpctl/ntpctl/report"
	"github.com/ntpctl/ntpctl/report/store"
)

// FuzzParseConstituencies: any file either fails with a
// *ConstituencyError or yields constituencies that are all valid, and
// matching a row against them never panics.
func FuzzParseConstituencies(f *testing.F) {
	f.Add([]byte(labConstituencies))
	f.Add([]byte("constituencies:\n  - name: x\n    prefixes: [\"::ffff:10.0.0.0/104\", 2001:db8::/32]\n    asns: [AS1]\n    api: {key: k, secret: s}\n    delivery: {attach: url, delta: true, full_weekday: Sunday}\n"))
	f.Add([]byte("constituencies: [1, {name: [a]}]"))
	f.Add([]byte("\xef\xbb\xbfconstituencies:\n  - &a {name: a, asns: [1]}\n  - *a\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cs, err := store.ParseConstituencies(data)
		if err != nil {
			return
		}
		for _, c := range cs.List {
			if !store.IsToken(c.Name) || len(c.Prefixes)+len(c.ASNs)+len(c.Countries) == 0 {
				t.Fatalf("invalid constituency accepted: %+v", c)
			}
			for _, p := range c.Prefixes {
				if p.Masked() != p || p.Addr().Is4In6() || p.Addr().Zone() != "" {
					t.Fatalf("prefix %v accepted", p)
				}
				cs.Names(report.Key{IP: p.Addr()})
			}
			for _, a := range c.ASNs {
				if a == 0 {
					t.Fatal("AS 0 accepted")
				}
			}
		}
		cs.Names(report.Key{IP: netip.MustParseAddr("192.0.2.1"), ASN: 1, Country: "nl"})
	})
}

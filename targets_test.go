package ntpctl_test

import (
	"encoding/csv"
	"math/big"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ntpctl/ntpctl"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }
func ip(s string) netip.Addr     { return netip.MustParseAddr(s) }

func TestParseRange(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.1":                "192.0.2.1",
		" 192.0.2.0/30 ":           "192.0.2.0-192.0.2.3",
		"192.0.2.7/30":             "192.0.2.4-192.0.2.7",
		"192.0.2.1-192.0.2.20":     "192.0.2.1-192.0.2.20",
		"192.0.2.1-20":             "192.0.2.1-192.0.2.20",
		"2001:db8::1":              "2001:db8::1",
		"2001:db8::/126":           "2001:db8::-2001:db8::3",
		"2001:db8::1-2001:db8::ff": "2001:db8::1-2001:db8::ff",
		"::ffff:192.0.2.1":         "192.0.2.1",
		"::ffff:192.0.2.0/126":     "192.0.2.0-192.0.2.3",
		"0.0.0.0/0":                "0.0.0.0-255.255.255.255",
	} {
		r, err := ntpctl.ParseRange(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, r.String(), in)
	}
	for _, bad := range []string{"", "x", "192.0.2.1/33", "192.0.2.20-192.0.2.1", "192.0.2.1-2001:db8::1",
		"fe80::1%eth0", "192.0.2.1-300", "::ffff:0:0/90"} {
		_, err := ntpctl.ParseRange(bad)
		assert.ErrorIs(t, err, ntpctl.ErrTarget, bad)
	}
	r, _ := ntpctl.ParseRange("192.0.2.0/24")
	assert.Equal(t, big.NewInt(256), r.Size())
	assert.True(t, r.Contains(ip("192.0.2.255")))
	assert.False(t, r.Contains(ip("192.0.3.0")))
	assert.False(t, r.Contains(ip("::ffff:192.0.2.1")), "families do not mix")
}

func TestTargetSet(t *testing.T) {
	var s ntpctl.TargetSet
	n, err := s.ReadFrom(strings.NewReader(`# a target file
192.0.2.0/30   # four
192.0.2.4 192.0.2.5
192.0.2.1-3
2001:db8::1
2001:db8::2 # IPv6 hitlist lines

198.51.100.9
`))
	require.NoError(t, err)
	assert.Positive(t, n)
	assert.Equal(t, []string{"192.0.2.0-192.0.2.5", "198.51.100.9", "2001:db8::1-2001:db8::2"},
		func() (out []string) {
			for _, r := range s.Ranges() {
				out = append(out, r.String())
			}
			return
		}(), "merged and sorted, IPv4 first")
	assert.Equal(t, big.NewInt(9), s.Len())
	assert.True(t, s.Contains(ip("192.0.2.5")))
	assert.True(t, s.Contains(ip("::ffff:192.0.2.5")))
	assert.False(t, s.Contains(ip("192.0.2.6")))
	assert.True(t, s.Contains(ip("2001:db8::2")))
	var all []netip.AddrPort
	for t := range s.All(123) {
		all = append(all, t)
	}
	assert.Len(t, all, 9)
	assert.Equal(t, ap("192.0.2.0:123"), all[0])
	assert.Equal(t, ap("[2001:db8::2]:123"), all[8])

	_, err = s.ReadFrom(strings.NewReader("192.0.2.1\nnot-an-address\n"))
	assert.ErrorIs(t, err, ntpctl.ErrTarget)
	assert.Contains(t, err.Error(), "line 2")

	var few []netip.AddrPort
	for t := range ntpctl.Prefix(netip.MustParsePrefix("192.0.2.0/31"), 9) {
		few = append(few, t)
	}
	assert.Equal(t, []netip.AddrPort{ap("192.0.2.0:9"), ap("192.0.2.1:9")}, few)
	few = slices.Collect(ntpctl.Addrs(123, ip("::ffff:192.0.2.9")))
	assert.Equal(t, []netip.AddrPort{ap("192.0.2.9:123")}, few)
	ch := make(chan netip.AddrPort, 2)
	ch <- ap("192.0.2.1:1")
	close(ch)
	assert.Equal(t, []netip.AddrPort{ap("192.0.2.1:1")}, slices.Collect(ntpctl.FromChan(ch)))
}

func TestBlocklist(t *testing.T) {
	var b ntpctl.Blocklist
	for a, why := range map[string]string{
		"8.8.8.8": "", "2600::1": "",
		"127.0.0.1": "loopback", "::1": "loopback", "127.255.0.9": "loopback",
		"10.1.2.3": "IANA special-purpose range", "192.168.1.1": "IANA special-purpose range",
		"100.64.0.1": "IANA special-purpose range", "169.254.1.1": "IANA special-purpose range",
		"192.0.2.1": "IANA special-purpose range", "224.0.0.1": "IANA special-purpose range",
		"255.255.255.255": "IANA special-purpose range", "0.1.2.3": "IANA special-purpose range",
		"fe80::1": "IANA special-purpose range", "fd00::1": "IANA special-purpose range",
		"2001:db8::1": "IANA special-purpose range", "ff02::1": "IANA special-purpose range",
		"::ffff:10.0.0.1": "IANA special-purpose range",
	} {
		assert.Equal(t, why, b.Reason(ip(a)), a)
	}
	assert.Equal(t, "invalid address", b.Reason(netip.Addr{}))

	lab := ntpctl.Blocklist{AllowLoopback: true}
	assert.True(t, lab.Allowed(ip("127.0.0.1")))
	assert.False(t, lab.Allowed(ip("10.0.0.1")), "loopback only, not the rest")

	var custom ntpctl.Blocklist
	require.NoError(t, custom.ReadDeny(strings.NewReader("8.8.8.0/24 # zmap style\n1.1.1.1\n")))
	require.NoError(t, custom.ReadAllow(strings.NewReader("8.0.0.0/8\n1.0.0.0/8\n10.0.0.0/8\n")))
	assert.Equal(t, "blocklist", custom.Reason(ip("8.8.8.8")))
	assert.Equal(t, "blocklist", custom.Reason(ip("1.1.1.1")))
	assert.Equal(t, "", custom.Reason(ip("8.8.4.4")))
	assert.Equal(t, "not on the allowlist", custom.Reason(ip("9.9.9.9")))
	assert.Equal(t, "IANA special-purpose range", custom.Reason(ip("10.0.0.1")), "built-in ranges apply on top of the allowlist")

	off := ntpctl.Blocklist{NoBuiltin: true}
	assert.True(t, off.Allowed(ip("10.0.0.1")))
	assert.False(t, off.Allowed(ip("127.0.0.1")), "loopback stays blocked")
	assert.Equal(t, "unspecified address", off.Reason(ip("0.0.0.0")), "0.0.0.0 reaches the local host")
	assert.Equal(t, "unspecified address", off.Reason(ip("::")))

	// NAT64: the IPv4 address inside decides too.
	for a, why := range map[string]string{
		"64:ff9b::8.8.8.8":   "",
		"64:ff9b::10.0.0.1":  "NAT64 of IANA special-purpose range",
		"64:ff9b::127.0.0.1": "NAT64 of loopback",
		"64:ff9b::0.0.0.0":   "NAT64 of unspecified address",
		"64:ff9b::1.1.1.1":   "NAT64 of blocklist",
		"fec0::1":            "IANA special-purpose range", // outside 2000::/3
		"::2":                "IANA special-purpose range",
		"4000::1":            "IANA special-purpose range",
	} {
		var nb ntpctl.Blocklist
		nb.Deny(ntpctl.Range{First: ip("1.1.1.1"), Last: ip("1.1.1.1")})
		assert.Equal(t, why, nb.Reason(ip(a)), a)
	}
	var allow6 ntpctl.Blocklist
	allow6.Allow(ntpctl.Range{First: ip("64:ff9b::"), Last: ip("64:ff9b::ffff:ffff")})
	assert.True(t, allow6.Allowed(ip("64:ff9b::8.8.8.8")), "the allowlist applies to the IPv6 form")
	assert.True(t, (&ntpctl.Blocklist{AllowLoopback: true}).Allowed(ip("::1")))

	var empty ntpctl.Blocklist
	require.NoError(t, empty.ReadAllow(strings.NewReader("# nothing\n")))
	assert.Equal(t, "not on the allowlist", empty.Reason(ip("8.8.8.8")), "an empty allowlist file allows nothing")
	assert.NotEmpty(t, ntpctl.SpecialPurposeRanges())
	assert.Len(t, ntpctl.LoopbackRanges(), 2)
}

// TestPermutation: every index is visited once, the seed reproduces the
// order, and shards are disjoint and complete.
func TestPermutation(t *testing.T) {
	for _, n := range []uint64{1, 2, 3, 4, 7, 10, 255, 256, 1000, 65536 + 3} {
		for _, seed := range []uint64{0, 1, 42} {
			pm, err := ntpctl.NewPermutation(n, seed)
			require.NoError(t, err)
			seen := make([]bool, n)
			count := uint64(0)
			var order []uint64
			for i := range pm.All() {
				require.Less(t, i, n)
				require.False(t, seen[i], "index %d twice (n=%d)", i, n)
				seen[i] = true
				count++
				if len(order) < 16 {
					order = append(order, i)
				}
			}
			require.Equal(t, n, count)
			again, _ := ntpctl.NewPermutation(n, seed)
			var order2 []uint64
			for i := range again.All() {
				if len(order2) == len(order) {
					break
				}
				order2 = append(order2, i)
			}
			assert.Equal(t, order, order2, "the seed reproduces the order")
			for shards := 1; shards <= 5; shards++ {
				hit := make([]int, n)
				for s := range shards {
					seq, err := pm.Shard(s, shards)
					require.NoError(t, err)
					for i := range seq {
						hit[i]++
					}
				}
				for i, h := range hit {
					require.Equal(t, 1, h, "n=%d shards=%d index %d", n, shards, i)
				}
			}
		}
	}
	a, _ := ntpctl.NewPermutation(1000, 1)
	b, _ := ntpctl.NewPermutation(1000, 2)
	assert.NotEqual(t, slices.Collect(a.All())[:20], slices.Collect(b.All())[:20], "seeds differ")
	_, err := ntpctl.NewPermutation(0, 1)
	assert.Error(t, err)
	_, err = a.Shard(3, 3)
	assert.ErrorIs(t, err, ntpctl.ErrShard)
	_, err = a.Shard(0, 0)
	assert.ErrorIs(t, err, ntpctl.ErrShard)

	// Spread: consecutive probes rarely fall in the same /24.
	var s ntpctl.TargetSet
	s.AddPrefix(netip.MustParsePrefix("198.18.0.0/16"))
	seq, err := s.Permuted(ntpctl.PermuteOptions{Port: 123, Seed: 7})
	require.NoError(t, err)
	same, prev, total := 0, netip.Addr{}, 0
	visited := map[netip.Addr]bool{}
	for target := range seq {
		if prev.IsValid() && netip.PrefixFrom(prev, 24).Masked() == netip.PrefixFrom(target.Addr(), 24).Masked() {
			same++
		}
		prev = target.Addr()
		visited[target.Addr()] = true
		total++
	}
	assert.Equal(t, 65536, total)
	assert.Len(t, visited, 65536)
	assert.Less(t, same, 1000, "neighbours in the same /24")
}

func TestPermutedSets(t *testing.T) {
	var s ntpctl.TargetSet
	for _, spec := range []string{"192.0.2.0/29", "198.51.100.7", "2001:db8::/126", "2001:db8::1:0-2001:db8::1:2"} {
		require.NoError(t, s.AddString(spec))
	}
	want := map[netip.AddrPort]bool{}
	for t := range s.All(123) {
		want[t] = true
	}
	for shards := 1; shards <= 4; shards++ {
		got := map[netip.AddrPort]int{}
		for i := range shards {
			seq, err := s.Permuted(ntpctl.PermuteOptions{Port: 123, Seed: 99, Shard: i, Shards: shards})
			require.NoError(t, err)
			for t := range seq {
				got[t]++
			}
		}
		require.Len(t, got, len(want))
		for target, n := range got {
			assert.True(t, want[target], "%v", target)
			assert.Equal(t, 1, n, "%v", target)
		}
	}
	var big ntpctl.TargetSet
	big.AddPrefix(netip.MustParsePrefix("2001:db8::/64"))
	_, err := big.Permuted(ntpctl.PermuteOptions{Port: 123, Seed: 1})
	assert.Error(t, err, "2^64 addresses are too many")
}

// TestBlocklistApply: the addresses Apply keeps are exactly those of the
// set that Reason allows (NAT64 apart, which only Reason judges).
func TestBlocklistApply(t *testing.T) {
	var set ntpctl.TargetSet
	for _, spec := range []string{"0.0.0.0/6", "9.255.255.0-11.0.0.5", "100.63.255.250-100.64.0.5", "fbff::/16", "fd00::/16", "126.255.255.250-128.0.0.3", "192.0.0.0/16",
		"223.255.255.0/23", "255.255.255.250-255.255.255.255", "::/126", "fe7f::/16", "2001:db8::/31", "3fff::/21", "2600::/127"} {
		require.NoError(t, set.AddString(spec))
	}
	var custom ntpctl.Blocklist
	require.NoError(t, custom.ReadDeny(strings.NewReader("8.0.0.0/8\n2600::1\n")))
	var allow ntpctl.Blocklist
	require.NoError(t, allow.ReadAllow(strings.NewReader("1.0.0.0-3.0.0.0\n127.0.0.0/8\n2600::/16\n")))
	for name, b := range map[string]*ntpctl.Blocklist{
		"default": {}, "lab": {AllowLoopback: true}, "nobuiltin": {NoBuiltin: true}, "custom": &custom, "allow": &allow,
		"private": {AllowPrivate: true},
	} {
		kept := b.Apply(&set)
		// Walk a sample of every range's addresses: its ends and
		// neighbours, and points in between.
		for _, r := range set.Ranges() {
			for _, a := range []netip.Addr{r.First, r.First.Next(), r.Last, r.Last.Prev()} {
				if !a.IsValid() || !r.Contains(a) {
					continue
				}
				assert.Equal(t, b.Allowed(a), kept.Contains(a), "%s: %v", name, a)
			}
		}
		for _, r := range kept.Ranges() {
			for _, a := range []netip.Addr{r.First, r.Last} {
				assert.True(t, set.Contains(a), "%s: %v is in the set", name, a)
				assert.True(t, b.Allowed(a), "%s: %v is allowed", name, a)
			}
			for _, a := range []netip.Addr{r.First.Prev(), r.Last.Next()} {
				if a.IsValid() && set.Contains(a) {
					assert.False(t, b.Allowed(a), "%s: %v next to a kept range is blocked", name, a)
				}
			}
		}
	}
	var d ntpctl.Blocklist
	kept := d.Apply(&set)
	assert.Positive(t, kept.Len().Cmp(big.NewInt(0)), "something is left")
	assert.Negative(t, kept.Len().Cmp(set.Len()), "something is cut")
}

// TestDenyIPv4WrittenAsIPv6: a blocklist entry that covers IPv4 addresses
// in their IPv4-mapped form (an IPv6 range running into ::ffff:0:0/96)
// blocks them however a target is written, in Reason and in Apply, and a
// target set keeps IPv4-mapped ranges as IPv4.
func TestDenyIPv4WrittenAsIPv6(t *testing.T) {
	for _, entry := range []string{"::/80", "::fffe:0:0-::ffff:8.8.8.255", "::ffff:8.8.8.0/120", "::ffff:8.8.8.8",
		"::ffff:8.8.8.8-::1:0:0:5"} {
		var b ntpctl.Blocklist
		require.NoError(t, b.ReadDeny(strings.NewReader(entry+"\n")), entry)
		for _, a := range []string{"8.8.8.8", "::ffff:8.8.8.8"} {
			assert.Equal(t, "blocklist", b.Reason(netip.MustParseAddr(a)), "%s blocks %s", entry, a)
		}
		var set ntpctl.TargetSet
		require.NoError(t, set.AddString("8.8.8.0/24"))
		set.Add(ntpctl.Range{First: netip.MustParseAddr("::ffff:8.8.8.8"), Last: netip.MustParseAddr("::ffff:8.8.8.9")})
		kept := b.Apply(&set)
		assert.False(t, kept.Contains(netip.MustParseAddr("8.8.8.8")), "%s: Apply keeps 8.8.8.8", entry)
		seq, err := kept.Permuted(ntpctl.PermuteOptions{Port: 123, Seed: 3})
		require.NoError(t, err)
		for ap := range seq {
			assert.NotEqual(t, netip.MustParseAddr("8.8.8.8"), ap.Addr().Unmap(), "%s: yielded", entry)
		}
	}
	// The IPv6 parts around the mapped space stay IPv6.
	var s ntpctl.TargetSet
	require.NoError(t, s.AddString("::fffe:ffff:ffff-::1:0:0:0"))
	assert.Equal(t, []ntpctl.Range{
		{First: netip.MustParseAddr("0.0.0.0"), Last: netip.MustParseAddr("255.255.255.255")},
		{First: netip.MustParseAddr("::fffe:ffff:ffff"), Last: netip.MustParseAddr("::fffe:ffff:ffff")},
		{First: netip.MustParseAddr("::1:0:0:0"), Last: netip.MustParseAddr("::1:0:0:0")},
	}, s.Ranges())
}

// TestBlocklistNAT64Loopback: allowing loopback does not allow the NAT64
// form of loopback, which a translator sends elsewhere.
func TestBlocklistNAT64Loopback(t *testing.T) {
	b := ntpctl.Blocklist{AllowLoopback: true}
	assert.Equal(t, "", b.Reason(netip.MustParseAddr("127.0.0.1")))
	assert.Equal(t, "NAT64 of loopback", b.Reason(netip.MustParseAddr("64:ff9b::7f00:1")))
	assert.Equal(t, "NAT64 of loopback", (&ntpctl.Blocklist{NoBuiltin: true, AllowLoopback: true}).Reason(netip.MustParseAddr("64:ff9b::7f00:1")))
}

// TestBlocklistIANARegistries: the built-in blocklist refuses every
// address of every entry of both IANA special-purpose registries
// (testdata/iana), but for loopback, which has its own rule, the
// IPv4-mapped block, judged as IPv4, and the NAT64 prefix, judged by the
// IPv4 address inside.
func TestBlocklistIANARegistries(t *testing.T) {
	for _, name := range []string{"ipv4-special-registry.csv", "ipv6-special-registry.csv"} {
		f, err := os.Open(filepath.Join("testdata", "iana", name))
		require.NoError(t, err)
		rows, err := csv.NewReader(f).ReadAll()
		f.Close()
		require.NoError(t, err)
		require.Equal(t, "Address Block", rows[0][0])
		require.Greater(t, len(rows), 20, name)
		for _, row := range rows[1:] {
			p := netip.MustParsePrefix(row[0])
			r := ntpctl.RangeOf(p)
			mid := r.First // the first address of the second half
			if p.Bits() < p.Addr().BitLen() {
				mid = ntpctl.RangeOf(netip.PrefixFrom(p.Addr(), p.Bits()+1)).Last.Next()
			}
			for _, a := range []netip.Addr{r.First, mid, r.Last} {
				switch row[0] {
				case "127.0.0.0/8", "::1/128":
					assert.Equal(t, "loopback", (&ntpctl.Blocklist{}).Reason(a), "%s %s", row[0], a)
					assert.Equal(t, "", (&ntpctl.Blocklist{AllowLoopback: true}).Reason(a), "%s %s", row[0], a)
				case "::ffff:0:0/96":
					assert.Equal(t, (&ntpctl.Blocklist{}).Reason(a.Unmap()), (&ntpctl.Blocklist{}).Reason(a), "%s %s", row[0], a)
				case "64:ff9b::/96":
					v4 := netip.AddrFrom4([4]byte(a.AsSlice()[12:16]))
					want := ""
					if why := (&ntpctl.Blocklist{}).Reason(v4); why != "" {
						want = "NAT64 of " + why
					}
					assert.Equal(t, want, (&ntpctl.Blocklist{}).Reason(a), "%s %s", row[0], a)
				default:
					assert.NotEqual(t, "", (&ntpctl.Blocklist{}).Reason(a), "%s (%s): %s is not blocked", row[0], row[1], a)
				}
			}
		}
	}
}

// TestBlocklistAllowPrivate: the opt-in for one's own internal networks
// lifts the private-use ranges and nothing else.
func TestBlocklistAllowPrivate(t *testing.T) {
	b := ntpctl.Blocklist{AllowPrivate: true}
	for a, want := range map[string]string{
		"10.1.2.3": "", "172.16.0.1": "", "192.168.1.1": "", "100.64.1.1": "", "fd00::1": "",
		"127.0.0.1": "loopback", "169.254.1.1": "IANA special-purpose range", "224.0.0.1": "IANA special-purpose range",
		"192.0.2.1": "IANA special-purpose range", "240.0.0.1": "IANA special-purpose range",
		"fe80::1": "IANA special-purpose range", "ff02::1": "IANA special-purpose range", "8.8.8.8": "",
	} {
		assert.Equal(t, want, b.Reason(netip.MustParseAddr(a)), a)
	}
}

// TestTargetErrors: a refused specification says why in a user's terms,
// without Go's parser names, and stays ErrTarget and *TargetError for
// errors.Is and errors.As; a file's error names the line.
func TestTargetErrors(t *testing.T) {
	for in, want := range map[string]string{
		"127.42.0.1/33":         "127.42.0.1/33: prefix length must be 0–32",
		"2001:db8::/129":        "2001:db8::/129: prefix length must be 0–128",
		"192.0.2.0/x":           "192.0.2.0/x: prefix length must be 0–32",
		"ntp.example.net":       "ntp.example.net: host names are not supported here: give addresses, prefixes or ranges",
		"my-host":               "my-host: host names are not supported here: give addresses, prefixes or ranges",
		"[::1]:123":             "[::1]:123: ports are not supported here: every target is probed on the same port",
		"192.0.2.1:123":         "192.0.2.1:123: ports are not supported here: every target is probed on the same port",
		"192.0.2.300":           "192.0.2.300: not an IPv4 address (four numbers 0–255 separated by dots)",
		"2001:db8:::1":          "2001:db8:::1: not an IPv6 address",
		"fe80::1%eth0":          "fe80::1%eth0: zoned addresses are not targets",
		"192.0.2.9-192.0.2.1":   "192.0.2.9-192.0.2.1: a range must not end before it starts",
		"192.0.2.1-2001:db8::1": "192.0.2.1-2001:db8::1: a range's ends must be of one family (both IPv4 or both IPv6)",
		"::ffff:0:0/90":         "::ffff:0:0/90: an IPv4-mapped prefix must be /96 or longer",
		"a\x1bb":                `"a\x1bb": not an address`,
	} {
		_, err := ntpctl.ParseRange(in)
		require.Error(t, err, in)
		assert.Equal(t, want, err.Error(), in)
		assert.ErrorIs(t, err, ntpctl.ErrTarget, in)
		var te *ntpctl.TargetError
		require.ErrorAs(t, err, &te, in)
		assert.Equal(t, in, te.Spec)
		assert.NotContains(t, err.Error(), "ParseAddr")
		assert.NotContains(t, err.Error(), "netip")
	}

	var s ntpctl.TargetSet
	_, err := s.ReadFrom(strings.NewReader("192.0.2.1\n\n127.42.0.1/33\n"))
	assert.EqualError(t, err, "line 3: 127.42.0.1/33: prefix length must be 0–32")
	var te *ntpctl.TargetError
	require.ErrorAs(t, err, &te)
	assert.Equal(t, 3, te.Line)
	assert.ErrorIs(t, err, ntpctl.ErrTarget)
}

// TestTargetFileForms: a UTF-8 byte order mark on line 1 is dropped (as
// enrich.LoadStatic drops it), in target files and in deny and allow
// lists; an address may be written in brackets; a port is refused with
// a message that says so.
func TestTargetFileForms(t *testing.T) {
	var s ntpctl.TargetSet
	_, err := s.ReadFrom(strings.NewReader("\ufeff192.0.2.1\n[::1]\n[2001:db8::7] # bracketed\n"))
	require.NoError(t, err)
	assert.True(t, s.Contains(ip("192.0.2.1")))
	assert.True(t, s.Contains(ip("::1")))
	assert.True(t, s.Contains(ip("2001:db8::7")))

	var bom ntpctl.TargetSet
	_, err = bom.ReadFrom(strings.NewReader("\ufeff# a comment first\n192.0.2.2\n"))
	require.NoError(t, err)
	assert.True(t, bom.Contains(ip("192.0.2.2")))

	_, err = s.ReadFrom(strings.NewReader("192.0.2.1\n\ufeff192.0.2.2\n"))
	assert.ErrorIs(t, err, ntpctl.ErrTarget, "a mark is dropped on line 1 only")

	_, err = s.ReadFrom(strings.NewReader("[::1]:123\n"))
	assert.EqualError(t, err, "line 1: [::1]:123: ports are not supported here: every target is probed on the same port")

	var b ntpctl.Blocklist
	b.NoBuiltin = true
	require.NoError(t, b.ReadDeny(strings.NewReader("\ufeff8.8.8.8\n[2600::1]\n")))
	assert.False(t, b.Allowed(ip("8.8.8.8")))
	assert.False(t, b.Allowed(ip("2600::1")))
	var a ntpctl.Blocklist
	require.NoError(t, a.ReadAllow(strings.NewReader("\ufeff1.1.1.0/24\n")))
	assert.True(t, a.Allowed(ip("1.1.1.1")))
	assert.False(t, a.Allowed(ip("1.0.0.1")))
}

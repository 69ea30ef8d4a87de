package enrich

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// labTable is what the scanner's lab feeds: documentation ASNs (RFC 5398)
// on loopback prefixes.
const labTable = `# lab table
prefix,asn,as_name,country,region,city,naics,sector,abuse_email

127.0.0.0/8,64496,LAB-NET,zz,lab region,loopback,517311,"Communications, Service Provider, and Hosting Service",abuse@lab.example
127.0.1.0/24,AS64497,LAB-EDGE,ZZ,Lab,Edge
127.0.1.7,64498,LAB-HOST
::1/128,64511,LAB-V6,ZZ
2001:db8::/32,64510
`

func TestStaticLab(t *testing.T) {
	s, err := ParseStatic(strings.NewReader(labTable))
	require.NoError(t, err)
	assert.Equal(t, 5, s.Len())
	ctx := t.Context()

	r, err := Lookup(ctx, s, netip.MustParseAddr("127.0.0.1"))
	require.NoError(t, err)
	assert.Equal(t, Result{
		Addr:   netip.MustParseAddr("127.0.0.1"),
		ASN:    ASN{Number: 64496, Name: "LAB-NET", Prefix: netip.MustParsePrefix("127.0.0.0/8")},
		Geo:    Geo{Country: "ZZ", Region: "LAB REGION", City: "LOOPBACK"},
		Abuse:  Abuse{Email: "abuse@lab.example", Source: "static"},
		NAICS:  517311,
		Sector: "Communications, Service Provider, and Hosting Service",
	}, r)

	a, err := s.LookupASN(ctx, netip.MustParseAddr("127.0.1.9"))
	require.NoError(t, err)
	assert.Equal(t, uint32(64497), a.Number)
	g, err := s.LookupGeo(ctx, netip.MustParseAddr("127.0.1.9"))
	require.NoError(t, err)
	assert.Equal(t, Geo{Country: "ZZ", Region: "LAB", City: "EDGE"}, g)
	_, err = s.LookupAbuse(ctx, netip.MustParseAddr("127.0.1.9"))
	assert.ErrorIs(t, err, ErrNotFound, "the /24 row has no abuse_email, and the longest prefix wins")

	a, err = s.LookupASN(ctx, netip.MustParseAddr("127.0.1.7"))
	require.NoError(t, err)
	assert.Equal(t, ASN{Number: 64498, Name: "LAB-HOST", Prefix: netip.MustParsePrefix("127.0.1.7/32")}, a)
	_, err = s.LookupGeo(ctx, netip.MustParseAddr("127.0.1.7"))
	assert.ErrorIs(t, err, ErrNotFound)

	a, err = s.LookupASN(ctx, netip.MustParseAddr("::ffff:127.0.0.2"))
	require.NoError(t, err)
	assert.Equal(t, uint32(64496), a.Number, "4in6 addresses look up as IPv4")

	a, err = s.LookupASN(ctx, netip.MustParseAddr("::1"))
	require.NoError(t, err)
	assert.Equal(t, uint32(64511), a.Number)
	a, err = s.LookupASN(ctx, netip.MustParseAddr("2001:db8:1::5"))
	require.NoError(t, err)
	assert.Equal(t, uint32(64510), a.Number)

	_, err = Lookup(ctx, s, netip.MustParseAddr("192.0.2.1"))
	assert.ErrorIs(t, err, ErrNotFound)
	_, err = s.LookupASN(ctx, netip.Addr{})
	assert.ErrorIs(t, err, ErrNotFound)
}

func TestStaticNoHeaderAndReorderedHeader(t *testing.T) {
	s, err := ParseStatic(strings.NewReader("10.0.0.0/8,64496\n10.1.0.0/16\n"))
	require.NoError(t, err)
	r, ok := s.Lookup(netip.MustParseAddr("10.1.2.3"))
	require.True(t, ok)
	assert.Zero(t, r.ASN.Number, "the longest prefix wins even when it knows less")

	s, err = ParseStatic(strings.NewReader("city, Prefix ,ASN\nParis,192.0.2.7/24,64500\n"))
	require.NoError(t, err)
	r, ok = s.Lookup(netip.MustParseAddr("192.0.2.200"))
	require.True(t, ok)
	assert.Equal(t, "PARIS", r.Geo.City)

	s, err = ParseStatic(strings.NewReader("Prefix, city ,ASN\n192.0.2.7/24,Paris,64500\n"))
	require.NoError(t, err)
	r, ok = s.Lookup(netip.MustParseAddr("192.0.2.200"))
	require.True(t, ok)
	assert.Equal(t, "PARIS", r.Geo.City)
	assert.Equal(t, uint32(64500), r.ASN.Number)
	assert.Equal(t, netip.MustParsePrefix("192.0.2.0/24"), r.ASN.Prefix, "host bits cleared")
}

// Regression: a byte order mark before the header (as spreadsheets save
// "CSV UTF-8") made the header a data row, "bad prefix" on line 1.
func TestStaticByteOrderMark(t *testing.T) {
	for _, in := range []string{
		"\ufeffprefix,asn,city\n192.0.2.0/24,64500,Paris\n",
		"\ufeff# inventory\nprefix,asn,city\n192.0.2.0/24,64500,Paris\n",
		"\ufeff192.0.2.0/24,64500,,,,Paris\n",
	} {
		s, err := ParseStatic(strings.NewReader(in))
		require.NoError(t, err, "%q", in)
		r, ok := s.Lookup(netip.MustParseAddr("192.0.2.1"))
		require.True(t, ok)
		assert.Equal(t, uint32(64500), r.ASN.Number)
		assert.Equal(t, "PARIS", r.Geo.City)
	}
	_, err := ParseStatic(strings.NewReader("\ufeffprefix\n\n\ufeff192.0.2.0/24\n"))
	var pe *ParseError
	require.ErrorAs(t, err, &pe, "only a leading mark is dropped")
	assert.Equal(t, 3, pe.Line)
}

// A header with a misspelt or extra column is reported as such; it used
// to be read as a data row, "bad prefix "prefix"".
func TestStaticHeaderUnknownColumn(t *testing.T) {
	_, err := ParseStatic(strings.NewReader("# inventory\nprefix,asn,notes\n192.0.2.0/24,64500,x\n"))
	var pe *ParseError
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, 2, pe.Line)
	assert.Contains(t, pe.Reason, `unknown column "notes"`)
}

func TestStaticColumnsIsACopy(t *testing.T) {
	c := StaticColumns()
	c[0] = "mutated"
	assert.Equal(t, "prefix", StaticColumns()[0])
	_, err := ParseStatic(strings.NewReader("10.0.0.0/8,64496\n"))
	assert.NoError(t, err)
}

func TestStaticErrors(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		line     int
	}{
		{"bad prefix", "prefix,asn\n\n# c\n10.0.0.0/33,1\n", 4},
		{"bad asn", "10.0.0.0/8,AS\n", 1},
		{"asn too big", "10.0.0.0/8,4294967296\n", 1},
		{"negative asn", "10.0.0.0/8,-1\n", 1},
		{"bad country", "10.0.0.0/8,1,N,USA\n", 1},
		{"bad naics", "10.0.0.0/8,1,N,US,R,C,x\n", 1},
		{"bad email", "10.0.0.0/8,1,N,US,R,C,1,S,nobody\n", 1},
		{"too many fields", "10.0.0.0/8,1,N,US,R,C,1,S,a@b,extra\n", 1},
		{"duplicate", "10.0.0.0/8\n10.1.0.0/8\n", 2},
		{"unknown column", "prefix,colour\n", 1},
		{"header without prefix", "asn,city\n", 1},
		{"repeated column", "prefix,asn,asn\n", 1},
		{"no prefix column", "asn\n", 1},
		{"bad quote", "10.0.0.0/8,\"x\n", 1},
		{"zone", "fe80::1%eth0\n", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseStatic(strings.NewReader(tc.in))
			var pe *ParseError
			require.ErrorAs(t, err, &pe)
			assert.ErrorIs(t, err, ErrMalformed)
			assert.Equal(t, tc.line, pe.Line, "%v", err)
		})
	}
}

func TestLoadStatic(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lab.csv")
	require.NoError(t, os.WriteFile(path, []byte(labTable), 0o600))
	s, err := LoadStatic(path)
	require.NoError(t, err)
	assert.Equal(t, 5, s.Len())

	require.NoError(t, os.WriteFile(path, []byte("prefix\nnot-a-prefix\n"), 0o600))
	_, err = LoadStatic(path)
	var pe *ParseError
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, path, pe.Source)
	assert.Equal(t, 2, pe.Line)

	_, err = LoadStatic(filepath.Join(t.TempDir(), "missing.csv"))
	assert.ErrorIs(t, err, os.ErrNotExist)
}

func FuzzParseStatic(f *testing.F) {
	f.Add(labTable)
	f.Add("10.0.0.0/8,64496\n10.1.0.0/16\n")
	f.Add("prefix,city\n::/0,X\n")
	f.Add("\"10.0.0.0/8\",\"1\"\n#x\n\n")
	f.Fuzz(func(t *testing.T, in string) {
		s, err := ParseStatic(strings.NewReader(in))
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not match ErrMalformed", err)
			}
			return
		}
		// Every prefix in the table must find itself: a lookup of its
		// first address returns a row whose prefix covers the address
		// and is at least as long as any other covering row.
		for _, m := range append(s.v4[:], s.v6[:]...) {
			for p := range m {
				r, ok := s.Lookup(p.Addr())
				if !ok || !r.ASN.Prefix.Contains(p.Addr()) || r.ASN.Prefix.Bits() < p.Bits() {
					t.Fatalf("lookup of %v found %v (%v)", p, r.ASN.Prefix, ok)
				}
			}
		}
	})
}

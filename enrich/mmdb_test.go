package enrich

import (
	"context"
	"errors"
	"math"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// writeMMDB writes a database of the given type with the records, keyed
// by CIDR, into t.TempDir() and returns its path.
func writeMMDB(t testing.TB, dbType string, ipVersion int, recs map[string]mmdbtype.Map) string {
	t.Helper()
	tree, err := mmdbwriter.New(mmdbwriter.Options{
		DatabaseType: dbType, IPVersion: ipVersion, RecordSize: 24, IncludeReservedNetworks: true,
	})
	require.NoError(t, err)
	for cidr, rec := range recs {
		_, n, err := net.ParseCIDR(cidr)
		require.NoError(t, err)
		require.NoError(t, tree.Insert(n, rec))
	}
	path := filepath.Join(t.TempDir(), dbType+".mmdb")
	f, err := os.Create(path)
	require.NoError(t, err)
	_, err = tree.WriteTo(f)
	require.NoError(t, err)
	require.NoError(t, f.Close())
	return path
}

// Record shapes follow MaxMind's GeoIP2/GeoLite2 field lists (also used by
// DB-IP's lite files) and IPinfo's Lite field list.
func asnRecord(n uint32, org string) mmdbtype.Map {
	return mmdbtype.Map{
		"autonomous_system_number":       mmdbtype.Uint32(n),
		"autonomous_system_organization": mmdbtype.String(org),
	}
}

func names(en string) mmdbtype.Map {
	return mmdbtype.Map{"en": mmdbtype.String(en), "de": mmdbtype.String(en + "-de")}
}

func cityRecord(cc, region, regionISO, city string, lat, lon float64) mmdbtype.Map {
	return mmdbtype.Map{
		"continent": mmdbtype.Map{"code": mmdbtype.String("EU"), "names": names("Europe")},
		"country":   mmdbtype.Map{"iso_code": mmdbtype.String(cc), "geoname_id": mmdbtype.Uint32(1), "names": names("Country")},
		"subdivisions": mmdbtype.Slice{
			mmdbtype.Map{"iso_code": mmdbtype.String(regionISO), "names": names(region)},
			mmdbtype.Map{"iso_code": mmdbtype.String("XX"), "names": names("Smaller")},
		},
		"city":     mmdbtype.Map{"names": names(city), "geoname_id": mmdbtype.Uint32(2)},
		"location": mmdbtype.Map{"latitude": mmdbtype.Float64(lat), "longitude": mmdbtype.Float64(lon), "accuracy_radius": mmdbtype.Uint16(100)},
	}
}

func ipinfoRecord(asn, name, cc, country string) mmdbtype.Map {
	return mmdbtype.Map{
		"asn": mmdbtype.String(asn), "as_name": mmdbtype.String(name), "as_domain": mmdbtype.String("example.net"),
		"country_code": mmdbtype.String(cc), "country": mmdbtype.String(country),
		"continent_code": mmdbtype.String("EU"), "continent": mmdbtype.String("Europe"),
	}
}

func TestMMDBASNLayouts(t *testing.T) {
	for _, dbType := range []string{"GeoLite2-ASN", "GeoIP2-ISP", "DBIP-ASN-Lite (compat=GeoLite2-ASN)"} {
		t.Run(dbType, func(t *testing.T) {
			path := writeMMDB(t, dbType, 6, map[string]mmdbtype.Map{
				"127.0.0.0/8":   asnRecord(64496, "LAB-NET"),
				"2001:db8::/32": asnRecord(64510, "DOC-V6"),
				"192.0.2.0/24":  {"autonomous_system_organization": mmdbtype.String("NO NUMBER")},
			})
			m, err := OpenMMDB(path, LayoutAuto)
			require.NoError(t, err)
			defer m.Close()
			assert.Equal(t, LayoutGeoIP2ASN, m.Layout())
			assert.Equal(t, dbType, m.DatabaseType())
			ctx := t.Context()

			a, err := m.LookupASN(ctx, netip.MustParseAddr("127.1.2.3"))
			require.NoError(t, err)
			assert.Equal(t, ASN{Number: 64496, Name: "LAB-NET", Prefix: netip.MustParsePrefix("127.0.0.0/8")}, a)
			a, err = m.LookupASN(ctx, netip.MustParseAddr("2001:db8::1"))
			require.NoError(t, err)
			assert.Equal(t, ASN{Number: 64510, Name: "DOC-V6", Prefix: netip.MustParsePrefix("2001:db8::/32")}, a)
			_, err = m.LookupASN(ctx, netip.MustParseAddr("198.51.100.1"))
			assert.ErrorIs(t, err, ErrNotFound)
			_, err = m.LookupASN(ctx, netip.MustParseAddr("192.0.2.1"))
			assert.ErrorIs(t, err, ErrNotFound)
			_, err = m.LookupGeo(ctx, netip.MustParseAddr("127.0.0.1"))
			assert.ErrorIs(t, err, errors.ErrUnsupported)

			r, err := Lookup(ctx, m, netip.MustParseAddr("127.0.0.1"))
			require.NoError(t, err)
			assert.Equal(t, uint32(64496), r.ASN.Number)
		})
	}
}

func TestMMDBCityLayouts(t *testing.T) {
	for _, dbType := range []string{"GeoLite2-City", "GeoIP2-City", "DBIP-City-Lite", "GeoLite2-Country"} {
		t.Run(dbType, func(t *testing.T) {
			path := writeMMDB(t, dbType, 6, map[string]mmdbtype.Map{
				"127.0.0.0/8":     cityRecord("nl", "North Holland", "NH", "Amsterdam", 52.37, 4.89),
				"2001:db8::/32":   cityRecord("DE", "", "BE", "Berlin", 52.5, 13.4),
				"192.0.2.0/24":    {"country": mmdbtype.Map{"iso_code": mmdbtype.String("FR")}},
				"198.51.100.0/24": {"continent": mmdbtype.Map{"code": mmdbtype.String("EU")}},
			})
			m, err := OpenMMDB(path, LayoutAuto)
			require.NoError(t, err)
			defer m.Close()
			assert.Equal(t, LayoutGeoIP2City, m.Layout())
			ctx := t.Context()

			g, err := m.LookupGeo(ctx, netip.MustParseAddr("127.0.0.1"))
			require.NoError(t, err)
			assert.Equal(t, Geo{Country: "NL", Region: "NORTH HOLLAND", City: "AMSTERDAM",
				Latitude: 52.37, Longitude: 4.89, HasCoordinates: true}, g)
			g, err = m.LookupGeo(ctx, netip.MustParseAddr("2001:db8::1"))
			require.NoError(t, err)
			assert.Equal(t, "BE", g.Region, "no English name: the ISO code")
			g, err = m.LookupGeo(ctx, netip.MustParseAddr("192.0.2.1"))
			require.NoError(t, err)
			assert.Equal(t, Geo{Country: "FR"}, g)
			_, err = m.LookupGeo(ctx, netip.MustParseAddr("198.51.100.1"))
			assert.ErrorIs(t, err, ErrNotFound, "a record with nothing we use")
			_, err = m.LookupGeo(ctx, netip.MustParseAddr("203.0.113.1"))
			assert.ErrorIs(t, err, ErrNotFound)
			_, err = m.LookupASN(ctx, netip.MustParseAddr("127.0.0.1"))
			assert.ErrorIs(t, err, errors.ErrUnsupported)

			r, err := Lookup(ctx, m, netip.MustParseAddr("::ffff:127.0.0.1"))
			require.NoError(t, err)
			assert.Equal(t, "AMSTERDAM", r.Geo.City)
		})
	}
}

func TestMMDBIPinfoLite(t *testing.T) {
	path := writeMMDB(t, "ipinfo ipinfo_lite.mmdb", 6, map[string]mmdbtype.Map{
		"127.0.0.0/8":     ipinfoRecord("AS64496", "Lab Net", "nl", "Netherlands"),
		"2001:db8::/32":   ipinfoRecord("AS64510", "Doc V6", "DE", "Germany"),
		"192.0.2.0/24":    ipinfoRecord("", "", "FR", "France"),
		"198.51.100.0/24": ipinfoRecord("ASX", "", "FR", "France"),
		"203.0.113.0/24":  {"asn": mmdbtype.String("AS64511"), "country": mmdbtype.String("US")},
	})
	m, err := OpenMMDB(path, LayoutAuto)
	require.NoError(t, err)
	defer m.Close()
	assert.Equal(t, LayoutIPinfoLite, m.Layout())
	ctx := t.Context()

	a, err := m.LookupASN(ctx, netip.MustParseAddr("127.0.0.1"))
	require.NoError(t, err)
	assert.Equal(t, ASN{Number: 64496, Name: "Lab Net", Prefix: netip.MustParsePrefix("127.0.0.0/8")}, a)
	g, err := m.LookupGeo(ctx, netip.MustParseAddr("2001:db8::5"))
	require.NoError(t, err)
	assert.Equal(t, Geo{Country: "DE"}, g)
	r, err := Lookup(ctx, m, netip.MustParseAddr("2001:db8::5"))
	require.NoError(t, err)
	assert.Equal(t, uint32(64510), r.ASN.Number)
	assert.Equal(t, "DE", r.Geo.Country)

	_, err = m.LookupASN(ctx, netip.MustParseAddr("192.0.2.1"))
	assert.ErrorIs(t, err, ErrNotFound)
	r, err = Lookup(ctx, m, netip.MustParseAddr("192.0.2.1"))
	require.NoError(t, err, "a country alone is worth something")
	assert.Equal(t, "FR", r.Geo.Country)
	_, err = m.LookupASN(ctx, netip.MustParseAddr("198.51.100.1"))
	assert.ErrorIs(t, err, ErrMalformed)
	// Regression: a malformed asn field failed the location lookup too.
	g, err = m.LookupGeo(ctx, netip.MustParseAddr("198.51.100.1"))
	require.NoError(t, err, "a bad asn does not spoil the country")
	assert.Equal(t, Geo{Country: "FR"}, g)
	r, err = Lookup(ctx, m, netip.MustParseAddr("198.51.100.1"))
	assert.ErrorIs(t, err, ErrMalformed)
	assert.Equal(t, "FR", r.Geo.Country)
	g, err = m.LookupGeo(ctx, netip.MustParseAddr("203.0.113.1"))
	require.NoError(t, err)
	assert.Equal(t, "US", g.Country, "older files put the code in country")
	_, err = Lookup(ctx, m, netip.MustParseAddr("10.0.0.1"))
	assert.ErrorIs(t, err, ErrNotFound)
}

func TestMMDBExplicitLayoutAndErrors(t *testing.T) {
	path := writeMMDB(t, "Custom-Thing", 4, map[string]mmdbtype.Map{
		"127.0.0.0/8": asnRecord(64496, "LAB-NET"),
	})
	_, err := OpenMMDB(path, LayoutAuto)
	assert.ErrorIs(t, err, ErrUnknownLayout)
	_, err = OpenMMDB(path, Layout(42))
	assert.ErrorIs(t, err, ErrUnknownLayout)

	m, err := OpenMMDB(path, LayoutGeoIP2ASN)
	require.NoError(t, err)
	defer m.Close()
	a, err := m.LookupASN(t.Context(), netip.MustParseAddr("127.0.0.1"))
	require.NoError(t, err)
	assert.Equal(t, uint32(64496), a.Number)
	_, err = m.LookupASN(t.Context(), netip.MustParseAddr("::1"))
	assert.ErrorIs(t, err, ErrNotFound, "IPv6 in an IPv4-only file")

	_, err = OpenMMDB(filepath.Join(t.TempDir(), "missing.mmdb"), LayoutAuto)
	assert.ErrorIs(t, err, os.ErrNotExist)
	bad := filepath.Join(t.TempDir(), "bad.mmdb")
	require.NoError(t, os.WriteFile(bad, []byte("not a database"), 0o600))
	_, err = OpenMMDB(bad, LayoutAuto)
	assert.Error(t, err)
}

func TestDetectLayout(t *testing.T) {
	for in, want := range map[string]Layout{
		"GeoLite2-ASN": LayoutGeoIP2ASN, "GeoIP2-ISP": LayoutGeoIP2ASN, "DBIP-ASN-Lite": LayoutGeoIP2ASN,
		"GeoLite2-City": LayoutGeoIP2City, "GeoIP2-Country": LayoutGeoIP2City, "DBIP-City-Lite": LayoutGeoIP2City,
		"DBIP-Country-Lite": LayoutGeoIP2City, "GeoIP2-Enterprise": LayoutGeoIP2City,
		"ipinfo_lite.mmdb": LayoutIPinfoLite, "IPinfo Lite": LayoutIPinfoLite,
	} {
		got, err := DetectLayout(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	_, err := DetectLayout("")
	assert.ErrorIs(t, err, ErrUnknownLayout)
	assert.Equal(t, "geoip2-city", LayoutGeoIP2City.String())
	assert.Equal(t, "Layout(9)", Layout(9).String())
}

// TestMMDBHostileValues: a GeoIP2 City or ASN file is not trusted: a
// country that is not an ISO code, over-long or control-laden names and
// non-finite coordinates never reach a Result (a path in the country
// column would become a directory in -split country; a NaN broke the
// JSON of a whole scan).
func TestMMDBHostileValues(t *testing.T) {
	long := strings.Repeat("X", 300)
	city := writeMMDB(t, "GeoLite2-City", 6, map[string]mmdbtype.Map{
		"127.0.0.1/32": cityRecord("../../../../TMP/SEC/PWNED", "Hessen\u202e", "HE", "Frank\x00furt\nam Main", math.NaN(), 8.7),
		"127.0.0.2/32": cityRecord(long, long, long, long, 50.1, math.Inf(1)),
		"127.0.0.3/32": cityRecord("de", "Hessen", "HE", "Frankfurt", 50.1, 8.7),
		"127.0.0.4/32": cityRecord("DE", "", "", "", 91, 8.7),
	})
	db, err := OpenMMDB(city, LayoutAuto)
	require.NoError(t, err)
	defer db.Close()
	ctx := context.Background()
	for addr, want := range map[string]Geo{
		"127.0.0.1": {Region: "HESSEN", City: "FRANKFURT AM MAIN"},
		"127.0.0.2": {Region: strings.Repeat("X", maxPlaceRunes), City: strings.Repeat("X", maxPlaceRunes)},
		"127.0.0.3": {Country: "DE", Region: "HESSEN", City: "FRANKFURT", Latitude: 50.1, Longitude: 8.7, HasCoordinates: true},
		"127.0.0.4": {Country: "DE"},
	} {
		g, err := db.LookupGeo(ctx, netip.MustParseAddr(addr))
		require.NoError(t, err, addr)
		assert.Equal(t, want, g, addr)
		var r Result
		require.NoError(t, db.Enrich(ctx, netip.MustParseAddr(addr), &r))
		assert.Equal(t, want, r.Geo, "%s through Enrich", addr)
	}

	asn := writeMMDB(t, "GeoLite2-ASN", 6, map[string]mmdbtype.Map{
		"127.0.0.1/32": asnRecord(4294967295, "RESERVED"),
		"127.0.0.2/32": asnRecord(64496, "EVIL\x1b[2J\u202eNET "+long),
	})
	adb, err := OpenMMDB(asn, LayoutAuto)
	require.NoError(t, err)
	defer adb.Close()
	_, err = adb.LookupASN(ctx, netip.MustParseAddr("127.0.0.1"))
	assert.ErrorIs(t, err, ErrNotFound, "AS 4294967295 is reserved (RFC 7300)")
	a, err := adb.LookupASN(ctx, netip.MustParseAddr("127.0.0.2"))
	require.NoError(t, err)
	assert.Equal(t, uint32(64496), a.Number)
	assert.Equal(t, maxNameRunes, utf8.RuneCountInString(a.Name))
	assert.True(t, strings.HasPrefix(a.Name, "EVIL[2JNET XXX"), "%q", a.Name)
}

// TestSanitize checks the validators on what providers could hand in.
func TestSanitize(t *testing.T) {
	r := Result{
		Names: []string{"ntp.example.net.", "bad name", "x\x00y", strings.Repeat("a", 64) + ".net", "ok-host_1.example"},
		ASN:   ASN{Number: 64496, Name: "\tLAB  NET\n", Country: "de", Registry: "RIPENCC"},
		Abuse: Abuse{Email: "abuse@example.net\r\nBcc: x@y", Handle: "H\u2066X", Source: "https://rdap.example/ip/1"},
		NAICS: 1234567, Sector: "Comms\x7f",
	}
	r.sanitize()
	assert.Equal(t, []string{"ntp.example.net.", "ok-host_1.example"}, r.Names)
	assert.Equal(t, ASN{Number: 64496, Name: "LAB NET", Country: "DE", Registry: "ripencc"}, r.ASN)
	assert.Equal(t, Abuse{Handle: "HX", Source: "https://rdap.example/ip/1"}, r.Abuse)
	assert.Zero(t, r.NAICS)
	assert.Equal(t, "Comms", r.Sector)
	assert.Equal(t, "a@b.example", validEmail("mailto:a@b.example"))
	assert.Equal(t, "", validEmail("a@b@c"))
}

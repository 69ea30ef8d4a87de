package enrich

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/oschwald/maxminddb-golang/v2"
)

// ErrUnknownLayout reports an MMDB file whose record layout [DetectLayout]
// does not recognise; open it with an explicit [Layout] instead.
var ErrUnknownLayout = errors.New("enrich: unknown MMDB layout")

// Layout names the record layout of an MMDB file: which keys hold the AS
// number, the country, the city. Files of the same vendor and kind share a
// layout; the zero value, LayoutAuto, asks [OpenMMDB] to detect it.
type Layout int

const (
	// LayoutAuto detects the layout from the file's metadata
	// (database_type); see [DetectLayout].
	LayoutAuto Layout = iota
	// LayoutGeoIP2ASN is MaxMind's GeoLite2-ASN, GeoIP2-ASN and
	// GeoIP2-ISP, and DB-IP's ASN lite and ISP files, which share
	// MaxMind's keys: autonomous_system_number and
	// autonomous_system_organization at the top level (MaxMind, "GeoIP2
	// and GeoLite2 database fields"; DB-IP's files are GeoIP2-compatible).
	LayoutGeoIP2ASN
	// LayoutGeoIP2City is MaxMind's GeoLite2/GeoIP2 City and Country,
	// and DB-IP's city and country lite files: country.iso_code,
	// subdivisions[0].names.en, city.names.en, location.latitude and
	// location.longitude. Region is the first (largest) subdivision.
	LayoutGeoIP2City
	// LayoutIPinfoLite is IPinfo's free Lite file (and its country_asn
	// predecessor): flat keys asn ("AS13335"), as_name, country_code and
	// country (IPinfo, "IPinfo Lite database" field list).
	LayoutIPinfoLite
)

// String returns the layout's name.
func (l Layout) String() string {
	switch l {
	case LayoutAuto:
		return "auto"
	case LayoutGeoIP2ASN:
		return "geoip2-asn"
	case LayoutGeoIP2City:
		return "geoip2-city"
	case LayoutIPinfoLite:
		return "ipinfo-lite"
	}
	return "Layout(" + strconv.Itoa(int(l)) + ")"
}

// DetectLayout returns the layout of a file whose metadata database_type
// is databaseType, or [ErrUnknownLayout]. It recognises MaxMind's names
// ("GeoLite2-ASN", "GeoIP2-ISP", "GeoLite2-City", "GeoIP2-Country", …),
// DB-IP's ("DBIP-ASN-Lite", "DBIP-City-Lite", "DBIP-Country-Lite", …) and
// IPinfo's (any name containing "ipinfo").
func DetectLayout(databaseType string) (Layout, error) {
	t := strings.ToLower(databaseType)
	switch {
	case strings.Contains(t, "ipinfo"):
		return LayoutIPinfoLite, nil
	case strings.Contains(t, "city"), strings.Contains(t, "country"),
		strings.Contains(t, "location"), strings.Contains(t, "enterprise"):
		return LayoutGeoIP2City, nil
	case strings.Contains(t, "asn"), strings.Contains(t, "isp"):
		return LayoutGeoIP2ASN, nil
	}
	return LayoutAuto, fmt.Errorf("%w: database type %q", ErrUnknownLayout, databaseType)
}

// MMDB looks up ASN and geolocation in a MaxMind DB file through
// github.com/oschwald/maxminddb-golang/v2. It implements [ASNLookup],
// [GeoLookup] and [Enricher]; which of the lookups it answers depends on its
// [Layout] (the other returns an error matching [errors.ErrUnsupported]),
// while Enrich fills whatever the file has. Region and city are upper case,
// as in Shadowserver's reports. An MMDB is safe for concurrent use; Close
// it when done.
type MMDB struct {
	r      *maxminddb.Reader
	layout Layout
}

// OpenMMDB opens the MMDB file at path. With [LayoutAuto] the layout comes
// from the file's metadata, see [DetectLayout].
func OpenMMDB(path string, layout Layout) (*MMDB, error) {
	r, err := maxminddb.Open(path)
	if err != nil {
		return nil, fmt.Errorf("enrich: open %s: %w", path, err)
	}
	m, err := NewMMDB(r, layout)
	if err != nil {
		r.Close()
		return nil, err
	}
	return m, nil
}

// NewMMDB wraps an open reader. With [LayoutAuto] the layout comes from
// the reader's metadata. Closing the MMDB closes r.
func NewMMDB(r *maxminddb.Reader, layout Layout) (*MMDB, error) {
	switch layout {
	case LayoutAuto:
		l, err := DetectLayout(r.Metadata.DatabaseType)
		if err != nil {
			return nil, err
		}
		layout = l
	case LayoutGeoIP2ASN, LayoutGeoIP2City, LayoutIPinfoLite:
	default:
		return nil, fmt.Errorf("%w: %v", ErrUnknownLayout, layout)
	}
	return &MMDB{r: r, layout: layout}, nil
}

// Layout returns the file's layout.
func (m *MMDB) Layout() Layout { return m.layout }

// DatabaseType returns the database_type of the file's metadata.
func (m *MMDB) DatabaseType() string { return m.r.Metadata.DatabaseType }

// Close releases the file.
func (m *MMDB) Close() error { return m.r.Close() }

// Records, decoded with only the keys used. The maxminddb tags name the
// keys of the MaxMind DB data section (MaxMind DB File Format
// Specification 2.0; field names from MaxMind's and IPinfo's docs).
type (
	geoip2ASNRecord struct {
		Number uint32 `maxminddb:"autonomous_system_number"`
		Org    string `maxminddb:"autonomous_system_organization"`
	}
	mmdbNames struct {
		EN string `maxminddb:"en"`
	}
	geoip2CityRecord struct {
		Country struct {
			ISOCode string `maxminddb:"iso_code"`
		} `maxminddb:"country"`
		Subdivisions []struct {
			ISOCode string    `maxminddb:"iso_code"`
			Names   mmdbNames `maxminddb:"names"`
		} `maxminddb:"subdivisions"`
		City struct {
			Names mmdbNames `maxminddb:"names"`
		} `maxminddb:"city"`
		Location struct {
			Latitude  *float64 `maxminddb:"latitude"`
			Longitude *float64 `maxminddb:"longitude"`
		} `maxminddb:"location"`
	}
	ipinfoLiteRecord struct {
		ASN         string `maxminddb:"asn"`
		ASName      string `maxminddb:"as_name"`
		CountryCode string `maxminddb:"country_code"`
		Country     string `maxminddb:"country"`
	}
)

// lookup finds addr's record; found is false when the file has none.
func (m *MMDB) lookup(addr netip.Addr) (maxminddb.Result, bool, error) {
	addr = addr.Unmap().WithZone("")
	if !addr.IsValid() || addr.Is6() && m.r.Metadata.IPVersion == 4 {
		return maxminddb.Result{}, false, nil
	}
	res := m.r.Lookup(addr)
	if err := res.Err(); err != nil {
		return res, false, fmt.Errorf("enrich: mmdb lookup %v: %w", addr, err)
	}
	return res, res.Found(), nil
}

func (m *MMDB) decode(addr netip.Addr, v any) (netip.Prefix, bool, error) {
	res, found, err := m.lookup(addr)
	if err != nil || !found {
		return netip.Prefix{}, false, err
	}
	if err := res.Decode(v); err != nil {
		return netip.Prefix{}, false, fmt.Errorf("enrich: mmdb decode %v: %w", addr, err)
	}
	return res.Prefix(), true, nil
}

// LookupASN implements [ASNLookup] for the ASN and IPinfo layouts.
func (m *MMDB) LookupASN(_ context.Context, addr netip.Addr) (ASN, error) {
	switch m.layout {
	case LayoutGeoIP2ASN:
		var rec geoip2ASNRecord
		p, found, err := m.decode(addr, &rec)
		if err != nil {
			return ASN{}, err
		}
		a := ASN{Number: rec.Number, Name: rec.Org, Prefix: p}
		a.sanitize()
		if !found || a.Number == 0 {
			return ASN{}, notFound("mmdb asn", addr)
		}
		return a, nil
	case LayoutIPinfoLite:
		a, _, asnErr, err := m.ipinfo(addr)
		switch {
		case err != nil:
			return ASN{}, err
		case asnErr != nil:
			return ASN{}, asnErr
		case a.Number == 0:
			return ASN{}, notFound("mmdb asn", addr)
		}
		return a, nil
	}
	return ASN{}, fmt.Errorf("enrich: %v file has no AS data: %w", m.layout, errors.ErrUnsupported)
}

// LookupGeo implements [GeoLookup] for the city and IPinfo layouts.
func (m *MMDB) LookupGeo(_ context.Context, addr netip.Addr) (Geo, error) {
	switch m.layout {
	case LayoutGeoIP2City:
		var rec geoip2CityRecord
		_, found, err := m.decode(addr, &rec)
		if err != nil {
			return Geo{}, err
		}
		g := Geo{
			Country: strings.ToUpper(rec.Country.ISOCode),
			City:    strings.ToUpper(rec.City.Names.EN),
		}
		if len(rec.Subdivisions) > 0 {
			s := rec.Subdivisions[0]
			g.Region = strings.ToUpper(s.Names.EN)
			if g.Region == "" {
				g.Region = strings.ToUpper(s.ISOCode)
			}
		}
		if rec.Location.Latitude != nil && rec.Location.Longitude != nil {
			g.Latitude, g.Longitude, g.HasCoordinates = *rec.Location.Latitude, *rec.Location.Longitude, true
		}
		g.sanitize()
		if !found || g == (Geo{}) {
			return Geo{}, notFound("mmdb geo", addr)
		}
		return g, nil
	case LayoutIPinfoLite:
		// A malformed asn field does not spoil the country.
		_, g, _, err := m.ipinfo(addr)
		if err == nil && g == (Geo{}) {
			return Geo{}, notFound("mmdb geo", addr)
		}
		return g, err
	}
	return Geo{}, fmt.Errorf("enrich: %v file has no location data: %w", m.layout, errors.ErrUnsupported)
}

// ipinfo decodes an IPinfo Lite record. err is a failure to read the
// file, or a not-found when it has no record for addr; asnErr reports an
// asn field that is not an AS number, which spoils the AS but not the
// country. A record without an AS has a zero ASN and no error.
func (m *MMDB) ipinfo(addr netip.Addr) (a ASN, g Geo, asnErr, err error) {
	var rec ipinfoLiteRecord
	p, found, err := m.decode(addr, &rec)
	if err != nil {
		return ASN{}, Geo{}, nil, err
	}
	if !found {
		return ASN{}, Geo{}, nil, notFound("mmdb", addr)
	}
	switch {
	case isAlpha2(rec.CountryCode):
		g.Country = strings.ToUpper(rec.CountryCode)
	case isAlpha2(rec.Country): // the older country_asn file put the code here
		g.Country = strings.ToUpper(rec.Country)
	}
	if rec.ASN == "" {
		return ASN{}, g, nil, nil
	}
	n, err := parseASNumber(rec.ASN)
	if err != nil || validASNumber(n) == 0 {
		return ASN{}, g, parseErr("ipinfo mmdb", 0, boundedText(rec.ASN, 32), "bad asn", nil), nil
	}
	a = ASN{Number: n, Name: rec.ASName, Prefix: p}
	a.sanitize()
	return a, g, nil, nil
}

// Enrich implements [Enricher]: it fills [Result.ASN] and/or [Result.Geo],
// whichever the file's layout has.
func (m *MMDB) Enrich(ctx context.Context, addr netip.Addr, r *Result) error {
	switch m.layout {
	case LayoutGeoIP2ASN:
		return FromASN(m).Enrich(ctx, addr, r)
	case LayoutGeoIP2City:
		return FromGeo(m).Enrich(ctx, addr, r)
	}
	a, g, asnErr, err := m.ipinfo(addr)
	if err != nil {
		return err
	}
	r.Merge(Result{ASN: a, Geo: g})
	if asnErr == nil && a.Number == 0 && g == (Geo{}) {
		return notFound("mmdb", addr)
	}
	return asnErr
}

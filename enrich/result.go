package enrich

import "net/netip"

// Result gathers what the enrichers found about one address. The zero value
// means nothing is known; every field that no source provided stays empty, so
// a report built from it leaves the matching column empty instead of
// inventing a value.
type Result struct {
	// Addr is the address that was looked up.
	Addr netip.Addr
	// Names are the reverse DNS (PTR) names, without the trailing dot, in
	// the order the resolver returned them.
	Names []string
	// ASN is the autonomous system that originates the address.
	ASN ASN
	// Geo is where the address is located.
	Geo Geo
	// Abuse is the network's abuse contact.
	Abuse Abuse
	// NAICS is the North American Industry Classification System code of
	// the organisation using the address, when a source provides it
	// (0 when unknown).
	NAICS int
	// Sector is the organisation's sector as Shadowserver names it
	// ("Communications, Service Provider, and Hosting Service", …).
	Sector string
}

// ASN describes the autonomous system that announces an address.
type ASN struct {
	// Number is the AS number; 0 means unknown.
	Number uint32
	// Name is the AS name or organisation, as the source wrote it.
	Name string
	// Prefix is the announced prefix that covers the address, when known.
	Prefix netip.Prefix
	// Country is the ISO 3166-1 alpha-2 country code of the AS
	// registration, upper case, when known.
	Country string
	// Registry is the regional Internet registry ("arin", "ripencc", …),
	// when known.
	Registry string
}

// Geo is a geolocation. Country is the ISO 3166-1 alpha-2 code in upper
// case; Region and City are upper case, as in Shadowserver's reports.
type Geo struct {
	// Country is the ISO 3166-1 alpha-2 country code, upper case.
	Country string
	// Region is the first-level subdivision (state, province), upper
	// case: its name, or its ISO 3166-2 code when the source has no name.
	Region string
	// City is the city name, upper case.
	City string
	// Latitude and Longitude are valid only when HasCoordinates is true.
	Latitude, Longitude float64
	// HasCoordinates says whether the source gave Latitude and Longitude.
	HasCoordinates bool
}

// Abuse is an abuse contact for a network.
type Abuse struct {
	// Email is the abuse mailbox.
	Email string
	// Handle is the registry's handle of the contact entity, when known.
	Handle string
	// Source says where the contact came from (an RDAP URL, "static", …).
	Source string
}

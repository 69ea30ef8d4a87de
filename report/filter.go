package report

import (
	"iter"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// Key is what the constituency tools look at in a row: its address, AS
// number and country, parsed from the ip, asn and geo columns (the zero
// value of a field when its column is empty or does not parse).
type Key struct {
	// IP is the ip column, an IPv4-mapped address unmapped.
	IP netip.Addr
	// ASN is the asn column; 0 when unknown.
	ASN uint32
	// Country is the geo column, upper case.
	Country string
}

// KeyOf returns the Key of a row.
func KeyOf[T Row](row *T) Key { return keyOf(schemaOf[T]().common(row)) }

func keyOf(c *Common) Key {
	var k Key
	k.IP, _ = netip.ParseAddr(c.IP)
	k.IP = k.IP.Unmap()
	// ParseUint's error allocates: rule out what is not a number first.
	if isDigits(c.ASN) {
		if n, err := strconv.ParseUint(c.ASN, 10, 32); err == nil {
			k.ASN = uint32(n)
		}
	}
	k.Country = strings.ToUpper(c.Geo)
	return k
}

// A Predicate selects rows by their Key.
type Predicate func(Key) bool

// ByPrefix selects rows whose address is in one of prefixes.
func ByPrefix(prefixes ...netip.Prefix) Predicate {
	ps := slices.Clone(prefixes)
	return func(k Key) bool {
		for _, p := range ps {
			if k.IP.IsValid() && p.Contains(k.IP) {
				return true
			}
		}
		return false
	}
}

// ByASN selects rows originated by one of asns.
func ByASN(asns ...uint32) Predicate {
	as := slices.Clone(asns)
	return func(k Key) bool { return k.ASN != 0 && slices.Contains(as, k.ASN) }
}

// ByCountry selects rows located in one of countries (ISO 3166-1 alpha-2
// codes, in any case).
func ByCountry(countries ...string) Predicate {
	cs := make([]string, len(countries))
	for i, c := range countries {
		cs[i] = strings.ToUpper(c)
	}
	return func(k Key) bool { return k.Country != "" && slices.Contains(cs, k.Country) }
}

// AnyOf selects rows that any of ps selects.
func AnyOf(ps ...Predicate) Predicate {
	ps = slices.Clone(ps)
	return func(k Key) bool {
		for _, p := range ps {
			if p(k) {
				return true
			}
		}
		return false
	}
}

// Filter returns the rows keep selects, in order.
func Filter[T Row](rows []T, keep Predicate) []T {
	var out []T
	for i := range rows {
		if keep(KeyOf(&rows[i])) {
			out = append(out, rows[i])
		}
	}
	return out
}

// FilterSeq filters a stream of rows such as Reader.All: rows keep
// rejects are left out, errors pass through.
func FilterSeq[T Row](seq iter.Seq2[T, error], keep Predicate) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		for row, err := range seq {
			if err == nil && !keep(KeyOf(&row)) {
				continue
			}
			if !yield(row, err) {
				return
			}
		}
	}
}

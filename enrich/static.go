package enrich

import (
	"bufio"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strconv"
	"strings"
)

// StaticColumns returns the column names a static table may use, in the
// order they are read when the table has no header line.
func StaticColumns() []string {
	return []string{"prefix", "asn", "as_name", "country", "region", "city", "naics", "sector", "abuse_email"}
}

// isStaticColumn reports whether name is one of [StaticColumns].
func isStaticColumn(name string) bool {
	switch name {
	case "prefix", "asn", "as_name", "country", "region", "city", "naics", "sector", "abuse_email":
		return true
	}
	return false
}

// Static is a table of prefixes and what is known about them, read from a
// CSV file: for labs, tests and operators with their own inventory. It
// implements [ASNLookup], [GeoLookup], [AbuseLookup] and [Enricher]; the
// longest prefix that covers an address wins. A Static is immutable once
// parsed and safe for concurrent use.
//
// The CSV has the columns
//
//	prefix,asn,as_name,country,region,city,naics,sector,abuse_email
//
// of which only prefix is required; trailing columns may be left out.
// Blank lines and lines starting with '#' are ignored, and so is a UTF-8
// byte order mark at the start. The first line may be a header naming
// the columns (every field a column name, one of them prefix; a first line
// with a prefix field is always taken as a header); then the columns may
// come in any order and any subset. A prefix is CIDR
// ("192.0.2.0/24", "2001:db8::/32") or a single address; host bits are
// cleared. asn is a number with or without an "AS" prefix; country, region
// and city are upper-cased as in Shadowserver's reports. For example:
//
//	# lab: documentation ASNs (RFC 5398) on loopback
//	prefix,asn,as_name,country,region,city
//	127.0.0.0/8,64496,LAB-NET,ZZ,LAB,LOOPBACK
//	127.0.1.0/24,64497,LAB-EDGE,ZZ,LAB,EDGE
type Static struct {
	// v4 and v6 index entries by prefix length, then by masked prefix.
	v4 [33]map[netip.Prefix]*staticEntry
	v6 [129]map[netip.Prefix]*staticEntry
	// lens4 and lens6 list the prefix lengths in use, longest first.
	lens4, lens6 []int
	n            int
}

type staticEntry struct {
	prefix netip.Prefix
	res    Result
}

// LoadStatic reads a static table from the CSV file at path.
func LoadStatic(path string) (*Static, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("enrich: %w", err)
	}
	defer f.Close()
	s, err := parseStatic(f, path)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// ParseStatic reads a static table in the CSV format described at
// [Static]. Errors are [*ParseError] values that carry the line number.
func ParseStatic(r io.Reader) (*Static, error) {
	return parseStatic(r, "static")
}

func parseStatic(r io.Reader, source string) (*Static, error) {
	// Spreadsheets often save CSV as UTF-8 with a byte order mark; it is
	// not part of the first line.
	br := bufio.NewReader(r)
	if b, _ := br.Peek(3); string(b) == "\ufeff" {
		_, _ = br.Discard(3)
	}
	cr := csv.NewReader(br)
	cr.Comment = '#'
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	cr.ReuseRecord = true

	s := &Static{}
	cols := StaticColumns()
	first := true
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			// FieldPos is only valid after a successful Read.
			line := 0
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				line = pe.Line
			}
			return nil, parseErr(source, line, "", "bad CSV", err)
		}
		line, _ := cr.FieldPos(0)
		if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" {
			continue
		}
		if first {
			first = false
			if isStaticHeader(rec) {
				cols, err = staticHeader(rec)
				if err != nil {
					return nil, parseErr(source, line, strings.Join(rec, ","), err.Error(), nil)
				}
				continue
			}
		}
		if len(rec) > len(cols) {
			return nil, parseErr(source, line, strings.Join(rec, ","),
				fmt.Sprintf("%d fields, at most %d expected", len(rec), len(cols)), nil)
		}
		e, err := staticRow(cols, rec)
		if err != nil {
			return nil, parseErr(source, line, strings.Join(rec, ","), err.Error(), nil)
		}
		if err := s.insert(e); err != nil {
			return nil, parseErr(source, line, strings.Join(rec, ","), err.Error(), nil)
		}
	}
	return s, nil
}

// isStaticHeader reports whether rec is a header line: every field names
// a column, or one field is "prefix" (which no data row can hold, so that
// a header with a misspelt column is reported as such, not as a bad
// prefix).
func isStaticHeader(rec []string) bool {
	all := true
	for _, f := range rec {
		name := strings.ToLower(strings.TrimSpace(f))
		if name == "prefix" {
			return true
		}
		all = all && isStaticColumn(name)
	}
	return all
}

func staticHeader(rec []string) ([]string, error) {
	cols := make([]string, len(rec))
	seen := make(map[string]bool, len(rec))
	for i, f := range rec {
		name := strings.ToLower(strings.TrimSpace(f))
		if !isStaticColumn(name) {
			return nil, fmt.Errorf("unknown column %q", f)
		}
		if seen[name] {
			return nil, fmt.Errorf("column %q repeated", f)
		}
		seen[name] = true
		cols[i] = name
	}
	if !seen["prefix"] {
		return nil, errors.New("no prefix column")
	}
	return cols, nil
}

func staticRow(cols, rec []string) (*staticEntry, error) {
	e := &staticEntry{}
	hasPrefix := false
	for i, raw := range rec {
		v := strings.TrimSpace(raw)
		switch cols[i] {
		case "prefix":
			p, err := parsePrefixOrAddr(v)
			if err != nil {
				return nil, err
			}
			e.prefix, hasPrefix = p, true
			e.res.ASN.Prefix = p
		case "asn":
			if v == "" {
				continue
			}
			n, err := parseASNumber(v)
			if err != nil {
				return nil, err
			}
			e.res.ASN.Number = n
		case "as_name":
			e.res.ASN.Name = v
		case "country":
			if v != "" && !isAlpha2(v) {
				return nil, fmt.Errorf("country %q is not an ISO 3166-1 alpha-2 code", v)
			}
			e.res.Geo.Country = strings.ToUpper(v)
		case "region":
			e.res.Geo.Region = strings.ToUpper(v)
		case "city":
			e.res.Geo.City = strings.ToUpper(v)
		case "naics":
			if v == "" {
				continue
			}
			n, err := strconv.ParseUint(v, 10, 31)
			if err != nil {
				return nil, fmt.Errorf("naics %q is not a number", v)
			}
			e.res.NAICS = int(n)
		case "sector":
			e.res.Sector = v
		case "abuse_email":
			if v != "" && !strings.Contains(v, "@") {
				return nil, fmt.Errorf("abuse_email %q is not an address", v)
			}
			e.res.Abuse = Abuse{Email: v, Source: "static"}
			if v == "" {
				e.res.Abuse = Abuse{}
			}
		}
	}
	if !hasPrefix {
		return nil, errors.New("no prefix")
	}
	return e, nil
}

func parsePrefixOrAddr(v string) (netip.Prefix, error) {
	if strings.Contains(v, "/") {
		p, err := netip.ParsePrefix(v)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("bad prefix %q", v)
		}
		if p.Addr().Is4In6() {
			if p.Bits() < 96 {
				return netip.Prefix{}, fmt.Errorf("bad prefix %q", v)
			}
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(v)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("bad prefix %q", v)
	}
	a = a.Unmap()
	if a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("bad prefix %q: zones are not allowed", v)
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// parseASNumber reads "64496", "AS64496" or "as64496" (RFC 5396 asplain).
func parseASNumber(v string) (uint32, error) {
	d := v
	if len(d) > 2 && strings.EqualFold(d[:2], "AS") {
		d = d[2:]
	}
	n, err := strconv.ParseUint(d, 10, 32)
	if err != nil || d[0] == '+' || d[0] == '-' {
		return 0, fmt.Errorf("asn %q is not an AS number", v)
	}
	return uint32(n), nil
}

func isAlpha2(v string) bool {
	return len(v) == 2 && isLetter(v[0]) && isLetter(v[1])
}

func isLetter(c byte) bool { return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' }

func (s *Static) insert(e *staticEntry) error {
	p := e.prefix
	bits := p.Bits()
	var m *map[netip.Prefix]*staticEntry
	var lens *[]int
	if p.Addr().Is4() {
		m, lens = &s.v4[bits], &s.lens4
	} else {
		m, lens = &s.v6[bits], &s.lens6
	}
	if *m == nil {
		*m = make(map[netip.Prefix]*staticEntry)
		i := 0
		for i < len(*lens) && (*lens)[i] > bits {
			i++
		}
		*lens = append(*lens, 0)
		copy((*lens)[i+1:], (*lens)[i:])
		(*lens)[i] = bits
	}
	if _, dup := (*m)[p]; dup {
		return fmt.Errorf("prefix %v listed twice", p)
	}
	(*m)[p] = e
	s.n++
	return nil
}

// Len returns the number of prefixes in the table.
func (s *Static) Len() int { return s.n }

// find returns the entry of the longest prefix covering addr, or nil.
func (s *Static) find(addr netip.Addr) *staticEntry {
	addr = addr.Unmap().WithZone("")
	var tables []map[netip.Prefix]*staticEntry
	var lens []int
	switch {
	case addr.Is4():
		tables, lens = s.v4[:], s.lens4
	case addr.Is6():
		tables, lens = s.v6[:], s.lens6
	default:
		return nil
	}
	for _, bits := range lens {
		p, _ := addr.Prefix(bits)
		if e, ok := tables[bits][p]; ok {
			return e
		}
	}
	return nil
}

// Lookup returns what the table knows about addr: the row of the longest
// prefix covering it, with Addr set. It reports false when no prefix
// covers addr.
func (s *Static) Lookup(addr netip.Addr) (Result, bool) {
	e := s.find(addr)
	if e == nil {
		return Result{}, false
	}
	r := e.res
	r.Addr = addr
	return r, true
}

// LookupASN implements [ASNLookup]. A covering row without an AS number
// is a not-found.
func (s *Static) LookupASN(_ context.Context, addr netip.Addr) (ASN, error) {
	if e := s.find(addr); e != nil && e.res.ASN.Number != 0 {
		return e.res.ASN, nil
	}
	return ASN{}, notFound("static asn", addr)
}

// LookupGeo implements [GeoLookup]. A covering row without a country,
// region or city is a not-found.
func (s *Static) LookupGeo(_ context.Context, addr netip.Addr) (Geo, error) {
	if e := s.find(addr); e != nil && e.res.Geo != (Geo{}) {
		return e.res.Geo, nil
	}
	return Geo{}, notFound("static geo", addr)
}

// LookupAbuse implements [AbuseLookup]. A covering row without an
// abuse_email is a not-found.
func (s *Static) LookupAbuse(_ context.Context, addr netip.Addr) (Abuse, error) {
	if e := s.find(addr); e != nil && e.res.Abuse.Email != "" {
		return e.res.Abuse, nil
	}
	return Abuse{}, notFound("static abuse", addr)
}

// Enrich implements [Enricher]: it merges the covering row into r (AS,
// location, abuse contact, NAICS and sector), or returns an error matching
// [ErrNotFound] when no prefix covers addr.
func (s *Static) Enrich(_ context.Context, addr netip.Addr, r *Result) error {
	e := s.find(addr)
	if e == nil {
		return notFound("static", addr)
	}
	r.Merge(e.res)
	return nil
}

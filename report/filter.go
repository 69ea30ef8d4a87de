package report

import (
	"errors"
	"fmt"
	"iter"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Key is what the constituency tools look at in a row: its address, AS
// number and country, parsed from the ip, asn and geo columns (the zero
// value of a field when its column is empty or does not parse).
type Key struct {
	IP      netip.Addr
	ASN     uint32
	Country string // upper case
}

// KeyOf returns the Key of a row.
func KeyOf[T Row](row *T) Key {
	p := access(row)
	var k Key
	k.IP, _ = netip.ParseAddr(*p.field(colIP))
	k.IP = k.IP.Unmap()
	if n, err := strconv.ParseUint(*p.field(colASN), 10, 32); err == nil {
		k.ASN = uint32(n)
	}
	k.Country = strings.ToUpper(*p.field(colGeo))
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

// SplitBy says how Split groups rows.
type SplitBy uint8

// The groupings of Split.
const (
	// SplitByASN makes one file per AS; the file's id is "as<number>",
	// "asunknown" for rows without an AS.
	SplitByASN SplitBy = iota + 1
	// SplitByCountry makes one file per country; the id is the lower-case
	// country code, "unknown" for rows without one.
	SplitByCountry
)

// ErrSplitBy is returned by Split for an unknown SplitBy.
var ErrSplitBy = errors.New("report: unknown split")

// SplitOptions configures Split. The zero value works.
type SplitOptions struct {
	// Date is the date in the file names; the zero value means the date
	// (UTC) of the earliest timestamp among the rows.
	Date time.Time
	// Type is the report type in the file names; "" means the IPv4 type
	// of the row type (scan_ntp or scan_ntpmonitor), or its IPv6 variant
	// for a file whose rows all have IPv6 addresses.
	Type Type
	// IDPrefix is put before each group's id, e.g. "cert-" gives
	// 2024-07-04-scan_ntp-cert-as64496.csv.
	IDPrefix string
	// Writer configures the CSV written.
	Writer WriterOptions
}

// Split writes rows into one report file per AS or per country, in dir
// (created if needed), named in Shadowserver's convention (FileName) so
// that IntelMQ and other consumers recognise them. Existing files of the
// same names are replaced. It returns the paths written, sorted.
func Split[T Row](dir string, rows []T, by SplitBy, opt SplitOptions) ([]string, error) {
	if by != SplitByASN && by != SplitByCountry {
		return nil, fmt.Errorf("%w: %d", ErrSplitBy, by)
	}
	groups := map[string][]T{}
	date := opt.Date
	for i := range rows {
		k := KeyOf(&rows[i])
		var id string
		switch by {
		case SplitByASN:
			id = "asunknown"
			if k.ASN != 0 {
				id = "as" + strconv.FormatUint(uint64(k.ASN), 10)
			}
		case SplitByCountry:
			id = "unknown"
			if k.Country != "" {
				id = strings.ToLower(k.Country)
			}
		}
		groups[id] = append(groups[id], rows[i])
		if opt.Date.IsZero() {
			if t, err := time.Parse(TimeFormat, *access(&rows[i]).field(colTimestamp)); err == nil && (date.IsZero() || t.Before(date)) {
				date = t
			}
		}
	}
	if len(groups) == 0 {
		return nil, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	ids := slices.Sorted(maps.Keys(groups))
	var paths []string
	for _, id := range ids {
		g := groups[id]
		typ := opt.Type
		if typ == "" {
			typ = splitType(g)
		}
		path := filepath.Join(dir, FileName(date, typ, opt.IDPrefix+id))
		if err := writeFile(path, g, opt.Writer); err != nil {
			return paths, err
		}
		paths = append(paths, path)
	}
	slices.Sort(paths)
	return paths, nil
}

// splitType is the report type for a group of rows: IPv6 only when every
// row has an IPv6 address.
func splitType[T Row](rows []T) Type {
	v6 := len(rows) > 0
	for i := range rows {
		if !KeyOf(&rows[i]).IP.Is6() {
			v6 = false
			break
		}
	}
	t := schemaOf[T]().typ
	if v6 {
		if t == ScanNTP {
			return Scan6NTP
		}
		return Scan6NTPMonitor
	}
	return t
}

func writeFile[T Row](path string, rows []T, opt WriterOptions) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := WriteAll(f, rows, opt); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

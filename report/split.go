package report

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

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
	// (UTC) of the earliest timestamp among the rows (0001-01-01 if no
	// row has a timestamp).
	Date time.Time
	// Type is the report type in the file names; "" means that each
	// group is split once more by address family, as Shadowserver
	// reports the two apart: its IPv4 rows go to a file of the row
	// type's IPv4 report (scan_ntp or scan_ntpmonitor), its IPv6 rows to
	// one of the IPv6 report (scan6_ntp or scan6_ntpmonitor). Rows whose
	// ip does not parse go with the IPv4 ones.
	Type Type
	// IDPrefix is put before each group's id, e.g. "cert-" gives
	// 2024-07-04-scan_ntp-cert-as64496.csv.
	IDPrefix string
	// Writer configures the CSV written.
	Writer WriterOptions
}

// Split writes rows into one report file per AS or per country (and per
// address family, unless opt.Type is set), in dir (created if needed),
// keeping their order, named in Shadowserver's convention (FileName) so
// that IntelMQ and other consumers recognise them. Existing files of the
// same names are replaced. It returns the paths written, sorted.
func Split[T Row](dir string, rows []T, by SplitBy, opt SplitOptions) ([]string, error) {
	if by != SplitByASN && by != SplitByCountry {
		return nil, fmt.Errorf("%w: %d", ErrSplitBy, by)
	}
	date := opt.Date
	if date.IsZero() {
		for i := range rows {
			if t, err := time.Parse(TimeFormat, schemaOf[T]().common(&rows[i]).Timestamp); err == nil && (date.IsZero() || t.Before(date)) {
				date = t
			}
		}
	}
	// Rows are grouped by file name, so that two ids that FileName makes
	// the same (a hostile geo such as "D E" and "D_E") share a file
	// rather than one overwriting the other.
	groups := map[string][]T{}
	v4 := schemaOf[T]().typ
	for i := range rows {
		k := KeyOf(&rows[i])
		typ := opt.Type
		if typ == "" {
			typ = v4
			if k.IP.Is6() {
				typ = ipv6Type(v4)
			}
		}
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
		name := FileName(date, typ, opt.IDPrefix+id)
		groups[name] = append(groups[name], rows[i])
	}
	if len(groups) == 0 {
		return nil, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var paths []string
	for _, name := range slices.Sorted(maps.Keys(groups)) {
		path := filepath.Join(dir, name)
		if err := writeFile(path, groups[name], opt.Writer); err != nil {
			return paths, err
		}
		paths = append(paths, path)
	}
	return paths, nil
}

// ipv6Type returns the IPv6 variant of an IPv4 report type.
func ipv6Type(t Type) Type {
	if t == ScanNTP {
		return Scan6NTP
	}
	return Scan6NTPMonitor
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

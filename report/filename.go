package report

import (
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"time"
	"unicode/utf8"
)

// Errors of TypeFromFileName.
var (
	// ErrFileName: the name does not have the form IntelMQ expects.
	ErrFileName = errors.New("report: file name does not match the report naming convention")
	// ErrUnknownType: the name is well formed, but its report type is not
	// one of the NTP reports.
	ErrUnknownType = errors.New("report: not an NTP report type")
)

// DefaultID is the id FileName uses when it is given none.
const DefaultID = "ntpctl"

// fileNameRE is the expression IntelMQ's Shadowserver parser applies to
// extra.file_name in its "detect" mode (report-schemas.md §5.1); group 1
// is the report type. Go's \w is ASCII-only where Python's is Unicode.
var fileNameRE = regexp.MustCompile(`^(?:\d{4}-\d{2}-\d{2}-)?(\w+)(-\w+)*\.csv$`)

// TypeFromFileName returns the report type a file name announces, the
// way IntelMQ reads it: "2024-07-04-scan_ntp-ID.csv" and "scan_ntp.csv"
// are ScanNTP, "2019-01-01-scan6_ntpmonitor-org-geo.csv" is
// Scan6NTPMonitor. Directories are ignored. A name that does not match
// returns ErrFileName; a well-formed name of another report returns its
// type and ErrUnknownType.
func TypeFromFileName(name string) (Type, error) {
	base := filepath.Base(name)
	m := fileNameRE.FindStringSubmatch(base)
	if m == nil {
		return "", fmt.Errorf("%w: %q", ErrFileName, base)
	}
	t := Type(m[1])
	if !t.Known() {
		return t, fmt.Errorf("%w: %q", ErrUnknownType, m[1])
	}
	return t, nil
}

// FileName returns the file name of a report in Shadowserver's
// convention, YYYY-MM-DD-<type>-<id>.csv (report-schemas.md §2.2), with
// the date in UTC. Characters of id other than ASCII letters, digits, '_'
// and '-' become '_', and empty dash-separated parts are dropped, so that
// IntelMQ recognises the name. An id left empty is DefaultID: the
// convention, and the expression Shadowserver documents for it
// (^\d{4}-\d{2}-\d{2}-([^-]+)-.+\.csv$), need one.
func FileName(date time.Time, t Type, id string) string {
	b := date.UTC().AppendFormat(make([]byte, 0, 32+len(t)+len(id)), "2006-01-02")
	return string(appendNameTail(b, t, id))
}

// appendNameTail appends what FileName writes after the date:
// -<type>-<id>.csv.
func appendNameTail[S ~string | ~[]byte](b []byte, t Type, id S) []byte {
	b = append(b, '-')
	b = append(b, t...)
	wrote := false
	for len(id) > 0 {
		part := id
		if i := indexDash(id); i >= 0 {
			part, id = id[:i], id[i+1:]
		} else {
			id = id[len(id):]
		}
		if len(part) == 0 {
			continue
		}
		b = append(b, '-')
		wrote = true
		for len(part) > 0 {
			r, n := decodeRune(part)
			if r == '_' || (r >= '0' && r <= '9') || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') {
				b = append(b, byte(r))
			} else {
				b = append(b, '_')
			}
			part = part[n:]
		}
	}
	if !wrote {
		b = append(append(b, '-'), DefaultID...)
	}
	return append(b, ".csv"...)
}

func indexDash[S ~string | ~[]byte](s S) int {
	for i := 0; i < len(s); i++ {
		if s[i] == '-' {
			return i
		}
	}
	return -1
}

// decodeRune is utf8.DecodeRune for a string or a byte slice.
func decodeRune[S ~string | ~[]byte](s S) (rune, int) {
	if s[0] < utf8.RuneSelf {
		return rune(s[0]), 1
	}
	var p [utf8.UTFMax]byte
	n := copy(p[:], s)
	return utf8.DecodeRune(p[:n])
}
